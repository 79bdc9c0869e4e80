//! Minifies `src/widget.js` into `$OUT_DIR/widget.min.js`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/widget.js");
    let source = std::fs::read("src/widget.js").expect("src/widget.js is readable");
    let session = minify_js::Session::new();
    let mut out = Vec::new();
    minify_js::minify(&session, minify_js::TopLevelMode::Global, &source, &mut out)
        .unwrap_or_else(|e| panic!("src/widget.js does not parse: {e:?}"));
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(dir.join("widget.min.js"), out).expect("OUT_DIR is writable");
}
