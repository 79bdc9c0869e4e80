//! Limits shared by replicas, in Redis (redis-rs with its reconnecting
//! connection manager): per key, session and IP rate limits as one GCRA
//! Lua script on Redis's clock (all three checked, and only then all
//! three taken, in one atomic step), and the per-session stream cap as a
//! counter. Any Redis error is returned, so the caller can fall back to the
//! local limiter; nothing here waits longer than [`REDIS_TIMEOUT`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Limits, Refusal, Scope};

/// The longest a limit check waits for Redis before falling back.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// How long a session's stream count outlives its last change: a replica
/// killed with streams open leaves counts that nobody decrements; they
/// clear after this.
const STREAM_COUNT_TTL_MS: u64 = 10 * 60 * 1000;

/// GCRA over any number of keys, each with its own limit a minute (burst:
/// the whole minute's allowance, as governor's quotas). KEYS: the buckets;
/// ARGV: their limits. Returns `{0, 0}` when admitted (every bucket
/// taken), else `{i, ms}`: bucket `i` (from 1) refused, retry in `ms`.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local next_tat = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i])
  local interval = 60000 / limit
  local tolerance = interval * (limit - 1)
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  if tat - now > tolerance then
    return {i, math.ceil(tat - tolerance - now)}
  end
  next_tat[i] = tat + interval
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], tostring(next_tat[i]), 'PX', math.max(1, math.ceil(next_tat[i] - now)))
end
return {0, 0}
"#;

/// Takes a stream slot: KEYS[1] the session's count, ARGV[1] the cap,
/// ARGV[2] the count's time to live. 1 when taken, 0 when full.
const TAKE_STREAM: &str = r#"
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
"#;

/// Gives a stream slot back (never below zero).
const GIVE_STREAM: &str = r#"
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
"#;

/// Reserves an answer's tokens from a widget's budgets. KEYS: the day's
/// spent tokens, the month's, the reservations in flight (a hash of id to
/// tokens) and their expiry (a sorted set). ARGV: the daily and monthly
/// limits (0: none), the tokens wanted and the fewest worth having, the
/// day's and month's totals from the store ('' when not read: the script
/// asks for them when Redis has none), the keys' lifetimes, the
/// reservation's id and its lifetime. Returns `{0}` no budget, `{1, n}`
/// granted, `{2, 1|2}` the daily or monthly budget is spent, `{3}` held by
/// answers in flight, `{-1}` the store's totals are needed.
const RESERVE: &str = r#"
local daily, monthly = tonumber(ARGV[1]), tonumber(ARGV[2])
if daily == 0 and monthly == 0 then return {0} end
if ARGV[5] ~= '' then redis.call('SET', KEYS[1], ARGV[5], 'NX', 'PX', ARGV[7]) end
if ARGV[6] ~= '' then redis.call('SET', KEYS[2], ARGV[6], 'NX', 'PX', ARGV[8]) end
local day, month = redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])
if (daily > 0 and not day) or (monthly > 0 and not month) then return {-1} end
local free, which = nil, 0
if daily > 0 then free = math.max(daily - tonumber(day), 0); which = 1 end
if monthly > 0 then
  local m = math.max(monthly - tonumber(month), 0)
  if free == nil or m < free then free = m; which = 2 end
end
if free == 0 then return {2, which} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('HDEL', KEYS[3], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local held = 0
for _, n in ipairs(redis.call('HVALS', KEYS[3])) do held = held + tonumber(n) end
local least = math.max(tonumber(ARGV[4]), 1)
local unheld = math.max(free - held, 0)
if unheld < least then return {3} end
local granted = math.min(math.max(tonumber(ARGV[3]), least), unheld)
redis.call('HSET', KEYS[3], ARGV[9], granted)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[10]), ARGV[9])
redis.call('PEXPIRE', KEYS[3], ARGV[10])
redis.call('PEXPIRE', KEYS[4], ARGV[10])
return {1, granted}
"#;

