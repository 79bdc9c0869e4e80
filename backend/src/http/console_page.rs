//! The console's page at `/console` (and any path under it: the app reads
//! its own route) and its built files at `/console/assets/`. A strict CSP:
//! scripts only from this server, no frames of it anywhere
//! (`frame-ancestors 'none'`), no inline script.

use std::sync::Arc;

use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::state::AppState;

const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
     frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn secure_headers(res: &mut Response) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        let _ = res.add_header(name, value, true);
    }
}

#[handler]
async fn page(depot: &mut Depot, res: &mut Response) {
    secure_headers(res);
    let _ = res.add_header("cache-control", "no-store", true);
    let console = depot
        .get_typed::<Arc<AppState>>()
        .ok()
        .and_then(|s| s.console.as_ref());
    match console {
        Some(c) => res.render(Text::Html(c.page().to_owned())),
        None => {
            tracing::error!("the console is not built: run scripts/build-widget");
            res.status_code(StatusCode::SERVICE_UNAVAILABLE);
            res.render(Text::Html(
                "<!doctype html><title>Console unavailable</title><p>The console was not built with this server (scripts/build-widget).</p>",
            ));
        }
    }
}

#[handler]
async fn asset(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let name = req.param::<String>("file").unwrap_or_default();
    let file = depot
        .get_typed::<Arc<AppState>>()
        .ok()
        .and_then(|s| s.console.as_ref())
        .and_then(|c| c.file(&name));
    let Some(file) = file else {
        res.status_code(StatusCode::NOT_FOUND);
        return;
    };
    secure_headers(res);
    super::widget_page::send_asset(req, res, &file);
}

pub fn router() -> Router {
    Router::with_path("console")
        .get(page)
        .push(Router::with_path("assets/{file}").get(asset))
        .push(Router::with_path("{**rest}").get(page))
}
