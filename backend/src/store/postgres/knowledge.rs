//! The knowledge base in PostgreSQL: sources, pages and chunks. Each
//! chunk's analysed terms are kept as a `tsvector` of exactly those terms
//! (built here with their positions, never re-parsed by a text-search
//! configuration) under a GIN index. A search finds the widget's chunks
//! holding any term through that index, pre-ranks them by the terms' rarity
//! in the widget, and orders the best with the same BM25 (k1 1.2, b 0.75)
//! as SQLite's FTS5, so both stores rank the same words the same way.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::store::StoreError;
use crate::store::knowledge::{
    FoundChunk, KnowledgeStore, NewPage, NewSource, PageError, PageState, Search, SourceInfo,
    SourceKind, SyncStatus, distinct_terms, topics_of, widget_knowledge_source,
};
use crate::store::rows::{count_u32, embedding_input, now_ms};
use crate::store::vectors::Vectors;

/// Keeps the widget's `knowledge` text as its first source (as the SQLite
/// store does): created or changed text is marked for a sync; emptied text
/// removes the source.
pub(super) async fn mirror_widget_knowledge(
    tx: &mut sqlx::PgConnection,
    widget: &str,
    knowledge: &str,
    now: i64,
) -> Result<(), StoreError> {
    let id = widget_knowledge_source(widget);
    if knowledge.trim().is_empty() {
        sqlx::query("DELETE FROM knowledge_sources WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO knowledge_sources (id, widget_id, kind, name, body, status, created_at, updated_at) \
         VALUES ($1, $2, 'text', 'Widget knowledge', $3, 'pending', $4, $4) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, status = 'pending', \
         updated_at = excluded.updated_at WHERE knowledge_sources.body IS DISTINCT FROM excluded.body",
    )
    .bind(&id)
    .bind(widget)
    .bind(knowledge.as_bytes())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A term as a `tsquery` or `tsvector` lexeme: quoted, so it is taken as it
/// is (terms are letters and digits; quotes and backslashes are escaped
/// all the same).
fn lexeme(term: &str) -> String {
    format!("'{}'", term.replace('\\', "\\\\").replace('\'', "''"))
}

/// The most positions PostgreSQL keeps per lexeme, and the highest position.
const MAX_POSITIONS: usize = 255;
const MAX_POSITION: usize = 16_383;

/// Space-separated terms as a `tsvector` literal with each term's positions
/// (so its frequency is known), and the number of terms.
fn tsvector_of(terms: &str) -> (String, i32) {
    let mut positions: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut count = 0usize;
    for (i, t) in terms.split_whitespace().enumerate() {
        count += 1;
        let at = positions.entry(t).or_default();
        if at.len() < MAX_POSITIONS {
            at.push((i + 1).min(MAX_POSITION));
        }
    }
    let mut out = String::with_capacity(terms.len() * 2);
    for (term, at) in positions {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&lexeme(term));
        out.push(':');
        let mut last = 0;
        let mut first = true;
        for p in at {
            // Positions must rise; the cap folds the tail into one.
            if p == last {
                continue;
            }
            if !first {
                out.push(',');
            }
            out.push_str(&p.to_string());
            last = p;
            first = false;
        }
    }
    (out, i32::try_from(count).unwrap_or(i32::MAX))
}

/// FTS5's idf of a term in `n` of `total` chunks (never below 1e-6).
fn idf(total: f64, n: f64) -> f64 {
    ((total - n + 0.5) / (n + 0.5)).ln().max(1e-6)
}

/// FTS5's BM25 of one chunk's terms for the query `terms`.
fn bm25(
    terms: &[String],
    chunk_terms: &str,
    term_count: f64,
    total: f64,
    avg_len: f64,
    doc_freq: &HashMap<String, u64>,
) -> f64 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    let mut tf: HashMap<&str, f64> = HashMap::new();
    for t in chunk_terms.split_whitespace() {
        *tf.entry(t).or_default() += 1.0;
    }
    let norm = K1 * (1.0 - B + B * term_count / avg_len.max(1.0));
    terms
        .iter()
        .map(|t| {
            let f = tf.get(t.as_str()).copied().unwrap_or(0.0);
            if f == 0.0 {
                return 0.0;
            }
            let n = doc_freq.get(t).copied().unwrap_or(0) as f64;
            idf(total, n) * f * (K1 + 1.0) / (f + norm)
        })
        .sum()
}

