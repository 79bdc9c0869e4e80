//! Integration tests: the real server on port 0, the mock upstream over real
//! HTTP, and a real HTTP client. One binary for all of them (zero2prod style).

pub(crate) mod admin;
mod analytics;
mod chat;
mod console;
mod docsite;
mod faults;
mod feedback;
mod helpers;
mod inbox;
mod knowledge;
mod limits;
mod nginx;
mod offline;
mod persistence;
mod probes;
mod replicas;
pub(crate) mod resume;
mod sessions;
mod shutdown;
mod upgrade;
mod validation;
mod webhooks;
