//! `GET /widget/{id}`: the iframe document, with the widget's public
//! settings already in the page, and `GET /widget/assets/{file}`: the built
//! widget (wasm and its JS glue; stylist writes the CSS at run time) under
//! content-hashed names ([`crate::assets`] holds them).

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::state::AppState;
use crate::tenants::i18n;
use crate::tenants::session::{Session, new_visitor};

/// The Content-Security-Policy of the iframe document: only our own
/// scripts, wasm, styles and API; nothing inline but styles (stylist writes
/// its rules into <style> elements).
pub(super) const PAGE_CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'none'";

/// [`PAGE_CSP`] for a widget: its avatar's origin may serve images too.
pub(super) fn page_csp(theme: &protocol::widget::Theme) -> String {
    match theme.avatar_origin() {
        Some(origin) => PAGE_CSP.replace("img-src 'self'", &format!("img-src 'self' {origin}")),
        None => PAGE_CSP.to_owned(),
    }
}

pub(super) fn plain_page(res: &mut Response, status: StatusCode, title: &str, text: &str) {
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
    let csp = format!("{}; {}", page_csp(&widget.theme), widget.frame_ancestors());
    for (name, value) in [
        ("content-security-policy", csp.as_str()),
        // Each load carries a fresh session token: never cache it.
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        let _ = res.add_header(name, value, true);
    }
    let wanted = wanted_languages(req);
    let html = assets.page(&widget.config(key.trim(), token, &wanted));
    let _ = res.add_header("vary", "accept-language, accept-encoding", true);
    // The page is made per visitor (its session token), so it is compressed
    // per request: about 3.4 KB becomes 1.7 KB on the wire.
    if accepts_gzip(req)
        && let Some(body) =
            crate::assets::widget::gzip(html.as_bytes(), flate2::Compression::default())
    {
        let _ = res.add_header("content-type", "text/html; charset=utf-8", true);
        let _ = res.add_header("content-encoding", "gzip", true);
        res.body(body);
        return;
    }
    res.render(Text::Html(html));
}

/// The visitor's languages: the loader passes `navigator.languages`;
/// without it (a page opened directly), the browser's Accept-Language.
pub(super) fn wanted_languages(req: &Request) -> Vec<String> {
    match req.query::<String>("lang") {
        Some(list) if !list.is_empty() => i18n::from_query(&list),
        _ => req
            .headers()
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .map(i18n::accept_language)
            .unwrap_or_default(),
    }
}

/// A built asset; immutable, since its name changes with its content.
#[handler]
pub async fn asset(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let name = req.param::<String>("file").unwrap_or_default();
    let file = depot
        .get_typed::<Arc<AppState>>()
        .ok()
        .and_then(|s| s.assets.as_ref())
        .and_then(|a| a.file(&name));
    let Some(file) = file else {
        res.status_code(StatusCode::NOT_FOUND);
        return;
    };
    send_asset(req, res, &file);
}

/// A built file, gzipped when the client takes it, cached for a year (its
/// name carries its hash), for Porthole's own pages.
pub(super) fn send_asset(req: &Request, res: &mut Response, file: &crate::assets::widget::Asset) {
    let _ = res.add_header("cache-control", "public, max-age=31536000, immutable", true);
    file_headers(res, file, Readers::Porthole);
    send_body(req, res, file);
}

/// Which pages may load a file.
#[derive(Clone, Copy, Debug)]
pub(super) enum Readers {
    /// Porthole's own (the panel's and the console's files).
    Porthole,
    /// Host pages of any origin (the loader's scripts).
    AnyOrigin,
}

/// What a response carrying `file` says of it, a 304 for it included: its
/// type, that it varies by encoding, and who may read it. How long it may
/// be cached is the caller's.
pub(super) fn file_headers(
    res: &mut Response,
    file: &crate::assets::widget::Asset,
    readers: Readers,
) {
    let corp = match readers {
        Readers::Porthole => "same-origin",
        Readers::AnyOrigin => {
            let _ = res.add_header("access-control-allow-origin", "*", true);
            "cross-origin"
        }
    };
    for (name, value) in [
        ("content-type", file.content_type()),
        ("x-content-type-options", "nosniff"),
        ("vary", "accept-encoding"),
        ("cross-origin-resource-policy", corp),
    ] {
        let _ = res.add_header(name, value, true);
    }
}

/// `file`, gzipped when the client takes it.
pub(super) fn send_body(req: &Request, res: &mut Response, file: &crate::assets::widget::Asset) {
    if accepts_gzip(req) {
        let _ = res.add_header("content-encoding", "gzip", true);
        res.body(file.gzipped());
    } else {
        res.body(file.bytes());
    }
}

/// Whether the client takes gzip (`Accept-Encoding`; `q=0` means no).
fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|e| {
                let mut parts = e.split(';');
                parts.next().is_some_and(|name| name.trim() == "gzip")
                    && !parts.any(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        })
}
