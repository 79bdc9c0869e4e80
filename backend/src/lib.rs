//! Porthole's server as a library: `main.rs` only hands the command line to
//! [`cli`], so integration tests build and run exactly what the binary runs.
//!
//! One folder per subsystem; imports point down this list, never up:
//!
//! - `cli/`: the `porthole` command (serve, migrate, widget, knowledge,
//!   admin-key, user, healthcheck).
//! - `app`, `state`: building and running the server; what handlers reach.
//! - `http/`: salvo only: the router, hoops and one file per route group.
//! - `chat/`: a turn: prompt, grounding, relay, the answer's lifecycle and
//!   its resumable event log (mirrored to Redis for other replicas).
//! - `admin/`: managing widgets and keys (the admin API and the CLI).
//! - `accounts/`: the console's users: argon2 passwords, sign-in sessions
//!   and their limits, and what each role may do.
//! - `assets/`: the built widget, its iframe document and the loader script.
//! - `ingest/`: knowledge sources through fetch, extraction and chunking into the store.
//! - `provider/`: the OpenAI-compatible and offline answerers.
//! - `store/`: the store traits and their SQLite and PostgreSQL
//!   implementations.
//! - `tenants/`: widgets, keys, sessions, identity verification.
//! - `knowledge/`: crawler, extraction (HTML, PDF, DOCX), chunking, the
//!   question analyser, the embeddings client.
//! - `limits/`: rate limits (in the process, or shared through Redis) and
//!   budgets.
//! - `config`, `error`, `telemetry`, `metrics`, `ids`, `testing`: settings,
//!   the API error, logs, Prometheus metrics, ids, the test servers' URLs.
//!
//! `scripts/check-layers` fails the build when a lower folder imports a
//! higher one.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod assets;
pub mod chat;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod knowledge;
pub mod limits;
pub mod metrics;
pub mod provider;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod testing;
pub mod webhooks;

pub use app::Application;
pub use config::Settings;
