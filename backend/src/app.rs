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
use crate::http as routes;
use crate::ingest::Ingestor;
use crate::limits::shared::SharedLimits;
use crate::provider::{ChatProvider, OfflineProvider, OpenAiProvider};
use crate::state::{AppState, Lifecycle};
use crate::store::tenants::{refresh_widgets, reload_widgets};
use crate::store::{KeyHash, TenantStore};
use crate::store::{Location, Store};
use crate::tenants::session::SessionKeys;
use crate::tenants::{DEMO_KEY, WidgetDef, Widgets};

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
        let provider: Arc<dyn ChatProvider> = match settings.upstream.effective_provider() {
            ProviderKind::Openai => Arc::new(OpenAiProvider::new(&settings.upstream)?),
            _ => Arc::new(OfflineProvider::new(Duration::from_millis(
                settings.offline.word_delay_ms,
            ))),
        };
        let store = open_store(&settings.store).await?;
        // One process owns a SQLite file: what it left streaming is gone.
        // Replicas share PostgreSQL: only answers whose lease ran out are.
        let lease = Duration::from_secs(settings.chat.answer_lease_secs.max(1));
        let shared = matches!(store_location(&settings.store), Location::Postgres(_));
        let recovered = store
            .recover(shared.then_some(lease))
            .await
            .context("recovering interrupted answers")?;
        if recovered > 0 {
            tracing::warn!(
                answers = recovered,
                "answers cut off by the last stop are marked interrupted"
            );
        }
        let sessions = prepare_tenants(&settings, &*store, demo).await?;
        // Knowledge that needs no network (a widget's own text, uploads,
        // FAQs) is indexed before the server takes traffic; sites and URLs
        // sync in the background.
        let embedder = crate::knowledge::embed::Embedder::new(&settings.embeddings)
            .map_err(anyhow::Error::msg)?
            .map(Arc::new);
        let ingest = Arc::new(
            Ingestor::new(store.clone(), settings.knowledge.clone())
                .with_embedder(embedder.clone()),
        );
        ingest
            .sync_local_now()
            .await
            .context("indexing the widgets' knowledge")?;
        let widgets = Widgets::default();
        reload_widgets(&widgets, &*store)
            .await
            .context("reading the widgets")?;
        let assets = crate::assets::WidgetAssets::load();
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
            widgets = widgets.get().len(),
            "configured"
        );
        let webhooks = Arc::new(
            crate::webhooks::Webhooks::new(store.clone(), settings.webhooks.clone())
                .context("setting up webhooks")?,
        );
        let state = Arc::new(AppState {
            widgets,
            webhooks,
            store: store.clone(),
            tenants: store.clone(),
            knowledge: store.clone(),
            accounts: store,
            sign_in_limits: Default::default(),
            ingest,
            embedder,
            answers: Arc::new(crate::chat::log::AnswerLogs::new(
                std::time::Duration::from_secs(settings.chat.resume_ttl_secs),
                usize::try_from(settings.chat.resume_buffer_mib.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
            )),
            metrics: Default::default(),
            sessions,
            limiter: Default::default(),
            ledger: Default::default(),
            provider,
            lifecycle: Lifecycle::default(),
            assets,
            console: crate::assets::ConsoleAssets::load(),
            loader: crate::assets::LoaderScript::new(),
            settings,
        });
        tokio::spawn(follow_widget_changes(
            Arc::downgrade(&state),
            shared.then_some(lease),
        ));
        if let Some(url) = state.settings.redis.url.clone() {
            share_limits(&state, &url).await;
        }
        tokio::spawn(state.ingest.clone().run(state.lifecycle.cut_token()));
        tokio::spawn(state.webhooks.clone().run(state.lifecycle.cut_token()));
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

/// Imports the config file's widgets, creates the demo widget on a first
/// run with `--demo`, and returns the session signing keys.
async fn prepare_tenants(
    settings: &Settings,
    store: &dyn TenantStore,
    demo: bool,
) -> anyhow::Result<SessionKeys> {
    for w in &settings.widgets {
        let def = w.to_def()?;
        if let Some(notice) = def.theme_notice() {
            tracing::warn!(widget = %def.id, "{notice}");
        }
        store
            .import_widget(&def, &KeyHash::of(&w.public_key))
            .await
            .with_context(|| format!("importing widget {:?} from the config file", w.id))?;
    }
    if demo
        && store
            .create_once("demo_created", &WidgetDef::demo(), &KeyHash::of(DEMO_KEY))
            .await
            .context("creating the demo widget")?
    {
        tracing::info!("created the demo widget (id demo, key pk_demo)");
    }
    let secret = match &settings.session.secret {
        Some(s) => secrecy::ExposeSecret::expose_secret(s).as_bytes().to_vec(),
        None => store
            .meta_or_insert("session_secret", &crate::tenants::session::random_secret())
            .await
            .context("reading the session secret")?
            .into_bytes(),
    };
    Ok(SessionKeys::new(&secret))
}

/// How often a server looks for widget changes made by another process.
const FOLLOW_WIDGETS_EVERY: Duration = Duration::from_secs(1);

/// Picks up widgets changed by the CLI or another replica, tidies the rate
/// limiters and, with a store shared by replicas (`answer_lease`), ends
/// dead replicas' answers; ends with the server.
async fn follow_widget_changes(state: std::sync::Weak<AppState>, answer_lease: Option<Duration>) {
    let mut tick = tokio::time::interval(FOLLOW_WIDGETS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        let Some(state) = state.upgrade() else { return };
        // Once a minute: forget the rate-limit state of idle visitors.
        if ticks.is_multiple_of(60) {
            state.limiter.forget_idle();
        }
        if let Err(e) = refresh_widgets(&state.widgets, &*state.tenants).await {
            tracing::warn!(error = %e, "reading widget changes failed");
        }
        // With replicas sharing the store: end the answers of a replica
        // that died (their lease ran out), every half lease.
        if let Some(lease) = answer_lease
            && ticks.is_multiple_of(lease.as_secs().div_ceil(2))
        {
            match state.store.recover(Some(lease)).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    answers = n,
                    "answers of a replica that stopped renewing them are marked interrupted"
                ),
                Err(e) => tracing::warn!(error = %e, "ending dead replicas' answers failed"),
            }
        }
    }
}

