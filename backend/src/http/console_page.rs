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

/// The real widget panel showing a draft of a widget's settings, for the
/// console's editor: `/console/preview/{id}?draft=<JSON of changed
/// fields>`. Needs a console session; nothing is saved; only the console
/// (this origin) may frame it. The preview's chat has no public key (only
/// its hash is kept), so it shows the look and the texts, not answers.
#[handler]
async fn preview(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    use super::widget_page::plain_page;
    let Ok(state) = depot.get_typed::<Arc<AppState>>().cloned() else {
        return plain_page(
            res,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The server is misconfigured.",
        );
    };
    if let Err(e) = super::console::authenticate(req, &state, false).await {
        return plain_page(
            res,
            e.status,
            "Sign in",
            "Sign in to the console to preview widgets.",
        );
    }
    let id = req.param::<String>("id").unwrap_or_default();
    let mut def = match state.tenants.widget(&id).await {
        Ok(Some(def)) => def,
        Ok(None) => return plain_page(res, StatusCode::NOT_FOUND, "Not found", "No such widget."),
        Err(e) => {
            tracing::error!(error = %e, "reading a widget for its preview failed");
            return plain_page(
                res,
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The store is unavailable.",
            );
        }
    };
    let draft = req.query::<String>("draft").unwrap_or_default();
    if !draft.is_empty() {
        match serde_json::from_str::<crate::admin::WidgetInput>(&draft) {
            Ok(input) => input.apply(&mut def),
            Err(e) => {
                return plain_page(
                    res,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Not valid",
                    &format!("The draft is not valid: {e}."),
                );
            }
        }
    }
    if let Err((field, message)) = def.validate() {
        return plain_page(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not valid",
            &format!("{field}: {message}"),
        );
    }
    let (Ok(widget), Some(assets)) = (crate::tenants::Widget::from_def(&def), &state.assets) else {
        return plain_page(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The widget cannot be shown.",
        );
    };
    let session = crate::tenants::session::Session::starting_now(
        widget.id.to_string(),
        crate::tenants::session::new_visitor(),
        None,
        state.settings.session.ttl_secs,
    );
    let token = state.sessions.mint(&session);
    let html = assets.page(&widget.config("", token, &super::widget_page::wanted_languages(req)));
    let csp = format!(
        "{}; frame-ancestors 'self'",
        super::widget_page::page_csp(&widget.theme)
    );
    for (name, value) in [
        ("content-security-policy", csp.as_str()),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        let _ = res.add_header(name, value, true);
    }
    res.render(Text::Html(html));
}

pub fn router() -> Router {
    Router::with_path("console")
        .get(page)
        .push(Router::with_path("assets/{file}").get(asset))
        .push(Router::with_path("preview/{id}").get(preview))
        // The panel's page names its files relative to itself.
        .push(Router::with_path("preview/assets/{file}").get(super::widget_page::asset))
        .push(Router::with_path("{**rest}").get(page))
}
