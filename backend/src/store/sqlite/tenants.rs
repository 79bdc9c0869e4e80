//! The tenants' tables in SQLite: widgets, their keys and sites, admin
//! keys, and what admins read about conversations and usage.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::store::conversations::Rating;
use crate::store::inbox::{
    ExportRow, FixCase, InboxFilter, InboxItem, bind_all, cursor_of, export_row, export_sql,
    fix_case, inbox_item, inbox_sql, parse_cursor, to_fix_sql,
};
use crate::store::rows::{json_text, now_ms, role_from, status_from};
use crate::store::{
    AdminMessage, ConversationSummary, DailyUsage, KeyHash, StoreError, TenantStore,
};
use crate::tenants::WidgetDef;

const WIDGET_COLUMNS: &str = "id, title, greeting, starters, theme, system_prompt, model, \
     temperature, max_tokens, knowledge, unknown_reply, min_relevance, verification_secret, disabled, \
     limits, language, source, created_at, updated_at";

fn widget_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<WidgetDef, StoreError> {
    let bad = |what: &str, e: serde_json::Error| {
        StoreError::Unavailable(format!("widget {what} is not valid JSON: {e}"))
    };
    let starters: String = row.try_get("starters")?;
    let theme: String = row.try_get("theme")?;
    let limits: String = row.try_get("limits")?;
    let language: String = row.try_get("language")?;
    let temperature: Option<f64> = row.try_get("temperature")?;
    let max_tokens: Option<i64> = row.try_get("max_tokens")?;
    let created: i64 = row.try_get("created_at")?;
    let updated: i64 = row.try_get("updated_at")?;
    Ok(WidgetDef {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        greeting: row.try_get("greeting")?,
        starters: serde_json::from_str(&starters).map_err(|e| bad("starters", e))?,
        theme: serde_json::from_str(&theme).map_err(|e| bad("theme", e))?,
        language: serde_json::from_str(&language).map_err(|e| bad("language", e))?,
        system_prompt: row.try_get("system_prompt")?,
        model: row.try_get("model")?,
        temperature: temperature.map(|t| t as f32),
        max_tokens: max_tokens.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
        knowledge: row.try_get("knowledge")?,
        unknown_reply: row.try_get("unknown_reply")?,
        min_relevance: row
            .try_get::<Option<f64>, _>("min_relevance")?
            .map(|r| r as f32),
        allowed_sites: Vec::new(),
        verification_secret: row.try_get("verification_secret")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        limits: serde_json::from_str(&limits).map_err(|e| bad("limits", e))?,
        source: row.try_get("source")?,
        created_at: created.max(0) as u64,
        updated_at: updated.max(0) as u64,
    })
}

/// Writes a widget's settings row (insert or replace) and its sites.
async fn write_widget(
    tx: &mut sqlx::SqliteConnection,
    def: &WidgetDef,
    insert: bool,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let sql = if insert {
        "INSERT INTO widgets (title, greeting, starters, theme, system_prompt, model, temperature, \
         max_tokens, knowledge, verification_secret, disabled, limits, source, unknown_reply, \
         min_relevance, language, updated_at, id, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    } else {
        "UPDATE widgets SET title = ?, greeting = ?, starters = ?, theme = ?, system_prompt = ?, \
         model = ?, temperature = ?, max_tokens = ?, knowledge = ?, verification_secret = ?, \
         disabled = ?, limits = ?, source = ?, unknown_reply = ?, min_relevance = ?, \
         language = ?, updated_at = ? WHERE id = ?"
    };
    let mut q = sqlx::query(sql)
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
        .bind(i64::from(def.disabled))
        .bind(json_text(&def.limits))
        .bind(&def.source)
        .bind(&def.unknown_reply)
        .bind(def.min_relevance.map(f64::from))
        .bind(json_text(&def.language))
        .bind(now)
        .bind(&def.id);
    if insert {
        q = q.bind(now);
    }
    let done = q.execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    super::knowledge::mirror_widget_knowledge(tx, &def.id, &def.knowledge, now).await?;
    sqlx::query("DELETE FROM widget_sites WHERE widget_id = ?")
        .bind(&def.id)
        .execute(&mut *tx)
        .await?;
    for site in &def.allowed_sites {
        sqlx::query("INSERT OR IGNORE INTO widget_sites (widget_id, origin) VALUES (?, ?)")
            .bind(&def.id)
            .bind(site)
            .execute(&mut *tx)
            .await?;
    }
    Ok(true)
}

