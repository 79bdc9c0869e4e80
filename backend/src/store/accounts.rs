//! The console's people in the store: users (email, argon2 hash, role),
//! their sign-in sessions (kept as hashes of the cookie's token, with the
//! session's CSRF token), and the audit log of changes.
//!
//! The rules (hashing, what each role may do) are in the `accounts`
//! module above the store; this file knows rows.

use async_trait::async_trait;
use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// What a console user may do. Viewers read; editors also change widgets
/// and knowledge; owners also manage users, keys and read the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleRole {
    Viewer,
    Editor,
    Owner,
}

impl ConsoleRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "editor" => Some(Self::Editor),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// A console user as the console lists them (never with the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConsoleUser {
    pub id: String,
    pub email: String,
    pub role: ConsoleRole,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A user with their password hash, for signing in.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: ConsoleUser,
    /// The PHC string (`$argon2id$…`).
    pub password_hash: String,
}

/// A live sign-in session, found by the hash of its cookie's token.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub user: ConsoleUser,
    pub csrf: String,
    pub expires_at: i64,
}

/// One change, as owners read the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// `user:<email>` or `key:<admin key prefix>`.
    pub actor: String,
    /// The method and route, e.g. `PATCH /api/v1/admin/widgets/{id}`.
    pub action: String,
    /// The path changed, e.g. `/api/v1/admin/widgets/demo`.
    pub target: String,
    /// The HTTP status the change was answered with.
    pub status: u16,
}

