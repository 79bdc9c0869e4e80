//! Typed settings: a TOML file, then environment overrides, then checks that
//! name the offending field. Secrets stay in [`secrecy::SecretString`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where to listen.
    pub addr: SocketAddr,
    pub log: LogSettings,
    pub upstream: UpstreamSettings,
    pub chat: ChatSettings,
    pub offline: OfflineSettings,
    pub knowledge: crate::knowledge::KnowledgeSettings,
    /// An embeddings endpoint for retrieval by meaning beside full text
    /// (`PORTHOLE_EMBEDDINGS__BASE_URL`, `…__MODEL`, `…__API_KEY`); off
    /// when unset.
    pub embeddings: crate::knowledge::embed::EmbeddingSettings,
    pub store: StoreSettings,
    pub redis: RedisSettings,
    pub session: SessionSettings,
    /// Default limits; each widget may override them (`limits`).
    pub limits: crate::limits::LimitSettings,
    /// The address visitors' browsers reach this server at, for the embed
    /// snippets the CLI prints (`PORTHOLE_PUBLIC_URL`); default `http://{addr}`.
    pub public_url: Option<String>,
    /// How long open streams get to finish after SIGTERM, in milliseconds.
    pub shutdown_deadline_ms: u64,
    /// What each model costs, for the estimated cost in analytics:
    /// `[prices."gpt-4o-mini"]` with `input_per_million` and
    /// `output_per_million` (US dollars per million tokens). A model
    /// without a price has no estimate.
    pub prices: std::collections::BTreeMap<String, ModelPrice>,
    /// `[webhooks]`: where webhooks may send, timeouts and retries.
    pub webhooks: crate::webhooks::WebhookSettings,
    pub widgets: Vec<WidgetSettings>,
}

/// A model's price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize, salvo::oapi::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million prompt tokens.
    pub input_per_million: f64,
    /// Per million completion tokens.
    pub output_per_million: f64,
}

impl ModelPrice {
    /// The cost of `prompt` and `completion` tokens, in dollars.
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.input_per_million + completion as f64 * self.output_per_million)
            / 1_000_000.0
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log: LogSettings::default(),
            upstream: UpstreamSettings::default(),
            chat: ChatSettings::default(),
            offline: OfflineSettings::default(),
            knowledge: Default::default(),
            embeddings: Default::default(),
            store: StoreSettings::default(),
            redis: RedisSettings::default(),
            session: SessionSettings::default(),
            limits: crate::limits::LimitSettings::default(),
            public_url: None,
            shutdown_deadline_ms: 10_000,
            prices: Default::default(),
            webhooks: Default::default(),
            widgets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `porthole=debug,info`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

/// Which model provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// `openai` when an API key is configured, otherwise `offline`.
    #[default]
    Auto,
    /// Any OpenAI-compatible server (OpenAI, Ollama, vLLM, LM Studio, OpenRouter).
    Openai,
    /// The built-in answerer that replies from the widget's knowledge text.
    Offline,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSettings {
    pub provider: ProviderKind,
    /// Base URL of the OpenAI-compatible API, ending in `/v1` for most servers.
    pub base_url: String,
    /// Better set with `OPENAI_API_KEY` than written in a file.
    pub api_key: Option<SecretString>,
    pub model: String,
    pub temperature: f32,
    pub max_tokens: u32,
    /// How long to wait for the first token, in milliseconds.
    pub first_token_timeout_ms: u64,
    /// How long the upstream may go silent between tokens, in milliseconds.
    pub idle_timeout_ms: u64,
    /// How long to wait for a TCP/TLS connection, in milliseconds.
    pub connect_timeout_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Auto,
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "gpt-4o-mini".into(),
            temperature: 0.3,
            max_tokens: 800,
            first_token_timeout_ms: 30_000,
            idle_timeout_ms: 30_000,
            connect_timeout_ms: 10_000,
        }
    }
}

