//! The page around the iframe, and the visitor's browser storage.
//!
//! The loader and the widget talk in two steps: the widget says `ready` to
//! its parent with `postMessage`, addressed to the embedding page's origin
//! (from the referrer, never `"*"`); the loader answers `connect` with a
//! `MessagePort`, and everything after goes over that private port.

use std::cell::RefCell;

use protocol::frame::{FRAME_PROTOCOL_VERSION, HostToWidget, WidgetToHost};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{MessageEvent, MessagePort};

thread_local! {
    static PORT: RefCell<Option<MessagePort>> = const { RefCell::new(None) };
}

/// The embedding page's origin, if the panel is in a frame of an http(s) page.
fn parent_origin() -> Option<(web_sys::Window, String)> {
    let window = web_sys::window()?;
    let parent = window.parent().ok()??;
    if parent == window {
        return None;
    }
    let origin = window
        .document()
        .map(|d| d.referrer())
        .and_then(|r| origin_of(&r))?;
    Some((parent, origin))
}

/// Tells the embedding page something: over the port once connected;
/// before that only `ready` goes out, with `postMessage` to the parent.
pub fn tell_host(message: &WidgetToHost) {
    let value = encode(message);
    let sent = PORT.with(|p| {
        p.borrow()
            .as_ref()
            .map(|port| port.post_message(&value).is_ok())
    });
    if sent.is_none()
        && matches!(message, WidgetToHost::Ready { .. })
        && let Some((parent, origin)) = parent_origin()
    {
        let _ = parent.post_message(&value, &origin);
    }
}

/// The message as a plain object, as `protocol::frame` pins it (built
/// directly, for the same size reason as [`decode`]).
fn encode(message: &WidgetToHost) -> wasm_bindgen::JsValue {
    let object = js_sys::Object::new();
    let set = |key: &str, value: wasm_bindgen::JsValue| {
        let _ = js_sys::Reflect::set(&object, &key.into(), &value);
    };
    let (kind, v, text) = match message {
        WidgetToHost::Ready {
            v,
            open,
            close,
            title,
        } => {
            set("open", open.as_str().into());
            set("close", close.as_str().into());
            set("title", title.as_str().into());
            ("ready", v, None)
        }
        WidgetToHost::Close { v } => ("close", v, None),
        WidgetToHost::Message { v, text } => ("message", v, Some(text)),
        WidgetToHost::Answer { v, text } => ("answer", v, Some(text)),
    };
    set("type", kind.into());
    set("v", (*v).into());
    if let Some(text) = text {
        set("text", text.as_str().into());
    }
    object.into()
}

/// Reads a loader message (a structured-cloned object). Read field by field
/// rather than through serde_json: the generic decoder costs the widget
/// kilobytes of wasm, and these messages have four fields at most. The
/// shapes are pinned by `protocol::frame`'s tests.
fn decode(data: &wasm_bindgen::JsValue) -> Option<HostToWidget> {
    let get = |key: &str| js_sys::Reflect::get(data, &key.into()).ok();
    let text = |key: &str| get(key).and_then(|v| v.as_string());
    let v = get("v")?.as_f64()?;
    if v != f64::from(FRAME_PROTOCOL_VERSION) {
        return None;
    }
    let v = FRAME_PROTOCOL_VERSION;
    Some(match text("type")?.as_str() {
        "connect" => HostToWidget::Connect { v },
        "open" => HostToWidget::Open { v },
        "close" => HostToWidget::Close { v },
        "send" => HostToWidget::Send {
            v,
            text: text("text")?,
        },
        "identify" => HostToWidget::Identify {
            v,
            id: text("id")?,
            name: text("name").unwrap_or_default(),
            email: text("email").unwrap_or_default(),
            hash: text("hash").unwrap_or_default(),
        },
        "reset" => HostToWidget::Reset { v },
        _ => return None,
    })
}

/// Listens for the loader: the `connect` message from the parent window at
/// its origin (anything else, from anywhere else, is ignored), then the
/// commands on the port it brings.
pub fn listen(on_command: impl Fn(HostToWidget) + 'static) {
    let Some((parent, origin)) = parent_origin() else {
        return;
    };
    let Some(window) = web_sys::window() else {
        return;
    };
    let on_command = std::rc::Rc::new(on_command);
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |e: MessageEvent| {
        // A cross-origin parent is not `instanceof Window` in this realm:
        // compare identities, not types.
        let from_parent = e.source().is_some_and(|s| {
            wasm_bindgen::JsValue::from(s) == wasm_bindgen::JsValue::from(parent.clone())
        });
        if !from_parent || e.origin() != origin || PORT.with(|p| p.borrow().is_some()) {
            return;
        }
        if !matches!(decode(&e.data()), Some(HostToWidget::Connect { .. })) {
            return;
        }
        let Some(port) = e.ports().get(0).dyn_into::<MessagePort>().ok() else {
            return;
        };
        let on_command = on_command.clone();
        let on_port = Closure::<dyn Fn(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(command) = decode(&e.data()) {
                on_command(command);
            }
        });
        port.set_onmessage(Some(on_port.as_ref().unchecked_ref()));
        // The port lives as long as the page: so does its handler.
        on_port.forget();
        PORT.with(|p| *p.borrow_mut() = Some(port));
    });
    let _ = window.add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref());
    on_message.forget();
}

/// `scheme://host[:port]` of a URL, if it is an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

fn storage() -> Option<web_sys::Storage> {
    // Storage can be refused (private modes, blocked third-party storage):
    // then history simply does not survive reloads.
    web_sys::window()?.local_storage().ok()?
}

/// A value this widget keeps in the iframe's storage (`what`:
/// `conversation`, `session`).
pub fn load(widget_id: &str, what: &str) -> Option<String> {
    storage()?
        .get_item(&format!("porthole:{widget_id}:{what}"))
        .ok()?
}

pub fn keep(widget_id: &str, what: &str, value: Option<&str>) {
    let Some(s) = storage() else { return };
    let key = format!("porthole:{widget_id}:{what}");
    let _ = match value {
        Some(v) => s.set_item(&key, v),
        None => s.remove_item(&key),
    };
}

pub fn saved_conversation(widget_id: &str) -> Option<String> {
    load(widget_id, "conversation")
}

pub fn save_conversation(widget_id: &str, conversation_id: Option<&str>) {
    keep(widget_id, "conversation", conversation_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_from_http_urls_only() {
        assert_eq!(
            origin_of("https://shop.example/a/b?c#d").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of(""), None);
        assert_eq!(origin_of("file:///x"), None);
    }
}
