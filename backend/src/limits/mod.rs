//! Abuse and cost limits: token-bucket rate limits per widget key, per
//! visitor session and per IP (governor), a cap on a session's concurrent
//! streams, the history sent upstream trimmed to a token budget, and daily
//! and monthly token budgets per widget.
//!
//! Every limit has a server default (`[limits]`) that a widget can override
//! (its `limits`). With Redis configured, the rate limits and stream caps
//! are shared by every replica ([`shared`]); without it, or while Redis is
//! unreachable, each process enforces them alone (governor), with a
//! warning.

pub mod shared;

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

/// A widget's own limits; `null` (absent) takes the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetLimits {
    /// Chat requests a minute for the whole widget (its public key).
    pub requests_per_minute_per_key: Option<u32>,
    /// Chat requests a minute for one visitor session.
    pub requests_per_minute_per_session: Option<u32>,
    /// Chat requests a minute from one IP address.
    pub requests_per_minute_per_ip: Option<u32>,
    /// Answers one visitor session may stream at once.
    pub concurrent_streams_per_session: Option<u32>,
    /// Earlier messages sent upstream are trimmed, oldest first, to this
    /// many tokens (estimated).
    pub history_tokens: Option<u32>,
    /// Tokens (prompt and completion) the widget may use a day (UTC); 0: no limit.
    pub daily_tokens: Option<u64>,
    /// Tokens the widget may use a calendar month (UTC); 0: no limit.
    pub monthly_tokens: Option<u64>,
}

impl WidgetLimits {
    /// Checks the values given; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, v) in [
            (
                "limits.requests_per_minute_per_key",
                self.requests_per_minute_per_key,
            ),
            (
                "limits.requests_per_minute_per_session",
                self.requests_per_minute_per_session,
            ),
            (
                "limits.requests_per_minute_per_ip",
                self.requests_per_minute_per_ip,
            ),
            (
                "limits.concurrent_streams_per_session",
                self.concurrent_streams_per_session,
            ),
        ] {
            if v.is_some_and(|v| v == 0 || v > 1_000_000) {
                return Err((field, "must be 1 to 1000000".into()));
            }
        }
        if self
            .history_tokens
            .is_some_and(|v| !(100..=1_000_000).contains(&v))
        {
            return Err(("limits.history_tokens", "must be 100 to 1000000".into()));
        }
        Ok(())
    }
}

/// The server's defaults (`[limits]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub requests_per_minute_per_key: u32,
    pub requests_per_minute_per_session: u32,
    pub requests_per_minute_per_ip: u32,
    pub concurrent_streams_per_session: u32,
    pub history_tokens: u32,
    /// 0: no limit.
    pub daily_tokens: u64,
    /// 0: no limit.
    pub monthly_tokens: u64,
    /// Take the client's IP from the first `X-Forwarded-For` address (only
    /// behind a proxy that sets it; otherwise clients could pick their IP).
    pub trust_forwarded_for: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            requests_per_minute_per_key: 600,
            requests_per_minute_per_session: 20,
            requests_per_minute_per_ip: 60,
            concurrent_streams_per_session: 2,
            history_tokens: 3_000,
            daily_tokens: 2_000_000,
            monthly_tokens: 30_000_000,
            trust_forwarded_for: false,
        }
    }
}

/// A widget's limits in force: its own where set, else the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_key: u32,
    pub per_session: u32,
    pub per_ip: u32,
    pub streams_per_session: u32,
    pub history_tokens: u32,
    pub daily_tokens: u64,
    pub monthly_tokens: u64,
}

