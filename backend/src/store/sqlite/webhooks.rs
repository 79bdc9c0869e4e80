//! Webhooks and their deliveries in SQLite (the statements are shared
//! with PostgreSQL: [`crate::store::webhooks`]).

use super::SqliteStore;

/// SQLite takes `?` placeholders as they are written.
fn sql(statement: &str) -> String {
    statement.to_owned()
}

crate::store::webhooks::webhook_store!(SqliteStore, sqlx::sqlite::SqliteRow, writer, reader, sql);