const SOURCE_COLUMNS: &str = "s.id, s.widget_id, s.kind, s.name, s.url, s.status, s.pages_total, \
     s.pages_done, s.pages_failed, s.error, s.sync_every_secs, s.created_at, s.updated_at, \
     s.synced_at, (SELECT COUNT(*) FROM knowledge_chunks c JOIN knowledge_pages p ON p.id = c.page_id \
     WHERE p.source_id = s.id) AS chunks, (SELECT COUNT(*) FROM knowledge_chunks c \
     JOIN knowledge_pages p ON p.id = c.page_id WHERE p.source_id = s.id \
     AND c.embedding IS NOT NULL) AS chunks_embedded";

fn source_from_row(row: &PgRow) -> Result<SourceInfo, StoreError> {
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

/// The columns a found chunk is read from.
const HIT_COLUMNS: &str = "c.id, c.heading, c.anchor, c.page_no, c.text, c.terms, p.url, p.title, s.kind \
     FROM knowledge_chunks c JOIN knowledge_pages p ON p.id = c.page_id \
     JOIN knowledge_sources s ON s.id = p.source_id";

fn hit_from_row(r: &PgRow, score: f64) -> Result<FoundChunk, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(FoundChunk {
        id: r.try_get("id")?,
        source_kind: SourceKind::parse(&kind).unwrap_or(SourceKind::Text),
        url: r.try_get("url")?,
        title: r.try_get("title")?,
        heading: r.try_get("heading")?,
        anchor: r.try_get("anchor")?,
        page_no: r.try_get::<Option<i64>, _>("page_no")?.map(count_u32),
        text: r.try_get("text")?,
        terms: r.try_get("terms")?,
        score,
    })
}

impl PgStore {
    async fn widget_vectors(&self, widget: &str, model: &str) -> Result<Vectors, StoreError> {
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT version FROM knowledge_vector_versions WHERE widget_id = $1), 0)",
        )
        .bind(widget)
        .fetch_one(&self.pool)
        .await?;
        if let Some(vectors) = self.vectors.get(widget, model, version) {
            return Ok(vectors);
        }
        let rows = sqlx::query_as::<_, (i64, Vec<u8>)>(
            "SELECT id, embedding FROM knowledge_chunks \
             WHERE widget_id = $1 AND embedding_model = $2 AND embedding IS NOT NULL",
        )
        .bind(widget)
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        Ok(self.vectors.put(widget, model, version, rows))
    }

    /// The chunks with ids `ids`, each with its score, in that order.
    async fn hits(&self, ids: &[(i64, f64)]) -> Result<Vec<FoundChunk>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let only: Vec<i64> = ids.iter().map(|(id, _)| *id).collect();
        let sql = format!("SELECT {HIT_COLUMNS} WHERE c.id = ANY($1)");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&only)
            .fetch_all(&self.pool)
            .await?;
        let mut hits = Vec::with_capacity(ids.len());
        for (id, score) in ids {
            if let Some(r) = rows
                .iter()
                .find(|r| r.try_get::<i64, _>("id").ok() == Some(*id))
            {
                hits.push(hit_from_row(r, *score)?);
            }
        }
        Ok(hits)
    }
}

/// How many candidates a search re-ranks per chunk it returns (at least
/// [`MIN_CANDIDATES`]).
const CANDIDATES_PER_HIT: u32 = 8;
const MIN_CANDIDATES: u32 = 100;

