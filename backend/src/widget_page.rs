//! `GET /widget/{id}`: the iframe document, with the widget's public
//! settings already in the page, and `GET /widget/assets/{file}`: the built
//! widget (wasm and its JS glue; stylist writes the CSS at run time) under content-hashed names.
//!
//! The assets come from `dist/` (built by `scripts/build-widget`). A release
//! build embeds them, so one binary serves everything; a debug build reads
//! them from disk, so rebuilding the widget needs no server rebuild.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use protocol::widget::WidgetConfig;
use rust_embed::RustEmbed;
use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::session::{Session, new_visitor};
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../dist"]
#[allow_missing = true]
struct Dist;

const TEMPLATE: &str = include_str!("widget_page.html");

/// One servable file.
#[derive(Debug)]
struct Asset {
    /// `Bytes`, so each response shares the file instead of copying it.
    bytes: Bytes,
    content_type: &'static str,
    gzip: OnceLock<Bytes>,
}

impl Asset {
    fn new(bytes: impl Into<Bytes>, name: &str) -> Self {
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

    /// Compressed once, on first request, so start-up stays fast.
    fn gzipped(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let _ = enc.write_all(&self.bytes);
                enc.finish().unwrap_or_default().into()
            })
            .clone()
    }
}

/// Embedded files (release) are `'static`: share them without a copy.
fn embedded_bytes(data: std::borrow::Cow<'static, [u8]>) -> Bytes {
    match data {
        std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
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
        let mut files = HashMap::new();
        for name in Dist::iter() {
            // Trunk's own page is for `trunk serve`; the server renders its own.
            if name.ends_with(".html") || name.contains('/') {
                continue;
            }
            if let Some(file) = Dist::get(&name) {
                files.insert(
                    name.to_string(),
                    Arc::new(Asset::new(embedded_bytes(file.data), &name)),
                );
            }
        }
        let find = |pred: &dyn Fn(&str) -> bool| files.keys().find(|n| pred(n)).cloned();
        let wasm = find(&|n| n.starts_with("widget-app-") && n.ends_with("_bg.wasm"))?;
        let js = find(&|n| n.starts_with("widget-app-") && n.ends_with(".js"))?;
        // The glue's name carries the build's hash: so does the boot script's.
        let hash = js
            .trim_start_matches("widget-app-")
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

    /// The iframe document for a widget.
    pub fn page(&self, config: &WidgetConfig) -> String {
        let json = serde_json::to_string(config).unwrap_or_default();
        // Inside <script>, `</script>` or `<!--` in a title or greeting must
        // not end the element: escape the characters that could.
        let json = json
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        TEMPLATE
            .replace("{{TITLE}}", &escape_html(&config.title))
            .replace("{{CONFIG}}", &json)
            .replace("{{JS}}", &self.js)
            .replace("{{WASM}}", &self.wasm)
            .replace("{{BOOT}}", &self.boot)
    }

    /// Every file the iframe downloads, for size reports.
    pub fn page_files(&self) -> Vec<&str> {
        vec![&self.js, &self.wasm, &self.boot]
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The Content-Security-Policy of the iframe document: only our own
/// scripts, wasm, styles and API; nothing inline but styles (stylist writes
/// its rules into <style> elements).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'none'";

fn plain_page(res: &mut Response, status: StatusCode, title: &str, text: &str) {
    res.status_code(status);
    let _ = res.add_header("cache-control", "no-store", true);
    res.render(Text::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;color:#555;padding:1rem\"><p>{text}</p></body></html>"
    )));
}

/// The answer for an unknown widget id, a wrong or rotated key, and a
/// disabled widget: one response, so keys and ids cannot be probed, and one
/// a browser treats like a page on a site that is not allowed (it refuses
/// to frame it).
fn unavailable(res: &mut Response) {
    let _ = res.add_header(
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
        true,
    );
    plain_page(
        res,
        StatusCode::NOT_FOUND,
        "Not available",
        "This chat is not available here.",
    );
}

/// The chat panel's document, for the loader's iframe:
/// `/widget/{id}?key=pk_…`. It carries a new session token, and only the
/// widget's allowed sites may frame it.
#[handler]
pub async fn page(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Ok(state) = depot.get_typed::<Arc<AppState>>() else {
        return plain_page(
            res,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "Something went wrong.",
        );
    };
    let id = req.param::<String>("id").unwrap_or_default();
    let key = req.query::<String>("key").unwrap_or_default();
    let Some(widget) = state.widgets.get().by_id_and_key(&id, key.trim()) else {
        return unavailable(res);
    };
    let Some(assets) = &state.assets else {
        tracing::error!(
            "widget assets are missing: run scripts/build-widget before building the server"
        );
        return plain_page(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The chat is not available right now.",
        );
    };
    let session = Session::starting_now(
        widget.id.to_string(),
        new_visitor(),
        None,
        state.settings.session.ttl_secs,
    );
    let token = state.sessions.mint(&session);
    // Only the widget's own sites may frame it: the browser enforces this,
    // whatever the embedding page says about itself.
    let csp = format!("{PAGE_CSP}; {}", widget.frame_ancestors());
    for (name, value) in [
        ("content-security-policy", csp.as_str()),
        // Each load carries a fresh session token: never cache it.
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        let _ = res.add_header(name, value, true);
    }
    res.render(Text::Html(assets.page(&widget.config(key.trim(), token))));
}

/// A built asset; immutable, since its name changes with its content.
#[handler]
pub async fn asset(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let name = req.param::<String>("file").unwrap_or_default();
    let file = depot
        .get_typed::<Arc<AppState>>()
        .ok()
        .and_then(|s| s.assets.as_ref())
        .and_then(|a| a.files.get(&name).cloned());
    let Some(file) = file else {
        res.status_code(StatusCode::NOT_FOUND);
        return;
    };
    let gzip = req
        .headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    for (name, value) in [
        ("content-type", file.content_type),
        ("cache-control", "public, max-age=31536000, immutable"),
        ("x-content-type-options", "nosniff"),
        ("vary", "accept-encoding"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        let _ = res.add_header(name, value, true);
    }
    if gzip {
        let _ = res.add_header("content-encoding", "gzip", true);
        res.body(file.gzipped());
    } else {
        res.body(file.bytes.clone());
    }
}
