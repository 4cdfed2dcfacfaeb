// Loads the app: the glue wasm-bindgen wrote, then the wasm beside it.
import init from "./saldo_web.js";
init({ module_or_path: new URL("./saldo_web_bg.wasm", import.meta.url) });
