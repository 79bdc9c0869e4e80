//! What every handler shares, and the server's life cycle.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::provider::ChatProvider;
use crate::store::ConversationStore;
use crate::store::TenantStore;
use crate::tenants::Widgets;
use crate::tenants::session::SessionKeys;

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub widgets: Widgets,
    pub store: Arc<dyn ConversationStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub knowledge: Arc<dyn crate::store::KnowledgeStore>,
    /// The console's users, sessions and audit log.
    pub accounts: Arc<dyn crate::store::AccountStore>,
    /// Sign-in attempts per address and email.
    pub sign_in_limits: crate::accounts::SignInLimits,
    pub ingest: Arc<crate::ingest::Ingestor>,
    /// Queues webhook events and sends them.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// The embeddings endpoint, when one is configured: questions are
    /// matched by meaning too.
    pub embedder: Option<Arc<crate::knowledge::embed::Embedder>>,
    /// Signs the session tokens minted into widget pages.
    pub sessions: SessionKeys,
    /// Rate limits and stream slots.
    pub limiter: crate::limits::Limiter,
    /// Tokens spent per widget, for the budgets.
    pub ledger: crate::limits::Ledger,
    pub provider: Arc<dyn ChatProvider>,
    /// The events of answers in flight (and recently finished), for resumes.
    pub answers: Arc<crate::chat::log::AnswerLogs>,
    /// What `/metrics` shows.
    pub metrics: crate::metrics::Metrics,
    pub lifecycle: Lifecycle,
    /// The built widget; `None` when it was not built.
    pub assets: Option<crate::assets::WidgetAssets>,
    /// The built console; `None` when it was not built.
    pub console: Option<crate::assets::ConsoleAssets>,
    /// The loader served at `/widget.js`.
    pub loader: crate::assets::LoaderScript,
}

/// Shutdown and the answer streams in flight.
///
/// Shutdown has two steps. Draining starts at once: `/ready` fails and new
/// chats are refused, but answers in flight go on, because an answer that
/// can finish should not be lost. At the cut (shortly before the deadline)
/// the answers still open end with a `shutting_down` event.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: CancellationToken,
    cut: CancellationToken,
    streams: TaskTracker,
}

impl Lifecycle {
    /// Starts draining.
    pub fn begin_shutdown(&self) {
        self.streams.close();
        self.draining.cancel();
    }

    /// Ends every open answer with a `shutting_down` event.
    pub fn cut_streams(&self) {
        self.begin_shutdown();
        self.cut.cancel();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Cancelled when open answers must end.
    pub fn cut_token(&self) -> CancellationToken {
        self.cut.clone()
    }

    /// Resolves when shutdown has begun.
    pub async fn shutdown_requested(&self) {
        self.draining.cancelled().await;
    }

    /// The relay tasks of open streams.
    pub fn tracker(&self) -> &TaskTracker {
        &self.streams
    }

    /// How many answer streams are open.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }
}
