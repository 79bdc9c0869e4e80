//! What every handler shares, and the server's life cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::provider::ChatProvider;
use crate::store::ConversationStore;
use crate::widget::WidgetRegistry;

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub widgets: WidgetRegistry,
    pub store: Arc<dyn ConversationStore>,
    pub provider: Arc<dyn ChatProvider>,
    pub lifecycle: Lifecycle,
}

/// Shutdown and the answer streams in flight.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    shutting_down: Arc<AtomicBool>,
    shutdown: CancellationToken,
    streams: TaskTracker,
}

impl Lifecycle {
    /// Starts shutting down: `/ready` fails from now on, new chats are
    /// refused, and every open stream is ended with an event.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.streams.close();
        self.shutdown.cancel();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Resolves when shutdown has begun.
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await;
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
