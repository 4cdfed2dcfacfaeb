//! A frontier file is untrusted bytes handed to the hub's operator: opening
//! it never panics, whatever it holds (a file of any realm, any version).
//! Run: `cargo fuzz run open_frontier_file` (needs cargo-fuzz and a nightly toolchain).
#![no_main]

use libfuzzer_sys::fuzz_target;
use saldo_sync::bundle::FrontierFile;

fuzz_target!(|data: &[u8]| {
    let _ = FrontierFile::open(data, &saldo_sync::RealmId([0; 32]));
});
