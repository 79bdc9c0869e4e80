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
    /// The panel is interactive. It names the launcher's labels in the
    /// panel's language (open, close, and the frame's title).
    Ready {
        v: u32,
        #[serde(default)]
        open: String,
        #[serde(default)]
        close: String,
        #[serde(default)]
        title: String,
    },
    /// The visitor pressed the panel's close button.
    Close { v: u32 },
    /// The visitor sent a message.
    Message { v: u32, text: String },
    /// An answer finished streaming.
    Answer { v: u32, text: String },
}

/// From the host page (the loader) to the widget. `Connect` comes with
/// `postMessage` and carries a `MessagePort`; everything after it goes over
/// that port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HostToWidget {
    Connect {
        v: u32,
    },
    /// The panel was opened: focus the composer.
    Open {
        v: u32,
    },
    /// The panel was closed.
    Close {
        v: u32,
    },
    /// Send this message as if the visitor typed it (`Porthole('send', text)`).
    Send {
        v: u32,
        text: String,
    },
    /// The site's signed-in user (verified by the server once identity
    /// verification is configured).
    Identify {
        v: u32,
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        email: String,
        #[serde(default)]
        hash: String,
    },
    /// Forget the conversation (`Porthole('reset')`, e.g. on logout).
    Reset {
        v: u32,
    },
}

impl HostToWidget {
    /// The protocol version the sender spoke.
    pub fn version(&self) -> u32 {
        match self {
            Self::Connect { v }
            | Self::Open { v }
            | Self::Close { v }
            | Self::Send { v, .. }
            | Self::Identify { v, .. }
            | Self::Reset { v } => *v,
        }
    }
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
        // The hello names the launcher's labels in the panel's language; an
        // older panel's bare hello still reads (the loader keeps English).
        assert_eq!(
            serde_json::to_string(&WidgetToHost::Ready {
                v: 1,
                open: "Abrir el chat".into(),
                close: "Cerrar el chat".into(),
                title: "Chat".into(),
            })
            .unwrap(),
            r#"{"type":"ready","v":1,"open":"Abrir el chat","close":"Cerrar el chat","title":"Chat"}"#
        );
        assert_eq!(
            serde_json::from_str::<WidgetToHost>(r#"{"type":"ready","v":1}"#).unwrap(),
            WidgetToHost::Ready {
                v: 1,
                open: String::new(),
                close: String::new(),
                title: String::new()
            }
        );
        let send: HostToWidget =
            serde_json::from_str(r#"{"type":"send","v":1,"text":"hi"}"#).unwrap();
        assert_eq!(
            send,
            HostToWidget::Send {
                v: 1,
                text: "hi".into()
            }
        );
        assert!(serde_json::from_str::<HostToWidget>(r#"{"type":"send","v":1}"#).is_err());
    }
}