impl Limits {
    pub fn of(defaults: &LimitSettings, own: &WidgetLimits) -> Self {
        Self {
            per_key: own
                .requests_per_minute_per_key
                .unwrap_or(defaults.requests_per_minute_per_key),
            per_session: own
                .requests_per_minute_per_session
                .unwrap_or(defaults.requests_per_minute_per_session),
            per_ip: own
                .requests_per_minute_per_ip
                .unwrap_or(defaults.requests_per_minute_per_ip),
            streams_per_session: own
                .concurrent_streams_per_session
                .unwrap_or(defaults.concurrent_streams_per_session),
            history_tokens: own.history_tokens.unwrap_or(defaults.history_tokens),
            daily_tokens: own.daily_tokens.unwrap_or(defaults.daily_tokens),
            monthly_tokens: own.monthly_tokens.unwrap_or(defaults.monthly_tokens),
        }
    }
}

/// Tokens in a text, estimated (about four characters a token, as for
/// English with OpenAI's tokenizers; the provider's count replaces it when
/// the provider sends one).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Key,
    Session,
    Ip,
    Streams,
}

/// A refusal: which limit, its size, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    /// Requests a minute, or streams at once.
    pub limit: u32,
    pub retry_after: Duration,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// One widget's buckets, made for its limits at the time.
#[derive(Debug)]
struct Buckets {
    limits: Limits,
    key: DefaultDirectRateLimiter,
    session: DefaultKeyedRateLimiter<String>,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    /// Ratings per session.
    feedback: DefaultKeyedRateLimiter<String>,
}

/// Ratings a session may send a minute (changing one's mind included).
pub const FEEDBACK_PER_MINUTE: u32 = 20;

impl Buckets {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            key: RateLimiter::direct(per_minute(limits.per_key)),
            session: RateLimiter::keyed(per_minute(limits.per_session)),
            ip: RateLimiter::keyed(per_minute(limits.per_ip)),
            feedback: RateLimiter::keyed(per_minute(FEEDBACK_PER_MINUTE)),
        }
    }
}

/// The rate limiters and stream counts of every widget.
#[derive(Debug, Default)]
pub struct Limiter {
    /// Made once: making a clock is costly (calibration).
    clock: DefaultClock,
    buckets: Mutex<HashMap<String, Arc<Buckets>>>,
    streams: Arc<Mutex<HashMap<(String, String), u32>>>,
    /// The limits replicas share, once Redis has been reached.
    shared: std::sync::OnceLock<shared::SharedLimits>,
    /// When falling back to local limits was last logged.
    warned: Mutex<Option<std::time::Instant>>,
}

/// Holds one of a session's stream slots until dropped.
#[derive(Debug)]
pub struct StreamPermit(Slot);

#[derive(Debug)]
enum Slot {
    Local {
        streams: Arc<Mutex<HashMap<(String, String), u32>>>,
        key: (String, String),
    },
    Shared {
        limits: Box<shared::SharedLimits>,
        widget: String,
        visitor: String,
    },
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        match &self.0 {
            Slot::Local { streams, key } => {
                let mut streams = streams.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = streams.get_mut(key) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        streams.remove(key);
                    }
                }
            }
            Slot::Shared {
                limits,
                widget,
                visitor,
            } => limits.give_stream(widget, visitor),
        }
    }
}