async fn insert_key(
    tx: &mut sqlx::SqliteConnection,
    widget: &str,
    key: &KeyHash,
) -> Result<(), StoreError> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT widget_id FROM widget_keys WHERE key_hash = ?")
            .bind(&key.hash)
            .fetch_optional(&mut *tx)
            .await?;
    match owner {
        Some(o) if o != widget => Err(StoreError::Conflict(
            "this public key (used by another widget)".into(),
        )),
        Some(_) => {
            sqlx::query("UPDATE widget_keys SET revoked_at = NULL WHERE key_hash = ?")
                .bind(&key.hash)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }
        None => {
            sqlx::query(
                "INSERT INTO widget_keys (key_hash, widget_id, prefix, created_at) VALUES (?, ?, ?, ?)",
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
    tx: &mut sqlx::SqliteConnection,
    widget: &str,
    keep: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE widget_keys SET revoked_at = ? WHERE widget_id = ? AND key_hash != ? AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(widget)
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn widgets(&self) -> Result<Vec<WidgetDef>, StoreError> {
        let sql = format!("SELECT {WIDGET_COLUMNS} FROM widgets ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.reader)
            .await?;
        let mut widgets = rows
            .iter()
            .map(widget_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let sites: Vec<(String, String)> =
            sqlx::query_as("SELECT widget_id, origin FROM widget_sites ORDER BY rowid")
                .fetch_all(&self.reader)
                .await?;
        for (widget, origin) in sites {
            if let Some(w) = widgets.iter_mut().find(|w| w.id == widget) {
                w.allowed_sites.push(origin);
            }
        }
        Ok(widgets)
    }

    async fn widget(&self, id: &str) -> Result<Option<WidgetDef>, StoreError> {
        let sql = format!("SELECT {WIDGET_COLUMNS} FROM widgets WHERE id = ?");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let mut def = widget_from_row(&row)?;
        def.allowed_sites = sqlx::query_scalar(
            "SELECT origin FROM widget_sites WHERE widget_id = ? ORDER BY rowid",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(def))
    }

    async fn live_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT key_hash, widget_id FROM widget_keys WHERE revoked_at IS NULL")
                .fetch_all(&self.reader)
                .await?,
        )
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM server_meta WHERE name = 'widgets_revision'")
                .fetch_optional(&self.reader)
                .await?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    async fn create_widget(&self, def: &WidgetDef, key: &KeyHash) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM widgets WHERE id = ?")
            .bind(&def.id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!("widget {:?}", def.id)));
        }
        write_widget(&mut tx, def, true).await?;
        insert_key(&mut tx, &def.id, key).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_widget(&self, def: &WidgetDef) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let found = write_widget(&mut tx, def, false).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn delete_widget(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM conversations WHERE widget_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM widgets WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn rotate_key(&self, id: &str, key: &KeyHash) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM widgets WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        revoke_keys_except(&mut tx, id, &key.hash).await?;
        insert_key(&mut tx, id, key).await?;
        sqlx::query("UPDATE widgets SET updated_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn import_widget(&self, def: &WidgetDef, key: &KeyHash) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
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
        let mut tx = self.writer.begin().await?;
        let first = sqlx::query("INSERT OR IGNORE INTO server_meta (name, value) VALUES (?, ?)")
            .bind(marker)
            .bind(now_ms().to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM widgets WHERE id = ?")
            .bind(&def.id)
            .fetch_optional(&mut *tx)
            .await?;
        let create = first && exists.is_none();
        if create {
            write_widget(&mut tx, def, true).await?;
            insert_key(&mut tx, &def.id, key).await?;
        }
        tx.commit().await?;
        Ok(create)
    }

    async fn meta_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT OR IGNORE INTO server_meta (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM server_meta WHERE name = ?")
                .bind(name)
                .fetch_one(&self.writer)
                .await?,
        )
    }

    async fn create_admin_key(&self, name: &str, key: &KeyHash) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_keys (key_hash, name, prefix, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&key.hash)
        .bind(name)
        .bind(&key.prefix)
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn is_admin_key(&self, hash: &str) -> Result<bool, StoreError> {
        // The lookup is by hash, so its timing says nothing about the key.
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM admin_keys WHERE key_hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
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
                    COUNT(m.id) AS messages, \
                    COALESCE(SUM(m.prompt_tokens), 0) AS prompt_tokens, \
                    COALESCE(SUM(m.completion_tokens), 0) AS completion_tokens, \
                    COALESCE(MAX(m.created_at), c.created_at) AS last_message_at \
             FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
             WHERE c.widget_id = ? AND (c.created_at < ? OR (c.created_at = ? AND c.id < ?)) \
             GROUP BY c.id ORDER BY c.created_at DESC, c.id DESC LIMIT ?",
        )
        .bind(widget)
        .bind(before_time)
        .bind(before_time)
        .bind(if before_id.is_empty() {
            "\u{10FFFF}".to_owned()
        } else {
            before_id
        })
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.reader)
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
            sqlx::query_scalar("SELECT widget_id FROM conversations WHERE id = ?")
                .bind(conversation)
                .fetch_optional(&self.reader)
                .await?;
        if owner.as_deref() != Some(widget) {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, seq, role, content, status, prompt_tokens, completion_tokens, created_at, \
                    rating, rating_comment, sources \
             FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(conversation)
        .bind(i64::from(after_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let tokens = |c: &str| -> Result<Option<u32>, StoreError> {
                Ok(row.try_get::<Option<i64>, _>(c)?.map(|n| n.max(0) as u32))
            };
            out.push(AdminMessage {
                id: row.try_get("id")?,
                seq: row.try_get::<i64, _>("seq")?.max(0) as u32,
                role: role_from(&row.try_get::<String, _>("role")?),
                content: row.try_get("content")?,
                status: status_from(&row.try_get::<String, _>("status")?),
                prompt_tokens: tokens("prompt_tokens")?,
                completion_tokens: tokens("completion_tokens")?,
                created_at: row.try_get::<i64, _>("created_at")?.max(0) as u64,
                rating: row
                    .try_get::<Option<i64>, _>("rating")?
                    .and_then(Rating::from_score),
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
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .bind(before_time)
            .bind(before_time)
            .bind(before_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.reader)
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
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .bind(i64::from(max))
            .fetch_all(&self.reader)
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
        let sql = crate::store::analytics::analytics_sql(widget.is_some());
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from_ms)
            .bind(to_ms);
        if let Some(w) = widget {
            query = query.bind(w.to_owned());
        }
        let rows = query.fetch_all(&self.reader).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(crate::store::analytics::day_counts!(row));
        }
        Ok(out)
    }

    async fn export(&self, filter: &InboxFilter, max: u32) -> Result<Vec<ExportRow>, StoreError> {
        let (sql, binds) = export_sql(filter);
        let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), binds)
            .bind(i64::from(max))
            .fetch_all(&self.reader)
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
        // The per-day table the `usage_on_finish` trigger keeps, which the
        // budgets read too: no scan of the messages.
        let rows = sqlx::query(
            "SELECT day, answers, prompt_tokens, completion_tokens FROM usage_daily \
             WHERE widget_id = ? AND day >= ? ORDER BY day",
        )
        .bind(widget)
        .bind(from_day)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let prompt = row.try_get::<i64, _>("prompt_tokens")?.max(0) as u64;
            let completion = row.try_get::<i64, _>("completion_tokens")?.max(0) as u64;
            out.push(DailyUsage {
                day: row.try_get("day")?,
                answers: row.try_get::<i64, _>("answers")?.max(0) as u32,
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: prompt + completion,
            });
        }
        Ok(out)
    }
}
