//! Minifies `src/widget.js` and `src/panel.js` into `$OUT_DIR`.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in ["widget", "panel"] {
        let path = format!("src/{name}.js");
        println!("cargo:rerun-if-changed={path}");
        let source = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let session = minify_js::Session::new();
        let mut out = Vec::new();
        minify_js::minify(&session, minify_js::TopLevelMode::Global, &source, &mut out)
            .unwrap_or_else(|e| panic!("{path} does not parse: {e:?}"));
        std::fs::write(dir.join(format!("{name}.min.js")), out).expect("OUT_DIR is writable");
    }
}
