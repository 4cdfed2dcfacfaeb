//! Untrusted bytes from a peer or a bundle: decoding never panics, and what
//! decodes re-encodes to the same bytes.
//! Run: `cargo fuzz run decode_op` (needs cargo-fuzz and a nightly toolchain).
#![no_main]

use libfuzzer_sys::fuzz_target;
use saldo_sync::SignedOp;

fuzz_target!(|data: &[u8]| {
    if let Ok(op) = SignedOp::decode(data) {
        assert_eq!(op.to_bytes(), data);
        let _ = op.verify(&saldo_sync::RealmId([0; 32]));
    }
});
