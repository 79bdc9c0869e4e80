//! Webhooks and their deliveries in PostgreSQL (the statements are shared
//! with SQLite: [`crate::store::webhooks`]).

use super::PgStore;
use crate::store::inbox::numbered as sql;

crate::store::webhooks::webhook_store!(PgStore, sqlx::postgres::PgRow, pool, pool, sql);
