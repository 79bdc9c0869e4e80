//! Building and running the server, separate from `main` so tests start the
//! real thing on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use salvo::conn::tcp::TcpAcceptor;
use salvo::prelude::*;
use tokio::net::TcpSocket;

use crate::config::{ProviderKind, Settings};
use crate::provider::{ChatProvider, OfflineProvider, OpenAiProvider};
use crate::routes;
use crate::state::{AppState, Lifecycle};
use crate::store::{ConversationStore, SqliteStore};
use crate::widget::{Widget, WidgetRegistry};

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Application {
    addr: SocketAddr,
    acceptor: TcpAcceptor,
    state: Arc<AppState>,
}

impl Application {
    /// Binds the listener and prepares everything; `demo` adds the demo widget.
    pub async fn build(settings: Settings, demo: bool) -> anyhow::Result<Self> {
        let mut widgets = settings
            .widgets
            .iter()
            .map(Widget::from_settings)
            .collect::<Result<Vec<_>, _>>()?;
        if demo && !widgets.iter().any(|w| w.id.as_str() == "demo") {
            widgets.push(Widget::demo());
        }
        let provider: Arc<dyn ChatProvider> = match settings.upstream.effective_provider() {
            ProviderKind::Openai => Arc::new(OpenAiProvider::new(&settings.upstream)?),
            _ => Arc::new(OfflineProvider::new(Duration::from_millis(
                settings.offline.word_delay_ms,
            ))),
        };
        let store = SqliteStore::open(&settings.store.path)
            .await
            .with_context(|| format!("opening the store {}", settings.store.path.display()))?;
        let recovered = store
            .recover()
            .await
            .context("recovering interrupted answers")?;
        if recovered > 0 {
            tracing::warn!(
                answers = recovered,
                "answers cut off by the last stop are marked interrupted"
            );
        }
        let assets = crate::widget_page::WidgetAssets::load();
        if assets.is_none() {
            tracing::warn!(
                "the widget is not built (dist/ is empty): /widget pages will be unavailable"
            );
        }
        let listener = bind(settings.addr).with_context(|| format!("binding {}", settings.addr))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let acceptor = TcpAcceptor::try_from(listener).context("wrapping the listener")?;
        tracing::info!(
            provider = provider.name(),
            model = %settings.upstream.model,
            widgets = widgets.len(),
            "configured"
        );
        let state = Arc::new(AppState {
            widgets: WidgetRegistry::new(widgets),
            store: Arc::new(store),
            provider,
            lifecycle: Lifecycle::default(),
            assets,
            loader: crate::loader_routes::LoaderScript::new(),
            settings,
        });
        Ok(Self {
            addr,
            acceptor,
            state,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Starts shutdown from outside (signals, tests).
    pub fn lifecycle(&self) -> Lifecycle {
        self.state.lifecycle.clone()
    }

    /// Serves until shutdown begins, then ends open streams with an event
    /// and stops within the configured deadline.
    pub async fn run(self) -> std::io::Result<()> {
        let Self {
            acceptor, state, ..
        } = self;
        let server = Server::new(acceptor);
        let handle = server.handle();
        let lifecycle = state.lifecycle.clone();
        let deadline = state.settings.shutdown_deadline();
        let service = routes::service(state);
        tokio::spawn(async move {
            lifecycle.shutdown_requested().await;
            let started = tokio::time::Instant::now();
            tracing::info!(open_streams = lifecycle.open_streams(), "draining");
            // Answers in flight may finish until the cut; the rest of the
            // deadline is for their terminal events and the connections.
            let cut_after = deadline.saturating_sub((deadline / 4).min(Duration::from_secs(1)));
            if tokio::time::timeout(cut_after, lifecycle.tracker().wait())
                .await
                .is_err()
            {
                tracing::info!(
                    open_streams = lifecycle.open_streams(),
                    "cutting open streams"
                );
                lifecycle.cut_streams();
                let left = deadline.saturating_sub(started.elapsed());
                if tokio::time::timeout(left, lifecycle.tracker().wait())
                    .await
                    .is_err()
                {
                    tracing::warn!("streams did not end before the deadline");
                }
            }
            let left = deadline
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(50));
            handle.stop_graceful(Some(left));
        });
        server.try_serve(service).await
    }
}

/// A listener whose accepted sockets have TCP_NODELAY (they inherit it), so
/// small SSE frames leave at once instead of waiting on delayed ACKs.
fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
