//! The built widget (wasm, its JS glue and a boot script, from `dist/`)
//! and the iframe document around it.
//!
//! The files come from `dist/` (built by `scripts/build-widget`). A release
//! build embeds them, so one binary serves everything; a debug build reads
//! them from disk, so rebuilding the widget needs no server rebuild.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use protocol::i18n::Text;
use protocol::widget::WidgetConfig;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../dist"]
#[allow_missing = true]
struct Dist;

const TEMPLATE: &str = include_str!("widget_page.html");

/// One servable file.
#[derive(Debug)]
pub struct Asset {
    /// `Bytes`, so each response shares the file instead of copying it.
    bytes: Bytes,
    content_type: &'static str,
    gzip: OnceLock<Bytes>,
}

impl Asset {
    pub(crate) fn new(bytes: impl Into<Bytes>, name: &str) -> Self {
        let content_type = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("wasm") => "application/wasm",
            Some("css") => "text/css; charset=utf-8",
            _ => "application/octet-stream",
        };
        Self {
            bytes: bytes.into(),
            content_type,
            gzip: OnceLock::new(),
        }
    }

    /// The file as it is.
    pub fn bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// Its `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Compressed once, on first request, so start-up stays fast.
    pub fn gzipped(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                gzip(&self.bytes, flate2::Compression::best())
                    .unwrap_or_default()
                    .into()
            })
            .clone()
    }
}

/// `bytes` gzip-compressed at `level`; `None` if the encoder fails.
pub fn gzip(bytes: &[u8], level: flate2::Compression) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// Embedded files (release) are `'static`: share them without a copy.
pub(crate) fn embedded_bytes(data: std::borrow::Cow<'static, [u8]>) -> Bytes {
    match data {
        std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    }
}

/// A Trunk build of one crate: its files by name, its hashed JS glue and
/// wasm, and a boot script that starts it (a file, so the page's CSP needs
/// no inline script). Shared by the widget and the console.
#[derive(Debug)]
pub(crate) struct Build {
    pub(crate) files: HashMap<String, Arc<Asset>>,
    pub(crate) js: String,
    pub(crate) wasm: String,
    pub(crate) boot: String,
}

impl Build {
    /// The build of `crate_name` from `(name, bytes)` pairs; `None` when its
    /// glue or wasm is missing (not built).
    pub(crate) fn of(
        crate_name: &str,
        dist: impl Iterator<Item = (String, std::borrow::Cow<'static, [u8]>)>,
    ) -> Option<Self> {
        let mut files = HashMap::new();
        for (name, data) in dist {
            // Trunk's own page is for `trunk serve`; the server renders its own.
            if name.ends_with(".html") || name.contains('/') {
                continue;
            }
            let asset = Asset::new(embedded_bytes(data), &name);
            files.insert(name, Arc::new(asset));
        }
        let prefix = format!("{crate_name}-");
        let find = |pred: &dyn Fn(&str) -> bool| files.keys().find(|n| pred(n)).cloned();
        let wasm = find(&|n| n.starts_with(&prefix) && n.ends_with("_bg.wasm"))?;
        let js = find(&|n| n.starts_with(&prefix) && n.ends_with(".js"))?;
        // The glue's name carries the build's hash: so does the boot script's.
        let hash = js
            .trim_start_matches(&prefix)
            .trim_end_matches(".js")
            .to_owned();
        let boot = format!("boot-{hash}.js");
        let boot_js = format!(
            "import init from './{js}';\ninit({{ module_or_path: new URL('./{wasm}', import.meta.url) }});\n"
        );
        files.insert(
            boot.clone(),
            Arc::new(Asset::new(boot_js.into_bytes(), &boot)),
        );
        Some(Self {
            files,
            js,
            wasm,
            boot,
        })
    }
}

/// The built widget, indexed by file name.
#[derive(Debug)]
pub struct WidgetAssets {
    files: HashMap<String, Arc<Asset>>,
    js: String,
    wasm: String,
    boot: String,
}

impl WidgetAssets {
    /// Reads the built widget; `None` when it has not been built.
    pub fn load() -> Option<Self> {
        let dist =
            Dist::iter().filter_map(|name| Dist::get(&name).map(|f| (name.to_string(), f.data)));
        let Build {
            files,
            js,
            wasm,
            boot,
        } = Build::of("widget-app", dist)?;
        Some(Self {
            files,
            js,
            wasm,
            boot,
        })
    }

    /// The iframe document for a widget.
    pub fn page(&self, config: &WidgetConfig) -> String {
        let json = serde_json::to_string(config).unwrap_or_default();
        // Inside <script>, `</script>` or `<!--` in a title or greeting must
        // not end the element: escape the characters that could.
        let json = json
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        let mode = match config.theme.mode {
            protocol::widget::ThemeMode::Light => "light",
            protocol::widget::ThemeMode::Dark => "dark",
            protocol::widget::ThemeMode::Auto => "auto",
        };
        // Only a checked colour reaches the page's CSS.
        let primary = if config.theme.primary_is_valid() {
            config.theme.primary.clone()
        } else {
            protocol::widget::Theme::default().primary
        };
        let title = escape_html(&config.title);
        let lang = escape_html(&config.lang);
        let loading = escape_html(config.text(Text::Loading));
        let placeholder = escape_html(config.text(Text::Placeholder));
        fill(
            TEMPLATE,
            &[
                ("LANG", &lang),
                ("DIR", if config.rtl { "rtl" } else { "ltr" }),
                ("MODE", mode),
                ("PRIMARY", &primary),
                ("LOADING", &loading),
                ("PLACEHOLDER", &placeholder),
                ("TITLE", &title),
                ("CONFIG", &json),
                ("JS", &self.js),
                ("WASM", &self.wasm),
                ("BOOT", &self.boot),
            ],
        )
    }

    /// A built file by name.
    pub fn file(&self, name: &str) -> Option<Arc<Asset>> {
        self.files.get(name).cloned()
    }

    /// Every file the iframe downloads, for size reports.
    pub fn page_files(&self) -> Vec<&str> {
        vec![&self.js, &self.wasm, &self.boot]
    }
}

/// The template with each `{{NAME}}` replaced by its value, in one pass:
/// a value that itself holds `{{…}}` (a title, say) stays as written.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 4096);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}").and_then(|end| {
            values
                .iter()
                .find(|(k, _)| *k == &after[..end])
                .map(|v| (end, v.1))
        }) {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        let out = fill(
            "<t>{{TITLE}}</t><x>{{CONFIG}}</x>{{UNKNOWN}}",
            &[("TITLE", "{{CONFIG}}"), ("CONFIG", "{}")],
        );
        assert_eq!(out, "<t>{{CONFIG}}</t><x>{}</x>{{UNKNOWN}}");
    }
}
