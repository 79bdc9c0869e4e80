//! Porthole's wire contract: the JSON bodies and SSE events that pass between
//! the widget (wasm32, in the browser) and the server (native).
//!
//! This crate is the one source of truth for the wire format, so it depends on
//! serde and serde_json alone and compiles for both targets. The optional
//! `openapi` feature (turned on by the server only) derives OpenAPI schemas for
//! the same types, so the published spec cannot drift from what is sent.
//!
//! - [`api`]: request and response bodies, and the [`ApiError`] every failure
//!   is reported with.
//! - [`event`]: the typed events of a chat answer and their SSE framing.
//! - [`sse`]: an incremental SSE parser that accepts its input split anywhere.
//! - [`widget`]: the widget's public settings and the history it shows.
//! - [`frame`]: the `postMessage` protocol between the iframe and its host.
//! - [`i18n`]: the keys of the panel's strings, which the server sends in
//!   the visitor's language.

pub mod api;
pub mod event;
pub mod frame;
pub mod i18n;
pub mod sse;
pub mod widget;

pub use api::{ApiError, ChatRequest, ErrorCode};
pub use event::{DoneEvent, MetaEvent, SourceRef, StreamEvent, Usage};
pub use sse::{SseMessage, SseParser};