/// How often falling back to local limits is logged, at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Limiter {
    fn buckets(&self, widget: &str, limits: Limits) -> Arc<Buckets> {
        let mut all = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match all.get(widget) {
            Some(b) if b.limits == limits => b.clone(),
            _ => {
                // New, or its limits changed: fresh buckets.
                let b = Arc::new(Buckets::new(limits));
                all.insert(widget.to_owned(), b.clone());
                b
            }
        }
    }

    /// Shares the limits through Redis from now on.
    pub fn share(&self, limits: shared::SharedLimits) {
        let _ = self.shared.set(limits);
    }

    /// The shared limits, once Redis was reached.
    pub fn shared(&self) -> Option<&shared::SharedLimits> {
        self.shared.get()
    }

    /// Whether the limits are shared now: Redis was reached and its last
    /// call succeeded.
    pub fn redis_up(&self) -> bool {
        self.shared().is_some_and(|s| s.is_up())
    }

    /// Takes one request from the IP's, the session's and the key's buckets
    /// and a stream slot for the session, or says which limit refused: in
    /// Redis when it is configured and answers, else in this process.
    pub async fn admit(
        &self,
        widget: &str,
        limits: Limits,
        visitor: &str,
        ip: IpAddr,
    ) -> Result<StreamPermit, Refusal> {
        if let Some(shared) = self.shared.get() {
            match Self::admit_shared(shared, widget, limits, visitor, ip).await {
                Ok(decided) => return decided,
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.admit_local(widget, limits, visitor, ip)
    }

    async fn admit_shared(
        shared: &shared::SharedLimits,
        widget: &str,
        limits: Limits,
        visitor: &str,
        ip: IpAddr,
    ) -> Result<Result<StreamPermit, Refusal>, shared::SharedError> {
        if let Err(refusal) = shared.check_rates(widget, limits, visitor, ip).await? {
            return Ok(Err(refusal));
        }
        if !shared
            .take_stream(widget, visitor, limits.streams_per_session)
            .await?
        {
            return Ok(Err(Refusal {
                scope: Scope::Streams,
                limit: limits.streams_per_session,
                retry_after: Duration::from_secs(1),
            }));
        }
        Ok(Ok(StreamPermit(Slot::Shared {
            limits: Box::new(shared.clone()),
            widget: widget.to_owned(),
            visitor: visitor.to_owned(),
        })))
    }

    fn warn_fallback(&self, e: &shared::SharedError) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            *warned = Some(std::time::Instant::now());
            tracing::warn!(error = %e, "Redis is unreachable: rate limits and stream caps are this replica's alone until it is back");
        }
    }

    /// [`Self::admit`] in this process alone.
    pub fn admit_local(
        &self,
        widget: &str,
        limits: Limits,
        visitor: &str,
        ip: IpAddr,
    ) -> Result<StreamPermit, Refusal> {
        let b = self.buckets(widget, limits);
        let refuse = |scope, limit, not_until: governor::NotUntil<_>| Refusal {
            scope,
            limit,
            retry_after: not_until.wait_time_from(self.clock.now()),
        };
        b.ip.check_key(&ip)
            .map_err(|n| refuse(Scope::Ip, limits.per_ip, n))?;
        b.session
            .check_key(&visitor.to_owned())
            .map_err(|n| refuse(Scope::Session, limits.per_session, n))?;
        b.key
            .check()
            .map_err(|n| refuse(Scope::Key, limits.per_key, n))?;
        let key = (widget.to_owned(), visitor.to_owned());
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let open = streams.entry(key.clone()).or_insert(0);
        if *open >= limits.streams_per_session {
            return Err(Refusal {
                scope: Scope::Streams,
                limit: limits.streams_per_session,
                retry_after: Duration::from_secs(1),
            });
        }
        *open += 1;
        Ok(StreamPermit(Slot::Local {
            streams: self.streams.clone(),
            key,
        }))
    }

    /// Takes one rating from the session's feedback bucket, in this
    /// process; `Err(retry_after)` when it is empty.
    pub fn admit_feedback(
        &self,
        widget: &str,
        limits: Limits,
        visitor: &str,
    ) -> Result<(), Duration> {
        let b = self.buckets(widget, limits);
        b.feedback
            .check_key(&visitor.to_owned())
            .map_err(|n| n.wait_time_from(self.clock.now()))
    }

    /// Forgets buckets that are full again (idle sessions and IPs), so
    /// memory does not grow with every visitor ever seen.
    pub fn forget_idle(&self) {
        let all: Vec<Arc<Buckets>> = self
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for b in all {
            b.session.retain_recent();
            b.session.shrink_to_fit();
            b.ip.retain_recent();
            b.ip.shrink_to_fit();
            b.feedback.retain_recent();
            b.feedback.shrink_to_fit();
        }
    }
}

/// Days since the epoch, and the month as `year * 12 + month0`, in UTC.
fn day_and_month(now: SystemTime) -> (i64, i64) {
    let days = now
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0);
    let (y, m, _) = civil_from_days(days);
    (days, y * 12 + (m - 1))
}

