//! The console's inbox: conversations across widgets, filtered by widget,
//! time, text, answer status, rating, unanswered questions and identified
//! user; and the same set exported message by message.
//!
//! Both stores run the same SQL: [`where_clause`] writes it with `?`
//! placeholders and the values to bind, and PostgreSQL's store numbers
//! them (`$1`, …) with [`numbered`].

use salvo::oapi::ToSchema;
use serde::Serialize;

use super::conversations::{MessageStatus, Rating, Role};

/// What the inbox shows; every field narrows the set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    pub widget: Option<String>,
    /// Conversations started at or after this time (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Conversations started before this time.
    pub to_ms: Option<i64>,
    /// Text any message contains, case-insensitively.
    pub text: Option<String>,
    /// An answer ended so.
    pub status: Option<MessageStatus>,
    /// An answer was rated so.
    pub rating: Option<Rating>,
    /// A question found nothing in the knowledge.
    pub unanswered: bool,
    /// The identified user.
    pub user: Option<String>,
}

/// A value to bind to a `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// The conditions on `c` (the conversation) for `filter`, as
/// `WHERE …` (or nothing), and the values for its placeholders.
pub fn where_clause(filter: &InboxFilter) -> (String, Vec<Bind>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut binds = Vec::new();
    let has = |condition: &str| {
        format!("EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id AND {condition})")
    };
    if let Some(w) = &filter.widget {
        conditions.push("c.widget_id = ?".into());
        binds.push(Bind::Text(w.clone()));
    }
    if let Some(from) = filter.from_ms {
        conditions.push("c.created_at >= ?".into());
        binds.push(Bind::Int(from));
    }
    if let Some(to) = filter.to_ms {
        conditions.push("c.created_at < ?".into());
        binds.push(Bind::Int(to));
    }
    if let Some(user) = &filter.user {
        conditions.push("c.user_id = ?".into());
        binds.push(Bind::Text(user.clone()));
    }
    if let Some(text) = &filter.text {
        conditions.push(has("LOWER(s.content) LIKE ? ESCAPE '\\'"));
        binds.push(Bind::Text(like_pattern(text)));
    }
    if let Some(status) = filter.status {
        conditions.push(has("s.role = 'assistant' AND s.status = ?"));
        binds.push(Bind::Text(super::rows::status_str(status).into()));
    }
    if let Some(rating) = filter.rating {
        // A literal: the column is INTEGER in SQLite and SMALLINT in
        // PostgreSQL, and a bound i64 would not compare with the latter.
        conditions.push(has(&format!("s.rating = {}", rating.score())));
    }
    if filter.unanswered {
        conditions.push(has("s.unanswered = TRUE"));
    }
    if conditions.is_empty() {
        (String::new(), binds)
    } else {
        (format!("WHERE {}", conditions.join(" AND ")), binds)
    }
}

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased, with `%`, `_` and `\`
/// taken literally.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … (PostgreSQL).
/// The SQL of this module has no `?` in a literal.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// The inbox's page query: conversations with their counts, newest first,
/// after the cursor `(created_at, id)`; binds: the filter's, then the
/// cursor's time twice and id, then the limit.
pub fn inbox_sql(filter: &InboxFilter) -> (String, Vec<Bind>) {
    let (mut conditions, binds) = where_clause(filter);
    conditions.push_str(if conditions.is_empty() {
        "WHERE "
    } else {
        " AND "
    });
    conditions.push_str("(c.created_at < ? OR (c.created_at = ? AND c.id < ?))");
    let sql = format!(
        "SELECT c.id, c.widget_id, c.visitor_id, c.user_id, c.created_at, \
                CAST(COUNT(m.id) AS BIGINT) AS messages, \
                CAST(COALESCE(SUM(m.prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
                CAST(COALESCE(SUM(m.completion_tokens), 0) AS BIGINT) AS completion_tokens, \
                CAST(COALESCE(MAX(m.created_at), c.created_at) AS BIGINT) AS last_message_at, \
                CAST(COALESCE(SUM(CASE WHEN m.rating = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS ups, \
                CAST(COALESCE(SUM(CASE WHEN m.rating = -1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS downs, \
                CAST(COALESCE(SUM(CASE WHEN m.unanswered = TRUE THEN 1 ELSE 0 END), 0) AS BIGINT) AS unanswered, \
                CAST(COALESCE(SUM(CASE WHEN m.status IN ('error', 'interrupted') THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
                (SELECT q.content FROM messages q WHERE q.conversation_id = c.id AND q.role = 'user' \
                 ORDER BY q.seq LIMIT 1) AS first_question \
         FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
         {conditions} \
         GROUP BY c.id, c.widget_id, c.visitor_id, c.user_id, c.created_at \
         ORDER BY c.created_at DESC, c.id DESC LIMIT ?"
    );
    (sql, binds)
}

/// The export's query: every message of the newest `?` conversations
/// the filter keeps; binds: the filter's, then the limit.
pub fn export_sql(filter: &InboxFilter) -> (String, Vec<Bind>) {
    let (conditions, binds) = where_clause(filter);
    let sql = format!(
        "SELECT c.id AS conversation_id, c.widget_id, c.user_id, m.seq, m.role, m.status, \
                CAST(m.rating AS BIGINT) AS rating, m.rating_comment, m.unanswered, \
                m.prompt_tokens, m.completion_tokens, m.created_at, m.content \
         FROM conversations c JOIN messages m ON m.conversation_id = c.id \
         WHERE c.id IN (SELECT c.id FROM conversations c {conditions} \
                        ORDER BY c.created_at DESC, c.id DESC LIMIT ?) \
         ORDER BY c.created_at DESC, c.id DESC, m.seq"
    );
    (sql, binds)
}

/// Questions to fix: each answer that found nothing in the knowledge or
/// was rated down, with the question before it, newest first; binds: the
/// filter's, then the limit.
pub fn to_fix_sql(filter: &InboxFilter) -> (String, Vec<Bind>) {
    let (conditions, binds) = where_clause(filter);
    let wanted = "a.role = 'assistant' AND (a.unanswered = TRUE OR a.rating = -1)";
    let conditions = if conditions.is_empty() {
        format!("WHERE {wanted}")
    } else {
        format!("{conditions} AND {wanted}")
    };
    let sql = format!(
        "SELECT c.id AS conversation_id, c.widget_id, a.id AS answer_id, q.content AS question, \
                a.unanswered, CAST(a.rating AS BIGINT) AS rating, a.rating_comment, a.created_at \
         FROM conversations c JOIN messages a ON a.conversation_id = c.id \
         JOIN messages q ON q.conversation_id = a.conversation_id AND q.seq = a.seq - 1 \
         {conditions} ORDER BY a.created_at DESC, a.id DESC LIMIT ?"
    );
    (sql, binds)
}

/// An answer to fix: it found nothing, or was rated down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FixCase {
    pub conversation_id: String,
    pub widget_id: String,
    pub answer_id: String,
    /// The visitor's question.
    pub question: String,
    pub unanswered: bool,
    pub thumbs_down: bool,
    /// The visitor's comment on a thumbs-down.
    pub comment: Option<String>,
    /// When it was answered (ms since the epoch).
    pub at: u64,
}

/// A conversation as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InboxItem {
    pub id: String,
    pub widget_id: String,
    pub visitor_id: Option<String>,
    pub user_id: Option<String>,
    /// The visitor's first question.
    pub first_question: Option<String>,
    pub messages: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Answers rated up and down.
    pub thumbs_up: u32,
    pub thumbs_down: u32,
    /// Questions that found nothing in the knowledge.
    pub unanswered: u32,
    /// Answers that failed or were cut short.
    pub failed: u32,
    pub created_at: u64,
    pub last_message_at: u64,
}

/// One message of the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExportRow {
    pub conversation_id: String,
    pub widget_id: String,
    pub user_id: Option<String>,
    pub seq: u32,
    pub role: Role,
    pub status: MessageStatus,
    pub rating: Option<Rating>,
    pub rating_comment: Option<String>,
    pub unanswered: bool,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// Milliseconds since the epoch.
    pub created_at: u64,
    pub content: String,
}

/// The CSV header, in the columns' order.
pub const CSV_HEADER: [&str; 13] = [
    "conversation_id",
    "widget_id",
    "user_id",
    "seq",
    "role",
    "status",
    "rating",
    "rating_comment",
    "unanswered",
    "prompt_tokens",
    "completion_tokens",
    "created_at",
    "content",
];

/// The rows as CSV (RFC 4180, with the `csv` crate's quoting), times in
/// RFC 3339 UTC. A cell a spreadsheet would run as a formula (`=`, `+`,
/// `-`, `@`, tab, CR) gets a leading `'` (OWASP's CSV injection advice):
/// message text is the visitors'.
pub fn to_csv(rows: &[ExportRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    let opt = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.conversation_id.clone(),
            r.widget_id.clone(),
            inert(r.user_id.as_deref().unwrap_or_default()),
            r.seq.to_string(),
            match r.role {
                Role::User => "user".into(),
                Role::Assistant => "assistant".into(),
            },
            super::rows::status_str(r.status).into(),
            r.rating.map(|x| x.as_str().to_owned()).unwrap_or_default(),
            inert(r.rating_comment.as_deref().unwrap_or_default()),
            r.unanswered.to_string(),
            opt(r.prompt_tokens),
            opt(r.completion_tokens),
            rfc3339(r.created_at),
            inert(&r.content),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `text` as a spreadsheet shows it and never evaluates it.
fn inert(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (y, m, d) = crate::limits::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Binds `binds` to a `sqlx::query(…)` in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                $crate::store::inbox::Bind::Text(t) => q.bind(t),
                $crate::store::inbox::Bind::Int(n) => q.bind(n),
            };
        }
        q
    }};
}

