//! The default store: one SQLite file under `./data` (WAL), with its own
//! migrations in `backend/migrations/sqlite`. Conversations are here; the
//! tenants' tables are in [`tenants`].

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use protocol::Usage;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::conversations::millis;
use super::conversations::{Rated, Rating};
pub(crate) use super::rows::now_ms;
use super::rows::{role_from, status_from, status_str, usage_columns, usage_from};
use super::{ConversationStore, MessageStatus, NewAnswer, Owner, StoreError, StoredMessage};
use crate::ids::new_id;
use crate::tenants::WidgetId;

mod accounts;
pub mod knowledge;
mod tenants;
mod webhooks;

/// Conversations in a SQLite file (WAL; a committed write survives the
/// process being killed). SQLite has one writer at a time: writes go through
/// a pool of one connection, where they queue without the busy-wait sleeps
/// that several writing connections fall into; reads have their own
/// connections and do not wait for writes.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    turns: tokio::sync::mpsc::Sender<TurnRequest>,
    /// Each widget's vectors of one model, read once and kept while the
    /// widget's vector version stays (`knowledge::VectorCache`).
    pub(crate) vectors: std::sync::Arc<super::vectors::VectorCache>,
}

/// A turn waiting for the group commit.
#[derive(Debug)]
struct TurnRequest {
    widget: String,
    owner: Owner,
    conversation: Option<String>,
    question: StoredMessage,
    answer_id: String,
    /// The JSON of the answer's sources, when it has some.
    sources: Option<String>,
    unanswered: bool,
    reply: tokio::sync::oneshot::Sender<Result<String, StoreError>>,
}

/// The most turns one group commit writes.
const MAX_BATCH: usize = 128;

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
        // No ping before each use: a local file does not drop connections,
        // and the ping would double the round trips of every write.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // The writer never checkpoints: a checkpoint's fsync would stall
            // every chat waiting on it. The checkpointer below does it.
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating {}: {e}", path.display())))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true))
            .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        tokio::spawn(checkpoint_wal(checkpointer));
        let (turns, queue) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(group_commit(writer.clone(), queue));
        Ok(Self {
            writer,
            reader,
            turns,
            vectors: Default::default(),
        })
    }
}

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_WAL_EVERY: Duration = Duration::from_secs(2);

/// Copies the write-ahead log into the database file in the background,
/// on its own connection: a passive checkpoint never blocks the writer.
async fn checkpoint_wal(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_WAL_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "checkpointing the write-ahead log failed");
        }
    }
}

