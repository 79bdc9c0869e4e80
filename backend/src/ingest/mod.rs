//! Ingest: runs a knowledge source through the pipeline into the store.
//! Fetch (the crawler, for sites and URLs) or read (uploads, pasted text,
//! FAQs) -> extract -> chunk -> index, page by page, with the sync's
//! progress written as it goes so the API and the CLI can show it.
//!
//! Nothing is lost or duplicated: each page's chunks are replaced in one
//! transaction, so a sync stopped half way (a crash, a restart) leaves
//! every page either as it was or as it is now, and the next start resumes
//! the source (`syncing` sources are due again). A page whose text did not
//! change (304, or the same SHA-256 of its text) keeps its chunks; pages
//! the site no longer lists leave the index.
//!
//! Syncs run in the background ([`Ingestor::run`]), one source at a time,
//! and never on a chat's path. Sources with nothing to fetch (text, FAQs,
//! files) can also be synced in place ([`Ingestor::sync_now`]), which is
//! how a widget's own knowledge is ready before the server takes traffic.
//!
//! May use: `store`, `knowledge`, `ids`. Never `http`, `chat` or `state`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::knowledge::chunk::{Budget, chunk_markdown_with};
use crate::knowledge::crawl::{Crawler, FetchError, Fetched, Validators};
use crate::knowledge::embed::Embedder;
use crate::knowledge::extract::{self, Extracted};
use crate::knowledge::{KnowledgeSettings, index_terms};
use crate::store::StoreError;
use crate::store::conversations::millis;
use crate::store::knowledge::{
    KnowledgeStore, NewChunk, NewPage, PageState, SourceInfo, SourceKind, SyncStatus,
};

/// How a sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub status: SyncStatus,
    pub pages_total: u32,
    pub pages_done: u32,
    pub pages_failed: u32,
    pub error: Option<String>,
}

/// Runs syncs; one per server.
#[derive(Debug)]
pub struct Ingestor {
    store: Arc<dyn KnowledgeStore>,
    settings: KnowledgeSettings,
    embedder: Option<Arc<Embedder>>,
    wake: Notify,
}

/// How often the background loop looks for due sources without a nudge.
const POLL_EVERY: Duration = Duration::from_secs(5);

impl Ingestor {
    pub fn new(store: Arc<dyn KnowledgeStore>, settings: KnowledgeSettings) -> Self {
        Self {
            store,
            settings,
            embedder: None,
            wake: Notify::new(),
        }
    }

    /// Embeds each synced source's new chunks with `embedder`.
    pub fn with_embedder(mut self, embedder: Option<Arc<Embedder>>) -> Self {
        self.embedder = embedder;
        self
    }

    /// Asks the background loop to look for due sources now.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Syncs every due source that needs no network, in place.
    pub async fn sync_local_now(&self) -> Result<(), StoreError> {
        for id in self.store.due_sources(millis(SystemTime::now())).await? {
            if let Some(source) = self.store.source(&id).await?
                && !source.kind.is_remote()
            {
                self.sync(&source).await?;
            }
        }
        Ok(())
    }

    /// Syncs one source in place (the background loop calls this too).
    pub async fn sync_now(&self, id: &str) -> Result<Option<SyncReport>, StoreError> {
        match self.store.source(id).await? {
            Some(source) => Ok(Some(self.sync(&source).await?)),
            None => Ok(None),
        }
    }

