//! The store for several replicas: PostgreSQL through sqlx's driver, with
//! its own migrations in `backend/migrations/postgres` (the same rows as
//! the SQLite store's). Conversations are here; the tenants' tables are in
//! [`tenants`], the knowledge base in [`knowledge`].
//!
//! Migrations run under sqlx's advisory lock, so replicas starting together
//! never race on them; `porthole migrate` runs them explicitly before a
//! rollout.

use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use protocol::Usage;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::conversations::millis;
use super::conversations::{Rated, Rating};
use super::rows::{now_ms, role_from, status_from, status_str, usage_columns, usage_from};
use super::{ConversationStore, MessageStatus, NewAnswer, Owner, StoreError, StoredMessage};
use crate::ids::new_id;
use crate::tenants::WidgetId;

mod accounts;
pub mod knowledge;
mod tenants;
mod webhooks;

/// The migrations, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Conversations, widgets and knowledge in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Each widget's vectors of one model, read once and kept while the
    /// widget's vector version stays.
    pub(crate) vectors: std::sync::Arc<super::vectors::VectorCache>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("the PostgreSQL URL: {e}")))?;
        Self::open_with(options, 16).await
    }

    /// Connects with `options` (a pool of at most `connections`) and
    /// applies the migrations.
    pub async fn open_with(
        options: PgConnectOptions,
        connections: u32,
    ) -> Result<Self, StoreError> {
        let store = Self::connect(options, connections).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(options: PgConnectOptions, connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            vectors: Default::default(),
        })
    }

    /// Applies the migrations this database lacks (under an advisory lock:
    /// a second replica waits, then finds nothing to do). Returns how many
    /// ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let before = self.applied_migrations().await;
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating PostgreSQL: {e}")))?;
        let after = self.applied_migrations().await;
        Ok(usize::try_from(after - before).unwrap_or(0))
    }

    /// Migrations applied so far (0 before the first, when sqlx's table
    /// does not exist yet).
    async fn applied_migrations(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0)
    }

    /// Whether `conversation` is `widget`'s and `owner` may read it.
    async fn may_read(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT widget_id, visitor_id, user_id FROM conversations WHERE id = $1",
        )
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(w, visitor, user)| {
            w == widget.as_str() && owner.may_read(visitor.as_deref(), user.as_deref())
        }))
    }
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn begin_turn(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: Option<&str>,
        question: StoredMessage,
        answer: &NewAnswer,
    ) -> Result<String, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let id = match conversation {
            Some(id) => {
                // The row lock orders two turns of one conversation (two
                // replicas, two tabs): each sees the other's sequence numbers.
                let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT widget_id, visitor_id, user_id FROM conversations \
                     WHERE id = $1 FOR UPDATE",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let mine = row.is_some_and(|(w, visitor, user)| {
                    w == widget.as_str() && owner.may_read(visitor.as_deref(), user.as_deref())
                });
                if !mine {
                    return Err(StoreError::NoSuchConversation(id.to_owned()));
                }
                id.to_owned()
            }
            None => {
                let id = new_id("conv");
                sqlx::query(
                    "INSERT INTO conversations (id, widget_id, visitor_id, user_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&id)
                .bind(widget.as_str())
                .bind(&owner.visitor)
                .bind(owner.user.as_deref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        let sources = (!answer.sources.is_empty())
            .then(|| serde_json::to_string(&answer.sources).unwrap_or_default());
        sqlx::query(
            "WITH last AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM messages WHERE conversation_id = $2) \
             INSERT INTO messages (id, conversation_id, seq, role, content, status, created_at, sources, unanswered, touched_at) \
             SELECT $1, $2, last.seq + 1, 'user', $3, 'complete', $4, NULL, FALSE, $4 FROM last \
             UNION ALL \
             SELECT $5, $2, last.seq + 2, 'assistant', '', 'streaming', $6, $7, $8, $6 FROM last",
        )
        .bind(&question.id)
        .bind(&id)
        .bind(&question.content)
        .bind(millis(question.created_at) as i64)
        .bind(&answer.id)
        .bind(now)
        .bind(sources)
        .bind(answer.unanswered)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
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
             FROM messages WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let created: i64 = row.try_get("created_at")?;
            out.push(StoredMessage {
                id: row.try_get("id")?,
                role: role_from(row.try_get("role")?),
                content: row.try_get("content")?,
                status: status_from(row.try_get("status")?),
                usage: usage_from(
                    row.try_get("prompt_tokens")?,
                    row.try_get("completion_tokens")?,
                ),
                created_at: UNIX_EPOCH + Duration::from_millis(created.max(0) as u64),
                sources: row
                    .try_get::<Option<String>, _>("sources")?
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default(),
                rating: row
                    .try_get::<Option<i16>, _>("rating")?
                    .and_then(|n| Rating::from_score(i64::from(n))),
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
            sqlx::query_scalar("SELECT conversation_id FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
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
        let (role, status, before): (String, String, Option<i16>) =
            sqlx::query_as("SELECT role, status, rating FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        if role != "assistant" || status == "streaming" {
            return Ok(Rated::NotAnswer);
        }
        sqlx::query(
            "UPDATE messages SET rating = $1, rating_comment = $2, rated_at = $3 WHERE id = $4",
        )
        .bind(rating.map(Rating::score))
        .bind(rating.and(comment))
        .bind(rating.map(|_| now_ms()))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(Rated::Saved {
            first: before.is_none(),
        })
    }

    async fn checkpoint_answer(&self, id: &str, content: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE messages SET content = $1, touched_at = $2 WHERE id = $3 AND status = 'streaming'",
        )
        .bind(content)
        .bind(now_ms())
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
        let (prompt, completion) = usage_columns(usage);
        // One statement: the answer ends (once) and its tokens join the
        // day's usage, which the budgets and the admin API read.
        sqlx::query(
            "WITH done AS (UPDATE messages SET content = $1, status = $2, prompt_tokens = $3, \
                 completion_tokens = $4 WHERE id = $5 AND status = 'streaming' AND role = 'assistant' \
                 RETURNING conversation_id, prompt_tokens, completion_tokens) \
             INSERT INTO usage_daily (widget_id, day, answers, prompt_tokens, completion_tokens) \
             SELECT c.widget_id, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1, \
                    COALESCE(d.prompt_tokens, 0), COALESCE(d.completion_tokens, 0) \
             FROM done d JOIN conversations c ON c.id = d.conversation_id \
             ON CONFLICT (widget_id, day) DO UPDATE SET \
                 answers = usage_daily.answers + 1, \
                 prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens",
        )
        .bind(content)
        .bind(status_str(status))
        .bind(prompt)
        .bind(completion)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn spent(&self, widget: &WidgetId, day: &str) -> Result<(u64, u64), StoreError> {
        let month = day.get(..7).unwrap_or(day);
        let (today, month): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN day = $1 THEN prompt_tokens + completion_tokens END), 0)::BIGINT, \
                    COALESCE(SUM(prompt_tokens + completion_tokens), 0)::BIGINT \
             FROM usage_daily WHERE widget_id = $2 AND substr(day, 1, 7) = $3",
        )
        .bind(day)
        .bind(widget.as_str())
        .bind(month)
        .fetch_one(&self.pool)
        .await?;
        Ok((today.max(0) as u64, month.max(0) as u64))
    }

    async fn recover(&self, lease: Option<Duration>) -> Result<u64, StoreError> {
        // Several replicas share the database: an answer another replica is
        // streaming, and renewing, is not this process's to end.
        let before = lease.map_or(i64::MAX, |l| now_ms() - l.as_millis() as i64);
        let done = sqlx::query(
            "UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' \
             AND touched_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Test databases on a PostgreSQL server: a schema per test, so tests run
/// side by side on one database (used by the unit and integration tests).
pub mod testing {
    use sqlx::Connection;

    /// The server the tests use (`PORTHOLE_TEST_DATABASE_URL`). Without
    /// one, PostgreSQL tests are skipped, unless `PORTHOLE_REQUIRE_SERVICES`
    /// is set (as `scripts/test` does), when they fail.
    pub fn server_url() -> Option<String> {
        crate::testing::service_url("PORTHOLE_TEST_DATABASE_URL", "PostgreSQL")
    }

    /// Drops and creates schema `name` on `url`'s database; returns a URL
    /// whose connections use it.
    pub async fn fresh_schema(url: &str, name: &str) -> Result<String, sqlx::Error> {
        let schema: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        let mut conn = sqlx::PgConnection::connect(url).await?;
        // A schema name made of letters, digits and `_`, quoted.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE; CREATE SCHEMA \"{schema}\";"
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        let join = if url.contains('?') { '&' } else { '?' };
        Ok(format!("{url}{join}options[search_path]={schema}"))
    }
}