/// Writes turns as they come, many in one transaction when many are
/// waiting: a burst of new chats costs a few commits, not one each (SQLite
/// has one writer, and every statement is a round trip to its thread).
async fn group_commit(pool: SqlitePool, mut queue: tokio::sync::mpsc::Receiver<TurnRequest>) {
    let mut next: Option<TurnRequest> = None;
    loop {
        let first = match next.take() {
            Some(turn) => turn,
            None => match queue.recv().await {
                Some(turn) => turn,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            let Ok(turn) = queue.try_recv() else { break };
            // Two turns of one conversation go in separate batches, so each
            // sees the other's sequence numbers.
            let clash = turn.conversation.is_some()
                && batch.iter().any(|t| t.conversation == turn.conversation);
            if clash {
                next = Some(turn);
                break;
            }
            batch.push(turn);
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|t| t.conversation.clone().unwrap_or_else(|| new_id("conv")))
            .collect();
        match write_turns(&pool, &batch, &ids).await {
            Ok(()) => {
                for (turn, id) in batch.into_iter().zip(ids) {
                    let _ = turn.reply.send(Ok(id));
                }
            }
            // One bad turn must not fail the others: write them one by one.
            Err(_) if batch.len() > 1 => {
                for (turn, id) in batch.into_iter().zip(ids) {
                    let result = write_turns(
                        &pool,
                        std::slice::from_ref(&turn),
                        std::slice::from_ref(&id),
                    )
                    .await
                    .map(|()| id);
                    let _ = turn.reply.send(result);
                }
            }
            Err(e) => {
                if let Some(turn) = batch.pop() {
                    let _ = turn.reply.send(Err(e));
                }
            }
        }
    }
}

/// Inserts the new conversations, then every turn's question and its
/// `streaming` answer row, in one transaction.
async fn write_turns(
    pool: &SqlitePool,
    batch: &[TurnRequest],
    ids: &[String],
) -> Result<(), StoreError> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let new: Vec<(&TurnRequest, &String)> = batch
        .iter()
        .zip(ids)
        .filter(|(t, _)| t.conversation.is_none())
        .collect();
    if !new.is_empty() {
        let rows = vec!["(?, ?, ?, ?, ?)"; new.len()].join(", ");
        let sql = format!(
            "INSERT INTO conversations (id, widget_id, visitor_id, user_id, created_at) VALUES {rows}"
        );
        // Built from constant fragments and a count; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (turn, id) in &new {
            q = q
                .bind(id.as_str())
                .bind(turn.widget.as_str())
                .bind(turn.owner.visitor.as_str())
                .bind(turn.owner.user.as_deref())
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    // A continued conversation's ownership was checked when its history was
    // read; a missing one fails the foreign key.
    let rows = vec![
        "(?, ?, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?) + ?, ?, ?, ?, ?, ?, ?)";
        batch.len() * 2
    ]
    .join(", ");
    let sql = format!(
        "INSERT INTO messages (id, conversation_id, seq, role, content, status, created_at, sources, unanswered) VALUES {rows}"
    );
    // Built from constant fragments and a count; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (turn, id) in batch.iter().zip(ids) {
        q = q
            .bind(turn.question.id.as_str())
            .bind(id.as_str())
            .bind(id.as_str())
            .bind(1_i64)
            .bind("user")
            .bind(turn.question.content.as_str())
            .bind("complete")
            .bind(millis(turn.question.created_at) as i64)
            .bind(None::<String>)
            .bind(0_i64);
        q = q
            .bind(turn.answer_id.as_str())
            .bind(id.as_str())
            .bind(id.as_str())
            .bind(2_i64)
            .bind("assistant")
            .bind("")
            .bind("streaming")
            .bind(now)
            .bind(turn.sources.as_deref())
            .bind(i64::from(turn.unanswered));
    }
    q.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

impl SqliteStore {
    /// Whether `conversation` is `widget`'s and `owner` may read it.
    async fn may_read(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT widget_id, visitor_id, user_id FROM conversations WHERE id = ?")
                .bind(conversation)
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.is_some_and(|(w, visitor, user)| {
            w == widget.as_str() && owner.may_read(visitor.as_deref(), user.as_deref())
        }))
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn begin_turn(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: Option<&str>,
        question: StoredMessage,
        answer: &NewAnswer,
    ) -> Result<String, StoreError> {
        if let Some(id) = conversation
            && !self.may_read(widget, owner, id).await?
        {
            return Err(StoreError::NoSuchConversation(id.to_owned()));
        }
        let (reply, written) = tokio::sync::oneshot::channel();
        let turn = TurnRequest {
            widget: widget.as_str().to_owned(),
            owner: owner.clone(),
            conversation: conversation.map(str::to_owned),
            question,
            answer_id: answer.id.clone(),
            sources: (!answer.sources.is_empty())
                .then(|| serde_json::to_string(&answer.sources).unwrap_or_default()),
            unanswered: answer.unanswered,
            reply,
        };
        let gone = || StoreError::Unavailable("the store's writer stopped".into());
        self.turns.send(turn).await.map_err(|_| gone())?;
        written.await.map_err(|_| gone())?
    }

    async fn messages(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        if !self.may_read(widget, owner, conversation).await? {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, role, content, status, prompt_tokens, completion_tokens, created_at, sources, rating \
             FROM messages WHERE conversation_id = ? ORDER BY seq",
        )
        .bind(conversation)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let role = role_from(&row.try_get::<String, _>("role")?);
            let status = status_from(&row.try_get::<String, _>("status")?);
            let prompt: Option<i64> = row.try_get("prompt_tokens")?;
            let completion: Option<i64> = row.try_get("completion_tokens")?;
            let usage = usage_from(prompt, completion);
            let created: i64 = row.try_get("created_at")?;
            let sources = row
                .try_get::<Option<String>, _>("sources")?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            out.push(StoredMessage {
                sources,
                rating: row
                    .try_get::<Option<i64>, _>("rating")?
                    .and_then(Rating::from_score),
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

    async fn conversation_of_message(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let conversation: Option<String> =
            sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        match conversation {
            Some(c) if self.may_read(widget, owner, &c).await? => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    async fn rate_answer(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        id: &str,
        rating: Option<Rating>,
        comment: Option<&str>,
    ) -> Result<Rated, StoreError> {
        if self
            .conversation_of_message(widget, owner, id)
            .await?
            .is_none()
        {
            return Ok(Rated::NotFound);
        }
        let (role, status, before): (String, String, Option<i64>) =
            sqlx::query_as("SELECT role, status, rating FROM messages WHERE id = ?")
                .bind(id)
                .fetch_one(&self.reader)
                .await?;
        if role != "assistant" || status == "streaming" {
            return Ok(Rated::NotAnswer);
        }
        sqlx::query(
            "UPDATE messages SET rating = ?, rating_comment = ?, rated_at = ? WHERE id = ?",
        )
        .bind(rating.map(|r| i64::from(r.score())))
        .bind(rating.and(comment))
        .bind(rating.map(|_| now_ms()))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(Rated::Saved {
            first: before.is_none(),
        })
    }

    async fn checkpoint_answer(&self, id: &str, content: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET content = ?, touched_at = ? WHERE id = ? AND status = 'streaming'",
        )
        .bind(content)
        .bind(now_ms())
        .bind(id)
        .execute(&self.writer)
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
        let (prompt, completion) = usage_columns(usage);
        // One statement: the `usage_on_finish` trigger adds the tokens to
        // the day's usage in the same transaction.
        sqlx::query(
            "UPDATE messages SET content = ?, status = ?, prompt_tokens = ?, completion_tokens = ? \
             WHERE id = ? AND status = 'streaming'",
        )
        .bind(content)
        .bind(status_str(status))
        .bind(prompt)
        .bind(completion)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn spent(&self, widget: &WidgetId, day: &str) -> Result<(u64, u64), StoreError> {
        // `day` is YYYY-MM-DD: its month is the first seven characters.
        let month = day.get(..7).unwrap_or(day);
        let (today, month): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN day = ? THEN prompt_tokens + completion_tokens END), 0), \
                    COALESCE(SUM(prompt_tokens + completion_tokens), 0) \
             FROM usage_daily WHERE widget_id = ? AND substr(day, 1, 7) = ?",
        )
        .bind(day)
        .bind(widget.as_str())
        .bind(month)
        .fetch_one(&self.reader)
        .await?;
        Ok((today.max(0) as u64, month.max(0) as u64))
    }

    async fn recover(&self, lease: Option<Duration>) -> Result<u64, StoreError> {
        let before = lease.map_or(i64::MAX, |l| now_ms() - l.as_millis() as i64);
        let done = sqlx::query(
            "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' \
             AND COALESCE(touched_at, created_at) < ?",
        )
        .bind(before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{me, user};

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("porthole-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub/porthole.db")
    }

    #[tokio::test]
    async fn an_answer_streams_into_its_row_and_survives_a_reopen() {
        let path = temp_db("answer");
        let w = WidgetId::parse("w").unwrap();
        let id = new_id("msg");
        let conv = {
            let store = SqliteStore::open(&path).await.unwrap();
            let conv = store
                .start_turn(&w, &me(), None, user("q"), &id)
                .await
                .unwrap();
            store.checkpoint_answer(&id, "partial").await.unwrap();
            conv
        };
        // A new process: the streaming answer is recovered as interrupted.
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.recover(None).await.unwrap(), 1);
        let got = store.messages(&w, &me(), &conv).await.unwrap().unwrap();
        assert_eq!(got[1].id, id);
        assert_eq!(
            (got[1].content.as_str(), got[1].status),
            ("partial", MessageStatus::Interrupted)
        );
        // An answer ends once: finishing the recovered one changes nothing.
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        };
        store
            .finish_answer(&id, "late", MessageStatus::Complete, Some(usage))
            .await
            .unwrap();
        let got = store.messages(&w, &me(), &conv).await.unwrap().unwrap();
        assert_eq!(got[1].status, MessageStatus::Interrupted);
        // Ending a new answer once, and its usage: store::tests, on every
        // store.
    }
}
