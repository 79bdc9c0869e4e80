//! The store: where everything accepted is kept. This folder owns the
//! traits every store implements ([`ConversationStore`] for conversations,
//! [`TenantStore`] for widgets, keys and usage) and their implementations,
//! each with its own migrations: [`sqlite`] (the default, a file under
//! `./data`); a PostgreSQL store sits beside it.
//!
//! May use: `tenants` (the widget types it stores), `limits` (calendar
//! days), `ids`. Never `http`, `chat` or `state`: the store knows rows, not
//! requests.

pub mod conversations;
pub mod knowledge;
pub mod sqlite;
pub mod tenants;

pub use conversations::{ConversationStore, MessageStatus, NewAnswer, Owner, Role, StoredMessage};
pub use knowledge::KnowledgeStore;
pub use sqlite::SqliteStore;
pub use tenants::{AdminMessage, ConversationSummary, DailyUsage, KeyHash, TenantStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation {0} does not exist")]
    NoSuchConversation(String),
    #[error("{0} exists already")]
    Conflict(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}
