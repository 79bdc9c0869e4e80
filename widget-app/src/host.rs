//! The page around the iframe, and the visitor's browser storage.

use protocol::frame::WidgetToHost;

/// Tells the embedding page something. The target is the embedding page's
/// origin (from the referrer), never `"*"`; with no known parent, nothing
/// is sent.
pub fn tell_host(message: &WidgetToHost) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(Some(parent)) = window.parent() else {
        return;
    };
    if parent == window {
        return;
    }
    let Some(origin) = web_sys::window()
        .and_then(|w| w.document())
        .map(|d| d.referrer())
        .and_then(|r| origin_of(&r))
    else {
        return;
    };
    if let Ok(json) = serde_json::to_string(message)
        && let Ok(value) = js_sys::JSON::parse(&json)
    {
        let _ = parent.post_message(&value, &origin);
    }
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

fn conversation_key(widget_id: &str) -> String {
    format!("porthole:{widget_id}:conversation")
}

pub fn saved_conversation(widget_id: &str) -> Option<String> {
    storage()?.get_item(&conversation_key(widget_id)).ok()?
}

pub fn save_conversation(widget_id: &str, conversation_id: Option<&str>) {
    let Some(s) = storage() else { return };
    let key = conversation_key(widget_id);
    let _ = match conversation_id {
        Some(id) => s.set_item(&key, id),
        None => s.remove_item(&key),
    };
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