impl UpstreamSettings {
    /// The provider that will actually answer.
    pub fn effective_provider(&self) -> ProviderKind {
        match self.provider {
            ProviderKind::Auto if self.api_key.is_some() => ProviderKind::Openai,
            ProviderKind::Auto => ProviderKind::Offline,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSettings {
    /// Longest message accepted, in characters.
    pub max_message_chars: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// How many earlier messages of a conversation go upstream.
    pub history_messages: usize,
    /// Seconds between `:` heartbeat comments on an open stream.
    pub heartbeat_secs: u64,
    /// How long an answer goes on with nobody reading (the visitor's
    /// connection dropped) before it is cancelled, in seconds: a visitor
    /// who comes back within it resumes the same answer.
    pub resume_grace_secs: u64,
    /// How long a finished answer's events stay for a late resume, in
    /// seconds; after that `stream_expired` (the history has the answer).
    pub resume_ttl_secs: u64,
    /// Memory for finished answers' events, in MiB: past it the oldest are
    /// dropped first (running answers are never dropped).
    pub resume_buffer_mib: u64,
    /// A running answer's lease on its stored row, in seconds: its replica
    /// renews it while the answer runs, and an answer whose lease ran out
    /// (its replica died) is marked interrupted by whichever replica sees
    /// it first. Used with a shared (PostgreSQL) store.
    pub answer_lease_secs: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_message_chars: 4_000,
            max_body_bytes: 32 * 1024,
            history_messages: 20,
            heartbeat_secs: 15,
            resume_grace_secs: 30,
            resume_ttl_secs: 120,
            resume_buffer_mib: 64,
            answer_lease_secs: 45,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineSettings {
    /// Pause between streamed words, in milliseconds.
    pub word_delay_ms: u64,
}

impl Default for OfflineSettings {
    fn default() -> Self {
        Self { word_delay_ms: 25 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// The SQLite database file, created on first run (`PORTHOLE_DB`).
    pub path: PathBuf,
    /// A PostgreSQL database (`postgres://…`, or `DATABASE_URL`) instead of
    /// the SQLite file: for several replicas.
    pub url: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/porthole.db"),
            url: None,
        }
    }
}

/// Redis, for what replicas share (`[redis]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://host:port/db` (or `REDIS_URL`); none: limits stay in
    /// each process.
    pub url: Option<String>,
    /// Prefix of every key Porthole writes, so several deployments can
    /// share one Redis.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "porthole:".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// How long a session token minted into a widget page lasts, in seconds.
    pub ttl_secs: u64,
    /// How long after expiry a token may still be renewed, in seconds.
    pub renew_grace_secs: u64,
    /// How old a token may be and still hand its visitor (and so its
    /// conversations) to a new page's session, in days.
    pub resume_days: u64,
    /// The key tokens are signed with (`PORTHOLE_SESSION_SECRET`); when
    /// unset, one is generated into the database on first start, which is
    /// what replicas sharing a database want.
    pub secret: Option<SecretString>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 3_600,
            renew_grace_secs: 86_400,
            resume_days: 30,
            secret: None,
        }
    }
}

/// A widget declared in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    pub id: String,
    pub public_key: String,
    #[serde(default = "default_title")]
    pub title: String,
    #[serde(default)]
    pub system_prompt: String,
    /// A markdown file the widget answers from; relative to the config file.
    #[serde(default)]
    pub knowledge: Option<PathBuf>,
    /// What to say when the knowledge has nothing relevant.
    #[serde(default)]
    pub unknown_reply: String,
    /// How much of a question a passage must cover (0 to 1).
    #[serde(default)]
    pub min_relevance: Option<f32>,
    /// The assistant's first message.
    #[serde(default)]
    pub greeting: String,
    /// Suggested first questions.
    #[serde(default)]
    pub starters: Vec<String>,
    #[serde(default)]
    pub theme: protocol::widget::Theme,
    /// The panel's language (`locale = "auto"` or a tag such as `"de"`),
    /// and per-language greetings, starters and strings
    /// (`[widgets.language.translations.de]`).
    #[serde(default)]
    pub language: crate::tenants::i18n::WidgetLanguage,
    /// The sites that may embed the widget, as origins
    /// (`https://example.com`, `https://*.example.com`, `http://localhost:3000`).
    /// Empty: any site.
    #[serde(default)]
    pub allowed_sites: Vec<String>,
    /// The model for this widget; unset for `upstream.model`.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The secret the site's backend signs user ids with (identity verification).
    #[serde(default)]
    pub verification_secret: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// This widget's limits; absent ones take `[limits]`.
    #[serde(default)]
    pub limits: crate::limits::WidgetLimits,
}

impl WidgetSettings {
    /// The stored form, with the knowledge file read.
    pub fn to_def(&self) -> Result<crate::tenants::WidgetDef, ConfigError> {
        let knowledge = match &self.knowledge {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?,
            None => String::new(),
        };
        Ok(self.def_with(knowledge))
    }