#[async_trait]
impl KnowledgeStore for PgStore {
    async fn add_source(&self, s: &NewSource) -> Result<(), StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO knowledge_sources (id, widget_id, kind, name, url, body, \
             sync_every_secs, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.widget_id)
        .bind(s.kind.as_str())
        .bind(&s.name)
        .bind(&s.url)
        .bind(&s.body)
        .bind(s.sync_every_secs.map(|v| v.min(i64::MAX as u64) as i64))
        .bind(now)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("source {:?}", s.id)));
        }
        Ok(())
    }

    async fn sources(&self, widget: &str) -> Result<Vec<SourceInfo>, StoreError> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.widget_id = $1 ORDER BY s.created_at, s.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(widget)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(source_from_row).collect()
    }

    async fn source(&self, id: &str) -> Result<Option<SourceInfo>, StoreError> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(source_from_row).transpose()
    }

    async fn source_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let body: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT body FROM knowledge_sources WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(body.flatten())
    }

    async fn remove_source(&self, widget: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM knowledge_sources WHERE id = $1 AND widget_id = $2")
            .bind(id)
            .bind(widget)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn due_sources(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM knowledge_sources WHERE (claimed_until IS NULL OR claimed_until < $1) \
             AND (status IN ('pending', 'syncing') \
                  OR (sync_every_secs IS NOT NULL AND synced_at IS NOT NULL \
                      AND synced_at + sync_every_secs * 1000 <= $1)) ORDER BY updated_at",
        )
        .bind(now_ms.min(i64::MAX as u64) as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn claim_source(&self, id: &str, lease_ms: u64) -> Result<bool, StoreError> {
        // One statement: of two replicas claiming at once, one updates the
        // row and the other finds it claimed.
        let done = sqlx::query(
            "UPDATE knowledge_sources SET status = 'syncing', claimed_until = $1 + $2 \
             WHERE id = $3 AND (claimed_until IS NULL OR claimed_until < $1) \
             AND (status IN ('pending', 'syncing') \
                  OR (sync_every_secs IS NOT NULL AND synced_at IS NOT NULL \
                      AND synced_at + sync_every_secs * 1000 <= $1))",
        )
        .bind(now_ms())
        .bind(lease_ms.min(i64::MAX as u64 / 2) as i64)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn request_sync(&self, widget: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE knowledge_sources SET status = 'pending', updated_at = $1 \
             WHERE id = $2 AND widget_id = $3",
        )
        .bind(now_ms())
        .bind(id)
        .bind(widget)
        .execute(&self.pool)
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
            "UPDATE knowledge_sources SET status = $1, pages_total = $2, pages_done = $3, \
             pages_failed = $4, error = $5, synced_at = CASE WHEN $6 THEN $7 ELSE synced_at END, \
             claimed_until = CASE WHEN $6 THEN NULL ELSE $7 + $8 END \
             WHERE id = $9",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pages(&self, source: &str) -> Result<Vec<PageState>, StoreError> {
        let rows = sqlx::query(
            "SELECT url, etag, last_modified, content_hash FROM knowledge_pages WHERE source_id = $1",
        )
        .bind(source)
        .fetch_all(&self.pool)
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
            "SELECT url, error FROM knowledge_pages WHERE source_id = $1 AND error IS NOT NULL ORDER BY url",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(url, error)| PageError { url, error })
            .collect())
    }

    async fn put_page(&self, source: &str, widget: &str, page: &NewPage) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let page_id: i64 = sqlx::query_scalar(
            "INSERT INTO knowledge_pages (source_id, url, title, etag, last_modified, content_hash, error, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7) \
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
        let old: HashMap<String, (Vec<u8>, String)> =
            sqlx::query_as::<_, (String, Vec<u8>, String)>(
                "SELECT text, embedding, embedding_model FROM knowledge_chunks \
                 WHERE page_id = $1 AND embedding IS NOT NULL AND embedding_model IS NOT NULL",
            )
            .bind(page_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(text, v, model)| (text, (v, model)))
            .collect();
        sqlx::query("DELETE FROM knowledge_chunks WHERE page_id = $1")
            .bind(page_id)
            .execute(&mut *tx)
            .await?;
        if !page.chunks.is_empty() {
            let n = page.chunks.len();
            let mut seqs = Vec::with_capacity(n);
            let mut headings = Vec::with_capacity(n);
            let mut anchors = Vec::with_capacity(n);
            let mut page_nos = Vec::with_capacity(n);
            let mut texts = Vec::with_capacity(n);
            let mut terms = Vec::with_capacity(n);
            let mut counts = Vec::with_capacity(n);
            let mut lexemes = Vec::with_capacity(n);
            let mut vectors = Vec::with_capacity(n);
            let mut models = Vec::with_capacity(n);
            for (seq, chunk) in page.chunks.iter().enumerate() {
                let (tsv, count) = tsvector_of(&chunk.terms);
                seqs.push(seq as i64);
                headings.push(chunk.heading.as_str());
                anchors.push(chunk.anchor.as_deref());
                page_nos.push(chunk.page_no.map(i64::from));
                texts.push(chunk.text.as_str());
                terms.push(chunk.terms.as_str());
                counts.push(count);
                lexemes.push(tsv);
                vectors.push(old.get(&chunk.text).map(|(v, _)| v.clone()));
                models.push(old.get(&chunk.text).map(|(_, m)| m.as_str()));
            }
            // One statement for the page's chunks, however many.
            sqlx::query(
                "INSERT INTO knowledge_chunks (page_id, widget_id, seq, heading, anchor, page_no, \
                 text, terms, term_count, lexemes, embedding, embedding_model) \
                 SELECT $1, $2, t.seq, t.heading, t.anchor, t.page_no, t.text, t.terms, t.term_count, \
                        t.lexemes::tsvector, t.embedding, t.embedding_model \
                 FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], \
                             $8::text[], $9::int[], $10::text[], $11::bytea[], $12::text[]) \
                      AS t(seq, heading, anchor, page_no, text, terms, term_count, lexemes, \
                           embedding, embedding_model)",
            )
            .bind(page_id)
            .bind(widget)
            .bind(&seqs)
            .bind(&headings)
            .bind(&anchors)
            .bind(&page_nos)
            .bind(&texts)
            .bind(&terms)
            .bind(&counts)
            .bind(&lexemes)
            .bind(&vectors)
            .bind(&models)
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
            "UPDATE knowledge_pages SET error = NULL, fetched_at = $1, \
             etag = COALESCE($2, etag), last_modified = COALESCE($3, last_modified) \
             WHERE source_id = $4 AND url = $5",
        )
        .bind(now_ms())
        .bind(etag)
        .bind(last_modified)
        .bind(source)
        .bind(url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_page(&self, source: &str, url: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO knowledge_pages (source_id, url, error, fetched_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (source_id, url) DO UPDATE SET error = excluded.error, fetched_at = excluded.fetched_at",
        )
        .bind(source)
        .bind(url)
        .bind(error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_pages_except(&self, source: &str, keep: &[String]) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM knowledge_pages WHERE source_id = $1 AND NOT (url = ANY($2))")
                .bind(source)
                .bind(keep)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn search(
        &self,
        widget: &str,
        terms: &[String],
        limit: u32,
    ) -> Result<Search, StoreError> {
        let (total, avg_len): (i64, f64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(AVG(term_count), 0)::float8 FROM knowledge_chunks WHERE widget_id = $1",
        )
        .bind(widget)
        .fetch_one(&self.pool)
        .await?;
        let total_chunks = total.max(0) as u64;
        if terms.is_empty() || total_chunks == 0 {
            return Ok(Search {
                total_chunks,
                ..Search::default()
            });
        }
        let distinct = distinct_terms(terms);
        let queries: Vec<String> = distinct.iter().map(|t| lexeme(t)).collect();
        // Each term's count in the widget, through the GIN index.
        let counts: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT q.n::int, (SELECT COUNT(*) FROM knowledge_chunks c \
                     WHERE c.widget_id = $1 AND c.lexemes @@ q.query::tsquery) \
             FROM UNNEST($2::text[]) WITH ORDINALITY AS q(query, n)",
        )
        .bind(widget)
        .bind(&queries)
        .fetch_all(&self.pool)
        .await?;
        let mut doc_freq: HashMap<String, u64> = HashMap::new();
        for (n, count) in counts {
            if let Some(t) = usize::try_from(n - 1).ok().and_then(|i| distinct.get(i)) {
                doc_freq.insert((*t).clone(), count.max(0) as u64);
            }
        }
        // Candidates: the chunks holding any term, the rarest terms' first
        // (each term weighs its BM25 idf), then re-ranked by BM25.
        let weights: Vec<f64> = distinct
            .iter()
            .map(|t| {
                idf(
                    total_chunks as f64,
                    doc_freq.get(*t).copied().unwrap_or(0) as f64,
                )
            })
            .collect();
        let any = queries.join(" | ");
        let candidates: Vec<(i64, String, i32)> = sqlx::query_as(
            "SELECT c.id, c.terms, c.term_count FROM knowledge_chunks c \
             CROSS JOIN LATERAL (SELECT COALESCE(SUM(w.weight), 0) AS weight \
                 FROM UNNEST($3::text[], $4::float8[]) AS w(query, weight) \
                 WHERE c.lexemes @@ w.query::tsquery) pre \
             WHERE c.widget_id = $1 AND c.lexemes @@ $2::tsquery \
             ORDER BY pre.weight DESC, c.id LIMIT $5",
        )
        .bind(widget)
        .bind(&any)
        .bind(&queries)
        .bind(&weights)
        .bind(i64::from(
            limit.saturating_mul(CANDIDATES_PER_HIT).max(MIN_CANDIDATES),
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut ranked: Vec<(i64, f64)> = candidates
            .iter()
            .map(|(id, chunk_terms, count)| {
                let score = bm25(
                    terms,
                    chunk_terms,
                    f64::from(*count),
                    total_chunks as f64,
                    avg_len,
                    &doc_freq,
                );
                (*id, score)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit as usize);
        Ok(Search {
            hits: self.hits(&ranked).await?,
            total_chunks,
            doc_freq,
        })
    }

    async fn topics(&self, widget: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let paths: Vec<String> = sqlx::query_scalar(
            "SELECT heading FROM knowledge_chunks WHERE widget_id = $1 AND heading <> '' \
             GROUP BY heading ORDER BY MIN(id) LIMIT $2",
        )
        .bind(widget)
        .bind(i64::from(limit) * 4)
        .fetch_all(&self.pool)
        .await?;
        Ok(topics_of(paths, limit))
    }

    async fn chunk_count(&self, widget: &str) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM knowledge_chunks WHERE widget_id = $1")
                .bind(widget)
                .fetch_one(&self.pool)
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
             WHERE p.source_id = $1 AND (c.embedding IS NULL OR c.embedding_model IS DISTINCT FROM $2) \
             ORDER BY c.id LIMIT $3",
        )
        .bind(source)
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        if vectors.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = vectors.iter().map(|(id, _)| *id).collect();
        let bytes: Vec<Vec<u8>> = vectors
            .iter()
            .map(|(_, v)| crate::knowledge::embed::to_bytes(v))
            .collect();
        sqlx::query(
            "UPDATE knowledge_chunks c SET embedding = v.embedding, embedding_model = $1 \
             FROM UNNEST($2::bigint[], $3::bytea[]) AS v(id, embedding) WHERE c.id = v.id",
        )
        .bind(model)
        .bind(&ids)
        .bind(&bytes)
        .execute(&self.pool)
        .await?;
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
        let best: Vec<(i64, f64)> = crate::store::vectors::nearest(&vectors, vector, limit)
            .into_iter()
            .map(|(id, sim)| (id, f64::from(sim)))
            .collect();
        self.hits(&best).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tsvector_literal_keeps_each_term_and_its_positions() {
        let (tsv, n) = tsvector_of("ship free ship it's");
        assert_eq!(tsv, "'free':2 'it''s':4 'ship':1,3");
        assert_eq!(n, 4);
        let many = vec!["a"; 400].join(" ");
        let (tsv, n) = tsvector_of(&many);
        assert_eq!(n, 400);
        assert_eq!(tsv.matches(',').count(), MAX_POSITIONS - 1);
    }

    #[test]
    fn bm25_favours_rare_terms_and_short_chunks() {
        let df: HashMap<String, u64> = [("rare".into(), 1), ("common".into(), 90)].into();
        let q = vec!["rare".to_owned(), "common".to_owned()];
        let rare = bm25(&q, "rare x y", 3.0, 100.0, 5.0, &df);
        let common = bm25(&q, "common x y", 3.0, 100.0, 5.0, &df);
        assert!(rare > common * 5.0, "{rare} vs {common}");
        let short = bm25(&q, "rare", 1.0, 100.0, 5.0, &df);
        let long = bm25(&q, "rare a b c d e f g h i", 10.0, 100.0, 5.0, &df);
        assert!(short > long);
    }
}
