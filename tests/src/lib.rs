//! `saldo-tests`: tests that run several nodes and processes, and the
//! benchmarks (`saldo-bench`), which run in release mode outside the suite.
