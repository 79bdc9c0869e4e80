//! Session tokens, hashed keys and identity verification.
//!
//! The server mints a short-lived session token into each `/widget/{id}`
//! page, which only the widget's allowed sites can frame. The chat and
//! history APIs take that token, not the public key, so a page on another
//! site cannot use a widget even though its key is public. A token is
//! `v1.<payload>.<mac>`: base64url JSON naming the widget, the visitor, the
//! verified user (if any) and the expiry, and an HMAC-SHA256 of it under the
//! server's secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";

/// Who a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The widget's id.
    #[serde(rename = "w")]
    pub widget: String,
    /// The anonymous visitor: random, kept by the widget across reloads.
    #[serde(rename = "v")]
    pub visitor: String,
    /// The site's user, when the site proved it with an HMAC.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Unix seconds after which the token is refused.
    #[serde(rename = "exp")]
    pub expires: u64,
}

impl Session {
    /// A session that lasts at least `ttl_secs` from now.
    pub fn starting_now(
        widget: String,
        visitor: String,
        user: Option<String>,
        ttl_secs: u64,
    ) -> Self {
        Self {
            widget,
            visitor,
            user,
            expires: expiry_after(since_epoch(), ttl_secs),
        }
    }

    /// Whether the token still counts at `now` when it may be used up to
    /// `grace_secs` past its expiry (0 for the chat and history APIs).
    pub fn usable_at(&self, now: u64, grace_secs: u64) -> bool {
        self.expires.saturating_add(grace_secs) > now
    }
}

