//! Builds the operators' web UI (`saldo-web`) to wasm and embeds it: a
//! nested `cargo build` for `wasm32-unknown-unknown` with the `web-release`
//! profile in its own target directory (`target/web`), then
//! `wasm-bindgen-cli-support` (the library, pinned to the `wasm-bindgen` of
//! Cargo.lock) writes the JS glue and the final wasm into `OUT_DIR/web`, with
//! the page and its stylesheet from `web/static`. `node/src/http/web.rs`
//! includes them. No download happens here; a missing wasm32 target is added
//! with rustup, as `scripts/test` does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "web-release";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("node/ lives in the workspace").to_path_buf();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    for watched in [
        "web/src",
        "web/static",
        "web/Cargo.toml",
        "node/api/src",
        "node/api/Cargo.toml",
        "sync/src",
        "sync/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=SALDO_WEB_TARGET_DIR");
    if let Err(message) = build(&workspace, &out) {
        panic!("building the web UI (saldo-web) failed: {message}");
    }
}

fn build(workspace: &Path, out: &Path) -> Result<(), String> {
    ensure_wasm_target()?;
    let target_dir =
        env::var_os("SALDO_WEB_TARGET_DIR").map_or_else(|| workspace.join("target").join("web"), PathBuf::from);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--locked", "-p", "saldo-web", "--target", TARGET, "--profile", PROFILE, "--target-dir"])
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    // The outer build's flags, wrappers and target settings are for the host
    // binary; the nested one must not see them (nor share its target dir).
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let clashes =
            ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "RUSTC_WRAPPER", "RUSTDOCFLAGS"]
                .contains(&key)
                || ["CARGO_TARGET_", "CARGO_BUILD_", "CARGO_PROFILE_", "CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_"]
                    .iter()
                    .any(|prefix| key.starts_with(prefix))
                || [
                    "TARGET",
                    "HOST",
                    "PROFILE",
                    "OPT_LEVEL",
                    "DEBUG",
                    "OUT_DIR",
                    "NUM_JOBS",
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_CRATE_NAME",
                    "RUSTC_LINKER",
                ]
                .contains(&key);
        if clashes {
            command.env_remove(key);
        }
    }
    let status = command.status().map_err(|e| format!("could not run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "the nested `cargo build -p saldo-web --target {TARGET} --profile {PROFILE}` failed ({status}); its errors are above"
        ));
    }
    let wasm = target_dir.join(TARGET).join(PROFILE).join("saldo_web.wasm");
    fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .map_err(|e| e.to_string())?
        .typescript(false)
        .remove_name_section(true)
        .remove_producers_section(true)
        .out_name("saldo_web")
        .generate(out)
        .map_err(|e| format!("wasm-bindgen on {}: {e}", wasm.display()))?;
    for file in ["index.html", "app.css", "boot.js"] {
        let from = workspace.join("web").join("static").join(file);
        fs::copy(&from, out.join(file)).map_err(|e| format!("{}: {e}", from.display()))?;
    }
    Ok(())
}

/// Adds the wasm32 target when rustup manages this toolchain and lacks it.
fn ensure_wasm_target() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot =
        Command::new(&rustc).args(["--print", "sysroot"]).output().map_err(|e| format!("could not run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib").join("rustlib").join(TARGET).exists() {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .env_remove("RUSTC")
        .status()
        .map_err(|e| format!("the {TARGET} target is missing and rustup could not run ({e}): install it with `rustup target add {TARGET}`"))?;
    if !status.success() {
        return Err(format!("`rustup target add {TARGET}` failed: run it by hand"));
    }
    Ok(())
}
