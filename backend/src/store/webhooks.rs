//! Webhooks in the store: each widget's endpoints (URL, secret, events)
//! and the deliveries waiting, done or given up on. A delivery is claimed
//! with a lease before it is sent, so replicas sharing a database never
//! send one twice at once, and one whose sender died is sent again after
//! the lease.
//!
//! The sending, signing and retry schedule are in the `webhooks` module
//! above the store; this file knows rows.

use async_trait::async_trait;
use salvo::oapi::ToSchema;
use serde::Serialize;

use super::StoreError;

/// A widget's webhook endpoint. The secret is never serialized: it is
/// shown once, when made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub widget_id: String,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    /// The event types it gets.
    pub events: Vec<String>,
    pub disabled: bool,
    pub created_at: u64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_at`.
    Pending,
    Delivered,
    /// Every attempt failed; only a manual redelivery sends it again.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event for one webhook, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Delivery {
    /// The `webhook-id` header, the same on every attempt.
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    /// The JSON body sent.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When the next attempt is due (ms since the epoch), while pending.
    pub next_at: u64,
    /// The receiver's HTTP status on the last attempt.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    pub created_at: u64,
    /// When it was delivered or given up on.
    pub finished_at: Option<u64>,
}

/// A delivery claimed for sending, with where and how to sign it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempted {
    Delivered {
        status: u16,
    },
    /// Failed; tried again at `next_at`, or given up on when `None`.
    Failed {
        status: Option<u16>,
        error: String,
        next_at: Option<i64>,
    },
}

#[async_trait]
pub trait WebhookStore: Send + Sync + std::fmt::Debug {
    async fn create_webhook(&self, hook: &Webhook) -> Result<(), StoreError>;
    /// A widget's webhooks, oldest first.
    async fn webhooks(&self, widget_id: &str) -> Result<Vec<Webhook>, StoreError>;
    async fn webhook(&self, widget_id: &str, id: &str) -> Result<Option<Webhook>, StoreError>;
    /// Saves the URL, events, disabled flag and secret; false when gone.
    async fn update_webhook(&self, hook: &Webhook) -> Result<bool, StoreError>;
    /// Removes it with its deliveries; false when there was none.
    async fn delete_webhook(&self, widget_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Queues `payload` for each enabled webhook of the widget that takes
    /// `event`, due at once; the new deliveries' ids.
    async fn enqueue(
        &self,
        widget_id: &str,
        event: &str,
        payload: &str,
    ) -> Result<Vec<String>, StoreError>;
    /// Claims up to `limit` pending deliveries due at `now`, each held
    /// until `lease_until`.
    async fn claim_due(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;
    /// Records an attempt on a claimed delivery and releases it.
    async fn record_attempt(&self, id: &str, outcome: &Attempted) -> Result<(), StoreError>;
    /// A webhook's deliveries, newest first.
    async fn deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// Sends a delivery again, now, with a fresh retry schedule; false when
    /// there is no such delivery of this webhook.
    async fn redeliver(&self, webhook_id: &str, id: &str) -> Result<bool, StoreError>;
    /// Forgets the deliveries delivered or given up on before `before`;
    /// how many.
    async fn prune_deliveries(&self, before: i64) -> Result<u64, StoreError>;
}

/// The columns [`delivery_from`] reads, in order.
pub(crate) const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event, d.payload, d.status, d.attempts, d.next_at, \
     d.last_status, d.last_error, d.created_at, d.finished_at";

/// The columns [`webhook_from`] reads, in order.
pub(crate) const WEBHOOK_COLUMNS: &str = "id, widget_id, url, secret, events, CAST(CASE WHEN disabled THEN 1 ELSE 0 END AS INTEGER), created_at";

/// The event list as stored.
pub(crate) fn join_events(events: &[String]) -> String {
    events.join(",")
}

pub(crate) fn split_events(events: &str) -> Vec<String> {
    events
        .split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A delivery's status from its column.
pub(crate) fn status_from(s: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(s).ok_or_else(|| {
        StoreError::Unavailable(format!("unknown delivery status {s:?} in the store"))
    })
}

/// [`WebhookStore`] for a store type, written once for both databases:
/// `$writer`/`$reader` are its pools, `$row` its row type, and `$sql`
/// turns the statements' `?` placeholders into the database's own.
macro_rules! webhook_store {
    ($store:ty, $row:ty, $writer:ident, $reader:ident, $sql:path) => {
        use async_trait::async_trait;
        use sqlx::{AssertSqlSafe, Row};
        use $crate::ids::new_id;
        use $crate::store::StoreError;
        use $crate::store::rows::now_ms;
        use $crate::store::webhooks::{
            Attempted, DELIVERY_COLUMNS, Delivery, DueDelivery, WEBHOOK_COLUMNS, Webhook,
            WebhookStore, join_events, split_events, status_from,
        };

        fn webhook_row(r: &$row) -> Result<Webhook, StoreError> {
            Ok(Webhook {
                id: r.try_get(0)?,
                widget_id: r.try_get(1)?,
                url: r.try_get(2)?,
                secret: r.try_get(3)?,
                events: split_events(&r.try_get::<String, _>(4)?),
                disabled: r.try_get::<i32, _>(5)? != 0,
                created_at: r.try_get::<i64, _>(6)?.max(0) as u64,
            })
        }

        fn delivery_row(r: &$row) -> Result<Delivery, StoreError> {
            Ok(Delivery {
                id: r.try_get(0)?,
                webhook_id: r.try_get(1)?,
                event: r.try_get(2)?,
                payload: r.try_get(3)?,
                status: status_from(&r.try_get::<String, _>(4)?)?,
                attempts: r.try_get::<i32, _>(5)?.max(0) as u32,
                next_at: r.try_get::<i64, _>(6)?.max(0) as u64,
                last_status: r
                    .try_get::<Option<i32>, _>(7)?
                    .and_then(|s| u16::try_from(s).ok()),
                last_error: r.try_get(8)?,
                created_at: r.try_get::<i64, _>(9)?.max(0) as u64,
                finished_at: r.try_get::<Option<i64>, _>(10)?.map(|t| t.max(0) as u64),
            })
        }

        #[async_trait]
        impl WebhookStore for $store {
            async fn create_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
                sqlx::query(AssertSqlSafe($sql(
                    "INSERT INTO webhooks (id, widget_id, url, secret, events, disabled, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )))
                .bind(&hook.id)
                .bind(&hook.widget_id)
                .bind(&hook.url)
                .bind(&hook.secret)
                .bind(join_events(&hook.events))
                .bind(hook.disabled)
                .bind(hook.created_at as i64)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn webhooks(&self, widget_id: &str) -> Result<Vec<Webhook>, StoreError> {
                sqlx::query(AssertSqlSafe($sql(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE widget_id = ? ORDER BY created_at, id"
                ))))
                .bind(widget_id)
                .fetch_all(&self.$reader)
                .await?
                .iter()
                .map(webhook_row)
                .collect()
            }

            async fn webhook(&self, widget_id: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
                sqlx::query(AssertSqlSafe($sql(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE widget_id = ? AND id = ?"
                ))))
                .bind(widget_id)
                .bind(id)
                .fetch_optional(&self.$writer)
                .await?
                .as_ref()
                .map(webhook_row)
                .transpose()
            }

            async fn update_webhook(&self, hook: &Webhook) -> Result<bool, StoreError> {
                let done = sqlx::query(AssertSqlSafe($sql(
                    "UPDATE webhooks SET url = ?, secret = ?, events = ?, disabled = ? \
                     WHERE widget_id = ? AND id = ?",
                )))
                .bind(&hook.url)
                .bind(&hook.secret)
                .bind(join_events(&hook.events))
                .bind(hook.disabled)
                .bind(&hook.widget_id)
                .bind(&hook.id)
                .execute(&self.$writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_webhook(&self, widget_id: &str, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM webhooks WHERE widget_id = ? AND id = ?",
                )))
                .bind(widget_id)
                .bind(id)
                .execute(&self.$writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn enqueue(
                &self,
                widget_id: &str,
                event: &str,
                payload: &str,
            ) -> Result<Vec<String>, StoreError> {
                let hooks: Vec<String> = sqlx::query(AssertSqlSafe($sql(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE widget_id = ? AND disabled = ?"
                ))))
                .bind(widget_id)
                .bind(false)
                .fetch_all(&self.$reader)
                .await?
                .iter()
                .map(webhook_row)
                .filter_map(|h| h.ok())
                .filter(|h| h.events.iter().any(|e| e == event))
                .map(|h| h.id)
                .collect();
                let now = now_ms();
                let mut ids = Vec::with_capacity(hooks.len());
                for hook in hooks {
                    let id = new_id("msg");
                    sqlx::query(AssertSqlSafe($sql(
                        "INSERT INTO webhook_deliveries (id, webhook_id, event, payload, status, attempts, next_at, created_at) \
                         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)",
                    )))
                    .bind(&id)
                    .bind(&hook)
                    .bind(event)
                    .bind(payload)
                    .bind(now)
                    .bind(now)
                    .execute(&self.$writer)
                    .await?;
                    ids.push(id);
                }
                Ok(ids)
            }

            async fn claim_due(
                &self,
                now: i64,
                lease_until: i64,
                limit: u32,
            ) -> Result<Vec<DueDelivery>, StoreError> {
                let rows = sqlx::query(AssertSqlSafe($sql(&format!(
                    "SELECT {DELIVERY_COLUMNS}, w.url, w.secret \
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                     WHERE d.status = 'pending' AND d.next_at <= ? AND d.lease_until <= ? \
                     ORDER BY d.next_at LIMIT ?"
                ))))
                .bind(now)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(&self.$writer)
                .await?;
                let mut claimed = Vec::new();
                for r in &rows {
                    let delivery = delivery_row(r)?;
                    // Only one sender wins each: the lease is taken only
                    // if nobody took it since the read.
                    let won = sqlx::query(AssertSqlSafe($sql(
                        "UPDATE webhook_deliveries SET lease_until = ? \
                         WHERE id = ? AND status = 'pending' AND lease_until <= ?",
                    )))
                    .bind(lease_until)
                    .bind(&delivery.id)
                    .bind(now)
                    .execute(&self.$writer)
                    .await?
                    .rows_affected()
                        > 0;
                    if won {
                        claimed.push(DueDelivery {
                            delivery,
                            url: r.try_get(11)?,
                            secret: r.try_get(12)?,
                        });
                    }
                }
                Ok(claimed)
            }

            async fn record_attempt(&self, id: &str, outcome: &Attempted) -> Result<(), StoreError> {
                let now = now_ms();
                let (status, code, error, next_at, finished) = match outcome {
                    Attempted::Delivered { status } => ("delivered", Some(i32::from(*status)), None, now, Some(now)),
                    Attempted::Failed { status, error, next_at: Some(at) } => {
                        ("pending", status.map(i32::from), Some(error.as_str()), *at, None)
                    }
                    Attempted::Failed { status, error, next_at: None } => {
                        ("failed", status.map(i32::from), Some(error.as_str()), now, Some(now))
                    }
                };
                sqlx::query(AssertSqlSafe($sql(
                    "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, last_status = ?, \
                     last_error = ?, next_at = ?, finished_at = ?, lease_until = 0 WHERE id = ?",
                )))
                .bind(status)
                .bind(code)
                .bind(error)
                .bind(next_at)
                .bind(finished)
                .bind(id)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
                sqlx::query(AssertSqlSafe($sql(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = ? \
                     ORDER BY d.created_at DESC, d.id DESC LIMIT ?"
                ))))
                .bind(webhook_id)
                .bind(i64::from(limit))
                .fetch_all(&self.$reader)
                .await?
                .iter()
                .map(delivery_row)
                .collect()
            }

            async fn redeliver(&self, webhook_id: &str, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(AssertSqlSafe($sql(
                    "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = ?, \
                     finished_at = NULL, lease_until = 0 WHERE webhook_id = ? AND id = ? AND status <> 'pending'",
                )))
                .bind(now_ms())
                .bind(webhook_id)
                .bind(id)
                .execute(&self.$writer)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn prune_deliveries(&self, before: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(AssertSqlSafe($sql(
                    "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?",
                )))
                .bind(before)
                .execute(&self.$writer)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use webhook_store;
