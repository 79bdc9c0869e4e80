//! The fetch helpers both the chat API (`api`) and the session (`session`)
//! use: URLs, headers, `fetch` with abort detection, and reading an
//! `ApiError` out of a refusal. Depends on neither of them, so `api` uses
//! `session` (for the token and its renewal) and not the other way round.

use js_sys::Reflect;
use protocol::i18n::Text;
use protocol::widget::WidgetConfig;
use protocol::{ApiError, ErrorCode};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit, Response};

/// Why an answer did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The visitor pressed Stop.
    Aborted,
    /// The server said no, before or during the answer.
    Api(ApiError),
    /// The network failed or the server could not be reached.
    Network,
}

impl Failure {
    /// What the visitor reads, in their language (the server's own
    /// message is English and for developers).
    pub fn text(&self) -> Text {
        match self {
            Failure::Aborted => Text::Stopped,
            Failure::Api(e) => Text::for_error(e.code),
            Failure::Network => Text::ErrorNetwork,
        }
    }
}

pub(crate) fn url(config: &WidgetConfig, path: &str) -> String {
    format!("{}{}", config.api_base.trim_end_matches('/'), path)
}

/// The widget's key and the session token.
pub(crate) fn headers(config: &WidgetConfig, token: &str) -> Result<Headers, Failure> {
    let h = Headers::new().map_err(|_| Failure::Network)?;
    h.set("X-API-Key", &config.public_key)
        .map_err(|_| Failure::Network)?;
    h.set("Authorization", &format!("Bearer {token}"))
        .map_err(|_| Failure::Network)?;
    Ok(h)
}

/// POSTs and returns the body of a 2xx answer.
pub(crate) async fn fetch_text(url: &str, init: &RequestInit) -> Result<String, Failure> {
    let response = fetch(url, init).await?;
    if !response.ok() {
        return Err(api_error(&response).await);
    }
    Ok(
        JsFuture::from(response.text().map_err(|_| Failure::Network)?)
            .await
            .map_err(|_| Failure::Network)?
            .as_string()
            .unwrap_or_default(),
    )
}

pub(crate) async fn fetch(url: &str, init: &RequestInit) -> Result<Response, Failure> {
    let window = web_sys::window().ok_or(Failure::Network)?;
    let response = JsFuture::from(window.fetch_with_str_and_init(url, init))
        .await
        .map_err(|e| {
            if is_abort(&e) {
                Failure::Aborted
            } else {
                Failure::Network
            }
        })?;
    response
        .dyn_into::<Response>()
        .map_err(|_| Failure::Network)
}

pub(crate) fn is_abort(e: &JsValue) -> bool {
    Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "AbortError")
}

/// The `ApiError` of a non-2xx response, or a generic one.
pub(crate) async fn api_error(response: &Response) -> Failure {
    let fallback = ApiError::new(
        ErrorCode::Unknown,
        format!(
            "The assistant is unavailable right now (HTTP {}). Please try again.",
            response.status()
        ),
    );
    let Ok(promise) = response.text() else {
        return Failure::Api(fallback);
    };
    let text = JsFuture::from(promise)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    Failure::Api(
        crate::parse_json(&text)
            .and_then(|v| crate::wire::api_error(&v))
            .unwrap_or(fallback),
    )
}
