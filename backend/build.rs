//! Rebuilds the server when the built widget changes: rust-embed embeds
//! `dist/` (release) or finds it (debug) at compile time, and a new widget
//! build brings new hashed file names that cargo would not otherwise notice.

fn main() {
    println!("cargo:rerun-if-changed=../dist");
    println!("cargo:rerun-if-changed=../dist-console");
    println!("cargo:rerun-if-changed=build.rs");
}
