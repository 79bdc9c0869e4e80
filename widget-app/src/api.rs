//! Talking to the Porthole API from the browser: the chat answer read as
//! SSE from a fetch body stream (EventSource cannot POST), and the history.

use js_sys::{Reflect, Uint8Array};
use protocol::widget::{ConversationView, WidgetConfig};
use protocol::{ChatRequest, ErrorCode, SseParser, StreamEvent};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, RequestInit, Response};

pub use crate::fetch::Failure;
use crate::fetch::{api_error, fetch, headers, is_abort, url};
use crate::session;

/// A request with the session, renewed once if it has expired.
async fn fetch_authed(
    config: &WidgetConfig,
    url: &str,
    init: &RequestInit,
    extra: &[(&str, &str)],
) -> Result<Response, Failure> {
    for attempt in 0..2 {
        let h = headers(config, &session::token())?;
        for (name, value) in extra {
            h.set(name, value).map_err(|_| Failure::Network)?;
        }
        init.set_headers(&h.into());
        let response = fetch(url, init).await?;
        if response.status() != 401 || attempt == 1 {
            return Ok(response);
        }
        let failure = api_error(&response).await;
        match &failure {
            Failure::Api(e) if e.code == ErrorCode::SessionExpired => {
                session::renew(config).await?
            }
            _ => return Err(failure),
        }
    }
    Err(Failure::Network)
}

/// Posts `message` and calls `on_event` for each event as it arrives.
/// Returns when the stream ends; an `error` event becomes `Err`. A refusal
/// that names the conversation the question was stored in (the model
/// failed before answering) hands it to `on_stored`, so a retry continues it.
pub async fn ask(
    config: &WidgetConfig,
    message: &str,
    conversation_id: Option<String>,
    signal: &AbortSignal,
    mut on_event: impl FnMut(StreamEvent),
    on_stored: impl FnOnce(String),
) -> Result<(), Failure> {
    let request = ChatRequest {
        message: message.to_owned(),
        conversation_id,
    };
    // `None` becomes undefined, which JSON.stringify leaves out, as the
    // contract's `skip_serializing_if` does.
    let body = serde_wasm_bindgen::to_value(&request)
        .ok()
        .and_then(|v| js_sys::JSON::stringify(&v).ok())
        .and_then(|s| s.as_string())
        .ok_or(Failure::Network)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    init.set_signal(Some(signal));
    let response = fetch_authed(
        config,
        &url(config, "/api/v1/chat"),
        &init,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "text/event-stream"),
        ],
    )
    .await?;
    if !response.ok() {
        if let Ok(Some(id)) = response.headers().get(protocol::api::CONVERSATION_HEADER) {
            on_stored(id);
        }
        return Err(api_error(&response).await);
    }
    let reader: ReadableStreamDefaultReader = response
        .body()
        .ok_or(Failure::Network)?
        .get_reader()
        .dyn_into()
        .map_err(|_| Failure::Network)?;
    let mut parser = SseParser::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| {
            if is_abort(&e) {
                Failure::Aborted
            } else {
                Failure::Network
            }
        })?;
        let done = Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            // The contract ends every stream with done or error; a body that
            // stops without one was cut off.
            return Err(Failure::Network);
        }
        let Ok(value) = Reflect::get(&chunk, &"value".into()) else {
            continue;
        };
        let bytes = Uint8Array::new(&value).to_vec();
        for msg in parser.push(&bytes) {
            // An event this version does not know is skipped, not fatal.
            let data = js_sys::JSON::parse(&msg.data).unwrap_or(JsValue::UNDEFINED);
            let Ok(event) =
                StreamEvent::from_parts(&msg.event, serde_wasm_bindgen::Deserializer::from(data))
            else {
                continue;
            };
            match event {
                StreamEvent::Error(e) => return Err(Failure::Api(e)),
                StreamEvent::Done(_) => {
                    on_event(event);
                    return Ok(());
                }
                other => on_event(other),
            }
        }
    }
}

/// Fetches a conversation's history; `Ok(None)` when the server no longer
/// knows it.
pub async fn history(
    config: &WidgetConfig,
    conversation_id: &str,
) -> Result<Option<ConversationView>, Failure> {
    let init = RequestInit::new();
    init.set_method("GET");
    let path = format!(
        "/api/v1/conversations/{}",
        js_sys::encode_uri_component(conversation_id)
    );
    let response = fetch_authed(config, &url(config, &path), &init, &[]).await?;
    if response.status() == 404 {
        return Ok(None);
    }
    if !response.ok() {
        return Err(api_error(&response).await);
    }
    let text = JsFuture::from(response.text().map_err(|_| Failure::Network)?)
        .await
        .map_err(|_| Failure::Network)?
        .as_string()
        .unwrap_or_default();
    crate::from_json(&text).map(Some).ok_or(Failure::Network)
}
