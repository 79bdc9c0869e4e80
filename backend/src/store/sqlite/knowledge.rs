//! The knowledge base in SQLite: sources, pages and chunks, and an FTS5
//! index over the chunks' analysed terms, ranked by its built-in BM25.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::knowledge::embed;
use crate::store::StoreError;
use crate::store::knowledge::{
    FoundChunk, KnowledgeStore, NewPage, NewSource, PageError, PageState, Search, SourceInfo,
    SourceKind, SyncStatus, distinct_terms, topics_of, widget_knowledge_source,
};
use crate::store::rows::{count_u32, embedding_input, now_ms};
use crate::store::vectors::Vectors;

/// A widget's token in the index: `w` and its id in hex, one token whatever
/// the tokenizer does with `-` and `_` (so `a-b` and `a_b` never meet).
fn widget_token(widget: &str) -> String {
    format!("w{}", hex::encode(widget))
}

/// Keeps the widget's `knowledge` text as its first source: created or
/// changed text is marked for a sync; emptied text removes the source.
pub(super) async fn mirror_widget_knowledge(
    tx: &mut sqlx::SqliteConnection,
    widget: &str,
    knowledge: &str,
    now: i64,
) -> Result<(), StoreError> {
    let id = widget_knowledge_source(widget);
    if knowledge.trim().is_empty() {
        sqlx::query("DELETE FROM knowledge_sources WHERE id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO knowledge_sources (id, widget_id, kind, name, body, status, created_at, updated_at) \
         VALUES (?, ?, 'text', 'Widget knowledge', ?, 'pending', ?, ?) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, status = 'pending', \
         updated_at = excluded.updated_at WHERE knowledge_sources.body IS NOT excluded.body",
    )
    .bind(&id)
    .bind(widget)
    .bind(knowledge.as_bytes())
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

const SOURCE_COLUMNS: &str = "s.id, s.widget_id, s.kind, s.name, s.url, s.status, s.pages_total, \
     s.pages_done, s.pages_failed, s.error, s.sync_every_secs, s.created_at, s.updated_at, \
     s.synced_at, (SELECT COUNT(*) FROM knowledge_chunks c JOIN knowledge_pages p ON p.id = c.page_id \
     WHERE p.source_id = s.id) AS chunks, (SELECT COUNT(*) FROM knowledge_chunks c      JOIN knowledge_pages p ON p.id = c.page_id WHERE p.source_id = s.id      AND c.embedding IS NOT NULL) AS chunks_embedded";

fn source_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<SourceInfo, StoreError> {
    let kind: String = row.try_get("kind")?;
    let u = |name: &str| -> Result<u32, StoreError> { Ok(count_u32(row.try_get(name)?)) };
    Ok(SourceInfo {
        id: row.try_get("id")?,
        widget_id: row.try_get("widget_id")?,
        kind: SourceKind::parse(&kind).unwrap_or(SourceKind::Text),
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        status: SyncStatus::parse(&row.try_get::<String, _>("status")?),
        pages_total: u("pages_total")?,
        pages_done: u("pages_done")?,
        pages_failed: u("pages_failed")?,
        chunks: u("chunks")?,
        chunks_embedded: u("chunks_embedded")?,
        error: row.try_get("error")?,
        sync_every_secs: row
            .try_get::<Option<i64>, _>("sync_every_secs")?
            .map(|s| s.max(0) as u64),
        created_at: row.try_get::<i64, _>("created_at")?.max(0) as u64,
        updated_at: row.try_get::<i64, _>("updated_at")?.max(0) as u64,
        synced_at: row
            .try_get::<Option<i64>, _>("synced_at")?
            .map(|t| t.max(0) as u64),
    })
}

impl SqliteStore {
    async fn widget_vectors(&self, widget: &str, model: &str) -> Result<Vectors, StoreError> {
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT version FROM knowledge_vector_versions WHERE widget_id = ?), 0)",
        )
        .bind(widget)
        .fetch_one(&self.reader)
        .await?;
        if let Some(vectors) = self.vectors.get(widget, model, version) {
            return Ok(vectors);
        }
        let rows = sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT id, embedding FROM knowledge_chunks \
             WHERE widget_id = ? AND embedding_model = ? AND embedding IS NOT NULL",
        )
        .bind(widget)
        .bind(model)
        .fetch_all(&self.reader)
        .await?;
        Ok(self.vectors.put(widget, model, version, rows))
    }
}

