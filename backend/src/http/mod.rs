//! The router: public API, probes and docs. Kept apart from the socket so
//! tests and the binary build the same service.

use std::sync::Arc;

use protocol::ApiError;
use protocol::api::HealthStatus;
use protocol::event::{ChunkEvent, DoneEvent, MetaEvent};
use salvo::affix_state;
use salvo::catcher::Catcher;
use salvo::cors::{AllowHeaders, AllowMethods, AllowOrigin, Cors, ExposeHeaders};
use salvo::http::header::HeaderName;
use salvo::http::{Method, StatusCode};
use salvo::oapi::security::{Http, HttpAuthScheme, SecurityScheme};
use salvo::oapi::{OpenApi, ToSchema};
use salvo::prelude::*;

use crate::error::{AppError, json_catcher};
use crate::state::AppState;
pub mod admin;
pub mod analytics;
pub mod auth;
pub mod chat;
pub mod console;
pub mod console_page;
pub mod feedback;
pub mod history;
pub mod inbox;
pub mod knowledge;
pub mod loader;
pub mod webhooks;
pub mod widget_page;

/// Whether the process is alive.
#[endpoint(tags("probes"), responses((status_code = 200, body = HealthStatus)))]
async fn health(res: &mut Response) {
    res.render(Json(HealthStatus {
        status: "ok".into(),
    }));
}

/// Whether this replica should get traffic: the store answers and the server
/// is not shutting down.
#[endpoint(tags("probes"), responses((status_code = 200, body = HealthStatus), (status_code = 503, body = HealthStatus)))]
async fn ready(depot: &mut Depot, res: &mut Response) {
    let Ok(state) = depot.get_typed::<Arc<AppState>>() else {
        AppError::internal().render(res);
        return;
    };
    let status = if state.lifecycle.is_shutting_down() {
        Some("shutting down")
    } else if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "store not reachable");
        Some("store unreachable")
    } else {
        None
    };
    // Without Redis a replica still serves, with limits of its own: ready,
    // and it says so.
    let redis_down = state.settings.redis.url.is_some() && !state.limiter.redis_up();
    match status {
        None if redis_down => res.render(Json(HealthStatus {
            status: "degraded: Redis unreachable, limits are this replica's alone".into(),
        })),
        None => res.render(Json(HealthStatus {
            status: "ok".into(),
        })),
        Some(why) => {
            res.status_code(StatusCode::SERVICE_UNAVAILABLE);
            res.render(Json(HealthStatus { status: why.into() }));
        }
    }
}

/// Prometheus metrics, in the text format (`crate::metrics`): chat
/// outcomes, latencies, upstream errors, tokens, resumes, store errors, and
/// gauges read now (open streams, answer logs, widgets, the runtime's live
/// tasks, resident memory). Counts only; keep it off the public internet
/// all the same (see the nginx example).
#[handler]
async fn metrics(depot: &mut Depot, res: &mut Response) {
    let Ok(state) = depot.get_typed::<Arc<AppState>>() else {
        AppError::internal().render(res);
        return;
    };
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024);
    let m = &state.metrics;
    m.gauge(
        "porthole_open_streams",
        "Answers streaming now.",
        state.lifecycle.open_streams() as f64,
    );
    m.gauge(
        "porthole_answer_logs",
        "Answers whose events are kept for resuming (streaming, or finished within resume_ttl_secs).",
        state.answers.len() as f64,
    );
    m.gauge(
        "porthole_runtime_alive_tasks",
        "Tasks alive in the async runtime.",
        tasks as f64,
    );
    if state.settings.redis.url.is_some() {
        let shared = state.limiter.shared();
        m.gauge(
            "porthole_redis_up",
            "1 when the last call to Redis succeeded; 0 while limits fall back to this replica's.",
            f64::from(u8::from(state.limiter.redis_up())),
        );
        m.gauge(
            "porthole_redis_errors",
            "Calls to Redis that failed or timed out since the start.",
            shared.map_or(0, |s| s.errors()) as f64,
        );
    }
    m.gauge(
        "porthole_widgets",
        "Enabled widgets.",
        state.widgets.get().len() as f64,
    );
    if let Some(rss) = rss {
        m.gauge(
            "porthole_resident_memory_bytes",
            "Resident memory of the process.",
            rss as f64,
        );
    }
    m.gauge(
        "porthole_draining",
        "1 while the server shuts down.",
        f64::from(u8::from(state.lifecycle.is_shutting_down())),
    );
    let out = m.render();
    let _ = res.add_header("content-type", "text/plain; version=0.0.4", true);
    let _ = res.add_header("cache-control", "no-store", true);
    res.body(out);
}

