//! The tenants' tables in PostgreSQL: widgets, their keys and sites, admin
//! keys, and what admins read about conversations and usage.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::store::conversations::Rating;
use crate::store::inbox::{
    ExportRow, FixCase, InboxFilter, InboxItem, bind_all, cursor_of, export_row, export_sql,
    fix_case, inbox_item, inbox_sql, numbered, parse_cursor, to_fix_sql,
};
use crate::store::rows::{count_u32, json_text, now_ms, role_from, status_from};
use crate::store::{
    AdminMessage, ConversationSummary, DailyUsage, KeyHash, StoreError, TenantStore,
};
use crate::tenants::WidgetDef;

const WIDGET_COLUMNS: &str = "id, title, greeting, starters, theme, system_prompt, model, \
     temperature, max_tokens, knowledge, unknown_reply, min_relevance, verification_secret, disabled, \
     limits, language, source, created_at, updated_at";

fn widget_from_row(row: &PgRow) -> Result<WidgetDef, StoreError> {
    let bad = |what: &str, e: serde_json::Error| {
        StoreError::Unavailable(format!("widget {what} is not valid JSON: {e}"))
    };
    let json = |name: &str| -> Result<String, StoreError> { Ok(row.try_get(name)?) };
    Ok(WidgetDef {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        greeting: row.try_get("greeting")?,
        starters: serde_json::from_str(&json("starters")?).map_err(|e| bad("starters", e))?,
        theme: serde_json::from_str(&json("theme")?).map_err(|e| bad("theme", e))?,
        language: serde_json::from_str(&json("language")?).map_err(|e| bad("language", e))?,
        system_prompt: row.try_get("system_prompt")?,
        model: row.try_get("model")?,
        temperature: row
            .try_get::<Option<f64>, _>("temperature")?
            .map(|t| t as f32),
        max_tokens: row.try_get::<Option<i64>, _>("max_tokens")?.map(count_u32),
        knowledge: row.try_get("knowledge")?,
        unknown_reply: row.try_get("unknown_reply")?,
        min_relevance: row
            .try_get::<Option<f64>, _>("min_relevance")?
            .map(|r| r as f32),
        allowed_sites: Vec::new(),
        verification_secret: row.try_get("verification_secret")?,
        disabled: row.try_get("disabled")?,
        limits: serde_json::from_str(&json("limits")?).map_err(|e| bad("limits", e))?,
        source: row.try_get("source")?,
        created_at: row.try_get::<i64, _>("created_at")?.max(0) as u64,
        updated_at: row.try_get::<i64, _>("updated_at")?.max(0) as u64,
    })
}

/// Writes a widget's settings row (insert or update) and its sites.
async fn write_widget(
    tx: &mut sqlx::PgConnection,
    def: &WidgetDef,
    insert: bool,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let sql = if insert {
        "INSERT INTO widgets (title, greeting, starters, theme, system_prompt, model, temperature, \
         max_tokens, knowledge, verification_secret, disabled, limits, source, unknown_reply, \
         min_relevance, updated_at, id, language, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $16)"
    } else {
        "UPDATE widgets SET title = $1, greeting = $2, starters = $3, theme = $4, system_prompt = $5, \
         model = $6, temperature = $7, max_tokens = $8, knowledge = $9, verification_secret = $10, \
         disabled = $11, limits = $12, source = $13, unknown_reply = $14, min_relevance = $15, \
         updated_at = $16, language = $18 WHERE id = $17"
    };
    let done = sqlx::query(sql)
        .bind(&def.title)
        .bind(&def.greeting)
        .bind(json_text(&def.starters))
        .bind(json_text(&def.theme))
        .bind(&def.system_prompt)
        .bind(&def.model)
        .bind(def.temperature.map(f64::from))
        .bind(def.max_tokens.map(i64::from))
        .bind(&def.knowledge)
        .bind(&def.verification_secret)
        .bind(def.disabled)
        .bind(json_text(&def.limits))
        .bind(&def.source)
        .bind(&def.unknown_reply)
        .bind(def.min_relevance.map(f64::from))
        .bind(now)
        .bind(&def.id)
        .bind(json_text(&def.language))
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    super::knowledge::mirror_widget_knowledge(tx, &def.id, &def.knowledge, now).await?;
    sqlx::query("DELETE FROM widget_sites WHERE widget_id = $1")
        .bind(&def.id)
        .execute(&mut *tx)
        .await?;
    for site in &def.allowed_sites {
        sqlx::query(
            "INSERT INTO widget_sites (widget_id, origin) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&def.id)
        .bind(site)
        .execute(&mut *tx)
        .await?;
    }
    Ok(true)
}

async fn insert_key(
    tx: &mut sqlx::PgConnection,
    widget: &str,
    key: &KeyHash,
) -> Result<(), StoreError> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT widget_id FROM widget_keys WHERE key_hash = $1")
            .bind(&key.hash)
            .fetch_optional(&mut *tx)
            .await?;
    match owner {
        Some(o) if o != widget => Err(StoreError::Conflict(
            "this public key (used by another widget)".into(),
        )),
        Some(_) => {
            sqlx::query("UPDATE widget_keys SET revoked_at = NULL WHERE key_hash = $1")
                .bind(&key.hash)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        None => {
            sqlx::query(
                "INSERT INTO widget_keys (key_hash, widget_id, prefix, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&key.hash)
            .bind(widget)
            .bind(&key.prefix)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            Ok(())
        }
    }
}

async fn revoke_keys_except(
    tx: &mut sqlx::PgConnection,
    widget: &str,
    keep: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE widget_keys SET revoked_at = $1 WHERE widget_id = $2 AND key_hash <> $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(widget)
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Holds widget id `id` until the transaction ends: replicas creating or
/// importing the same widget at once take turns (a row lock cannot, since
/// the row may not exist yet).
async fn lock_widget_id(tx: &mut sqlx::PgConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('porthole.widget.' || $1))")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn widget_exists(tx: &mut sqlx::PgConnection, id: &str) -> Result<bool, StoreError> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM widgets WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(found.is_some())
}

/// A unique violation (another replica inserted the same row first) as a
/// conflict, anything else as it is.
fn conflict_or(e: sqlx::Error, what: String) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => e.into(),
    }
}

