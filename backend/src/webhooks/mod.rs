//! Webhooks as the Standard Webhooks spec says: each event is POSTed as
//! JSON (`{"type", "timestamp", "data"}`) with `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` (`v1,` and the base64
//! HMAC-SHA256 of `{id}.{timestamp}.{body}` under the secret's bytes, the
//! secret written `whsec_` and base64). A receiver's own Standard Webhooks
//! library verifies them as they are.
//!
//! Events are queued in the store as they happen (so none is lost when
//! the receiver is down or this process stops) and sent by [`Webhooks::run`]:
//! at once, then again after the spec's schedule (5 s, 5 min, 30 min, 2 h,
//! 5 h, 10 h, 10 h: about 27 hours), each wait with ±20 % jitter, until a
//! 2xx. Targets on loopback or private networks are refused, when the URL
//! is given and again when its name is resolved, unless
//! `[webhooks] allow_private_addresses` is set.
//!
//! May use: `store`, `knowledge` (the address checks), `limits` (dates),
//! `ids`. Never `http`, `state` or `chat`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::knowledge::crawl::is_private;
use crate::store::WebhookStore;
use crate::store::webhooks::{Attempted, DueDelivery};

/// The events a webhook may take.
pub const EVENTS: [&str; 3] = [
    "conversation.created",
    "message.completed",
    "feedback.created",
];

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Send to loopback and private addresses (a receiver on this machine
    /// or network). Off: a webhook cannot make the server call its own
    /// network.
    pub allow_private_addresses: bool,
    /// Timeout of one attempt, in milliseconds.
    pub timeout_ms: u64,
    /// The waits before each retry, in milliseconds; after the last, the
    /// delivery is given up on (a manual redelivery sends it again).
    pub retry_schedule_ms: Vec<u64>,
    /// Webhooks one widget may have.
    pub max_per_widget: u32,
    /// Days the delivery log keeps what was delivered or given up on.
    pub keep_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            timeout_ms: 15_000,
            retry_schedule_ms: [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
                .map(|s| s * 1_000)
                .to_vec(),
            max_per_widget: 10,
            keep_days: 30,
        }
    }
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("whsec_{}", BASE64.encode(bytes))
}

/// The `webhook-signature` value of a message: `v1,` and the base64 of
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the secret's
/// bytes (the base64 after `whsec_`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| "the secret is not whsec_ and base64".to_owned())?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key).map_err(|_| "the secret is empty".to_owned())?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// Checks a target address: an absolute http(s) URL with a host, no user
/// or password in it, and (unless allowed) not a private or loopback IP.
/// Names are checked again when resolved, at each attempt.
pub fn check_target(url: &str, allow_private: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url.trim()).map_err(|_| "not a URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must start with https:// or http://".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not hold a user name or password".into());
    }
    let private = match parsed.host() {
        None => return Err("has no host".into()),
        Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(
            "is a loopback or private address; set [webhooks] allow_private_addresses to send there"
                .into(),
        );
    }
    Ok(parsed)
}

