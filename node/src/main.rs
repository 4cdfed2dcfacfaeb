//! The `saldo` binary: the command line wires the library together.

fn main() -> std::process::ExitCode {
    saldo_node::cli::main()
}