#[async_trait]
impl TenantStore for PgStore {
    async fn widgets(&self) -> Result<Vec<WidgetDef>, StoreError> {
        let sql = format!("SELECT {WIDGET_COLUMNS} FROM widgets ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut widgets = rows
            .iter()
            .map(widget_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let sites: Vec<(String, String)> =
            sqlx::query_as("SELECT widget_id, origin FROM widget_sites ORDER BY position")
                .fetch_all(&self.pool)
                .await?;
        for (widget, origin) in sites {
            if let Some(w) = widgets.iter_mut().find(|w| w.id == widget) {
                w.allowed_sites.push(origin);
            }
        }
        Ok(widgets)
    }

    async fn widget(&self, id: &str) -> Result<Option<WidgetDef>, StoreError> {
        let sql = format!("SELECT {WIDGET_COLUMNS} FROM widgets WHERE id = $1");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut def = widget_from_row(&row)?;
        def.allowed_sites = sqlx::query_scalar(
            "SELECT origin FROM widget_sites WHERE widget_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(def))
    }

    async fn live_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT key_hash, widget_id FROM widget_keys WHERE revoked_at IS NULL")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM server_meta WHERE name = 'widgets_revision'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    async fn create_widget(&self, def: &WidgetDef, key: &KeyHash) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_widget_id(&mut tx, &def.id).await?;
        if widget_exists(&mut tx, &def.id).await? {
            return Err(StoreError::Conflict(format!("widget {:?}", def.id)));
        }
        write_widget(&mut tx, def, true).await?;
        insert_key(&mut tx, &def.id, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_widget(&self, def: &WidgetDef) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = write_widget(&mut tx, def, false).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn delete_widget(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM conversations WHERE widget_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM widgets WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_key(&self, id: &str, key: &KeyHash) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !widget_exists(&mut tx, id).await? {
            return Ok(false);
        }
        revoke_keys_except(&mut tx, id, &key.hash).await?;
        insert_key(&mut tx, id, key).await?;
        sqlx::query("UPDATE widgets SET updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn import_widget(&self, def: &WidgetDef, key: &KeyHash) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Replicas importing the config at the same start take turns.
        lock_widget_id(&mut tx, &def.id).await?;
        if !write_widget(&mut tx, def, false).await? {
            write_widget(&mut tx, def, true).await?;
        }
        revoke_keys_except(&mut tx, &def.id, &key.hash).await?;
        insert_key(&mut tx, &def.id, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_once(
        &self,
        marker: &str,
        def: &WidgetDef,
        key: &KeyHash,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let first = sqlx::query(
            "INSERT INTO server_meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(marker)
        .bind(now_ms().to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        lock_widget_id(&mut tx, &def.id).await?;
        let create = first && !widget_exists(&mut tx, &def.id).await?;
        if create {
            write_widget(&mut tx, def, true).await?;
            insert_key(&mut tx, &def.id, key).await?;
        }
        tx.commit().await?;
        Ok(create)
    }

    async fn meta_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO server_meta (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM server_meta WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_admin_key(&self, name: &str, key: &KeyHash) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_keys (key_hash, name, prefix, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.hash)
        .bind(name)
        .bind(&key.prefix)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "this admin key".into()))?;
        Ok(())
    }

    async fn is_admin_key(&self, hash: &str) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM admin_keys WHERE key_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    async fn conversations(
        &self,
        widget: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<ConversationSummary>, Option<String>), StoreError> {
        // The cursor is the last row's `created_at:id`.
        let (before_time, before_id) = cursor
            .and_then(|c| c.split_once(':'))
            .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
            .unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(
            "SELECT c.id, c.visitor_id, c.user_id, c.created_at, \
                    COUNT(m.id)::BIGINT AS messages, \
                    COALESCE(SUM(m.prompt_tokens), 0)::BIGINT AS prompt_tokens, \
                    COALESCE(SUM(m.completion_tokens), 0)::BIGINT AS completion_tokens, \
                    COALESCE(MAX(m.created_at), c.created_at)::BIGINT AS last_message_at \
             FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
             WHERE c.widget_id = $1 AND (c.created_at < $2 OR (c.created_at = $2 AND c.id < $3)) \
             GROUP BY c.id ORDER BY c.created_at DESC, c.id DESC LIMIT $4",
        )
        .bind(widget)
        .bind(before_time)
        .bind(if before_id.is_empty() {
            "\u{10FFFF}".to_owned()
        } else {
            before_id
        })
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let n = |c: &str| -> Result<u64, StoreError> {
                Ok(row.try_get::<i64, _>(c)?.max(0) as u64)
            };
            out.push(ConversationSummary {
                id: row.try_get("id")?,
                visitor_id: row.try_get("visitor_id")?,
                user_id: row.try_get("user_id")?,
                messages: n("messages")? as u32,
                prompt_tokens: n("prompt_tokens")?,
                completion_tokens: n("completion_tokens")?,
                created_at: n("created_at")?,
                last_message_at: n("last_message_at")?,
            });
        }
        let next = if out.len() > limit as usize {
            out.truncate(limit as usize);
            out.last().map(|c| format!("{}:{}", c.created_at, c.id))
        } else {
            None
        };
        Ok((out, next))
    }

    async fn conversation_messages(
        &self,
        widget: &str,
        conversation: &str,
        limit: u32,
        after_seq: u32,
    ) -> Result<Option<Vec<AdminMessage>>, StoreError> {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT widget_id FROM conversations WHERE id = $1")
                .bind(conversation)
                .fetch_optional(&self.pool)
                .await?;
        if owner.as_deref() != Some(widget) {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, seq, role, content, status, prompt_tokens, completion_tokens, created_at, \
                    rating, rating_comment, sources \
             FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(conversation)
        .bind(i64::from(after_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let tokens = |c: &str| -> Result<Option<u32>, StoreError> {
                Ok(row.try_get::<Option<i64>, _>(c)?.map(count_u32))
            };
            out.push(AdminMessage {
                id: row.try_get("id")?,
                seq: count_u32(row.try_get("seq")?),
                role: role_from(&row.try_get::<String, _>("role")?),
                content: row.try_get("content")?,
                status: status_from(&row.try_get::<String, _>("status")?),
                prompt_tokens: tokens("prompt_tokens")?,
                completion_tokens: tokens("completion_tokens")?,
                created_at: row.try_get::<i64, _>("created_at")?.max(0) as u64,
                rating: row
                    .try_get::<Option<i16>, _>("rating")?
                    .and_then(|n| Rating::from_score(i64::from(n))),
                rating_comment: row.try_get("rating_comment")?,
                sources: row
                    .try_get::<Option<String>, _>("sources")?
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default(),
            });
        }
        Ok(Some(out))
    }

    async fn inbox(
        &self,
        filter: &InboxFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<InboxItem>, Option<String>), StoreError> {
        let (sql, binds) = inbox_sql(filter);
        let (before_time, before_id) = parse_cursor(cursor);
        let sql = numbered(&sql);
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .bind(before_time)
            .bind(before_time)
            .bind(before_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(inbox_item!(row));
        }
        let next = if out.len() > limit as usize {
            out.truncate(limit as usize);
            out.last().map(cursor_of)
        } else {
            None
        };
        Ok((out, next))
    }

    async fn to_fix(&self, filter: &InboxFilter, max: u32) -> Result<Vec<FixCase>, StoreError> {
        let (sql, binds) = to_fix_sql(filter);
        let sql = numbered(&sql);
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .bind(i64::from(max))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(fix_case!(row));
        }
        Ok(out)
    }

    async fn analytics(
        &self,
        widget: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<crate::store::analytics::DayCounts>, StoreError> {
        let sql = numbered(&crate::store::analytics::analytics_sql(widget.is_some()));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from_ms)
            .bind(to_ms);
        if let Some(w) = widget {
            query = query.bind(w.to_owned());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(crate::store::analytics::day_counts!(row));
        }
        Ok(out)
    }

    async fn export(&self, filter: &InboxFilter, max: u32) -> Result<Vec<ExportRow>, StoreError> {
        let (sql, binds) = export_sql(filter);
        let sql = numbered(&sql);
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .bind(i64::from(max))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(export_row!(row));
        }
        Ok(out)
    }

    async fn usage_by_day(
        &self,
        widget: &str,
        from_day: &str,
    ) -> Result<Vec<DailyUsage>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, answers, prompt_tokens, completion_tokens FROM usage_daily \
             WHERE widget_id = $1 AND day >= $2 ORDER BY day",
        )
        .bind(widget)
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let prompt = row.try_get::<i64, _>("prompt_tokens")?.max(0) as u64;
            let completion = row.try_get::<i64, _>("completion_tokens")?.max(0) as u64;
            out.push(DailyUsage {
                day: row.try_get("day")?,
                answers: count_u32(row.try_get("answers")?),
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
            });
        }
        Ok(out)
    }
}