/// Connects the limiter to Redis; when Redis is down at start, the limits
/// stay local (with a warning) and a task keeps trying every few seconds.
async fn share_limits(state: &Arc<AppState>, url: &str) {
    let prefix = state.settings.redis.key_prefix.clone();
    match SharedLimits::connect(url, &prefix).await {
        Ok(shared) => {
            state.limiter.share(shared);
            tracing::info!("rate limits and stream caps are shared through Redis");
        }
        Err(e) => {
            tracing::warn!(error = %e, "Redis is unreachable: limits are this replica's alone until it answers");
            let (state, url) = (Arc::downgrade(state), url.to_owned());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let Some(state) = state.upgrade() else { return };
                    if let Ok(shared) = SharedLimits::connect(&url, &prefix).await {
                        state.limiter.share(shared);
                        tracing::info!(
                            "Redis answers: rate limits and stream caps are shared again"
                        );
                        return;
                    }
                }
            });
        }
    }
}

/// Where the settings put the store: PostgreSQL when a URL is set, else
/// the SQLite file.
pub fn store_location(settings: &crate::config::StoreSettings) -> Location {
    match &settings.url {
        Some(url) => Location::Postgres(url.clone()),
        None => Location::Sqlite(settings.path.clone()),
    }
}

/// Opens (and migrates) the store the settings name.
pub async fn open_store(settings: &crate::config::StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    let location = store_location(settings);
    crate::store::open(&location)
        .await
        .with_context(|| format!("opening the store {location}"))
}