    /// The background loop: due sources one by one, until `stop`.
    pub async fn run(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        loop {
            match self.store.due_sources(millis(SystemTime::now())).await {
                Ok(ids) => {
                    for id in ids {
                        if stop.is_cancelled() {
                            return;
                        }
                        if let Err(e) = self.sync_now(&id).await {
                            tracing::warn!(source = %id, error = %e, "knowledge sync failed");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "looking for knowledge to sync failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    async fn sync(&self, source: &SourceInfo) -> Result<SyncReport, StoreError> {
        if !self
            .store
            .claim_source(&source.id, self.settings.claim_lease_ms())
            .await?
        {
            // Another process syncs it, or it is not due.
            return Ok(SyncReport {
                status: source.status,
                pages_total: source.pages_total,
                pages_done: source.pages_done,
                pages_failed: source.pages_failed,
                error: source.error.clone(),
            });
        }
        let mut run = Run {
            ingestor: self,
            source,
            report: SyncReport {
                status: SyncStatus::Syncing,
                pages_total: 0,
                pages_done: 0,
                pages_failed: 0,
                error: None,
            },
            chunks_left: self.settings.max_chunks,
        };
        run.progress().await?;
        let outcome = match source.kind {
            SourceKind::Text | SourceKind::File | SourceKind::Faq => run.local().await,
            SourceKind::Url | SourceKind::Site => run.remote().await,
        };
        match outcome {
            Ok(())
                if run.report.pages_done > run.report.pages_failed
                    || run.report.pages_total == 0 =>
            {
                // Still `syncing` while the chunks are embedded (each batch
                // writes the progress): `ready` means the vectors are in.
                if let Err(why) = run.embed().await? {
                    // Full text still finds every chunk; the next sync
                    // embeds the rest.
                    run.report.error = Some(why);
                }
                run.report.status = SyncStatus::Ready;
            }
            Ok(()) => {
                run.report.status = SyncStatus::Failed;
                run.report.error = Some("no page could be read".into());
            }
            Err(SyncError::Store(e)) => {
                // The store is gone: leave the source `syncing`, so it resumes.
                return Err(e);
            }
            Err(SyncError::Source(why)) => {
                run.report.status = SyncStatus::Failed;
                run.report.error = Some(why);
            }
        }
        run.progress().await?;
        tracing::info!(
            source = %source.id,
            status = run.report.status.as_str(),
            pages = run.report.pages_done,
            failed = run.report.pages_failed,
            "knowledge source synced"
        );
        Ok(run.report)
    }
}

/// Why a sync stopped.
#[derive(Debug)]
enum SyncError {
    /// The source cannot be read at all (its message is for the owner).
    Source(String),
    Store(StoreError),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// One sync of one source.
struct Run<'a> {
    ingestor: &'a Ingestor,
    source: &'a SourceInfo,
    report: SyncReport,
    chunks_left: u64,
}

impl Run<'_> {
    fn store(&self) -> &dyn KnowledgeStore {
        &*self.ingestor.store
    }

    fn budget(&self) -> Budget {
        self.ingestor.settings.budget()
    }

    async fn progress(&self) -> Result<(), StoreError> {
        self.store()
            .set_progress(
                &self.source.id,
                self.ingestor.settings.claim_lease_ms(),
                self.report.status,
                self.report.pages_total,
                self.report.pages_done,
                self.report.pages_failed,
                self.report.error.as_deref(),
            )
            .await
    }

    /// Text, FAQs and uploaded files: one page, from the stored bytes.
    async fn local(&mut self) -> Result<(), SyncError> {
        let body = self
            .store()
            .source_body(&self.source.id)
            .await?
            .unwrap_or_default();
        self.report.pages_total = 1;
        let name = self.source.name.clone();
        let kind = self.source.kind;
        let file_name = name.clone();
        let extracted = off_the_runtime(move || match kind {
            SourceKind::Faq => extract::faq_csv(&body).map(|pairs| faq_page(&pairs)),
            SourceKind::File => extract::file(&file_name, &body),
            _ => extract::utf8(&body).map(|text| Extracted {
                title: String::new(),
                markdown: text.to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_or_else(|why| Err(extract::ExtractError::Unsupported(why)));
        let stored = self.store().pages(&self.source.id).await?;
        match extracted {
            Ok(doc) => {
                let faq = self.source.kind == SourceKind::Faq;
                self.put(&name, doc, None, &stored, faq).await?;
            }
            Err(e) => {
                self.fail(&name, &e.to_string()).await?;
                return Err(SyncError::Source(e.to_string()));
            }
        }
        self.store()
            .remove_pages_except(&self.source.id, &[name])
            .await?;
        Ok(())
    }

    /// A URL or a site: discover pages, then fetch each conditionally.
    async fn remote(&mut self) -> Result<(), SyncError> {
        let start = self
            .source
            .url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .ok_or_else(|| SyncError::Source("the source has no valid URL".into()))?;
        let settings = &self.ingestor.settings;
        let mut crawler = Crawler::new(settings).map_err(|e| SyncError::Source(e.to_string()))?;
        crate::knowledge::crawl::check_url(&start, settings.allow_private_addresses)
            .map_err(|e| SyncError::Source(e.to_string()))?;
        let robots = crawler.robots(&start).await;
        crawler.respect(&robots);
        let urls = match self.source.kind {
            SourceKind::Site => crawler
                .discover(&start, &robots)
                .await
                .map_err(|e| SyncError::Source(e.to_string()))?,
            _ => vec![start.clone()],
        };
        self.report.pages_total = urls.len() as u32;
        self.progress().await?;
        let stored = self.store().pages(&self.source.id).await?;
        let mut listed = Vec::with_capacity(urls.len());
        for url in urls {
            let key = url.to_string();
            listed.push(key.clone());
            if !robots.allowed(url.as_str()) {
                self.fail(&key, &FetchError::Disallowed(key.clone()).to_string())
                    .await?;
                continue;
            }
            let before = stored.iter().find(|p| p.url == key);
            let validators = before.map(|p| Validators {
                etag: p.etag.clone(),
                last_modified: p.last_modified.clone(),
            });
            match crawler.fetch(&url, validators.as_ref()).await {
                Ok(Fetched::NotModified) => {
                    self.store()
                        .keep_page(&self.source.id, &key, None, None)
                        .await?;
                    self.done(false).await?;
                }
                Ok(Fetched::Page(page)) => {
                    let url = key.clone();
                    let doc =
                        off_the_runtime(move || document(&page.content_type, &url, &page.body))
                            .await
                            .and_then(|d| d.map(|d| (d, page.validators)));
                    match doc {
                        Ok((doc, validators)) => {
                            self.put(&key, doc, Some(validators), &stored, false)
                                .await?;
                        }
                        Err(e) => self.fail(&key, &e).await?,
                    }
                }
                Err(e @ FetchError::TotalTooLarge(_)) => {
                    self.fail(&key, &e.to_string()).await?;
                    break;
                }
                Err(e) => self.fail(&key, &e.to_string()).await?,
            }
        }
        // Pages the site no longer lists leave the index (only after a
        // complete listing: a sync cut short keeps the rest).
        self.store()
            .remove_pages_except(&self.source.id, &listed)
            .await?;
        Ok(())
    }

    /// Stores a page's chunks, unless its text is unchanged.
    async fn put(
        &mut self,
        url: &str,
        doc: Extracted,
        validators: Option<Validators>,
        stored: &[PageState],
        faq: bool,
    ) -> Result<(), SyncError> {
        let text_for_hash = if doc.pages.is_empty() {
            doc.markdown.clone()
        } else {
            doc.pages.join("\u{c}")
        };
        let hash = hex::encode(Sha256::digest(text_for_hash.as_bytes()));
        let validators = validators.unwrap_or_default();
        if stored
            .iter()
            .any(|p| p.url == url && p.content_hash.as_deref() == Some(hash.as_str()))
        {
            self.store()
                .keep_page(
                    &self.source.id,
                    url,
                    validators.etag.as_deref(),
                    validators.last_modified.as_deref(),
                )
                .await?;
            return self.done(false).await;
        }
        let budget = self.budget();
        let (doc, chunks) = off_the_runtime(move || {
            let chunks = if faq {
                faq_chunks(&doc.markdown)
            } else {
                document_chunks(&doc, budget)
            };
            (doc, chunks)
        })
        .await
        .map_err(SyncError::Source)?;
        if chunks.len() as u64 > self.chunks_left {
            self.fail(url, "the widget's chunk limit is reached")
                .await?;
            return Ok(());
        }
        self.chunks_left -= chunks.len() as u64;
        let page = NewPage {
            url: url.to_owned(),
            title: doc.title,
            etag: validators.etag,
            last_modified: validators.last_modified,
            content_hash: hash,
            chunks,
        };
        self.store()
            .put_page(&self.source.id, &self.source.widget_id, &page)
            .await?;
        self.done(false).await
    }

    /// Embeds the source's chunks that have no vector from the configured
    /// model: new and changed pages' chunks, those a budget or a failure
    /// left last time, and all of them when the model changed. `Err` is
    /// why some stay without one (the sync itself succeeded).
    async fn embed(&mut self) -> Result<Result<(), String>, StoreError> {
        let Some(embedder) = self.ingestor.embedder.clone() else {
            return Ok(Ok(()));
        };
        let settings = embedder.settings();
        let batch = settings.batch_size.clamp(1, 2048) as u32;
        let mut spent = 0u64;
        let mut embedded = 0usize;
        loop {
            if spent >= settings.max_tokens_per_sync {
                return Ok(Err(format!(
                    "the embedding budget of {} tokens per sync is spent; the rest is embedded \
                     by the next sync (full text finds it meanwhile)",
                    settings.max_tokens_per_sync
                )));
            }
            let todo = self
                .store()
                .chunks_to_embed(&self.source.id, embedder.model(), batch)
                .await?;
            if todo.is_empty() {
                break;
            }
            let texts: Vec<String> = todo.iter().map(|(_, t)| t.clone()).collect();
            let done = match embedder.embed(&texts).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(source = %self.source.id, error = %e, "embedding chunks failed");
                    return Ok(Err(format!(
                        "{e}; {embedded} chunks were embedded, the rest are found by full text \
                         until the next sync"
                    )));
                }
            };
            spent += done.tokens;
            embedded += todo.len();
            let vectors: Vec<(i64, Vec<f32>)> =
                todo.iter().map(|(id, _)| *id).zip(done.vectors).collect();
            self.store()
                .put_embeddings(embedder.model(), &vectors)
                .await?;
            // Renews the claim, as pages do.
            self.progress().await?;
        }
        if embedded > 0 {
            tracing::info!(source = %self.source.id, chunks = embedded, tokens = spent, "chunks embedded");
        }
        Ok(Ok(()))
    }

    async fn fail(&mut self, url: &str, why: &str) -> Result<(), SyncError> {
        self.store().fail_page(&self.source.id, url, why).await?;
        self.done(true).await
    }

    async fn done(&mut self, failed: bool) -> Result<(), SyncError> {
        self.report.pages_done += 1;
        if failed {
            self.report.pages_failed += 1;
        }
        // Progress after every page: the API shows it, and it renews the
        // claim (a page takes at most the request timeout).
        self.progress().await?;
        Ok(())
    }
}

/// Runs CPU-heavy parsing (readability, PDF, chunking) on the blocking
/// pool, so a large page never stalls the chats sharing the runtime. A
/// panic in a parser becomes that page's error.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| "the document could not be parsed".to_owned())
}

/// A fetched body as a document, by its content type.
fn document(content_type: &str, url: &str, body: &[u8]) -> Result<Extracted, String> {
    let ct = content_type.to_ascii_lowercase();
    let name = url.split(['?', '#']).next().unwrap_or(url);
    let out = if ct.contains("html") {
        extract::utf8(body).and_then(|t| extract::html(t, Some(url)))
    } else if ct.contains("pdf") {
        extract::file("page.pdf", body)
    } else if ct.contains("markdown") || name.ends_with(".md") {
        extract::file("page.md", body)
    } else if ct.starts_with("text/plain") {
        extract::file("page.txt", body)
    } else {
        return Err(format!("content of type {content_type:?} is not supported"));
    };
    out.map_err(|e| e.to_string())
}

/// A document's chunks: by heading, or page by page for a PDF.
fn document_chunks(doc: &Extracted, budget: Budget) -> Vec<NewChunk> {
    let mut out = Vec::new();
    let mut add = |markdown: &str, page_no: Option<u32>| {
        for c in chunk_markdown_with(markdown, budget, &doc.anchors) {
            out.push(NewChunk {
                // The page's title says what every chunk of it is about.
                terms: index_terms(&format!("{} {}", doc.title, c.heading), &c.text),
                heading: c.heading,
                anchor: c.anchor,
                page_no,
                text: c.text,
            });
        }
    };
    if doc.pages.is_empty() {
        add(&doc.markdown, None);
    } else {
        for (i, page) in doc.pages.iter().enumerate() {
            add(page, Some(i as u32 + 1));
        }
    }
    out
}

/// FAQ pairs as one markdown document ("## question" + answer) that
/// [`faq_chunks`] reads back: one chunk per pair, the question as heading.
fn faq_page(pairs: &[(String, String)]) -> Extracted {
    let mut markdown = String::new();
    for (q, a) in pairs {
        markdown.push_str(&serde_json::to_string(&(q, a)).unwrap_or_default());
        markdown.push('\n');
    }
    Extracted {
        title: "FAQ".into(),
        markdown,
        ..Default::default()
    }
}

fn faq_chunks(lines: &str) -> Vec<NewChunk> {
    lines
        .lines()
        .filter_map(|l| serde_json::from_str::<(String, String)>(l).ok())
        .map(|(q, a)| NewChunk {
            terms: index_terms(&q, &a),
            heading: q,
            anchor: None,
            page_no: None,
            text: a,
        })
        .collect()
}