    fn def_with(&self, knowledge: String) -> crate::tenants::WidgetDef {
        crate::tenants::WidgetDef {
            id: self.id.clone(),
            title: self.title.clone(),
            greeting: self.greeting.clone(),
            starters: self.starters.clone(),
            theme: self.theme.clone(),
            language: self.language.clone(),
            system_prompt: self.system_prompt.clone(),
            model: self.model.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            knowledge,
            unknown_reply: self.unknown_reply.clone(),
            min_relevance: self.min_relevance,
            allowed_sites: self.allowed_sites.clone(),
            verification_secret: self.verification_secret.clone(),
            disabled: self.disabled,
            limits: self.limits.clone(),
            source: "config".into(),
            created_at: 0,
            updated_at: 0,
        }
    }
}

fn default_title() -> String {
    "Chat with us".into()
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Top-level fields that a single-underscore variable names
/// (`PORTHOLE_SHUTDOWN_DEADLINE_MS`); the named variables of
/// `apply_env` (`PORTHOLE_ADDR`, …) are read there.
const TOP_LEVEL_FIELDS: &[&str] = &["shutdown_deadline_ms"];

/// Sets the field a `PORTHOLE_A__B` variable names in the config table.
fn apply_env_path(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix("PORTHOLE_") else {
        return Ok(());
    };
    let lower = rest.to_ascii_lowercase();
    if !lower.contains("__") && !TOP_LEVEL_FIELDS.contains(&lower.as_str()) {
        return Ok(());
    }
    let path: Vec<&str> = lower.split("__").collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(invalid(
            name,
            "has an empty part between double underscores",
        ));
    }
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, parents) = path.split_last().unwrap_or((&"", &[]));
    let mut here = table;
    for part in parents {
        let entry = here
            .entry((*part).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = entry
            .as_table_mut()
            .ok_or_else(|| invalid(name, format!("{part} is not a section")))?;
    }
    here.insert((*last).to_owned(), parsed);
    Ok(())
}