/// Public API routes.
fn api_router() -> Router {
    Router::with_path("api/v1")
        .push(
            Router::with_path("chat")
                .hoop(auth::require_session)
                .post(chat::chat)
                .push(Router::with_path("{message_id}/stream").get(chat::resume))
                .push(Router::with_path("{message_id}/stop").post(chat::stop))
                .push(Router::with_path("{message_id}/feedback").post(feedback::feedback)),
        )
        .push(
            Router::with_path("conversations/{id}")
                .hoop(auth::require_session)
                .get(history::conversation),
        )
        .push(Router::with_path("session").post(auth::renew))
        .push(admin::router())
        .push(console::router())
}

/// The iframe document and the built widget.
fn widget_router() -> Router {
    Router::with_path("widget")
        .push(Router::with_path("assets/{file}").get(widget_page::asset))
        .push(Router::with_path("{id}").get(widget_page::page))
}

/// The application router, without docs (its requests' ids are given by
/// [`service`], around it).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .hoop(affix_state::inject(state))
        .push(Router::with_path("health").get(health))
        .push(Router::with_path("ready").get(ready))
        .push(Router::with_path("metrics").get(metrics))
        .push(api_router())
        .push(widget_router())
        .push(console_page::router())
        .push(Router::with_path("widget.js").get(loader::widget_js))
        .push(Router::with_path("loader/{file}").get(loader::panel_js))
        .push(Router::with_path("demo.js").get(loader::demo_js))
        .push(Router::new().get(loader::demo_page))
}

/// The OpenAPI document for `router`.
pub fn openapi(router: &Router) -> OpenApi {
    // Schema names without module paths (`ChatRequest`, not
    // `protocol.api.ChatRequest`). salvo keeps the namer process-wide.
    // Set once: setting it again clears the names of types being registered.
    static NAMER: std::sync::Once = std::sync::Once::new();
    NAMER.call_once(|| {
        salvo::oapi::naming::set_namer(salvo::oapi::naming::FlexNamer::new().short_mode(true));
    });
    let mut doc = OpenApi::new("Porthole", env!("CARGO_PKG_VERSION")).merge_router(router);
    // The SSE payloads are not bodies of any route; registering them lets
    // clients generate types for them.
    let components = &mut doc.components;
    let _ = MetaEvent::to_schema(components);
    let _ = protocol::SourceRef::to_schema(components);
    let _ = ChunkEvent::to_schema(components);
    let _ = DoneEvent::to_schema(components);
    let _ = ApiError::to_schema(components);
    doc.add_security_scheme(
        "admin_key",
        SecurityScheme::Http(
            Http::new(HttpAuthScheme::Bearer)
                .description("An admin key, `ak_…`, from `porthole admin-key create`"),
        ),
    )
    .add_security_scheme(
        "console_session",
        SecurityScheme::ApiKey(salvo::oapi::security::ApiKey::Cookie(
            salvo::oapi::security::ApiKeyValue::with_description(
                crate::accounts::COOKIE,
                "The console's sign-in session (`POST /api/v1/console/session`); every change also needs its `X-CSRF-Token`. The admin API takes it in place of an admin key, within the user's role.",
            ),
        )),
    )
}

/// The whole service: router, docs, CORS and JSON errors.
pub fn service(state: Arc<AppState>) -> Service {
    // Every request gets an id, also one no route matches: in
    // `X-Request-Id` on the response and on every log line of the request
    // (a span). Behind a trusted proxy (`limits.trust_forwarded_for`) the
    // proxy's own id is kept, so its access log and ours name one request.
    let request_id =
        salvo::request_id::RequestId::new().overwrite(!state.settings.limits.trust_forwarded_for);
    let router = router(state);
    let doc = openapi(&router);
    let router = router
        .push(doc.into_router("/api-doc/openapi.json"))
        .push(SwaggerUi::new("/api-doc/openapi.json").into_router("docs"));
    // The chat API is called from the widget's iframe (its own origin) with
    // a public key and a bearer token, never cookies, so a wildcard origin
    // gives a foreign page nothing it could not do with curl. The admin API
    // answers browsers too, but only with a secret bearer key.
    let cors = Cors::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::list([
            Method::GET,
            Method::POST,
            Method::OPTIONS,
        ]))
        .allow_headers(AllowHeaders::list([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("last-event-id"),
        ]))
        // What the widget (or any API client) may read of an answer: the
        // wait before retrying and the conversation a refused turn is in.
        .expose_headers(ExposeHeaders::list(
            [
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
                "ratelimit-policy",
                "ratelimit-scope",
                protocol::api::CONVERSATION_HEADER,
                "x-request-id",
            ]
            .map(HeaderName::from_static),
        ))
        .max_age(86_400)
        .into_handler();
    Service::new(router)
        .hoop(request_id)
        .hoop(cors)
        .catcher(Catcher::default().hoop(json_catcher))
}
