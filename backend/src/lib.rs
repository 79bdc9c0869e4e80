//! Porthole's server as a library: `main.rs` only parses the command line,
//! so integration tests build and run exactly what the binary runs.

pub mod admin;
pub mod app;
pub mod auth;
pub mod chat;
pub mod config;
pub mod error;
pub mod history;
pub mod knowledge;
pub mod limits;
pub mod loader_routes;
pub mod provider;
pub mod routes;
pub mod session;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod widget;
pub mod widget_page;

pub use app::Application;
pub use config::Settings;