#[async_trait]
pub trait AccountStore: Send + Sync + std::fmt::Debug {
    /// Adds a user; `Conflict` when the email is taken.
    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: ConsoleRole,
    ) -> Result<ConsoleUser, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError>;
    async fn users(&self) -> Result<Vec<ConsoleUser>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// Changes a user's role; false when there is no such user.
    async fn set_role(&self, id: &str, role: ConsoleRole) -> Result<bool, StoreError>;
    /// Removes a user and their sessions; false when there is no such user.
    async fn delete_user(&self, id: &str) -> Result<bool, StoreError>;
    /// Sets a new password hash and ends all of the user's sessions.
    async fn set_password(&self, id: &str, password_hash: &str) -> Result<bool, StoreError>;

    async fn create_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The session whose token hashes to `token_hash`, when it has not
    /// expired at `now`.
    async fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<ConsoleSession>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Ends every session of a user ("sign out everywhere"); how many.
    async fn delete_sessions_of(&self, user_id: &str) -> Result<u64, StoreError>;

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        status: u16,
    ) -> Result<(), StoreError>;
    /// The newest entries first, before `before` (an entry id) when given.
    async fn audit_log(
        &self,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// A user from a row's columns.
pub(crate) fn user_from(
    id: String,
    email: String,
    role: &str,
    created_at: i64,
) -> Result<ConsoleUser, StoreError> {
    Ok(ConsoleUser {
        id,
        email,
        role: ConsoleRole::parse(role).ok_or_else(|| {
            StoreError::Unavailable(format!("unknown role {role:?} in the store"))
        })?,
        created_at: created_at.max(0) as u64,
    })
}

/// Whether an insert failed on a unique column.
pub(crate) fn unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// [`AccountStore`] for a store type, written once for both databases:
/// `$writer`/`$reader` are its pools, and `$sql` turns the statements'
/// `?` placeholders into the database's own (PostgreSQL numbers them).
macro_rules! account_store {
    ($store:ty, $writer:ident, $reader:ident, $sql:path) => {
        use async_trait::async_trait;
        use sqlx::{AssertSqlSafe, Row};
        use $crate::ids::new_id;
        use $crate::store::StoreError;
        use $crate::store::accounts::{
            AccountStore, AuditEntry, ConsoleRole, ConsoleSession, ConsoleUser, UserCredentials,
            unique_violation, user_from,
        };
        use $crate::store::rows::now_ms;

        #[async_trait]
        impl AccountStore for $store {
            async fn create_user(
                &self,
                email: &str,
                password_hash: &str,
                role: ConsoleRole,
            ) -> Result<ConsoleUser, StoreError> {
                let user = ConsoleUser {
                    id: new_id("usr"),
                    email: email.to_owned(),
                    role,
                    created_at: now_ms() as u64,
                };
                let done = sqlx::query(
                    AssertSqlSafe($sql("INSERT INTO console_users (id, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)")),
                )
                .bind(&user.id)
                .bind(email)
                .bind(password_hash)
                .bind(role.as_str())
                .bind(user.created_at as i64)
                .execute(&self.$writer)
                .await;
                match done {
                    Ok(_) => Ok(user),
                    Err(e) if unique_violation(&e) => Err(StoreError::Conflict(format!("user {email:?}"))),
                    Err(e) => Err(e.into()),
                }
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError> {
                let row = sqlx::query(AssertSqlSafe($sql(
                    "SELECT id, email, role, created_at, password_hash FROM console_users WHERE email = ?",
                )))
                .bind(email)
                .fetch_optional(&self.$reader)
                .await?;
                row.map(|r| {
                    Ok(UserCredentials {
                        user: user_from(r.get(0), r.get(1), r.get::<String, _>(2).as_str(), r.get(3))?,
                        password_hash: r.get(4),
                    })
                })
                .transpose()
            }

            async fn users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
                sqlx::query(AssertSqlSafe($sql(
                    "SELECT id, email, role, created_at FROM console_users ORDER BY email",
                )))
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map(|r| user_from(r.get(0), r.get(1), r.get::<String, _>(2).as_str(), r.get(3)))
                .collect()
            }

            async fn count_users(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar(AssertSqlSafe($sql("SELECT COUNT(*) FROM console_users")))
                    .fetch_one(&self.$reader)
                    .await?;
                Ok(n.max(0) as u64)
            }

            async fn set_role(&self, id: &str, role: ConsoleRole) -> Result<bool, StoreError> {
                let done = sqlx::query(AssertSqlSafe($sql(
                    "UPDATE console_users SET role = ? WHERE id = ?",
                )))
                .bind(role.as_str())
                .bind(id)
                .execute(&self.$writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
                let mut tx = self.$writer.begin().await?;
                sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM console_sessions WHERE user_id = ?",
                )))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let done = sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM console_users WHERE id = ?",
                )))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_password(&self, id: &str, password_hash: &str) -> Result<bool, StoreError> {
                let mut tx = self.$writer.begin().await?;
                let done = sqlx::query(AssertSqlSafe($sql(
                    "UPDATE console_users SET password_hash = ? WHERE id = ?",
                )))
                .bind(password_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM console_sessions WHERE user_id = ?",
                )))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_session(
                &self,
                token_hash: &str,
                user_id: &str,
                csrf: &str,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                let now = now_ms();
                // Expired sessions go as new ones come.
                sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM console_sessions WHERE expires_at <= ?",
                )))
                .bind(now)
                .execute(&self.$writer)
                .await?;
                sqlx::query(
                    AssertSqlSafe($sql("INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")),
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(csrf)
                .bind(now)
                .bind(expires_at)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn session(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<ConsoleSession>, StoreError> {
                let row = sqlx::query(AssertSqlSafe($sql(
                    "SELECT u.id, u.email, u.role, u.created_at, s.csrf, s.expires_at \
                     FROM console_sessions s JOIN console_users u ON u.id = s.user_id \
                     WHERE s.token_hash = ? AND s.expires_at > ?",
                )))
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.$reader)
                .await?;
                row.map(|r| {
                    Ok(ConsoleSession {
                        user: user_from(r.get(0), r.get(1), r.get::<String, _>(2).as_str(), r.get(3))?,
                        csrf: r.get(4),
                        expires_at: r.get(5),
                    })
                })
                .transpose()
            }

            async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
                sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM console_sessions WHERE token_hash = ?",
                )))
                .bind(token_hash)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn delete_sessions_of(&self, user_id: &str) -> Result<u64, StoreError> {
                let done = sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM console_sessions WHERE user_id = ?",
                )))
                .bind(user_id)
                .execute(&self.$writer)
                .await?;
                Ok(done.rows_affected())
            }

            async fn audit(
                &self,
                actor: &str,
                action: &str,
                target: &str,
                status: u16,
            ) -> Result<(), StoreError> {
                sqlx::query(AssertSqlSafe($sql(
                    "INSERT INTO audit_log (at, actor, action, target, status) VALUES (?, ?, ?, ?, ?)",
                )))
                .bind(now_ms())
                .bind(actor)
                .bind(action)
                .bind(target)
                .bind(i32::from(status))
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn audit_log(
                &self,
                limit: u32,
                before: Option<i64>,
            ) -> Result<Vec<AuditEntry>, StoreError> {
                let rows = sqlx::query(AssertSqlSafe($sql(
                    "SELECT id, at, actor, action, target, status FROM audit_log \
                     WHERE id < ? ORDER BY id DESC LIMIT ?",
                )))
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| AuditEntry {
                        id: r.get(0),
                        at: r.get::<i64, _>(1).max(0) as u64,
                        actor: r.get(2),
                        action: r.get(3),
                        target: r.get(4),
                        status: r.get::<i32, _>(5).clamp(0, i32::from(u16::MAX)) as u16,
                    })
                    .collect())
            }
        }
    };
}
pub(crate) use account_store;
