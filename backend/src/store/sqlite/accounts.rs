//! The console's users, sessions and audit log in SQLite (the statements
//! are shared with PostgreSQL: [`crate::store::accounts`]).

use super::SqliteStore;

/// SQLite takes `?` placeholders as they are written.
fn sql(statement: &'static str) -> &'static str {
    statement
}

crate::store::accounts::account_store!(SqliteStore, writer, reader, sql);