/// An instant as RFC 3339 in UTC, to the millisecond.
pub fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = crate::limits::civil_from_days(days);
    let (h, min, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// The wait before the retry after `attempts` failed attempts, with ±20 %
/// jitter; `None` when the schedule is over.
pub fn retry_after_ms(schedule: &[u64], attempts: u32) -> Option<u64> {
    let base = *schedule.get(attempts.checked_sub(1)? as usize)?;
    let jitter = base / 5;
    Some(base - jitter + fastrand::u64(0..=jitter * 2))
}

/// A resolver that drops private answers unless they are allowed.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    format!("{host} resolves to a private or loopback address only").into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Queues events and sends them.
#[derive(Debug)]
pub struct Webhooks {
    store: Arc<dyn WebhookStore>,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// Wakes the sender when something was queued.
    queued: Notify,
}

/// Deliveries one round sends at once.
const BATCH: u32 = 16;

impl Webhooks {
    pub fn new(store: Arc<dyn WebhookStore>, settings: WebhookSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("Porthole-Webhooks/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead anywhere: a 3xx is an answer, not a hop.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private_addresses,
            }))
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.min(10_000)))
            .build()?;
        Ok(Self {
            store,
            settings,
            client,
            queued: Notify::new(),
        })
    }

    /// The webhooks and deliveries.
    pub fn store(&self) -> &dyn WebhookStore {
        &*self.store
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Queues `event` with `data` for the widget's webhooks that take it;
    /// returns at once (the queueing runs beside the caller).
    pub fn emit(self: &Arc<Self>, widget_id: &str, event: &'static str, data: serde_json::Value) {
        let (this, widget) = (self.clone(), widget_id.to_owned());
        tokio::spawn(async move {
            let now = crate::store::rows::now_ms();
            let payload = serde_json::json!({
                "type": event,
                "timestamp": rfc3339(now),
                "data": data,
            })
            .to_string();
            match this.store.enqueue(&widget, event, &payload).await {
                Ok(ids) if !ids.is_empty() => this.queued.notify_one(),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, widget, event, "queueing a webhook event failed")
                }
            }
        });
    }

    /// Wakes the sender (after a manual redelivery).
    pub fn wake(&self) {
        self.queued.notify_one();
    }

    /// Sends what is due until `cancel`: every second, or at once when
    /// something is queued.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut pruned_at = 0;
        loop {
            let now = crate::store::rows::now_ms();
            // Once an hour, the log forgets what is older than `keep_days`.
            if now - pruned_at >= 3_600_000 {
                pruned_at = now;
                let before = now - i64::from(self.settings.keep_days) * 86_400_000;
                match self.store.prune_deliveries(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deliveries = n, "old webhook deliveries forgotten"),
                    Err(e) => tracing::warn!(error = %e, "pruning webhook deliveries failed"),
                }
            }
            let lease = now + self.settings.timeout_ms as i64 + 30_000;
            let due = match self.store.claim_due(now, lease, BATCH).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "reading due webhook deliveries failed");
                    Vec::new()
                }
            };
            let full = due.len() as u32 == BATCH;
            futures_util::future::join_all(due.into_iter().map(|d| self.deliver(d))).await;
            if full {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.queued.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One attempt, recorded.
    async fn deliver(&self, due: DueDelivery) {
        let outcome = self.attempt(&due).await;
        let done = match &outcome {
            Ok(status) => Attempted::Delivered { status: *status },
            Err((status, error)) => Attempted::Failed {
                status: *status,
                error: error.clone(),
                next_at: retry_after_ms(
                    &self.settings.retry_schedule_ms,
                    due.delivery.attempts + 1,
                )
                .map(|ms| crate::store::rows::now_ms() + ms as i64),
            },
        };
        match &done {
            Attempted::Delivered { status } => {
                tracing::info!(delivery = %due.delivery.id, event = %due.delivery.event, status, "webhook delivered")
            }
            Attempted::Failed { error, next_at, .. } => {
                tracing::warn!(delivery = %due.delivery.id, event = %due.delivery.event, error, retry = next_at.is_some(), "webhook attempt failed")
            }
        }
        if let Err(e) = self.store.record_attempt(&due.delivery.id, &done).await {
            tracing::error!(error = %e, delivery = %due.delivery.id, "recording a webhook attempt failed");
        }
    }

    /// Sends once: the receiver's 2xx status, or why not.
    async fn attempt(&self, due: &DueDelivery) -> Result<u16, (Option<u16>, String)> {
        let url = check_target(&due.url, self.settings.allow_private_addresses)
            .map_err(|why| (None, format!("the address {why}")))?;
        let timestamp = crate::store::rows::now_ms() / 1_000;
        let body = due.delivery.payload.as_bytes().to_vec();
        let signature =
            sign(&due.secret, &due.delivery.id, timestamp, &body).map_err(|why| (None, why))?;
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &due.delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    format!(
                        "cannot connect: {}",
                        std::error::Error::source(&e)
                            .map_or_else(|| e.to_string(), |s| s.to_string())
                    )
                } else {
                    e.to_string()
                };
                (None, why)
            })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            Ok(status)
        } else {
            Err((Some(status), format!("HTTP {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vector() {
        // The vector the spec's reference libraries are tested with.
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(sign("whsec_!!", "id", 1, b"").is_err());
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        let bytes = BASE64.decode(a.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "not a url",
        ] {
            assert!(check_target(bad, false).is_err(), "{bad}");
        }
        assert!(check_target("https://hooks.example.com/porthole", false).is_ok());
        assert!(check_target("http://127.0.0.1:9/hook", true).is_ok());
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_then_stop() {
        let schedule = WebhookSettings::default().retry_schedule_ms;
        let total: u64 = schedule.iter().sum();
        assert!(
            (26 * 3_600_000..29 * 3_600_000).contains(&total),
            "about a day: {total}"
        );
        for _ in 0..100 {
            let first = retry_after_ms(&schedule, 1).unwrap();
            assert!((4_000..=6_000).contains(&first), "{first}");
        }
        assert_eq!(retry_after_ms(&schedule, 0), None);
        assert!(retry_after_ms(&schedule, 7).is_some());
        assert_eq!(retry_after_ms(&schedule, 8), None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_614_265_330_123), "2021-02-25T15:02:10.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
