//! Analytics: per widget and UTC day, what visitors did and what it cost
//! in tokens, counted from the messages in one query both stores run (the
//! day is the integer division of the time, so neither store's date
//! functions are needed).

use salvo::oapi::ToSchema;
use serde::Serialize;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// One widget's counts on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayCounts {
    #[serde(skip)]
    pub widget_id: String,
    /// Days since the Unix epoch (UTC).
    #[serde(skip)]
    pub day: i64,
    /// Conversations whose first message was sent that day.
    pub conversations: u64,
    pub messages: u64,
    /// The assistant's replies.
    pub answers: u64,
    /// Replies the knowledge had nothing for.
    pub unanswered: u64,
    pub thumbs_up: u64,
    pub thumbs_down: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The counts of every widget (or `widget` only) per day, for messages
/// sent in `[from, to)` ms; binds: from, to, then the widget if given.
pub fn analytics_sql(widget: bool) -> String {
    let and_widget = if widget { " AND c.widget_id = ?" } else { "" };
    format!(
        "SELECT c.widget_id, CAST(m.created_at / {DAY_MS} AS BIGINT) AS day, \
                CAST(SUM(CASE WHEN m.seq = 1 THEN 1 ELSE 0 END) AS BIGINT) AS conversations, \
                CAST(COUNT(*) AS BIGINT) AS messages, \
                CAST(SUM(CASE WHEN m.role = 'assistant' THEN 1 ELSE 0 END) AS BIGINT) AS answers, \
                CAST(SUM(CASE WHEN m.role = 'assistant' AND m.unanswered = TRUE THEN 1 ELSE 0 END) AS BIGINT) AS unanswered, \
                CAST(SUM(CASE WHEN m.rating = 1 THEN 1 ELSE 0 END) AS BIGINT) AS thumbs_up, \
                CAST(SUM(CASE WHEN m.rating = -1 THEN 1 ELSE 0 END) AS BIGINT) AS thumbs_down, \
                CAST(COALESCE(SUM(m.prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
                CAST(COALESCE(SUM(m.completion_tokens), 0) AS BIGINT) AS completion_tokens \
         FROM messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.created_at >= ? AND m.created_at < ?{and_widget} \
         GROUP BY c.widget_id, CAST(m.created_at / {DAY_MS} AS BIGINT) \
         ORDER BY c.widget_id, day"
    )
}

/// A [`DayCounts`] from a row of [`analytics_sql`].
macro_rules! day_counts {
    ($row:expr) => {{
        let row = $row;
        let n = |name: &str| -> Result<u64, sqlx::Error> {
            Ok(row.try_get::<i64, _>(name)?.max(0) as u64)
        };
        $crate::store::analytics::DayCounts {
            widget_id: row.try_get("widget_id")?,
            day: row.try_get::<i64, _>("day")?,
            conversations: n("conversations")?,
            messages: n("messages")?,
            answers: n("answers")?,
            unanswered: n("unanswered")?,
            thumbs_up: n("thumbs_up")?,
            thumbs_down: n("thumbs_down")?,
            prompt_tokens: n("prompt_tokens")?,
            completion_tokens: n("completion_tokens")?,
        }
    }};
}

pub(crate) use day_counts;