/// The proleptic Gregorian date of a day number (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_string(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A widget's tokens used today and this month, as far as this process knows.
#[derive(Debug, Clone, Copy, Default)]
struct Spent {
    day: i64,
    month: i64,
    day_tokens: u64,
    month_tokens: u64,
    /// Tokens held by answers in flight (reserved before the model call,
    /// settled when they end).
    reserved: u64,
}

/// What a reservation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// This many tokens are the answer's to spend (prompt and completion).
    Granted(u64),
    /// The budget is spent: nothing until it refills.
    Exhausted(Budget),
    /// Answers in flight hold what is left: try again shortly.
    Busy,
}

/// Token spending per widget, loaded from the store once a day and kept
/// up to date as answers end.
#[derive(Debug, Default)]
pub struct Ledger {
    spent: Mutex<HashMap<String, Spent>>,
}

/// Which budget is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Daily,
    Monthly,
}

impl Ledger {
    /// The day and month now, as the ledger counts them.
    pub fn today() -> (i64, i64) {
        day_and_month(SystemTime::now())
    }

    /// Whether the ledger has this widget's totals for `today`.
    pub fn knows(&self, widget: &str, today: (i64, i64)) -> bool {
        self.spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(widget)
            .is_some_and(|s| (s.day, s.month) == today)
    }

    /// Sets a widget's totals as read from the store.
    pub fn load(&self, widget: &str, today: (i64, i64), day_tokens: u64, month_tokens: u64) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let reserved = spent.get(widget).map_or(0, |s| s.reserved);
        spent.insert(
            widget.to_owned(),
            Spent {
                day: today.0,
                month: today.1,
                day_tokens,
                month_tokens,
                reserved,
            },
        );
    }

    /// Reserves up to `want` tokens for an answer before the model is
    /// asked, at least `min`; `None` when the widget has no budget. Answers
    /// running at once can together spend no more than is left, because
    /// each holds its share until [`Self::settle`].
    pub fn reserve(&self, widget: &str, limits: &Limits, want: u64, min: u64) -> Option<Reserved> {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let s = spent.entry(widget.to_owned()).or_default();
        let (free, budget) = free_of(s, limits)?;
        if free == 0 {
            return Some(Reserved::Exhausted(budget));
        }
        let unheld = free.saturating_sub(s.reserved);
        if unheld < min.max(1) {
            return Some(Reserved::Busy);
        }
        let granted = want.clamp(min.max(1), unheld);
        s.reserved += granted;
        Some(Reserved::Granted(granted))
    }

    /// Ends an answer's reservation of `reserved` tokens, counting the
    /// `tokens` it spent.
    pub fn settle(&self, widget: &str, reserved: u64, tokens: u64) {
        if let Some(s) = self
            .spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(widget)
        {
            s.reserved = s.reserved.saturating_sub(reserved);
        }
        self.add(widget, tokens);
    }

    /// Adds an answer's tokens.
    pub fn add(&self, widget: &str, tokens: u64) {
        let today = Self::today();
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = spent.get_mut(widget) {
            if s.month != today.1 {
                *s = Spent {
                    day: today.0,
                    month: today.1,
                    reserved: s.reserved,
                    ..Default::default()
                };
            } else if s.day != today.0 {
                s.day = today.0;
                s.day_tokens = 0;
            }
            s.day_tokens += tokens;
            s.month_tokens += tokens;
        }
    }

    /// Tokens left today (the smaller of the daily and monthly rest), and
    /// which budget that is; `None` when neither has a limit.
    pub fn left(&self, widget: &str, limits: &Limits) -> Option<(u64, Budget)> {
        let s = self
            .spent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(widget)
            .copied()
            .unwrap_or_default();
        free_of(&s, limits)
    }
}

