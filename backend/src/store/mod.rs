//! The store: where everything accepted is kept. This folder owns the
//! traits every store implements ([`ConversationStore`] for conversations,
//! [`TenantStore`] for widgets, keys and usage, [`AccountStore`] for the
//! console's users, sessions and audit log) and their implementations,
//! each with its own migrations: [`sqlite`] (the default, a file under
//! `./data`) and [`postgres`] (for several replicas). [`open`] picks one.
//!
//! May use: `tenants` (the widget types it stores), `limits` (calendar
//! days), `ids`. Never `http`, `chat` or `state`: the store knows rows, not
//! requests.

pub mod accounts;
pub mod analytics;
pub mod conversations;
pub mod inbox;
pub mod knowledge;
pub mod postgres;
pub(crate) mod rows;
pub mod sqlite;
pub mod tenants;
#[cfg(test)]
pub(crate) mod tests;
pub(crate) mod vectors;
pub mod webhooks;

pub use accounts::AccountStore;
pub use conversations::{ConversationStore, MessageStatus, NewAnswer, Owner, Role, StoredMessage};
pub use knowledge::KnowledgeStore;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use tenants::{AdminMessage, ConversationSummary, DailyUsage, KeyHash, TenantStore};
pub use webhooks::WebhookStore;

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

/// Everything a server keeps: conversations, tenants, knowledge, the
/// console's accounts and the webhooks.
pub trait Store:
    ConversationStore + TenantStore + KnowledgeStore + AccountStore + WebhookStore
{
}

impl<T: ConversationStore + TenantStore + KnowledgeStore + AccountStore + WebhookStore> Store
    for T
{
}

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file, created on first use.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (`postgres://…`).
    Postgres(String),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            // The URL without its password.
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://(unparsable URL)"),
            },
        }
    }
}

/// Opens (and migrates) the store at `location`.
pub async fn open(location: &Location) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match location {
        Location::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(path).await?),
        Location::Postgres(url) => std::sync::Arc::new(PgStore::open(url).await?),
    })
}