/// Why a token was refused. `Expired` is only said of a token whose
/// signature is good, so it tells a forger nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// Signs and checks session tokens.
#[derive(Clone)]
pub struct SessionKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail.
        HmacSha256::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable!())
    }

    pub fn mint(&self, session: &Session) -> String {
        let payload = B64.encode(serde_json::to_vec(session).unwrap_or_default());
        let signed = format!("{VERSION}.{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The session a token speaks for, if its signature is good; whether it
    /// has expired is for the caller to judge (see [`Self::verify`]).
    pub fn open(&self, token: &str) -> Result<Session, TokenError> {
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let payload = signed
            .strip_prefix(VERSION)
            .and_then(|p| p.strip_prefix('.'))
            .ok_or(TokenError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        // Constant time.
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let json = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)
    }

    /// The session of a good, unexpired token.
    pub fn verify(&self, token: &str, now: u64) -> Result<Session, TokenError> {
        let session = self.open(token)?;
        if !session.usable_at(now, 0) {
            return Err(TokenError::Expired);
        }
        Ok(session)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    since_epoch().as_secs()
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The expiry (whole Unix seconds) of a token minted at `now` that must
/// last `ttl_secs`. A token counts while `unix_now() < expires`, so the
/// instant is rounded up: rounded down, a token minted at 10.999 s with a
/// one-second life would lapse a millisecond later.
fn expiry_after(now: Duration, ttl_secs: u64) -> u64 {
    let started = now
        .as_secs()
        .saturating_add(u64::from(now.subsec_nanos() > 0));
    started.saturating_add(ttl_secs)
}

/// A new anonymous visitor id.
pub fn new_visitor() -> String {
    crate::ids::new_id("vis")
}

/// A random secret: 256 bits as 64 hex digits.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A new key with its prefix (`pk`, `ak`): `pk_` and 32 hex digits of
/// randomness (122 bits) for public keys, 64 for admin keys.
pub fn new_key(prefix: &str) -> String {
    match prefix {
        "pk" => format!("pk_{}", uuid::Uuid::new_v4().simple()),
        _ => format!("{prefix}_{}", random_secret()),
    }
}

/// How keys are stored: SHA-256, hex. Keys are long random strings, so a
/// fast hash is enough (nothing to brute-force as with passwords).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// What a key is shown as once stored: its first characters.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(10).collect()
}

/// The identity hash a site backend sends for `user_id`:
/// lowercase hex of HMAC-SHA256(secret, user_id).
pub fn identity_hash(secret: &str, user_id: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `hash` is the identity hash of `user_id` under `secret`,
/// compared in constant time.
pub fn verify_identity(secret: &str, user_id: &str, hash: &str) -> bool {
    let Ok(tag) = hex::decode(hash.trim()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(user_id.as_bytes());
    mac.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(exp: u64) -> Session {
        Session {
            widget: "acme".into(),
            visitor: "vis_1".into(),
            user: Some("u-42".into()),
            expires: exp,
        }
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let keys = SessionKeys::new(b"secret");
        let token = keys.mint(&session(1_000));
        assert_eq!(keys.verify(&token, 999), Ok(session(1_000)));
        assert_eq!(keys.verify(&token, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn a_session_lasts_at_least_its_ttl_whenever_in_the_second_it_starts() {
        for (now, ttl, expires) in [
            (Duration::from_secs(10), 1, 11),
            (Duration::from_millis(10_001), 1, 12),
            (Duration::from_millis(10_999), 1, 12),
            (Duration::from_nanos(10_000_000_001), 3_600, 3_611),
        ] {
            assert_eq!(expiry_after(now, ttl), expires, "{now:?} + {ttl}");
            // It counts for at least `ttl` and less than `ttl + 1` seconds.
            let life = Duration::from_secs(expires) - now;
            assert!(life >= Duration::from_secs(ttl), "{now:?} + {ttl}");
            assert!(life < Duration::from_secs(ttl + 1), "{now:?} + {ttl}");
        }
        assert_eq!(expiry_after(Duration::MAX, 5), u64::MAX);
    }

    #[test]
    fn forged_and_tampered_tokens_are_invalid() {
        let keys = SessionKeys::new(b"secret");
        let token = keys.mint(&session(1_000));
        // Signed with another secret.
        let forged = SessionKeys::new(b"other").mint(&session(1_000));
        assert_eq!(keys.verify(&forged, 1), Err(TokenError::Invalid));
        // The payload changed to another widget, signature kept.
        let (_, rest) = token.split_once('.').unwrap();
        let (_, tag) = rest.split_once('.').unwrap();
        let mut other = session(1_000);
        other.widget = "other".into();
        let payload = B64.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            keys.verify(&format!("v1.{payload}.{tag}"), 1),
            Err(TokenError::Invalid)
        );
        // An expired forgery is invalid, not expired.
        assert_eq!(keys.verify(&forged, 5_000), Err(TokenError::Invalid));
        for junk in [
            "",
            "v1",
            "v1..",
            "v2.e30.",
            "x.y.z",
            &token[..token.len() - 2],
        ] {
            assert_eq!(keys.verify(junk, 1), Err(TokenError::Invalid), "{junk:?}");
        }
    }

    #[test]
    fn identity_hashes_match_the_documented_recipe() {
        // printf 'user-42' | openssl dgst -sha256 -hmac 'site-secret'
        let hash = identity_hash("site-secret", "user-42");
        assert_eq!(
            hash,
            "360ea68ccc98e76abe82ace2ab09553dc9a0814b9df79c2e0d396877aca6aa72"
        );
        assert!(verify_identity("site-secret", "user-42", &hash));
        assert!(verify_identity(
            "site-secret",
            "user-42",
            &hash.to_uppercase()
        ));
        assert!(!verify_identity("site-secret", "user-43", &hash));
        assert!(!verify_identity("other", "user-42", &hash));
        assert!(!verify_identity("site-secret", "user-42", ""));
        assert!(!verify_identity("site-secret", "user-42", "zz"));
    }

    #[test]
    fn keys_are_random_and_stored_hashed() {
        let (a, b) = (new_key("pk"), new_key("pk"));
        assert!(a.starts_with("pk_") && a.len() == 35 && a != b);
        assert_eq!(new_key("ak").len(), 67);
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(key_prefix(&a), &a[..10]);
    }
}