/// Ends a reservation and counts what the answer spent. KEYS as for
/// [`RESERVE`]; ARGV: the reservation's id, the tokens spent, the day's and
/// month's key lifetimes.
const SETTLE: &str = r#"
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
local spent = tonumber(ARGV[2])
if spent > 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], spent) end
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], spent) end
end
return 1
"#;

/// How long a reservation holds its tokens when its replica never settles
/// it (it died): longer than any answer runs.
const RESERVATION_TTL: Duration = Duration::from_secs(15 * 60);

/// A widget's budget keys kept past their day or month, so a reading at
/// midnight still finds them.
const BUDGET_KEY_SLACK: Duration = Duration::from_secs(2 * 86_400);

/// What a shared reservation got (as [`super::Reserved`]), or that the
/// store's totals must be read first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedReserve {
    NoBudget,
    Granted { id: String, tokens: u64 },
    Exhausted(super::Budget),
    Busy,
    NeedTotals,
}

#[derive(Clone)]
pub struct SharedLimits {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    gcra: Arc<redis::Script>,
    take_stream: Arc<redis::Script>,
    give_stream: Arc<redis::Script>,
    reserve: Arc<redis::Script>,
    settle: Arc<redis::Script>,
    /// Whether the last call reached Redis.
    up: Arc<AtomicBool>,
    errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for SharedLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimits")
            .field("prefix", &self.prefix)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why Redis could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

impl SharedLimits {
    /// Connects to `url` (`redis://…`). The connection manager reconnects
    /// by itself after a drop; a server down at start is an error here.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, SharedError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            Duration::from_secs(3),
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| SharedError::Timeout(Duration::from_secs(3)))??;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            gcra: Arc::new(redis::Script::new(GCRA)),
            take_stream: Arc::new(redis::Script::new(TAKE_STREAM)),
            give_stream: Arc::new(redis::Script::new(GIVE_STREAM)),
            reserve: Arc::new(redis::Script::new(RESERVE)),
            settle: Arc::new(redis::Script::new(SETTLE)),
            up: Arc::new(AtomicBool::new(true)),
            errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A connection for Redis calls of other subsystems (the answer logs).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A client for a connection of its own (a blocking read must not hold
    /// up the shared connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the last call reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Calls that failed to reach Redis since the start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        call: redis::ScriptInvocation<'_>,
    ) -> Result<T, SharedError> {
        let mut conn = self.conn.clone();
        let result = match tokio::time::timeout(REDIS_TIMEOUT, call.invoke_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(SharedError::Redis(e)),
            Err(_) => Err(SharedError::Timeout(REDIS_TIMEOUT)),
        };
        self.up.store(result.is_ok(), Ordering::Relaxed);
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// The rate limits of one request: IP, session, then key; all taken or
    /// none.
    pub async fn check_rates(
        &self,
        widget: &str,
        limits: Limits,
        visitor: &str,
        ip: std::net::IpAddr,
    ) -> Result<Result<(), Refusal>, SharedError> {
        let p = &self.prefix;
        // Each key's limit is in its name: a changed limit starts afresh.
        let buckets = [
            (
                Scope::Ip,
                limits.per_ip,
                format!("{p}rate:ip:{widget}:{ip}:{}", limits.per_ip),
            ),
            (
                Scope::Session,
                limits.per_session,
                format!("{p}rate:session:{widget}:{visitor}:{}", limits.per_session),
            ),
            (
                Scope::Key,
                limits.per_key,
                format!("{p}rate:key:{widget}:{}", limits.per_key),
            ),
        ];
        let mut call = self.gcra.prepare_invoke();
        for (_, _, key) in &buckets {
            call.key(key);
        }
        for (_, limit, _) in &buckets {
            call.arg(limit.max(&1));
        }
        let (refused, wait_ms): (usize, u64) = self.run(call).await?;
        Ok(match refused.checked_sub(1).and_then(|i| buckets.get(i)) {
            None => Ok(()),
            Some((scope, limit, _)) => Err(Refusal {
                scope: *scope,
                limit: *limit,
                retry_after: Duration::from_millis(wait_ms.max(1)),
            }),
        })
    }

    fn stream_key(&self, widget: &str, visitor: &str) -> String {
        format!("{}streams:{widget}:{visitor}", self.prefix)
    }

    /// Takes one of the session's stream slots; `false` when all are taken.
    pub async fn take_stream(
        &self,
        widget: &str,
        visitor: &str,
        cap: u32,
    ) -> Result<bool, SharedError> {
        let mut call = self.take_stream.prepare_invoke();
        call.key(self.stream_key(widget, visitor))
            .arg(cap)
            .arg(STREAM_COUNT_TTL_MS);
        let taken: i64 = self.run(call).await?;
        Ok(taken == 1)
    }

    /// Gives a slot back, in the background (a permit is dropped in sync
    /// code).
    pub fn give_stream(&self, widget: &str, visitor: &str) {
        let this = self.clone();
        let key = self.stream_key(widget, visitor);
        tokio::spawn(async move {
            let mut call = this.give_stream.prepare_invoke();
            call.key(key);
            if let Err(e) = this.run::<i64>(call).await {
                tracing::warn!(error = %e, "giving a stream slot back to Redis failed (it expires by itself)");
            }
        });
    }

    /// A widget's budget keys for `today` (day and month numbers).
    fn budget_keys(&self, widget: &str, today: (i64, i64)) -> [String; 4] {
        let p = &self.prefix;
        [
            format!("{p}budget:{widget}:day:{}", today.0),
            format!("{p}budget:{widget}:month:{}", today.1),
            format!("{p}budget:{widget}:held"),
            format!("{p}budget:{widget}:held-until"),
        ]
    }

    /// Reserves up to `want` tokens (at least `min`) from the widget's
    /// budgets, shared by every replica: answers on all of them together
    /// hold no more than is left. `totals` are the store's spent tokens
    /// today and this month, passed when [`SharedReserve::NeedTotals`]
    /// asked for them (the first reservation of a day or month in Redis).
    pub async fn reserve_budget(
        &self,
        widget: &str,
        limits: &Limits,
        want: u64,
        min: u64,
        totals: Option<(u64, u64)>,
    ) -> Result<SharedReserve, SharedError> {
        let today = super::Ledger::today();
        let id = crate::ids::new_id("rsv");
        let mut call = self.reserve.prepare_invoke();
        for key in self.budget_keys(widget, today) {
            call.key(key);
        }
        let total = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let day_ttl = (super::until_refill(super::Budget::Daily) * 1000)
            + BUDGET_KEY_SLACK.as_millis() as u64;
        let month_ttl = (super::until_refill(super::Budget::Monthly) * 1000)
            + BUDGET_KEY_SLACK.as_millis() as u64;
        call.arg(limits.daily_tokens)
            .arg(limits.monthly_tokens)
            .arg(want)
            .arg(min)
            .arg(total(totals.map(|t| t.0)))
            .arg(total(totals.map(|t| t.1)))
            .arg(day_ttl)
            .arg(month_ttl)
            .arg(&id)
            .arg(RESERVATION_TTL.as_millis() as u64);
        let reply: Vec<i64> = self.run(call).await?;
        Ok(match reply.as_slice() {
            [0, ..] => SharedReserve::NoBudget,
            [1, n, ..] => SharedReserve::Granted {
                id,
                tokens: (*n).max(0) as u64,
            },
            [2, 2, ..] => SharedReserve::Exhausted(super::Budget::Monthly),
            [2, ..] => SharedReserve::Exhausted(super::Budget::Daily),
            [3, ..] => SharedReserve::Busy,
            _ => SharedReserve::NeedTotals,
        })
    }

    /// Ends reservation `id` and counts the `tokens` its answer spent.
    pub async fn settle_budget(
        &self,
        widget: &str,
        id: &str,
        tokens: u64,
    ) -> Result<(), SharedError> {
        let mut call = self.settle.prepare_invoke();
        for key in self.budget_keys(widget, super::Ledger::today()) {
            call.key(key);
        }
        call.arg(id).arg(tokens);
        let _: i64 = self.run(call).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{LimitSettings, Limiter, WidgetLimits};

    fn redis_url() -> Option<String> {
        crate::testing::service_url("PORTHOLE_TEST_REDIS_URL", "Redis")
    }

    fn limits(per_session: u32, streams: u32) -> Limits {
        let mut l = Limits::of(&LimitSettings::default(), &WidgetLimits::default());
        l.per_session = per_session;
        l.streams_per_session = streams;
        l
    }

    /// Two replicas' limiters on one Redis, under a prefix of this run's.
    async fn replicas(url: &str) -> (Limiter, Limiter) {
        let prefix = format!("test:{}:", crate::ids::new_id("run"));
        let (a, b) = (Limiter::default(), Limiter::default());
        a.share(SharedLimits::connect(url, &prefix).await.unwrap());
        b.share(SharedLimits::connect(url, &prefix).await.unwrap());
        (a, b)
    }

    #[tokio::test]
    async fn a_rate_of_n_a_minute_admits_n_across_replicas_not_2n() {
        let Some(url) = redis_url() else { return };
        let (a, b) = replicas(&url).await;
        let ip = "203.0.113.9".parse().unwrap();
        let l = limits(6, 100);
        let mut admitted = 0;
        let mut permits = Vec::new();
        for i in 0..12 {
            let replica = if i % 2 == 0 { &a } else { &b };
            match replica.admit("w", l, "vis_1", ip).await {
                Ok(p) => {
                    admitted += 1;
                    permits.push(p);
                }
                Err(r) => {
                    assert_eq!((r.scope, r.limit), (Scope::Session, 6));
                    // One request every ten seconds refills: the wait says so.
                    assert!(
                        r.retry_after > Duration::from_secs(5)
                            && r.retry_after <= Duration::from_secs(10),
                        "{:?}",
                        r.retry_after
                    );
                }
            }
        }
        assert_eq!(admitted, 6);
        assert!(a.shared().unwrap().is_up());
        // Another session has its own allowance; the refused ones took
        // nothing from the IP's or the key's.
        assert!(b.admit("w", l, "vis_2", ip).await.is_ok());
    }

    #[tokio::test]
    async fn a_sessions_stream_cap_holds_across_replicas_and_frees_on_drop() {
        let Some(url) = redis_url() else { return };
        let (a, b) = replicas(&url).await;
        let ip = "203.0.113.10".parse().unwrap();
        let l = limits(100, 2);
        let one = a.admit("w", l, "vis_s", ip).await.unwrap();
        let _two = b.admit("w", l, "vis_s", ip).await.unwrap();
        let third = a.admit("w", l, "vis_s", ip).await.unwrap_err();
        assert_eq!((third.scope, third.limit), (Scope::Streams, 2));
        drop(one);
        // The slot goes back in the background.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match b.admit("w", l, "vis_s", ip).await {
                Ok(_) => break,
                Err(_) => {
                    assert!(tokio::time::Instant::now() < deadline, "slot never freed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    #[tokio::test]
    async fn when_redis_goes_away_limits_fall_back_to_the_replica_at_once() {
        // A Redis of this test's own, stopped halfway.
        if redis_url().is_none() {
            return;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut server = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        let url = format!("redis://127.0.0.1:{port}/");
        let mut shared = None;
        for _ in 0..50 {
            if let Ok(s) = SharedLimits::connect(&url, "fallback:").await {
                shared = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let limiter = Limiter::default();
        limiter.share(shared.expect("the test's Redis answers"));
        let ip = "203.0.113.11".parse().unwrap();
        let l = limits(3, 100);
        for _ in 0..3 {
            limiter.admit("w", l, "vis_f", ip).await.unwrap();
        }
        assert!(limiter.admit("w", l, "vis_f", ip).await.is_err());
        server.kill().await.unwrap();
        // Redis gone: the replica's own limiter decides, quickly, and says
        // Redis is down (its allowance starts full).
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            limiter.admit("w", l, "vis_f", ip).await.unwrap();
        }
        assert!(limiter.admit("w", l, "vis_f", ip).await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let shared = limiter.shared().unwrap();
        assert!(!shared.is_up());
        assert!(shared.errors() >= 1);
    }
}
