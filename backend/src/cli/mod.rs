//! The `porthole` command: serve, widget, knowledge, admin-key, healthcheck. `main.rs`
//! only calls [`main`].

mod knowledge;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::admin::{self, WidgetInput};
use crate::limits::WidgetLimits;
use crate::store::KeyHash;
use crate::store::Store;
use crate::{Application, Settings};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "porthole",
    version,
    about = "An embeddable AI chat widget server"
)]
struct Cli {
    /// TOML config file (its `[store] path` names the database).
    #[arg(long, global = true, env = "PORTHOLE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the chat API, widget pages, loader, admin API and docs.
    Serve {
        /// Address to listen on (overrides the config file and PORTHOLE_ADDR).
        #[arg(long)]
        addr: Option<String>,
        /// On the first run with this database, create the demo widget
        /// (id `demo`, key `pk_demo`).
        #[arg(long)]
        demo: bool,
    },
    /// Creates, lists, shows, changes and deletes widgets.
    #[command(subcommand)]
    Widget(Box<WidgetCommand>),
    /// Adds, lists, syncs and removes a widget's knowledge sources.
    #[command(subcommand)]
    Knowledge(knowledge::KnowledgeCommand),
    /// Applies the store's migrations (a replica also applies them when it
    /// starts, one at a time; run this first to roll out a new release).
    Migrate,
    /// Manages admin keys for the admin API.
    #[command(subcommand, name = "admin-key")]
    AdminKey(AdminKeyCommand),
    /// Manages the console's users (owner, editor, viewer).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Exits 0 when the server on this machine answers `GET /health`
    /// (a container health check: the image has no shell or curl).
    Healthcheck {
        /// The health URL (default: `PORTHOLE_ADDR`'s port on 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum WidgetCommand {
    /// Creates a widget and prints its key and embed snippet.
    Create {
        /// The title visitors see.
        #[arg(long)]
        name: String,
        /// The id (default: made from the name).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        settings: WidgetFlags,
    },
    /// Lists every widget.
    List,
    /// Prints a widget's settings as JSON.
    Show { id: String },
    /// Changes a widget's settings; only the flags given change.
    Update {
        id: String,
        /// A new title.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: WidgetFlags,
    },
    /// Gives a widget a new public key (the old one stops working) and
    /// prints the new embed snippet.
    RotateKey { id: String },
    /// Deletes a widget with its keys and conversations.
    Delete {
        id: String,
        /// Confirms: the widget's conversations are deleted too.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, clap::Args)]
struct WidgetFlags {
    /// A site that may embed the widget, e.g. https://example.com (repeat
    /// for more; given on update, replaces the list).
    #[arg(long = "allow", value_name = "ORIGIN")]
    allow: Vec<String>,
    /// Allow any site again (clears the list).
    #[arg(long, conflicts_with = "allow")]
    allow_any: bool,
    #[arg(long)]
    greeting: Option<String>,
    /// A suggested first question (repeat for more; replaces the list).
    #[arg(long = "starter", value_name = "TEXT")]
    starters: Vec<String>,
    #[arg(long)]
    system_prompt: Option<String>,
    /// A markdown file the widget answers from.
    #[arg(long, value_name = "FILE")]
    knowledge: Option<PathBuf>,
    /// The model (default: the server's).
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Accent colour, #rrggbb.
    #[arg(long, value_name = "COLOR")]
    color: Option<String>,
    /// Turn on identity verification with a new secret (printed once).
    #[arg(long)]
    new_verification_secret: bool,
    /// Turn identity verification off.
    #[arg(long, conflicts_with = "new_verification_secret")]
    no_verification: bool,
    /// Stop serving the widget (it answers like one that does not exist).
    #[arg(long)]
    disable: bool,
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    #[command(flatten)]
    limits: LimitFlags,
}

/// A widget's own limits; each flag takes a number, or `default` for the
/// server's `[limits]` value. Flags not given keep what the widget has.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Limits (a number, or `default`)")]
struct LimitFlags {
    /// Chat requests a minute for the whole widget.
    #[arg(long, value_name = "N")]
    requests_per_minute_per_key: Option<Limit<u32>>,
    /// Chat requests a minute for one visitor session.
    #[arg(long, value_name = "N")]
    requests_per_minute_per_session: Option<Limit<u32>>,
    /// Chat requests a minute from one IP address.
    #[arg(long, value_name = "N")]
    requests_per_minute_per_ip: Option<Limit<u32>>,
    /// Answers one visitor session may stream at once.
    #[arg(long, value_name = "N")]
    concurrent_streams_per_session: Option<Limit<u32>>,
    /// Tokens of earlier messages sent upstream (estimated).
    #[arg(long, value_name = "N")]
    history_tokens: Option<Limit<u32>>,
    /// Tokens a day (UTC); 0: no limit.
    #[arg(long, value_name = "N")]
    daily_tokens: Option<Limit<u64>>,
    /// Tokens a calendar month (UTC); 0: no limit.
    #[arg(long, value_name = "N")]
    monthly_tokens: Option<Limit<u64>>,
}

/// One limit flag's value: a number, or the server's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit<T> {
    Value(T),
    Default,
}

impl<T: std::str::FromStr> std::str::FromStr for Limit<T> {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "default" {
            return Ok(Self::Default);
        }
        s.parse()
            .map(Self::Value)
            .map_err(|_| format!("{s:?} is neither a whole number nor `default`"))
    }
}

impl LimitFlags {
    /// `current` with the flags given applied, or `None` when no limit
    /// flag was given.
    fn applied_to(&self, current: &WidgetLimits) -> Option<WidgetLimits> {
        fn set<T: Copy>(field: &mut Option<T>, flag: Option<Limit<T>>) -> bool {
            match flag {
                Some(Limit::Value(v)) => *field = Some(v),
                Some(Limit::Default) => *field = None,
                None => return false,
            }
            true
        }
        let mut limits = current.clone();
        let changed = [
            set(
                &mut limits.requests_per_minute_per_key,
                self.requests_per_minute_per_key,
            ),
            set(
                &mut limits.requests_per_minute_per_session,
                self.requests_per_minute_per_session,
            ),
            set(
                &mut limits.requests_per_minute_per_ip,
                self.requests_per_minute_per_ip,
            ),
            set(
                &mut limits.concurrent_streams_per_session,
                self.concurrent_streams_per_session,
            ),
            set(&mut limits.history_tokens, self.history_tokens),
            set(&mut limits.daily_tokens, self.daily_tokens),
            set(&mut limits.monthly_tokens, self.monthly_tokens),
        ];
        changed.contains(&true).then_some(limits)
    }
}

impl WidgetFlags {
    /// The flags as a change to a widget whose limits are `limits`, and
    /// the new verification secret if one was made.
    fn input(self, limits: &WidgetLimits) -> anyhow::Result<(WidgetInput, Option<String>)> {
        let knowledge = match &self.knowledge {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let secret = self
            .new_verification_secret
            .then(crate::tenants::session::random_secret);
        let theme = self.color.map(|primary| protocol::widget::Theme {
            primary,
            ..Default::default()
        });
        Ok((
            WidgetInput {
                allowed_sites: if self.allow_any {
                    Some(Vec::new())
                } else {
                    (!self.allow.is_empty()).then_some(self.allow)
                },
                greeting: self.greeting,
                starters: (!self.starters.is_empty()).then_some(self.starters),
                system_prompt: self.system_prompt,
                knowledge,
                model: self.model.map(Some),
                temperature: self.temperature.map(Some),
                max_tokens: self.max_tokens.map(Some),
                theme,
                verification_secret: if self.no_verification {
                    Some(None)
                } else {
                    secret.clone().map(Some)
                },
                disabled: if self.disable {
                    Some(true)
                } else if self.enable {
                    Some(false)
                } else {
                    None
                },
                limits: self.limits.applied_to(limits),
                ..Default::default()
            },
            secret,
        ))
    }
}

#[derive(Debug, Subcommand)]
enum AdminKeyCommand {
    /// Creates an admin key and prints it (only its hash is kept).
    Create {
        /// What the key is for, e.g. who holds it.
        #[arg(long, default_value = "admin")]
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let addr = match &cli.command {
        Command::Serve { addr, .. } => addr.clone(),
        _ => None,
    };
    let env = |name: &str| {
        if name == "PORTHOLE_ADDR" && addr.is_some() {
            return addr.clone();
        }
        std::env::var(name).ok()
    };
    let settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("porthole: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    if serving {
        crate::telemetry::init(&settings.log);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("porthole: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { demo, .. } => runtime.block_on(serve(settings, demo)),
        Command::Widget(cmd) => runtime.block_on(widget_command(&settings, *cmd)),
        Command::Knowledge(cmd) => runtime.block_on(async {
            let store = open_store(&settings).await?;
            knowledge::run(&settings, store, cmd).await
        }),
        Command::Migrate => runtime.block_on(migrate(&settings)),
        Command::AdminKey(AdminKeyCommand::Create { name }) => {
            runtime.block_on(admin_key_create(&settings, &name))
        }
        Command::User(cmd) => runtime.block_on(async {
            let store = open_store(&settings).await?;
            user::run(store, cmd).await
        }),
        Command::Healthcheck { url } => {
            let url =
                url.unwrap_or_else(|| format!("http://127.0.0.1:{}/health", settings.addr.port()));
            runtime.block_on(healthcheck(&url))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porthole: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    crate::app::open_store(&settings.store).await
}

/// Applies the store's migrations and says what it did.
async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let location = crate::app::store_location(&settings.store);
    let ran = match &location {
        crate::store::Location::Postgres(url) => {
            let options = url
                .parse()
                .with_context(|| format!("reading the store URL {location}"))?;
            let store = crate::store::PgStore::connect(options, 1)
                .await
                .with_context(|| format!("connecting to {location}"))?;
            store
                .migrate()
                .await
                .with_context(|| format!("migrating {location}"))?
        }
        // SQLite migrates when it opens (one process writes the file).
        crate::store::Location::Sqlite(_) => {
            open_store(settings).await?;
            0
        }
    };
    match ran {
        0 => println!("The store {location} is up to date."),
        n => println!("Applied {n} migration(s) to {location}."),
    }
    Ok(())
}

async fn widget_command(settings: &Settings, cmd: WidgetCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let origin = settings.public_url();
    match cmd {
        WidgetCommand::Create { name, id, settings } => {
            let (mut input, secret) = settings.input(&WidgetLimits::default())?;
            input.title = Some(name);
            input.id = id;
            let created = admin::create_widget(&*store, input, &origin).await?;
            println!("Created widget {}.", created.widget.id);
            if let Some(notice) = created.widget.theme_notice() {
                println!("Note: {notice}");
            }
            println!("Public key: {}", created.public_key);
            if let Some(secret) = secret {
                println!("Identity verification secret (keep it on your server): {secret}");
            }
            println!("\nPaste this into your site's pages:\n\n{}", created.embed);
        }
        WidgetCommand::List => {
            let widgets = store.widgets().await?;
            if widgets.is_empty() {
                println!(
                    "No widgets yet. Create one with: porthole widget create --name \"…\" --allow https://example.com"
                );
            }
            for w in widgets {
                let sites = if w.allowed_sites.is_empty() {
                    "any site".to_owned()
                } else {
                    w.allowed_sites.join(" ")
                };
                let status = if w.disabled { "disabled" } else { "enabled" };
                println!("{}\t{}\t{status}\t{}\t{sites}", w.id, w.title, w.source);
            }
        }
        WidgetCommand::Show { id } => {
            let def = store
                .widget(&id)
                .await?
                .ok_or(admin::AdminError::NotFound(id))?;
            println!("{}", serde_json::to_string_pretty(&def)?);
        }
        WidgetCommand::Update { id, name, settings } => {
            let current = store
                .widget(&id)
                .await?
                .ok_or_else(|| admin::AdminError::NotFound(id.clone()))?;
            let (mut input, secret) = settings.input(&current.limits)?;
            input.title = name;
            let def = admin::update_widget(&*store, &id, input).await?;
            println!("Updated widget {}.", def.id);
            if let Some(notice) = def.theme_notice() {
                println!("Note: {notice}");
            }
            if let Some(secret) = secret {
                println!("Identity verification secret (keep it on your server): {secret}");
            }
        }
        WidgetCommand::RotateKey { id } => {
            let rotated = admin::rotate_key(&*store, &id, &origin).await?;
            println!("New public key: {}", rotated.public_key);
            println!(
                "The old key no longer works. Replace the snippet on your site with:\n\n{}",
                rotated.embed
            );
        }
        WidgetCommand::Delete { id, yes } => {
            if !yes {
                anyhow::bail!(
                    "deleting {id:?} also deletes its conversations; run again with --yes to confirm"
                );
            }
            if !store.delete_widget(&id).await? {
                return Err(admin::AdminError::NotFound(id).into());
            }
            println!("Deleted widget {id} and its conversations.");
        }
    }
    Ok(())
}

async fn healthcheck(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let response = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("{url} did not answer"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    println!("ok");
    Ok(())
}

async fn admin_key_create(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let key = crate::tenants::session::new_key("ak");
    store.create_admin_key(name, &KeyHash::of(&key)).await?;
    println!("{key}");
    eprintln!(
        "Admin key {name:?} created. Send it as \"Authorization: Bearer <key>\" to /api/v1/admin/. It is shown only now."
    );
    Ok(())
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let deadline = settings.shutdown_deadline();
    let app = Application::build(settings, demo).await?;
    // Tests and scripts read this line to find the port when --addr ends in :0.
    println!("porthole listening on http://{}", app.addr());
    let lifecycle = app.lifecycle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received");
        lifecycle.begin_shutdown();
        // A backstop: whatever is stuck, the process ends shortly after the deadline.
        tokio::time::sleep(deadline + std::time::Duration::from_secs(1)).await;
        tracing::error!("shutdown deadline passed; exiting");
        std::process::exit(1);
    });
    app.run().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_flag_is_a_whole_number_or_default() {
        assert_eq!("25".parse::<Limit<u32>>(), Ok(Limit::Value(25)));
        assert_eq!("default".parse::<Limit<u64>>(), Ok(Limit::Default));
        for bad in ["", "-1", "2.5", "Default", "4294967296"] {
            assert!(bad.parse::<Limit<u32>>().is_err(), "{bad:?}");
        }
    }

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        limits: LimitFlags,
    }

    fn flags(args: &[&str]) -> LimitFlags {
        Flags::try_parse_from(std::iter::once("porthole").chain(args.iter().copied()))
            .expect("parses")
            .limits
    }

    #[test]
    fn limit_flags_change_only_the_limits_they_name() {
        let current = WidgetLimits {
            requests_per_minute_per_key: Some(100),
            daily_tokens: Some(9),
            ..Default::default()
        };
        assert_eq!(flags(&[]).applied_to(&current), None);
        assert_eq!(
            flags(&["--daily-tokens", "default", "--history-tokens", "400"]).applied_to(&current),
            Some(WidgetLimits {
                requests_per_minute_per_key: Some(100),
                history_tokens: Some(400),
                ..Default::default()
            })
        );
    }
}
