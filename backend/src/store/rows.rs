//! What every store writes and reads the same way: the text of a message's
//! role and status, token columns, times, JSON columns, and the text a
//! chunk is embedded as.

use std::time::SystemTime;

use protocol::Usage;
use serde::Serialize;

use super::conversations::millis;
use super::{MessageStatus, Role};

pub(crate) fn status_str(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Complete => "complete",
        MessageStatus::Interrupted => "interrupted",
        MessageStatus::Error => "error",
        MessageStatus::Streaming => "streaming",
    }
}

/// A stored `status` column; anything unknown reads as `interrupted`.
pub(crate) fn status_from(s: &str) -> MessageStatus {
    match s {
        "complete" => MessageStatus::Complete,
        "error" => MessageStatus::Error,
        "streaming" => MessageStatus::Streaming,
        _ => MessageStatus::Interrupted,
    }
}

/// A stored `role` column.
pub(crate) fn role_from(s: &str) -> Role {
    if s == "user" {
        Role::User
    } else {
        Role::Assistant
    }
}

/// An answer's `(prompt_tokens, completion_tokens)` columns.
pub(crate) fn usage_columns(usage: Option<Usage>) -> (Option<i64>, Option<i64>) {
    usage
        .map(|u| {
            (
                Some(i64::from(u.prompt_tokens)),
                Some(i64::from(u.completion_tokens)),
            )
        })
        .unwrap_or((None, None))
}

/// The usage a message's token columns make.
pub(crate) fn usage_from(prompt: Option<i64>, completion: Option<i64>) -> Option<Usage> {
    prompt.zip(completion).map(|(p, c)| Usage {
        prompt_tokens: p.clamp(0, i64::from(u32::MAX)) as u32,
        completion_tokens: c.clamp(0, i64::from(u32::MAX)) as u32,
        total_tokens: (p + c).clamp(0, i64::from(u32::MAX)) as u32,
    })
}

/// Now, in milliseconds since the Unix epoch, as the tables store times.
pub(crate) fn now_ms() -> i64 {
    millis(SystemTime::now()) as i64
}

/// A value as a JSON text column.
pub(crate) fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A non-negative count column as `u32`.
pub(crate) fn count_u32(n: i64) -> u32 {
    n.clamp(0, i64::from(u32::MAX)) as u32
}

/// The text a chunk is embedded as: its page title and heading path, then
/// its text.
pub(crate) fn embedding_input(title: &str, heading: &str, text: String) -> String {
    let context = [title.trim(), heading.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" > ");
    if context.is_empty() {
        text
    } else {
        format!("{context}\n\n{text}")
    }
}
