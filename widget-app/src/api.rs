//! Talking to the Porthole API from the browser: the chat answer read as
//! SSE from a fetch body stream (EventSource cannot POST), and the history.

use std::cell::RefCell;

use js_sys::{Reflect, Uint8Array};
use protocol::widget::{ConversationView, Rating, WidgetConfig};
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

/// Where an answer's stream has got to: its message id (from `meta`) and
/// the `id:` of the last event read, so a dropped stream resumes after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub message_id: Option<String>,
    pub last_id: Option<u64>,
}

/// Posts `message` and calls `on_event` for each event as it arrives,
/// keeping `cursor` up to date. Returns when the stream ends; an `error`
/// event becomes `Err`. A refusal that names the conversation the question
/// was stored in (the model failed before answering) hands it to
/// `on_stored`, so a retry continues it.
pub async fn ask(
    config: &WidgetConfig,
    message: &str,
    conversation_id: Option<String>,
    signal: &AbortSignal,
    cursor: &RefCell<Cursor>,
    on_event: impl FnMut(StreamEvent),
    on_stored: impl FnOnce(String),
) -> Result<(), Failure> {
    let request = ChatRequest {
        message: message.to_owned(),
        conversation_id,
    };
    // `None` becomes undefined, which JSON.stringify leaves out, as the
    // contract's `skip_serializing_if` does.
    let body = chat_body(&request).ok_or(Failure::Network)?;
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
    read_events(&response, cursor, on_event).await
}

/// Resumes the answer `cursor` names after its last event (from the start
/// without one): `on_open` runs once the server has it, then events as
/// [`ask`] gives them. The question is never sent again.
pub async fn resume(
    config: &WidgetConfig,
    signal: &AbortSignal,
    cursor: &RefCell<Cursor>,
    on_open: impl FnOnce(),
    on_event: impl FnMut(StreamEvent),
) -> Result<(), Failure> {
    let (id, last) = {
        let c = cursor.borrow();
        (c.message_id.clone(), c.last_id)
    };
    let Some(id) = id else {
        return Err(Failure::Network);
    };
    let mut path = format!(
        "/api/v1/chat/{}/stream",
        String::from(js_sys::encode_uri_component(&id))
    );
    // A query parameter, not the Last-Event-ID header: a custom header on a
    // cross-origin GET costs a preflight.
    if let Some(last) = last {
        path.push_str(&format!("?last_event_id={last}"));
    }
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_signal(Some(signal));
    let response = fetch_authed(
        config,
        &url(config, &path),
        &init,
        &[("Accept", "text/event-stream")],
    )
    .await?;
    if !response.ok() {
        return Err(api_error(&response).await);
    }
    on_open();
    read_events(&response, cursor, on_event).await
}

/// Stops an answer on the server (the model is cancelled at once).
pub async fn stop(config: &WidgetConfig, message_id: &str) {
    let init = RequestInit::new();
    init.set_method("POST");
    let path = format!(
        "/api/v1/chat/{}/stop",
        String::from(js_sys::encode_uri_component(message_id))
    );
    // Nothing to do on failure: the answer is cancelled anyway once nobody
    // reads it for the grace period.
    let _ = fetch_authed(config, &url(config, &path), &init, &[]).await;
}

/// Rates an answer (`None` takes the rating back), with the visitor's
/// comment; `Err` when it was not saved.
pub async fn rate(
    config: &WidgetConfig,
    message_id: &str,
    rating: Option<Rating>,
    comment: Option<&str>,
) -> Result<(), Failure> {
    let object = js_sys::Object::new();
    let value = rating.map_or(JsValue::NULL, |r| r.as_str().into());
    Reflect::set(&object, &"rating".into(), &value).map_err(|_| Failure::Network)?;
    if let Some(c) = comment {
        Reflect::set(&object, &"comment".into(), &c.into()).map_err(|_| Failure::Network)?;
    }
    let body = js_sys::JSON::stringify(&object)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or(Failure::Network)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let path = format!(
        "/api/v1/chat/{}/feedback",
        String::from(js_sys::encode_uri_component(message_id))
    );
    let response = fetch_authed(
        config,
        &url(config, &path),
        &init,
        &[("Content-Type", "application/json")],
    )
    .await?;
    if !response.ok() {
        return Err(api_error(&response).await);
    }
    Ok(())
}

/// Reads an answer's SSE body to its `done` or `error`.
async fn read_events(
    response: &Response,
    cursor: &RefCell<Cursor>,
    mut on_event: impl FnMut(StreamEvent),
) -> Result<(), Failure> {
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
            if let Some(id) = msg.id.as_deref().and_then(|id| id.parse().ok()) {
                cursor.borrow_mut().last_id = Some(id);
            }
            // An event this version does not know is skipped, not fatal.
            let data = js_sys::JSON::parse(&msg.data).unwrap_or(JsValue::UNDEFINED);
            let Some(event) = crate::wire::event(&msg.event, &data) else {
                continue;
            };
            match event {
                StreamEvent::Error(e) => return Err(Failure::Api(e)),
                // A replay of an answer the visitor stopped ends as stopped.
                StreamEvent::Done(d) if d.finish_reason == "stopped" => {
                    return Err(Failure::Aborted);
                }
                StreamEvent::Done(_) => {
                    on_event(event);
                    return Ok(());
                }
                StreamEvent::Meta(meta) => {
                    cursor.borrow_mut().message_id = Some(meta.message_id.clone());
                    on_event(StreamEvent::Meta(meta));
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
    crate::parse_json(&text)
        .and_then(|v| crate::wire::conversation(&v))
        .map(Some)
        .ok_or(Failure::Network)
}

/// `POST /api/v1/chat`'s body as JSON, written by the browser: an absent
/// `conversation_id` is left out, as the contract's `skip_serializing_if`
/// does (`protocol::api` pins it).
fn chat_body(request: &ChatRequest) -> Option<String> {
    let object = js_sys::Object::new();
    js_sys::Reflect::set(&object, &"message".into(), &request.message.as_str().into()).ok()?;
    if let Some(id) = &request.conversation_id {
        js_sys::Reflect::set(&object, &"conversation_id".into(), &id.as_str().into()).ok()?;
    }
    js_sys::JSON::stringify(&object).ok()?.as_string()
}
