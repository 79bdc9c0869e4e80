//! The built console (its wasm, JS glue and a boot script, from
//! `dist-console/`, built by `scripts/build-widget` with the widget) and
//! the page around it. Embedded in release builds, read from disk in debug
//! builds, as the widget is.

use std::collections::HashMap;
use std::sync::Arc;

use rust_embed::RustEmbed;

use super::widget::{Asset, Build};

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../dist-console"]
#[allow_missing = true]
struct Dist;

/// The console's page: the boot script is a file, so the page's CSP needs
/// no inline script.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>Porthole console</title>
<link rel="modulepreload" href="/console/assets/{JS}">
<link rel="preload" href="/console/assets/{WASM}" as="fetch" type="application/wasm" crossorigin>
<script type="module" src="/console/assets/{BOOT}"></script>
</head>
<body><noscript>The console needs JavaScript.</noscript></body>
</html>
"#;

/// The built console, indexed by file name.
#[derive(Debug)]
pub struct ConsoleAssets {
    files: HashMap<String, Arc<Asset>>,
    page: String,
}

impl ConsoleAssets {
    /// Reads the built console; `None` when it has not been built.
    pub fn load() -> Option<Self> {
        let dist =
            Dist::iter().filter_map(|name| Dist::get(&name).map(|f| (name.to_string(), f.data)));
        let build = Build::of("console-app", dist)?;
        let page = PAGE
            .replace("{JS}", &build.js)
            .replace("{WASM}", &build.wasm)
            .replace("{BOOT}", &build.boot);
        Some(Self {
            files: build.files,
            page,
        })
    }

    /// The page every console route answers with (the app reads its route).
    pub fn page(&self) -> &str {
        &self.page
    }

    /// A built file by name.
    pub fn file(&self, name: &str) -> Option<Arc<Asset>> {
        self.files.get(name).cloned()
    }

    /// The names of the files the page downloads, for size reports.
    pub fn page_files(&self) -> Vec<String> {
        let mut names: Vec<String> = self.files.keys().cloned().collect();
        names.sort();
        names
    }
}