/// The environment, as far as settings are concerned; a trait-free seam so
/// tests can pass a map instead of mutating the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Reads `path` (if any), then applies environment overrides, then checks.
    pub fn load(path: Option<&Path>, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        Self::load_with(path, env, std::env::vars())
    }

    /// [`Self::load`] with the `PORTHOLE_SECTION__FIELD` variables given:
    /// any field of the file can be set from the environment, a double
    /// underscore for each level (`PORTHOLE_CHAT__MAX_MESSAGE_CHARS=2000`,
    /// `PORTHOLE_UPSTREAM__TEMPERATURE=0.2`, `PORTHOLE_SHUTDOWN_DEADLINE_MS=20000`
    /// for a top-level one). Values are read as TOML (numbers, booleans,
    /// arrays) or else as strings.
    pub fn load_with(
        path: Option<&Path>,
        env: EnvLookup<'_>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, base_dir) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
                (table, path.parent().map(Path::to_owned))
            }
            None => (toml::Table::new(), None),
        };
        for (name, value) in vars {
            apply_env_path(&mut table, &name, &value)?;
        }
        let mut settings: Self = table.try_into().map_err(|e: toml::de::Error| match path {
            Some(path) => ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            },
            None => invalid("environment", e.to_string()),
        })?;
        settings.apply_env(env)?;
        if let Some(dir) = base_dir {
            for widget in &mut settings.widgets {
                if let Some(k) = &widget.knowledge
                    && k.is_relative()
                {
                    widget.knowledge = Some(dir.join(k));
                }
            }
        }
        settings.validate()?;
        Ok(settings)
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn apply_env(&mut self, env: EnvLookup<'_>) -> Result<(), ConfigError> {
        if let Some(addr) = env("PORTHOLE_ADDR") {
            self.addr = addr.parse().map_err(|_| {
                invalid(
                    "PORTHOLE_ADDR",
                    format!("{addr:?} is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(format) = env("PORTHOLE_LOG_FORMAT") {
            self.log.format = match format.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => {
                    return Err(invalid(
                        "PORTHOLE_LOG_FORMAT",
                        format!("{other:?} is neither \"human\" nor \"json\""),
                    ));
                }
            };
        }
        if let Some(path) = env("PORTHOLE_DB").filter(|p| !p.trim().is_empty()) {
            self.store.path = PathBuf::from(path);
        }
        if let Some(url) = env("DATABASE_URL").filter(|u| !u.trim().is_empty()) {
            self.store.url = Some(url);
        }
        if let Some(url) = env("REDIS_URL").filter(|u| !u.trim().is_empty()) {
            self.redis.url = Some(url);
        }
        if let Some(filter) = env("PORTHOLE_LOG") {
            self.log.filter = filter;
        }
        if let Some(key) = env("OPENAI_API_KEY").filter(|k| !k.trim().is_empty()) {
            self.upstream.api_key = Some(SecretString::from(key));
        }
        if let Some(url) = env("OPENAI_BASE_URL").filter(|u| !u.trim().is_empty()) {
            self.upstream.base_url = url;
        }
        if let Some(secret) = env("PORTHOLE_SESSION_SECRET").filter(|k| !k.trim().is_empty()) {
            self.session.secret = Some(SecretString::from(secret));
        }
        if let Some(url) = env("PORTHOLE_PUBLIC_URL").filter(|u| !u.trim().is_empty()) {
            self.public_url = Some(url.trim_end_matches('/').to_owned());
        }
        if let Some(model) = env("OPENAI_MODEL").filter(|m| !m.trim().is_empty()) {
            self.upstream.model = model;
        }
        if let Some(provider) = env("PORTHOLE_PROVIDER") {
            self.upstream.provider = match provider.as_str() {
                "auto" => ProviderKind::Auto,
                "openai" => ProviderKind::Openai,
                "offline" => ProviderKind::Offline,
                other => {
                    return Err(invalid(
                        "PORTHOLE_PROVIDER",
                        format!("{other:?} is not one of auto, openai, offline"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Checks what serde cannot: ranges, formats, uniqueness.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis.url {
            if url.starts_with("rediss://") {
                return Err(invalid(
                    "redis.url",
                    "TLS to Redis (rediss://) is not supported yet: reach Redis with redis:// on a private network",
                ));
            }
            if !url.starts_with("redis://") {
                return Err(invalid(
                    "redis.url",
                    "must be a Redis URL (redis://host:port/db)",
                ));
            }
        }
        if let Some(url) = &self.store.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                "must be a PostgreSQL URL (postgres://user:password@host/database)",
            ));
        }
        let up = &self.upstream;
        if self.chat.answer_lease_secs.saturating_mul(1000) <= up.first_token_timeout_ms {
            return Err(invalid(
                "chat.answer_lease_secs",
                "must be longer than upstream.first_token_timeout_ms (an answer waiting for its first token is not renewed)",
            ));
        }
        if !(up.base_url.starts_with("http://") || up.base_url.starts_with("https://")) {
            return Err(invalid(
                "upstream.base_url",
                format!("{:?} must start with http:// or https://", up.base_url),
            ));
        }
        if up.model.trim().is_empty() {
            return Err(invalid("upstream.model", "must not be empty"));
        }
        if !(0.0..=2.0).contains(&up.temperature) {
            return Err(invalid("upstream.temperature", "must be between 0 and 2"));
        }
        if up.max_tokens == 0 {
            return Err(invalid("upstream.max_tokens", "must be at least 1"));
        }
        for (field, value) in [
            ("upstream.first_token_timeout_ms", up.first_token_timeout_ms),
            ("upstream.idle_timeout_ms", up.idle_timeout_ms),
            ("upstream.connect_timeout_ms", up.connect_timeout_ms),
            ("chat.heartbeat_secs", self.chat.heartbeat_secs),
            ("chat.max_body_bytes", self.chat.max_body_bytes),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if self.session.ttl_secs == 0 || self.session.ttl_secs > 7 * 86_400 {
            return Err(invalid("session.ttl_secs", "must be 1 second to 7 days"));
        }
        if self
            .session
            .secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            return Err(invalid(
                "session.secret",
                "must be at least 32 characters (PORTHOLE_SESSION_SECRET)",
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "public_url",
                format!("{url:?} must start with http:// or https://"),
            ));
        }
        if let Err(why) = crate::knowledge::embed::Embedder::new(&self.embeddings) {
            return Err(invalid("embeddings.base_url", why));
        }
        if self.embeddings.batch_size == 0 || self.embeddings.batch_size > 2048 {
            return Err(invalid("embeddings.batch_size", "must be 1 to 2048"));
        }
        for (model, price) in &self.prices {
            for (what, value) in [
                ("input_per_million", price.input_per_million),
                ("output_per_million", price.output_per_million),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(invalid(
                        format!("prices.{model:?}.{what}"),
                        "must be a number of dollars, 0 or more",
                    ));
                }
            }
        }
        if self.webhooks.timeout_ms == 0 || self.webhooks.timeout_ms > 120_000 {
            return Err(invalid("webhooks.timeout_ms", "must be 1 to 120000"));
        }
        if self.webhooks.keep_days == 0 {
            return Err(invalid("webhooks.keep_days", "must be 1 or more"));
        }
        if self.webhooks.retry_schedule_ms.len() > 20 {
            return Err(invalid("webhooks.retry_schedule_ms", "at most 20 retries"));
        }
        if self.chat.max_message_chars == 0 {
            return Err(invalid("chat.max_message_chars", "must be greater than 0"));
        }
        if up.provider == ProviderKind::Openai
            && up.api_key.is_none()
            && up.base_url.contains("api.openai.com")
        {
            return Err(invalid(
                "upstream.api_key",
                "provider \"openai\" at api.openai.com needs OPENAI_API_KEY",
            ));
        }
        let mut ids = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for (i, w) in self.widgets.iter().enumerate() {
            let field = |name: &str| format!("widgets[{i}].{name}");
            if let Err(why) = crate::tenants::WidgetId::parse(&w.id) {
                return Err(invalid(field("id"), why));
            }
            if !w.public_key.starts_with("pk_")
                || w.public_key.len() < 6
                || w.public_key.len() > 128
            {
                return Err(invalid(
                    field("public_key"),
                    "must start with \"pk_\" and be 6 to 128 characters",
                ));
            }
            if !ids.insert(&w.id) {
                return Err(invalid(
                    field("id"),
                    format!("{:?} is declared twice", w.id),
                ));
            }
            if !keys.insert(&w.public_key) {
                return Err(invalid(field("public_key"), "is used by another widget"));
            }
            if let Err((name, message)) = w.def_with(String::new()).validate() {
                return Err(invalid(field(name), message));
            }
            if let Some(path) = &w.knowledge
                && !path.is_file()
            {
                return Err(invalid(
                    field("knowledge"),
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        Ok(())
    }

    /// Where browsers reach this server: `public_url`, or `http://{addr}`.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None if self.addr.ip().is_unspecified() => {
                format!("http://127.0.0.1:{}", self.addr.port())
            }
            None => format!("http://{}", self.addr),
        }
    }

    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_millis(self.shutdown_deadline_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::valid_site;
    use secrecy::ExposeSecret;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn err_text(toml: &str) -> String {
        let settings = Settings::from_toml(toml);
        match settings {
            Err(e) => e,
            Ok(s) => s.validate().expect_err("should be invalid").to_string(),
        }
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let s = Settings::from_toml("").unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.upstream.effective_provider(), ProviderKind::Offline);
        s.validate().unwrap();
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |k: &str| match k {
            "OPENAI_API_KEY" => Some("sk-test".to_owned()),
            "OPENAI_BASE_URL" => Some("http://127.0.0.1:11434/v1".to_owned()),
            "OPENAI_MODEL" => Some("llama3".to_owned()),
            "PORTHOLE_ADDR" => Some("0.0.0.0:9000".to_owned()),
            _ => None,
        };
        let dir = std::env::temp_dir().join(format!("porthole-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("porthole.toml");
        std::fs::write(&path, "[upstream]\nmodel = \"from-file\"\n").unwrap();
        let s = Settings::load(Some(&path), &env).unwrap();
        assert_eq!(s.upstream.model, "llama3");
        assert_eq!(s.upstream.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(
            s.upstream.api_key.as_ref().unwrap().expose_secret(),
            "sk-test"
        );
        assert_eq!(s.upstream.effective_provider(), ProviderKind::Openai);
        assert_eq!(s.addr.to_string(), "0.0.0.0:9000");
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err_text("[upstream]\ntemprature = 1.0\n").contains("temprature"));
        assert!(err_text("[upstream]\ntemperature = 3.0\n").contains("upstream.temperature"));
        assert!(err_text("[upstream]\nbase_url = \"ftp://x\"\n").contains("upstream.base_url"));
        assert!(
            err_text("[[widgets]]\nid = \"a b\"\npublic_key = \"pk_abc\"\n")
                .contains("widgets[0].id")
        );
        assert!(
            err_text("[[widgets]]\nid = \"a\"\npublic_key = \"nope\"\n")
                .contains("widgets[0].public_key")
        );
        assert!(
            err_text("[[widgets]]\nid = \"a\"\npublic_key = \"pk_abc\"\n[[widgets]]\nid = \"a\"\npublic_key = \"pk_def\"\n")
                .contains("widgets[1].id")
        );
        assert!(err_text("[chat]\nheartbeat_secs = 0\n").contains("chat.heartbeat_secs"));
        assert!(
            err_text("[[widgets]]\nid = \"a\"\npublic_key = \"pk_abc\"\nallowed_sites = [\"https://x.com; script-src *\"]\n")
                .contains("widgets[0].allowed_sites")
        );
        assert!(err_text("addr = \"nowhere\"\n").contains("addr"));
        assert!(err_text("[store]\nurl = \"mysql://x/y\"\n").contains("store.url"));
        assert!(err_text("[redis]\nurl = \"http://x\"\n").contains("redis.url"));
        assert!(err_text("[redis]\nurl = \"rediss://x\"\n").contains("not supported yet"));
        assert!(
            err_text(
                "[chat]\nanswer_lease_secs = 10\n[upstream]\nfirst_token_timeout_ms = 20000\n"
            )
            .contains("chat.answer_lease_secs")
        );
    }

    #[test]
    fn database_url_and_redis_url_come_from_the_environment() {
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://u:p@db/porthole".to_owned()),
            "REDIS_URL" => Some("redis://cache:6379/0".to_owned()),
            _ => None,
        };
        let s = Settings::load(None, &env).unwrap();
        assert_eq!(s.store.url.as_deref(), Some("postgres://u:p@db/porthole"));
        assert_eq!(s.redis.url.as_deref(), Some("redis://cache:6379/0"));
        let s = Settings::load(None, &|_: &str| None).unwrap();
        assert_eq!((s.store.url, s.redis.url), (None, None));
    }

    #[test]
    fn allowed_sites_are_origins_only() {
        for ok in [
            "https://example.com",
            "http://localhost:3000",
            "https://*.example.com",
            "http://127.0.0.1:8080",
        ] {
            assert!(valid_site(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "https://example.com/path",
            "https://example.com; script-src *",
            "javascript://x",
            "https://",
            "https://ex ample.com",
            "https://example.com:port",
            "*",
            "'self'",
        ] {
            assert!(!valid_site(bad), "{bad}");
        }
    }

    #[test]
    fn any_field_can_come_from_a_double_underscore_variable() {
        let vars = [
            ("PORTHOLE_CHAT__MAX_MESSAGE_CHARS", "2000"),
            ("PORTHOLE_UPSTREAM__TEMPERATURE", "0.2"),
            ("PORTHOLE_UPSTREAM__MODEL", "llama3.1:8b"),
            ("PORTHOLE_SESSION__TTL_SECS", "600"),
            ("PORTHOLE_SHUTDOWN_DEADLINE_MS", "20000"),
            ("PORTHOLE_STORE__PATH", "/data/x.db"),
            ("UNRELATED__VAR", "x"),
            ("PORTHOLE_ADDR", "ignored here: read by name"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let s = Settings::load_with(None, &no_env, vars).unwrap();
        assert_eq!(s.chat.max_message_chars, 2000);
        assert!((s.upstream.temperature - 0.2).abs() < 1e-6);
        assert_eq!(s.upstream.model, "llama3.1:8b");
        assert_eq!(s.session.ttl_secs, 600);
        assert_eq!(s.shutdown_deadline_ms, 20_000);
        assert_eq!(s.store.path, PathBuf::from("/data/x.db"));
        let bad = [(
            "PORTHOLE_CHAT__MAX_MESSAGE_CHARZ".to_owned(),
            "1".to_owned(),
        )];
        let e = Settings::load_with(None, &no_env, bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_message_charz"), "{e}");
        let bad = [(
            "PORTHOLE_CHAT__MAX_MESSAGE_CHARS".to_owned(),
            "lots".to_owned(),
        )];
        assert!(Settings::load_with(None, &no_env, bad).is_err());
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let env = |k: &str| (k == "PORTHOLE_ADDR").then(|| "x".to_owned());
        let e = Settings::load(None, &env).unwrap_err().to_string();
        assert!(e.contains("PORTHOLE_ADDR"), "{e}");
        let e = Settings::load(Some(Path::new("/nonexistent/porthole.toml")), &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/porthole.toml"), "{e}");
    }
}