/// An [`InboxItem`] from a row of [`inbox_sql`] (SQLite's or PostgreSQL's).
macro_rules! inbox_item {
    ($row:expr) => {{
        let row = $row;
        let n = |c: &str| -> Result<u64, $crate::store::StoreError> {
            Ok(row.try_get::<i64, _>(c)?.max(0) as u64)
        };
        $crate::store::inbox::InboxItem {
            id: row.try_get("id")?,
            widget_id: row.try_get("widget_id")?,
            visitor_id: row.try_get("visitor_id")?,
            user_id: row.try_get("user_id")?,
            first_question: row.try_get("first_question")?,
            messages: n("messages")? as u32,
            prompt_tokens: n("prompt_tokens")?,
            completion_tokens: n("completion_tokens")?,
            thumbs_up: n("ups")? as u32,
            thumbs_down: n("downs")? as u32,
            unanswered: n("unanswered")? as u32,
            failed: n("failed")? as u32,
            created_at: n("created_at")?,
            last_message_at: n("last_message_at")?,
        }
    }};
}

/// An [`ExportRow`] from a row of [`export_sql`].
macro_rules! export_row {
    ($row:expr) => {{
        let row = $row;
        let tokens = |c: &str| -> Result<Option<u32>, $crate::store::StoreError> {
            Ok(row
                .try_get::<Option<i64>, _>(c)?
                .map(|n| n.clamp(0, i64::from(u32::MAX)) as u32))
        };
        $crate::store::inbox::ExportRow {
            conversation_id: row.try_get("conversation_id")?,
            widget_id: row.try_get("widget_id")?,
            user_id: row.try_get("user_id")?,
            seq: row.try_get::<i64, _>("seq")?.max(0) as u32,
            role: $crate::store::rows::role_from(&row.try_get::<String, _>("role")?),
            status: $crate::store::rows::status_from(&row.try_get::<String, _>("status")?),
            rating: row
                .try_get::<Option<i64>, _>("rating")?
                .and_then($crate::store::conversations::Rating::from_score),
            rating_comment: row.try_get("rating_comment")?,
            unanswered: row.try_get::<bool, _>("unanswered")?,
            prompt_tokens: tokens("prompt_tokens")?,
            completion_tokens: tokens("completion_tokens")?,
            created_at: row.try_get::<i64, _>("created_at")?.max(0) as u64,
            content: row.try_get("content")?,
        }
    }};
}

