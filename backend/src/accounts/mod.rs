//! The console's accounts: who may sign in, with what password, and what
//! each role may do.
//!
//! - Passwords are hashed with argon2id (RustCrypto's `argon2`, the
//!   algorithm OWASP recommends first; its default cost: 19 MiB, 2 passes).
//!   The PHC string keeps the salt and cost, so a later cost change still
//!   verifies old hashes.
//! - A sign-in session is a random token in an `HttpOnly; Secure;
//!   SameSite=Strict` cookie; the store keeps only its SHA-256, with a CSRF
//!   token the console sends back in `X-CSRF-Token` on every change.
//! - Sign-in attempts are limited per address and per email (GCRA).
//!
//! May use: `store`, `tenants` (key hashing), `ids`. Never `http` or
//! `state`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::store::StoreError;
use crate::store::accounts::{AccountStore, ConsoleRole, ConsoleSession, ConsoleUser};
use crate::store::rows::now_ms;
use crate::tenants::session::{hash_key, random_secret};

/// The shortest password accepted (NIST SP 800-63B asks for at least 8;
/// a console that can change what every visitor reads asks for more).
pub const MIN_PASSWORD: usize = 10;
/// The longest: argon2 takes any length, but a megabyte "password" is an
/// attack, not a password.
pub const MAX_PASSWORD: usize = 256;
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "porthole_console";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("a user with the email {0} exists already")]
    Exists(String),
    #[error("the email or password is wrong")]
    WrongCredentials,
    #[error("too many sign-in attempts; try again in {0} s")]
    Throttled(u64),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// An email as stored: trimmed, lower case, and plausibly an address.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err(AccountError::Invalid(format!(
            "{email:?} is not an email address"
        )))
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(AccountError::Invalid(format!(
            "the password needs at least {MIN_PASSWORD} characters"
        )));
    }
    if password.len() > MAX_PASSWORD {
        return Err(AccountError::Invalid(format!(
            "the password may have at most {MAX_PASSWORD} bytes"
        )));
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    // 16 random bytes (a v4 UUID's 122 random bits from the OS): a salt
    // must be unique, not secret.
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| AccountError::Invalid(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Invalid(format!("hashing the password failed: {e}")))
}

/// Whether `password` matches the PHC string `hash` (constant time).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, verified when the email is unknown, so a
/// wrong email takes as long as a wrong password and the timing does not
/// say which emails have accounts.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

/// Creates a user after checking their email and password.
pub async fn create_user(
    store: &dyn AccountStore,
    email: &str,
    password: &str,
    role: ConsoleRole,
) -> Result<ConsoleUser, AccountError> {
    let email = normalize_email(email)?;
    check_password(password)?;
    let hash = blocking_hash(password.to_owned()).await?;
    match store.create_user(&email, &hash, role).await {
        Err(StoreError::Conflict(_)) => Err(AccountError::Exists(email)),
        other => Ok(other?),
    }
}

/// Sets a user's password and ends their sessions.
pub async fn set_password(
    store: &dyn AccountStore,
    user_id: &str,
    password: &str,
) -> Result<bool, AccountError> {
    check_password(password)?;
    let hash = blocking_hash(password.to_owned()).await?;
    Ok(store.set_password(user_id, &hash).await?)
}

/// argon2 takes tens of milliseconds of CPU on purpose: off the async
/// workers.
async fn blocking_hash(password: String) -> Result<String, AccountError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccountError::Invalid(format!("hashing the password failed: {e}")))?
}

/// A new sign-in: the cookie's token (returned once, stored hashed) and the
/// session's CSRF token.
#[derive(Debug)]
pub struct SignedIn {
    pub token: String,
    pub csrf: String,
    pub user: ConsoleUser,
    pub expires_at: i64,
}

/// Sign-in attempts: per address and per email, each a burst of 10 then
/// one every 6 s (10 a minute), so guessing is slow while a person who
/// mistypes is not held up.
#[derive(Debug)]
pub struct SignInLimits {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_email: DefaultKeyedRateLimiter<String>,
}

impl Default for SignInLimits {
    fn default() -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        Self {
            by_ip: DefaultKeyedRateLimiter::keyed(quota),
            by_email: DefaultKeyedRateLimiter::keyed(quota),
        }
    }
}

