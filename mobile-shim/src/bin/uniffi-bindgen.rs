//! Generates the Kotlin, Swift and Python bindings of the shim:
//! `uniffi-bindgen generate --library target/debug/libsaldo_mobile.so --language kotlin --out-dir ...`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