/// Tokens not yet spent (reservations aside) under the tighter budget.
fn free_of(s: &Spent, limits: &Limits) -> Option<(u64, Budget)> {
    {
        let daily = (limits.daily_tokens > 0).then(|| {
            (
                limits.daily_tokens.saturating_sub(s.day_tokens),
                Budget::Daily,
            )
        });
        let monthly = (limits.monthly_tokens > 0).then(|| {
            (
                limits.monthly_tokens.saturating_sub(s.month_tokens),
                Budget::Monthly,
            )
        });
        match (daily, monthly) {
            (Some(d), Some(m)) => Some(if m.0 < d.0 { m } else { d }),
            (d, m) => d.or(m),
        }
    }
}

/// Seconds until the budget refills: the next UTC midnight, or the first
/// of next month.
pub fn until_refill(budget: Budget) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let next_day = (now / 86_400 + 1) * 86_400;
    match budget {
        Budget::Daily => next_day - now,
        Budget::Monthly => {
            let mut day = (now / 86_400 + 1) as i64;
            while civil_from_days(day).2 != 1 {
                day += 1;
            }
            (day as u64) * 86_400 - now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_session: u32, streams: u32) -> Limits {
        Limits::of(
            &LimitSettings {
                requests_per_minute_per_session: per_session,
                concurrent_streams_per_session: streams,
                ..Default::default()
            },
            &WidgetLimits::default(),
        )
    }

    #[test]
    fn a_session_gets_its_burst_then_waits() {
        let limiter = Limiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let l = limits(3, 100);
        let mut permits = Vec::new();
        for _ in 0..3 {
            permits.push(
                limiter
                    .admit_local("w", l, "vis_a", ip)
                    .expect("within the burst"),
            );
        }
        let refused = limiter.admit_local("w", l, "vis_a", ip).unwrap_err();
        assert_eq!(refused.scope, Scope::Session);
        assert!(refused.retry_after > Duration::from_secs(10), "{refused:?}");
        // Another session is not affected.
        assert!(limiter.admit_local("w", l, "vis_b", ip).is_ok());
    }

    #[test]
    fn stream_slots_come_back_when_permits_drop() {
        let limiter = Limiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let l = limits(100, 2);
        let a = limiter.admit_local("w", l, "v", ip).unwrap();
        let _b = limiter.admit_local("w", l, "v", ip).unwrap();
        assert_eq!(
            limiter.admit_local("w", l, "v", ip).unwrap_err().scope,
            Scope::Streams
        );
        drop(a);
        assert!(limiter.admit_local("w", l, "v", ip).is_ok());
    }

    #[test]
    fn widget_limits_override_the_defaults() {
        let own = WidgetLimits {
            daily_tokens: Some(0),
            requests_per_minute_per_ip: Some(5),
            ..Default::default()
        };
        let l = Limits::of(&LimitSettings::default(), &own);
        assert_eq!((l.per_ip, l.daily_tokens, l.per_session), (5, 0, 20));
        assert!(
            WidgetLimits {
                requests_per_minute_per_key: Some(0),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn budgets_count_down_and_reset_with_the_day() {
        let ledger = Ledger::default();
        let l = Limits {
            daily_tokens: 100,
            monthly_tokens: 1_000,
            ..limits(1, 1)
        };
        let today = Ledger::today();
        ledger.load("w", today, 90, 950);
        assert_eq!(ledger.left("w", &l), Some((10, Budget::Daily)));
        ledger.add("w", 5);
        assert_eq!(ledger.left("w", &l), Some((5, Budget::Daily)));
        ledger.load("w", today, 0, 990);
        assert_eq!(ledger.left("w", &l), Some((10, Budget::Monthly)));
        let unlimited = Limits {
            daily_tokens: 0,
            monthly_tokens: 0,
            ..l
        };
        assert_eq!(ledger.left("w", &unlimited), None);
    }

    #[test]
    fn dates_are_civil_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(20_785), "2026-11-28");
        assert_eq!(day_string(11_016), "2000-02-29");
        assert!(until_refill(Budget::Daily) <= 86_400);
        assert!(until_refill(Budget::Monthly) <= 31 * 86_400);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
    }
}