impl SignInLimits {
    /// Counts an attempt; the seconds to wait when over the limit.
    fn check(&self, ip: Option<IpAddr>, email: &str) -> Result<(), u64> {
        let clock = governor::clock::DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            use governor::clock::Clock;
            not_until.wait_time_from(clock.now()).as_secs().max(1)
        };
        if let Some(ip) = ip {
            self.by_ip.check_key(&ip).map_err(wait)?;
        }
        self.by_email.check_key(&email.to_owned()).map_err(wait)?;
        Ok(())
    }
}

/// Checks an email and password and opens a session.
pub async fn sign_in(
    store: &dyn AccountStore,
    limits: &SignInLimits,
    ip: Option<IpAddr>,
    email: &str,
    password: &str,
) -> Result<SignedIn, AccountError> {
    let email = email.trim().to_lowercase();
    limits.check(ip, &email).map_err(AccountError::Throttled)?;
    if password.len() > MAX_PASSWORD {
        return Err(AccountError::WrongCredentials);
    }
    let found = store.user_by_email(&email).await?;
    let hash = found
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |c| c.password_hash.clone());
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let user = match found {
        Some(c) if matches => c.user,
        _ => return Err(AccountError::WrongCredentials),
    };
    let token = random_secret();
    let csrf = random_secret();
    let expires_at = now_ms() + SESSION_TTL.as_millis() as i64;
    store
        .create_session(&hash_key(&token), &user.id, &csrf, expires_at)
        .await?;
    Ok(SignedIn {
        token,
        csrf,
        user,
        expires_at,
    })
}

/// The live session a cookie's token opens, if any.
pub async fn session(
    store: &dyn AccountStore,
    token: &str,
) -> Result<Option<ConsoleSession>, StoreError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    store.session(&hash_key(token), now_ms()).await
}

/// Ends the session of `token`.
pub async fn sign_out(store: &dyn AccountStore, token: &str) -> Result<(), StoreError> {
    store.delete_session(&hash_key(token)).await
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// What a request needs: `Viewer` to read, `Editor` to change widgets and
/// knowledge, `Owner` for users, keys and the audit log.
pub fn required_role(method: &str, path: &str) -> ConsoleRole {
    // Anyone signed in may sign themselves out.
    if path.starts_with("/api/v1/console/session") {
        return ConsoleRole::Viewer;
    }
    let owner_only = path.starts_with("/api/v1/console/users")
        || path.starts_with("/api/v1/console/audit")
        || path.ends_with("/rotate-key")
        || path.contains("/admin-keys")
        // A webhook sends visitors' words to another server.
        || (path.contains("/webhooks") && !matches!(method, "GET" | "HEAD" | "OPTIONS"));
    if owner_only {
        ConsoleRole::Owner
    } else if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        ConsoleRole::Viewer
    } else {
        ConsoleRole::Editor
    }
}

/// Shared by the server: the sign-in limits.
pub type Limits = Arc<SignInLimits>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password("correct horse battery").expect("hash"));
        assert!(!verify_password("", decoy_hash()));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").expect("valid"),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a da@example.com",
            "ada@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
        assert!(check_password("long enough here").is_ok());
    }

    #[test]
    fn roles_are_required_by_route() {
        use ConsoleRole::*;
        assert_eq!(required_role("GET", "/api/v1/admin/widgets"), Viewer);
        assert_eq!(required_role("PATCH", "/api/v1/admin/widgets/demo"), Editor);
        assert_eq!(
            required_role("POST", "/api/v1/admin/widgets/demo/rotate-key"),
            Owner
        );
        assert_eq!(required_role("GET", "/api/v1/console/users"), Owner);
        assert_eq!(
            required_role("POST", "/api/v1/admin/widgets/demo/webhooks"),
            Owner
        );
        assert_eq!(
            required_role("GET", "/api/v1/admin/widgets/demo/webhooks"),
            Viewer
        );
        assert_eq!(required_role("GET", "/api/v1/console/audit"), Owner);
        assert_eq!(required_role("DELETE", "/api/v1/console/session"), Viewer);
        assert!(Owner > Editor && Editor > Viewer);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