/// A found chunk from a row of `HIT_COLUMNS`, with its score (FTS5's
/// bm25() is lower-is-better, so a search passes it negated).
fn hit_from_row(r: &sqlx::sqlite::SqliteRow, score: f64) -> Result<FoundChunk, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(FoundChunk {
        id: r.try_get("id")?,
        source_kind: SourceKind::parse(&kind).unwrap_or(SourceKind::Text),
        url: r.try_get("url")?,
        title: r.try_get("title")?,
        heading: r.try_get("heading")?,
        anchor: r.try_get("anchor")?,
        page_no: r
            .try_get::<Option<i64>, _>("page_no")?
            .map(|n| n.clamp(0, i64::from(u32::MAX)) as u32),
        text: r.try_get("text")?,
        terms: r.try_get("terms")?,
        score,
    })
}

#[async_trait]
impl KnowledgeStore for SqliteStore {
    async fn add_source(&self, s: &NewSource) -> Result<(), StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT OR IGNORE INTO knowledge_sources (id, widget_id, kind, name, url, body, \
             sync_every_secs, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.widget_id)
        .bind(s.kind.as_str())
        .bind(&s.name)
        .bind(&s.url)
        .bind(&s.body)
        .bind(s.sync_every_secs.map(|v| v.min(i64::MAX as u64) as i64))
        .bind(now)
        .bind(now)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("source {:?}", s.id)));
        }
        Ok(())
    }

    async fn sources(&self, widget: &str) -> Result<Vec<SourceInfo>, StoreError> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.widget_id = ? ORDER BY s.created_at, s.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(widget)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(source_from_row).collect()
    }

    async fn source(&self, id: &str) -> Result<Option<SourceInfo>, StoreError> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn source_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let body: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT body FROM knowledge_sources WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(body.flatten())
    }

    async fn remove_source(&self, widget: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM knowledge_sources WHERE id = ? AND widget_id = ?")
            .bind(id)
            .bind(widget)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn due_sources(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM knowledge_sources WHERE (claimed_until IS NULL OR claimed_until < ?1) \
             AND (status IN ('pending', 'syncing') \
                  OR (sync_every_secs IS NOT NULL AND synced_at IS NOT NULL \
                      AND synced_at + sync_every_secs * 1000 <= ?1)) ORDER BY updated_at",
        )
        .bind(now_ms.min(i64::MAX as u64) as i64)
        .fetch_all(&self.reader)
        .await?;
        Ok(ids)
    }

    async fn claim_source(&self, id: &str, lease_ms: u64) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE knowledge_sources SET status = 'syncing', claimed_until = ?1 + ?2 \
             WHERE id = ?3 AND (claimed_until IS NULL OR claimed_until < ?1) \
             AND (status IN ('pending', 'syncing') \
                  OR (sync_every_secs IS NOT NULL AND synced_at IS NOT NULL \
                      AND synced_at + sync_every_secs * 1000 <= ?1))",
        )
        .bind(now)
        .bind(lease_ms.min(i64::MAX as u64 / 2) as i64)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn request_sync(&self, widget: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE knowledge_sources SET status = 'pending', updated_at = ? \
             WHERE id = ? AND widget_id = ?",
        )
        .bind(now_ms())
        .bind(id)
        .bind(widget)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_progress(
        &self,
        id: &str,
        lease_ms: u64,
        status: SyncStatus,
        pages_total: u32,
        pages_done: u32,
        pages_failed: u32,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let finished = matches!(status, SyncStatus::Ready | SyncStatus::Failed);
        sqlx::query(
            "UPDATE knowledge_sources SET status = ?1, pages_total = ?2, pages_done = ?3, \
             pages_failed = ?4, error = ?5, synced_at = CASE WHEN ?6 THEN ?7 ELSE synced_at END, \
             claimed_until = CASE WHEN ?6 THEN NULL ELSE ?7 + ?8 END \
             WHERE id = ?9",
        )
        .bind(status.as_str())
        .bind(i64::from(pages_total))
        .bind(i64::from(pages_done))
        .bind(i64::from(pages_failed))
        .bind(error)
        .bind(finished)
        .bind(now_ms())
        .bind(lease_ms.min(i64::MAX as u64 / 2) as i64)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn pages(&self, source: &str) -> Result<Vec<PageState>, StoreError> {
        let rows = sqlx::query(
            "SELECT url, etag, last_modified, content_hash FROM knowledge_pages WHERE source_id = ?",
        )
        .bind(source)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PageState {
                    url: r.try_get("url")?,
                    etag: r.try_get("etag")?,
                    last_modified: r.try_get("last_modified")?,
                    content_hash: r.try_get("content_hash")?,
                })
            })
            .collect()
    }

    async fn page_errors(&self, source: &str) -> Result<Vec<PageError>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT url, error FROM knowledge_pages WHERE source_id = ? AND error IS NOT NULL ORDER BY url",
        )
        .bind(source)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(url, error)| PageError { url, error })
            .collect())
    }

    async fn put_page(&self, source: &str, widget: &str, page: &NewPage) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        let page_id: i64 = sqlx::query_scalar(
            "INSERT INTO knowledge_pages (source_id, url, title, etag, last_modified, content_hash, error, fetched_at) \
             VALUES (?, ?, ?, ?, ?, ?, NULL, ?) \
             ON CONFLICT (source_id, url) DO UPDATE SET title = excluded.title, etag = excluded.etag, \
             last_modified = excluded.last_modified, content_hash = excluded.content_hash, error = NULL, \
             fetched_at = excluded.fetched_at RETURNING id",
        )
        .bind(source)
        .bind(&page.url)
        .bind(&page.title)
        .bind(&page.etag)
        .bind(&page.last_modified)
        .bind(&page.content_hash)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        // Vectors of chunks whose text is unchanged are kept: only what
        // changed is embedded again.
        let old: HashMap<String, (Vec<u8>, String)> = sqlx::query_as::<_, (String, Vec<u8>, String)>(
            "SELECT text, embedding, embedding_model FROM knowledge_chunks              WHERE page_id = ? AND embedding IS NOT NULL AND embedding_model IS NOT NULL",
        )
        .bind(page_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(text, v, model)| (text, (v, model)))
        .collect();
        // The old chunks go (their index rows with them, by trigger).
        sqlx::query("DELETE FROM knowledge_chunks WHERE page_id = ?")
            .bind(page_id)
            .execute(&mut *tx)
            .await?;
        for (seq, chunk) in page.chunks.iter().enumerate() {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO knowledge_chunks (page_id, widget_id, seq, heading, anchor, page_no, text, \
                 embedding, embedding_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(page_id)
            .bind(widget)
            .bind(seq as i64)
            .bind(&chunk.heading)
            .bind(&chunk.anchor)
            .bind(chunk.page_no.map(i64::from))
            .bind(&chunk.text)
            .bind(old.get(&chunk.text).map(|(v, _)| v))
            .bind(old.get(&chunk.text).map(|(_, m)| m))
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO knowledge_fts (rowid, widget, terms) VALUES (?, ?, ?)")
                .bind(id)
                .bind(widget_token(widget))
                .bind(&chunk.terms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn keep_page(
        &self,
        source: &str,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE knowledge_pages SET error = NULL, fetched_at = ?, \
             etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified) \
             WHERE source_id = ? AND url = ?",
        )
        .bind(now_ms())
        .bind(etag)
        .bind(last_modified)
        .bind(source)
        .bind(url)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn fail_page(&self, source: &str, url: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO knowledge_pages (source_id, url, error, fetched_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (source_id, url) DO UPDATE SET error = excluded.error, fetched_at = excluded.fetched_at",
        )
        .bind(source)
        .bind(url)
        .bind(error)
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn remove_pages_except(&self, source: &str, keep: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin().await?;
        let stored: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, url FROM knowledge_pages WHERE source_id = ?")
                .bind(source)
                .fetch_all(&mut *tx)
                .await?;
        let keep: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
        let mut removed = 0;
        for (id, url) in stored {
            if !keep.contains(url.as_str()) {
                sqlx::query("DELETE FROM knowledge_pages WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                removed += 1;
            }
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn search(
        &self,
        widget: &str,
        terms: &[String],
        limit: u32,
    ) -> Result<Search, StoreError> {
        let total_chunks = self.chunk_count(widget).await?;
        if terms.is_empty() || total_chunks == 0 {
            return Ok(Search {
                total_chunks,
                ..Search::default()
            });
        }
        // Terms are letters and digits only (knowledge::tokenize): quoting
        // each makes it a plain FTS5 string, never an operator. The widget's
        // token keeps the search inside the widget within the index, so
        // FTS5's fast top-n path ranks only its chunks.
        let quoted = |t: &String| format!("\"{}\"", t.replace('"', ""));
        let scope = format!("widget : \"{}\"", widget_token(widget));
        let any = terms.iter().map(quoted).collect::<Vec<_>>().join(" OR ");
        let query = format!("{scope} AND terms : ({any})");
        let rows = sqlx::query(
            "SELECT c.id, c.heading, c.anchor, c.page_no, c.text, f.terms, p.url, p.title, s.kind, f.rank \
             FROM (SELECT rowid AS id, terms, rank FROM knowledge_fts \
                   WHERE knowledge_fts MATCH ?1 ORDER BY rank LIMIT ?2) f \
             CROSS JOIN knowledge_chunks c ON c.id = f.id \
             JOIN knowledge_pages p ON p.id = c.page_id \
             JOIN knowledge_sources s ON s.id = p.source_id \
             ORDER BY f.rank",
        )
        .bind(&query)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let hits = rows
            .iter()
            .map(|r| hit_from_row(r, -r.try_get::<f64, _>("rank")?))
            .collect::<Result<Vec<_>, _>>()?;
        // Each term's count in the widget, in one statement and in the
        // index alone (a join to the chunks would make SQLite probe the index
        // once per chunk: seconds at 10,000 chunks).
        let distinct = distinct_terms(terms);
        let counts = vec![
            "(SELECT COUNT(*) FROM knowledge_fts WHERE knowledge_fts MATCH ?)";
            distinct.len()
        ]
        .join(" || ',' || ");
        // Built from constant fragments and a count; every value is bound.
        // `'' ||` makes it text even for a single term.
        let mut q =
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT '' || {counts}")));
        for t in &distinct {
            q = q.bind(format!("{scope} AND terms : {}", quoted(t)));
        }
        let joined = q.fetch_one(&self.reader).await?;
        let doc_freq: HashMap<String, u64> = distinct
            .iter()
            .zip(joined.split(','))
            .map(|(t, n)| ((*t).clone(), n.trim().parse().unwrap_or(0)))
            .collect();
        Ok(Search {
            hits,
            total_chunks,
            doc_freq,
        })
    }

    async fn topics(&self, widget: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let paths: Vec<String> = sqlx::query_scalar(
            "SELECT heading FROM knowledge_chunks WHERE widget_id = ? AND heading <> '' \
             GROUP BY heading ORDER BY MIN(id) LIMIT ?",
        )
        .bind(widget)
        // Several paths can end in the same heading: read more than asked.
        .bind(i64::from(limit) * 4)
        .fetch_all(&self.reader)
        .await?;
        Ok(topics_of(paths, limit))
    }

    async fn chunk_count(&self, widget: &str) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM knowledge_chunks WHERE widget_id = ?")
                .bind(widget)
                .fetch_one(&self.reader)
                .await?;
        Ok(n.max(0) as u64)
    }

    async fn chunks_to_embed(
        &self,
        source: &str,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT c.id, p.title, c.heading, c.text FROM knowledge_chunks c \
             JOIN knowledge_pages p ON p.id = c.page_id \
             WHERE p.source_id = ? AND (c.embedding IS NULL OR c.embedding_model IS NOT ?) \
             ORDER BY c.id LIMIT ?",
        )
        .bind(source)
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, title, heading, text)| (id, embedding_input(&title, &heading, text)))
            .collect())
    }

    async fn put_embeddings(
        &self,
        model: &str,
        vectors: &[(i64, Vec<f32>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        for (id, v) in vectors {
            sqlx::query(
                "UPDATE knowledge_chunks SET embedding = ?, embedding_model = ? WHERE id = ?",
            )
            .bind(embed::to_bytes(v))
            .bind(model)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn nearest(
        &self,
        widget: &str,
        model: &str,
        vector: &[f32],
        limit: u32,
    ) -> Result<Vec<FoundChunk>, StoreError> {
        let vectors = self.widget_vectors(widget, model).await?;
        let best = crate::store::vectors::nearest(&vectors, vector, limit);
        if best.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; best.len()].join(", ");
        // Built from constant fragments and a count; every value is bound.
        let sql = format!(
            "SELECT c.id, c.heading, c.anchor, c.page_no, c.text, f.terms, p.url, p.title, s.kind \
             FROM knowledge_chunks c JOIN knowledge_fts f ON f.rowid = c.id \
             JOIN knowledge_pages p ON p.id = c.page_id \
             JOIN knowledge_sources s ON s.id = p.source_id WHERE c.id IN ({marks})"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, _) in &best {
            q = q.bind(id);
        }
        let found = q.fetch_all(&self.reader).await?;
        let mut hits = Vec::with_capacity(best.len());
        for (id, sim) in best {
            if let Some(r) = found
                .iter()
                .find(|r| r.try_get::<i64, _>("id").ok() == Some(id))
            {
                hits.push(hit_from_row(r, f64::from(sim))?);
            }
        }
        Ok(hits)
    }
}