/// A [`FixCase`] from a row of [`to_fix_sql`].
macro_rules! fix_case {
    ($row:expr) => {{
        let row = $row;
        $crate::store::inbox::FixCase {
            conversation_id: row.try_get("conversation_id")?,
            widget_id: row.try_get("widget_id")?,
            answer_id: row.try_get("answer_id")?,
            question: row.try_get("question")?,
            unanswered: row.try_get::<bool, _>("unanswered")?,
            thumbs_down: row.try_get::<Option<i64>, _>("rating")? == Some(-1),
            comment: row.try_get("rating_comment")?,
            at: row.try_get::<i64, _>("created_at")?.max(0) as u64,
        }
    }};
}

pub(crate) use {bind_all, export_row, fix_case, inbox_item};

/// The cursor of the inbox's last row, and the `(time, id)` a cursor names
/// (the start without one).
pub fn cursor_of(item: &InboxItem) -> String {
    format!("{}:{}", item.created_at, item.id)
}

pub fn parse_cursor(cursor: Option<&str>) -> (i64, String) {
    cursor
        .and_then(|c| c.split_once(':'))
        .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
        .unwrap_or((i64::MAX, "\u{10FFFF}".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_narrows_with_bound_values_and_postgres_numbers_them() {
        let all = where_clause(&InboxFilter::default());
        assert_eq!(all, (String::new(), Vec::new()));
        let f = InboxFilter {
            widget: Some("acme".into()),
            from_ms: Some(10),
            to_ms: Some(20),
            text: Some("100%_Sure\\".into()),
            status: Some(MessageStatus::Error),
            rating: Some(Rating::Down),
            unanswered: true,
            user: Some("u1".into()),
        };
        let (sql, binds) = where_clause(&f);
        assert_eq!(sql.matches('?').count(), binds.len());
        assert!(sql.contains("s.rating = -1") && sql.contains("s.unanswered = TRUE"));
        assert!(binds.contains(&Bind::Text("%100\\%\\_sure\\\\%".into())));
        assert!(binds.contains(&Bind::Text("error".into())));
        let (page, binds) = inbox_sql(&f);
        assert_eq!(page.matches('?').count(), binds.len() + 4);
        let pg = numbered(&page);
        assert!(!pg.contains('?') && pg.contains("$10") && !pg.contains("$11"));
    }

    #[test]
    fn csv_quotes_text_and_defuses_formulas() {
        let row = ExportRow {
            conversation_id: "conv_1".into(),
            widget_id: "acme".into(),
            user_id: None,
            seq: 1,
            role: Role::User,
            status: MessageStatus::Complete,
            rating: Some(Rating::Down),
            rating_comment: Some("=HYPERLINK(\"x\")".into()),
            unanswered: true,
            prompt_tokens: None,
            completion_tokens: Some(7),
            created_at: 1_796_323_242_123,
            content: "Hello, \"world\"\nsecond line".into(),
        };
        let text = String::from_utf8(to_csv(&[row]).unwrap()).unwrap();
        let mut lines = text.splitn(2, '\n');
        assert_eq!(lines.next().unwrap(), CSV_HEADER.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "conv_1,acme,,1,user,complete,down,\"'=HYPERLINK(\"\"x\"\")\",true,,7,2026-12-03T18:40:42.123Z,\"Hello, \"\"world\"\"\nsecond line\"\n"
        );
    }
}
