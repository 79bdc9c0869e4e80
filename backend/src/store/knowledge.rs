//! The knowledge base as the store keeps it: sources, their pages, and
//! chunks with a full-text index, behind [`KnowledgeStore`] (SQLite FTS5
//! today; PostgreSQL's full-text search implements the same trait).
//!
//! The store ranks with BM25 over terms the caller analysed
//! (`knowledge::tokenize`), so every store ranks the same words the same
//! way; it never parses documents itself.

use std::collections::HashMap;

use async_trait::async_trait;
use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Pasted markdown (a widget's own `knowledge` text is one).
    Text,
    /// Question and answer pairs from a CSV.
    Faq,
    /// An uploaded document: Markdown, HTML, plain text or PDF.
    File,
    /// One web page.
    Url,
    /// A site, from its sitemap.
    Site,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Faq => "faq",
            Self::File => "file",
            Self::Url => "url",
            Self::Site => "site",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "faq" => Self::Faq,
            "file" => Self::File,
            "url" => Self::Url,
            "site" => Self::Site,
            _ => return None,
        })
    }

    /// Whether syncing it fetches from the network.
    pub fn is_remote(self) -> bool {
        matches!(self, Self::Url | Self::Site)
    }
}

/// Where a source's sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Pending,
    Syncing,
    Ready,
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Syncing => "syncing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "syncing" => Self::Syncing,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A source as the admin API shows it, with its sync's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SourceInfo {
    pub id: String,
    pub widget_id: String,
    pub kind: SourceKind,
    pub name: String,
    pub url: Option<String>,
    pub status: SyncStatus,
    /// Pages found by the current (or last) sync.
    pub pages_total: u32,
    /// Pages read so far, failed ones included.
    pub pages_done: u32,
    pub pages_failed: u32,
    /// Chunks in the index from this source.
    pub chunks: u32,
    /// Of those, the ones with a vector (an embeddings endpoint is
    /// configured and has embedded them).
    pub chunks_embedded: u32,
    /// Why the last sync failed as a whole.
    pub error: Option<String>,
    pub sync_every_secs: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    pub synced_at: Option<u64>,
}

/// A source to add.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub id: String,
    pub widget_id: String,
    pub kind: SourceKind,
    pub name: String,
    pub url: Option<String>,
    pub body: Option<Vec<u8>>,
    pub sync_every_secs: Option<u64>,
}

/// A page a sync read, as the store remembers it for the next sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageState {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_hash: Option<String>,
}

/// A page's error, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PageError {
    pub url: String,
    pub error: String,
}

/// A chunk to index.
#[derive(Debug, Clone)]
pub struct NewChunk {
    pub heading: String,
    pub anchor: Option<String>,
    pub page_no: Option<u32>,
    pub text: String,
    /// Analysed terms, space-separated (`knowledge::index_terms`).
    pub terms: String,
}

/// A page with its new chunks, replacing what the page had.
#[derive(Debug, Clone)]
pub struct NewPage {
    pub url: String,
    pub title: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_hash: String,
    pub chunks: Vec<NewChunk>,
}

/// A chunk found by a search, with what a citation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundChunk {
    pub id: i64,
    pub source_kind: SourceKind,
    /// The page's URL (for uploaded sources, the file's name).
    pub url: String,
    pub title: String,
    pub heading: String,
    pub anchor: Option<String>,
    pub page_no: Option<u32>,
    pub text: String,
    /// The chunk's analysed terms.
    pub terms: String,
    /// BM25 from a full-text search, cosine similarity from
    /// [`KnowledgeStore::nearest`]; higher is better.
    pub score: f64,
}

/// The best chunks for a set of terms, and the statistics to judge them by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    pub hits: Vec<FoundChunk>,
    /// Chunks the widget has.
    pub total_chunks: u64,
    /// How many of the widget's chunks hold each term.
    pub doc_freq: HashMap<String, u64>,
}

/// The id of the source that mirrors a widget's own `knowledge` text.
pub fn widget_knowledge_source(widget: &str) -> String {
    format!("src_{widget}_knowledge")
}

/// `terms` without repeats, in their order.
pub(crate) fn distinct_terms(terms: &[String]) -> Vec<&String> {
    let mut distinct: Vec<&String> = Vec::new();
    for t in terms {
        if !distinct.contains(&t) {
            distinct.push(t);
        }
    }
    distinct
}

