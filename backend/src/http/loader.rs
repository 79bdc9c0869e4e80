//! `GET /widget.js` and `GET /loader/panel.<hash>.js` (the loader, from the
//! loader crate) and `GET /` (a demo host page that embeds it, so the
//! product can be tried in a browser).

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::prelude::*;

use super::widget_page::{Readers, file_headers, send_body};
use crate::state::AppState;

/// The loader. Short max-age plus an ETag: a new release reaches host pages
/// within minutes, and revalidation is a 304.
#[handler]
pub async fn widget_js(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Ok(state) = depot.get_typed::<Arc<AppState>>() else {
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        return;
    };
    let loader = &state.loader;
    let _ = res.add_header("cache-control", "public, max-age=300", true);
    let _ = res.add_header("etag", loader.etag(), true);
    file_headers(res, loader.script(), Readers::AnyOrigin);
    let fresh = req
        .headers()
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == loader.etag()));
    if fresh {
        res.status_code(StatusCode::NOT_MODIFIED);
        return;
    }
    send_body(req, res, loader.script());
}

/// `panel.js`, the rest of the loader, which `widget.js` fetches: its name
/// carries its hash, so it is cached for a year. The name of another
/// release's `panel.js` gets this one for five minutes (see
/// [`crate::assets::loader::LoaderScript::panel`]); any other name is a 404.
#[handler]
pub async fn panel_js(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let path = format!(
        "/loader/{}",
        req.param::<String>("file").unwrap_or_default()
    );
    let panel = depot
        .get_typed::<Arc<AppState>>()
        .ok()
        .and_then(|s| s.loader.panel(&path));
    let Some((panel, exact)) = panel else {
        res.status_code(StatusCode::NOT_FOUND);
        return;
    };
    let cache = if exact {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let _ = res.add_header("cache-control", cache, true);
    file_headers(res, panel, Readers::AnyOrigin);
    send_body(req, res, panel);
}

/// The request's `Host`, when it is a plain host (and port): safe to put in
/// a page or a snippet.
pub(crate) fn request_host(req: &Request) -> Option<&str> {
    req.headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
}

/// A page standing in for a customer's site, with the demo widget on it.
#[handler]
pub async fn demo_page(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let has_demo = depot.get_typed::<Arc<AppState>>().ok().is_some_and(|s| {
        s.widgets
            .get()
            .by_id_and_key("demo", crate::tenants::DEMO_KEY)
            .is_some()
    });
    if !has_demo {
        res.render(Text::Html(
            "<!doctype html><title>Porthole</title><p>Porthole is running. API reference: <a href=\"/docs/\">/docs</a>.</p>",
        ));
        return;
    }
    let host = request_host(req).unwrap_or("127.0.0.1:8080");
    let _ = res.add_header(
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-src 'self'; img-src 'self' data:",
        true,
    );
    res.render(Text::Html(
        include_str!("demo.html").replace("{{ORIGIN}}", &format!("http://{host}")),
    ));
}

#[handler]
pub async fn demo_js(res: &mut Response) {
    let _ = res.add_header("content-type", "text/javascript; charset=utf-8", true);
    res.body(include_str!("demo.js"));
}
