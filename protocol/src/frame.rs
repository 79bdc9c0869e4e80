//! Messages between the widget iframe and the page that embeds it, sent with
//! `postMessage`. Versioned so a cached loader and a newer widget (or the
//! reverse) can tell when they do not understand each other.

use serde::{Deserialize, Serialize};

/// Bumped when a message changes incompatibly.
pub const FRAME_PROTOCOL_VERSION: u32 = 1;

/// From the widget to the host page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WidgetToHost {
    /// The panel is interactive.
    Ready { v: u32 },
    /// The visitor pressed the panel's close button.
    Close { v: u32 },
    /// An answer finished streaming.
    Answer { v: u32, text: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_messages_are_pinned() {
        assert_eq!(
            serde_json::to_string(&WidgetToHost::Close {
                v: FRAME_PROTOCOL_VERSION
            })
            .unwrap(),
            r#"{"type":"close","v":1}"#
        );
        assert!(serde_json::from_str::<WidgetToHost>(r#"{"type":"steal_cookies","v":1}"#).is_err());
    }
}
