//! Where conversations live. [`ConversationStore`] is the seam a PostgreSQL
//! store can fill later; [`SqliteStore`] is the default, a file under
//! `./data`.
//!
//! Nothing accepted is lost: the visitor's message is committed before the
//! model is asked; the answer's row is created `streaming` when it starts,
//! checkpointed while it streams, and finished as `complete`, `interrupted`
//! or `error`. A process killed mid-answer leaves a `streaming` row, which
//! the next start turns into `interrupted` with what was checkpointed.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use protocol::Usage;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use protocol::widget::{MessageStatus, Role};

use crate::widget::WidgetId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub usage: Option<Usage>,
    pub created_at: SystemTime,
}

impl StoredMessage {
    /// The message as the history API shows it.
    pub fn view(&self) -> protocol::widget::MessageView {
        protocol::widget::MessageView {
            id: self.id.clone(),
            role: self.role,
            content: self.content.clone(),
            status: self.status,
            created_at: millis(self.created_at),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation {0} does not exist")]
    NoSuchConversation(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

#[async_trait]
pub trait ConversationStore: Send + Sync + std::fmt::Debug {
    /// Creates an empty conversation for `widget` and returns its id.
    async fn create_conversation(&self, widget: &WidgetId) -> Result<String, StoreError>;
    /// The messages of a conversation, oldest first; `None` when it does not
    /// exist or belongs to another widget.
    async fn messages(
        &self,
        widget: &WidgetId,
        conversation: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError>;
    /// Appends a whole message; it is committed when this returns.
    async fn append(&self, conversation: &str, message: StoredMessage) -> Result<(), StoreError>;
    /// Starts an answer: an empty `streaming` message, committed at once.
    async fn begin_answer(&self, conversation: &str, id: &str) -> Result<(), StoreError>;
    /// Saves what an answer has so far.
    async fn checkpoint_answer(&self, id: &str, content: &str) -> Result<(), StoreError>;
    /// Ends an answer.
    async fn finish_answer(
        &self,
        id: &str,
        content: &str,
        status: MessageStatus,
        usage: Option<Usage>,
    ) -> Result<(), StoreError>;
    /// Marks answers a previous process left `streaming` as `interrupted`;
    /// returns how many. Run once at start.
    async fn recover(&self) -> Result<u64, StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A fresh id with a readable prefix: `conv_…`, `msg_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

fn status_str(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Complete => "complete",
        MessageStatus::Interrupted => "interrupted",
        MessageStatus::Error => "error",
        MessageStatus::Streaming => "streaming",
    }
}

/// Conversations in a SQLite file (WAL; a committed write survives the
/// process being killed).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) and migrates the database.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating {}: {e}", path.display())))?;
        Ok(Self { pool })
    }

    async fn insert(&self, conversation: &str, m: &StoredMessage) -> Result<(), StoreError> {
        let (prompt, completion) = m
            .usage
            .map(|u| {
                (
                    Some(i64::from(u.prompt_tokens)),
                    Some(i64::from(u.completion_tokens)),
                )
            })
            .unwrap_or((None, None));
        let done = sqlx::query(
            "INSERT INTO messages (id, conversation_id, seq, role, content, status, prompt_tokens, completion_tokens, created_at) \
             SELECT ?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = ?2), \
             ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM conversations WHERE id = ?2)",
        )
        .bind(&m.id)
        .bind(conversation)
        .bind(role_str(m.role))
        .bind(&m.content)
        .bind(status_str(m.status))
        .bind(prompt)
        .bind(completion)
        .bind(millis(m.created_at) as i64)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchConversation(conversation.to_owned()));
        }
        Ok(())
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_conversation(&self, widget: &WidgetId) -> Result<String, StoreError> {
        let id = new_id("conv");
        sqlx::query("INSERT INTO conversations (id, widget_id, created_at) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(widget.as_str())
            .bind(millis(SystemTime::now()) as i64)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    async fn messages(
        &self,
        widget: &WidgetId,
        conversation: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT widget_id FROM conversations WHERE id = ?")
                .bind(conversation)
                .fetch_optional(&self.pool)
                .await?;
        if owner.as_deref() != Some(widget.as_str()) {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, role, content, status, prompt_tokens, completion_tokens, created_at \
             FROM messages WHERE conversation_id = ? ORDER BY seq",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let role = match row.try_get::<String, _>("role")?.as_str() {
                "user" => Role::User,
                _ => Role::Assistant,
            };
            let status = match row.try_get::<String, _>("status")?.as_str() {
                "complete" => MessageStatus::Complete,
                "error" => MessageStatus::Error,
                "streaming" => MessageStatus::Streaming,
                _ => MessageStatus::Interrupted,
            };
            let prompt: Option<i64> = row.try_get("prompt_tokens")?;
            let completion: Option<i64> = row.try_get("completion_tokens")?;
            let usage = prompt.zip(completion).map(|(p, c)| Usage {
                prompt_tokens: p as u32,
                completion_tokens: c as u32,
                total_tokens: (p + c) as u32,
            });
            let created: i64 = row.try_get("created_at")?;
            out.push(StoredMessage {
                id: row.try_get("id")?,
                role,
                content: row.try_get("content")?,
                status,
                usage,
                created_at: UNIX_EPOCH + Duration::from_millis(created.max(0) as u64),
            });
        }
        Ok(Some(out))
    }

    async fn append(&self, conversation: &str, message: StoredMessage) -> Result<(), StoreError> {
        self.insert(conversation, &message).await
    }

    async fn begin_answer(&self, conversation: &str, id: &str) -> Result<(), StoreError> {
        let message = StoredMessage {
            id: id.to_owned(),
            role: Role::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            usage: None,
            created_at: SystemTime::now(),
        };
        self.insert(conversation, &message).await
    }

    async fn checkpoint_answer(&self, id: &str, content: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE messages SET content = ? WHERE id = ? AND status = 'streaming'")
            .bind(content)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_answer(
        &self,
        id: &str,
        content: &str,
        status: MessageStatus,
        usage: Option<Usage>,
    ) -> Result<(), StoreError> {
        let (prompt, completion) = usage
            .map(|u| {
                (
                    Some(i64::from(u.prompt_tokens)),
                    Some(i64::from(u.completion_tokens)),
                )
            })
            .unwrap_or((None, None));
        sqlx::query("UPDATE messages SET content = ?, status = ?, prompt_tokens = ?, completion_tokens = ? WHERE id = ?")
            .bind(content)
            .bind(status_str(status))
            .bind(prompt)
            .bind(completion)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn recover(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'")
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("porthole-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub/porthole.db")
    }

    fn user(content: &str) -> StoredMessage {
        StoredMessage {
            id: new_id("msg"),
            role: Role::User,
            content: content.into(),
            status: MessageStatus::Complete,
            usage: None,
            created_at: SystemTime::now(),
        }
    }

    #[tokio::test]
    async fn conversations_belong_to_their_widget_and_keep_their_order() {
        let store = SqliteStore::open(&temp_db("order")).await.unwrap();
        let a = WidgetId::parse("a").unwrap();
        let b = WidgetId::parse("b").unwrap();
        let conv = store.create_conversation(&a).await.unwrap();
        for i in 0..5 {
            store.append(&conv, user(&format!("m{i}"))).await.unwrap();
        }
        let got = store.messages(&a, &conv).await.unwrap().unwrap();
        let texts: Vec<_> = got.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"]);
        assert!(store.messages(&b, &conv).await.unwrap().is_none());
        assert!(store.messages(&a, "conv_nope").await.unwrap().is_none());
        assert!(matches!(
            store.append("conv_nope", user("x")).await,
            Err(StoreError::NoSuchConversation(_))
        ));
    }

    #[tokio::test]
    async fn an_answer_streams_into_its_row_and_survives_a_reopen() {
        let path = temp_db("answer");
        let w = WidgetId::parse("w").unwrap();
        let (conv, id) = {
            let store = SqliteStore::open(&path).await.unwrap();
            let conv = store.create_conversation(&w).await.unwrap();
            store.append(&conv, user("q")).await.unwrap();
            let id = new_id("msg");
            store.begin_answer(&conv, &id).await.unwrap();
            store.checkpoint_answer(&id, "partial").await.unwrap();
            (conv, id)
        };
        // A new process: the streaming answer is recovered as interrupted.
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.recover().await.unwrap(), 1);
        let got = store.messages(&w, &conv).await.unwrap().unwrap();
        assert_eq!(got[1].id, id);
        assert_eq!(
            (got[1].content.as_str(), got[1].status),
            ("partial", MessageStatus::Interrupted)
        );
        // Finishing records usage; a checkpoint after the end changes nothing.
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        };
        store
            .finish_answer(&id, "whole", MessageStatus::Complete, Some(usage))
            .await
            .unwrap();
        store.checkpoint_answer(&id, "late").await.unwrap();
        let got = store.messages(&w, &conv).await.unwrap().unwrap();
        assert_eq!(
            (got[1].content.as_str(), got[1].status, got[1].usage),
            ("whole", MessageStatus::Complete, Some(usage))
        );
    }
}
