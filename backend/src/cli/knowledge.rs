//! `porthole knowledge …`: a widget's knowledge sources from the command
//! line. `add` and `sync` with `--wait` run the sync in this process (the
//! source is claimed, so a running server does not sync it twice) and show
//! a progress bar; without it, a running server picks the source up within
//! seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};

use crate::Settings;
use crate::admin::knowledge::{SourceInput, add_source};
use crate::ingest::Ingestor;
use crate::store::Store;
use crate::store::knowledge::{SourceInfo, SourceKind, SyncStatus};

#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// Adds a source to a widget.
    Add {
        /// The widget's id.
        widget: String,
        #[command(flatten)]
        what: What,
        /// A name for it (default: the URL or file name).
        #[arg(long)]
        name: Option<String>,
        /// Re-sync every this many seconds (at least 300).
        #[arg(long)]
        every: Option<u64>,
        /// Sync now and show progress until it ends; fail if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// Lists a widget's sources with their sync status.
    List { widget: String },
    /// Syncs a source again.
    Sync {
        widget: String,
        source: String,
        #[arg(long)]
        wait: bool,
    },
    /// Removes a source with its pages and chunks.
    Remove { widget: String, source: String },
}

/// Exactly one kind of source.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct What {
    /// A site: its sitemap URL, or its root (robots.txt and /sitemap.xml are read).
    #[arg(long)]
    sitemap: Option<String>,
    /// One web page.
    #[arg(long)]
    url: Option<String>,
    /// A file: Markdown, HTML, plain text or PDF.
    #[arg(long)]
    file: Option<PathBuf>,
    /// A CSV of question,answer rows.
    #[arg(long)]
    faq: Option<PathBuf>,
    /// A markdown file, as pasted text.
    #[arg(long)]
    text: Option<PathBuf>,
}

fn read(path: &PathBuf, max: u64) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > max {
        bail!(
            "{} is {len} bytes; a source may be at most {max}",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl What {
    fn input(self, max: u64) -> anyhow::Result<SourceInput> {
        let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(if let Some(url) = self.sitemap {
            SourceInput {
                kind: Some(SourceKind::Site),
                url: Some(url),
                ..Default::default()
            }
        } else if let Some(url) = self.url {
            SourceInput {
                kind: Some(SourceKind::Url),
                url: Some(url),
                ..Default::default()
            }
        } else if let Some(path) = self.file {
            SourceInput {
                kind: Some(SourceKind::File),
                name: Some(file_name(&path)),
                content_base64: Some(b64(read(&path, max)?)),
                ..Default::default()
            }
        } else if let Some(path) = self.faq {
            SourceInput {
                kind: Some(SourceKind::Faq),
                name: Some(file_name(&path)),
                content_base64: Some(b64(read(&path, max)?)),
                ..Default::default()
            }
        } else if let Some(path) = self.text {
            let text = String::from_utf8(read(&path, max)?)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?;
            SourceInput {
                kind: Some(SourceKind::Text),
                name: Some(file_name(&path)),
                text: Some(text),
                ..Default::default()
            }
        } else {
            bail!("say what to add: --sitemap, --url, --file, --faq or --text");
        })
    }
}

pub async fn run(
    settings: &Settings,
    store: Arc<dyn Store>,
    cmd: KnowledgeCommand,
) -> anyhow::Result<()> {
    match cmd {
        KnowledgeCommand::Add {
            widget,
            what,
            name,
            every,
            wait,
        } => {
            let mut input = what.input(settings.knowledge.max_page_bytes)?;
            if name.is_some() {
                input.name = name;
            }
            input.sync_every_secs = every;
            let source = add_source(&*store, &*store, &settings.knowledge, &widget, input).await?;
            println!(
                "Added source {} ({}) to {widget}.",
                source.id,
                source.kind.as_str()
            );
            if wait {
                sync_and_watch(settings, store, &source.id).await?;
            }
        }
        KnowledgeCommand::List { widget } => {
            let sources = store.sources(&widget).await?;
            if sources.is_empty() {
                println!("{widget} has no knowledge sources.");
            }
            for s in sources {
                println!("{}", line(&s));
                if let Some(e) = &s.error {
                    println!("    error: {e}");
                }
            }
        }
        KnowledgeCommand::Sync {
            widget,
            source,
            wait,
        } => {
            if !store.request_sync(&widget, &source).await? {
                bail!("{widget} has no source {source:?}");
            }
            println!("Source {source} will sync.");
            if wait {
                sync_and_watch(settings, store, &source).await?;
            }
        }
        KnowledgeCommand::Remove { widget, source } => {
            if !store.remove_source(&widget, &source).await? {
                bail!("{widget} has no source {source:?}");
            }
            println!("Removed source {source} from {widget}.");
        }
    }
    Ok(())
}

fn line(s: &SourceInfo) -> String {
    format!(
        "{}  {:<5} {:<8} {}/{} pages, {} failed, {} chunks ({} embedded)  {}",
        s.id,
        s.kind.as_str(),
        s.status.as_str(),
        s.pages_done,
        s.pages_total,
        s.pages_failed,
        s.chunks,
        s.chunks_embedded,
        s.name
    )
}

/// Runs the sync here while a bar follows its progress in the store.
async fn sync_and_watch(
    settings: &Settings,
    store: Arc<dyn Store>,
    id: &str,
) -> anyhow::Result<()> {
    let embedder = crate::knowledge::embed::Embedder::new(&settings.embeddings)
        .map_err(anyhow::Error::msg)?
        .map(Arc::new);
    let ingest = Ingestor::new(store.clone(), settings.knowledge.clone()).with_embedder(embedder);
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} pages {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let watcher = {
        let (store, bar, id) = (store.clone(), bar.clone(), id.to_owned());
        tokio::spawn(async move {
            loop {
                if let Ok(Some(s)) = store.source(&id).await {
                    bar.set_length(u64::from(s.pages_total));
                    bar.set_position(u64::from(s.pages_done));
                    bar.set_message(format!("{} errors", s.pages_failed));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let report = ingest.sync_now(id).await;
    watcher.abort();
    let source = store.source(id).await.ok().flatten();
    bar.finish_and_clear();
    let report = report?.context("the source disappeared")?;
    if let Some(s) = &source {
        println!("{}", line(s));
    }
    for e in store.page_errors(id).await? {
        println!("    {}: {}", e.url, e.error);
    }
    match report.status {
        SyncStatus::Ready => Ok(()),
        SyncStatus::Failed => bail!(
            "the sync failed: {}",
            report
                .error
                .unwrap_or_else(|| "see the errors above".into())
        ),
        other => bail!(
            "the source is {} (another process is syncing it); try again with `porthole knowledge list`",
            other.as_str()
        ),
    }
}
