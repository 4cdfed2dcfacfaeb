//! The Kotlin, Swift and Python bindings, generated from the shim's shared
//! library as this `cargo test` built it, into `target/bindings/{kotlin,
//! swift,python}` (the Python ones with the library beside them, for
//! `tests/test_shim.py`, which `scripts/test` runs next). CI generates them
//! here; `scripts/mobile-bindings` does the same for app developers.

use std::path::{Path, PathBuf};

use camino::Utf8PathBuf;
use uniffi::{GenerateOptions, TargetLanguage};

const LIBRARY: &str = if cfg!(target_os = "macos") { "libsaldo_mobile.dylib" } else { "libsaldo_mobile.so" };

/// `target/debug` (or the profile this test was built in): this test runs
/// from its `deps` folder.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent().and_then(Path::parent).expect("target/PROFILE/deps/TEST").to_path_buf()
}

fn utf8(path: &Path) -> Utf8PathBuf {
    Utf8PathBuf::from_path_buf(path.to_path_buf()).expect("a target directory with a UTF-8 path")
}

#[test]
fn kotlin_swift_and_python_bindings_generate_from_the_library() {
    let profile = profile_dir();
    let library = [profile.join(LIBRARY), profile.join("deps").join(LIBRARY)]
        .into_iter()
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("{LIBRARY} not found in {}: cargo builds it with this test", profile.display()));
    let out = profile.parent().expect("target/").join("bindings");
    for (language, dir, expected) in [
        (TargetLanguage::Kotlin, "kotlin", "uniffi/saldo_mobile/saldo_mobile.kt"),
        (TargetLanguage::Swift, "swift", "saldo_mobile.swift"),
        (TargetLanguage::Python, "python", "saldo_mobile.py"),
    ] {
        let dir = out.join(dir);
        let _ = std::fs::remove_dir_all(&dir);
        uniffi::generate(GenerateOptions {
            languages: vec![language],
            source: utf8(&library),
            out_dir: utf8(&dir),
            config_override: None,
            format: false,
            crate_filter: None,
            metadata_no_deps: true,
        })
        .unwrap_or_else(|e| panic!("{dir:?} bindings: {e:#}"));
        let generated = std::fs::read_to_string(dir.join(expected))
            .unwrap_or_else(|e| panic!("{expected} not generated in {}: {e}", dir.display()));
        // The exported API is there, in each language's spelling.
        for name in ["CashPoint", "Counter", "SaldoError"] {
            assert!(generated.contains(name), "{name} missing from {expected}");
        }
    }
    std::fs::copy(&library, out.join("python").join(LIBRARY)).expect("the library beside the Python bindings");
}