/// The topics of heading paths ("Install > Docker" is "Docker"): each
/// once, in the paths' order, at most `limit`.
pub(crate) fn topics_of(paths: Vec<String>, limit: u32) -> Vec<String> {
    let mut topics: Vec<String> = Vec::new();
    for path in paths {
        let last = path.rsplit(" > ").next().unwrap_or(&path).trim().to_owned();
        if !last.is_empty() && !topics.contains(&last) && topics.len() < limit as usize {
            topics.push(last);
        }
    }
    topics
}

#[async_trait]
pub trait KnowledgeStore: Send + Sync + std::fmt::Debug {
    /// Adds a source, `pending` its first sync. `Conflict` if the id exists.
    async fn add_source(&self, source: &NewSource) -> Result<(), StoreError>;
    /// A widget's sources, oldest first.
    async fn sources(&self, widget: &str) -> Result<Vec<SourceInfo>, StoreError>;
    async fn source(&self, id: &str) -> Result<Option<SourceInfo>, StoreError>;
    /// The uploaded bytes of a text, FAQ or file source.
    async fn source_body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Deletes a source of `widget` with its pages and chunks.
    async fn remove_source(&self, widget: &str, id: &str) -> Result<bool, StoreError>;
    /// Sources to sync now: `pending` ones, `syncing` ones whose claim ran
    /// out (a stopped process left them; they resume), and scheduled ones
    /// that are due at `now_ms`.
    async fn due_sources(&self, now_ms: u64) -> Result<Vec<String>, StoreError>;
    /// Takes a due source for a sync by this process for `lease_ms` (renewed
    /// by each [`Self::set_progress`]); `false` when another holds it or it
    /// is not due.
    async fn claim_source(&self, id: &str, lease_ms: u64) -> Result<bool, StoreError>;
    /// Marks a source for a sync; `false` if it is not `widget`'s.
    async fn request_sync(&self, widget: &str, id: &str) -> Result<bool, StoreError>;
    /// Records a sync's progress; a sync still running keeps its claim for
    /// `lease_ms` more.
    #[allow(clippy::too_many_arguments)]
    async fn set_progress(
        &self,
        id: &str,
        lease_ms: u64,
        status: SyncStatus,
        pages_total: u32,
        pages_done: u32,
        pages_failed: u32,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// What the last sync stored of each page.
    async fn pages(&self, source: &str) -> Result<Vec<PageState>, StoreError>;
    /// Pages whose last read failed.
    async fn page_errors(&self, source: &str) -> Result<Vec<PageError>, StoreError>;
    /// Stores a page and replaces its chunks, in one transaction.
    async fn put_page(&self, source: &str, widget: &str, page: &NewPage) -> Result<(), StoreError>;
    /// A page that did not change (304, or the same hash): its chunks stay.
    async fn keep_page(
        &self,
        source: &str,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<(), StoreError>;
    /// A page that could not be read: its error is kept, its old chunks stay.
    async fn fail_page(&self, source: &str, url: &str, error: &str) -> Result<(), StoreError>;
    /// Drops the pages (and chunks) of `source` not in `keep`.
    async fn remove_pages_except(&self, source: &str, keep: &[String]) -> Result<u64, StoreError>;
    /// The widget's chunks that hold any of `terms`, best (BM25) first.
    async fn search(
        &self,
        widget: &str,
        terms: &[String],
        limit: u32,
    ) -> Result<Search, StoreError>;
    /// The widget's section headings (the last part of each heading path),
    /// in the order they were indexed, at most `limit`.
    async fn topics(&self, widget: &str, limit: u32) -> Result<Vec<String>, StoreError>;
    /// How many chunks the widget has.
    async fn chunk_count(&self, widget: &str) -> Result<u64, StoreError>;
    /// Chunks of `source` with no vector from `model`, at most `limit`,
    /// each with the text to embed (its page title and heading path, then
    /// its text).
    async fn chunks_to_embed(
        &self,
        source: &str,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    /// Stores vectors made by `model`, by chunk id; chunks that went
    /// meanwhile are skipped.
    async fn put_embeddings(
        &self,
        model: &str,
        vectors: &[(i64, Vec<f32>)],
    ) -> Result<(), StoreError>;
    /// The widget's `limit` chunks nearest `vector` by cosine similarity
    /// (their `score`), among those embedded by `model`, nearest first.
    async fn nearest(
        &self,
        widget: &str,
        model: &str,
        vector: &[f32],
        limit: u32,
    ) -> Result<Vec<FoundChunk>, StoreError>;
}
