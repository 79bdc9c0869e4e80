//! Answer logs shared by replicas, in Redis: the replica running an answer
//! mirrors its log (`chat::log`) into a Redis stream as it grows, so a
//! visitor whose connection dropped can resume on any replica, and the
//! Stop button works on any replica.
//!
//! Keys, under the `[redis] key_prefix`, for answer `id`:
//! - `log:{id}`: the stream, one entry per SSE frame (`f`), then `end`;
//! - `log:{id}:meta`: the widget, visitor, user and conversation, to
//!   authorise a reader elsewhere;
//! - `log:{id}:alive`: set by the running replica every second with a
//!   short expiry: a reader elsewhere that finds it gone before `end`
//!   knows the replica died and says `interrupted` (within [`ALIVE`]);
//! - `log:{id}:stop`: a stop asked elsewhere, which the running replica
//!   polls every second;
//! - `log:{id}:remote`: refreshed by readers elsewhere, so the running
//!   replica does not cancel an answer someone still reads (the grace).
//!
//! Mirroring never slows the answer: it runs in a task of its own, and a
//! Redis failure stops the mirror (with a warning), not the answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use protocol::{ApiError, ErrorCode, StreamEvent};
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};

use super::log::AnswerLog;
use crate::limits::shared::SharedLimits;
use crate::store::Owner;

/// How long a running answer's `alive` key outlives its last refresh: the
/// bound on how late a reader elsewhere learns its replica died.
pub const ALIVE: Duration = Duration::from_secs(5);

/// How often the running replica refreshes `alive`, polls `stop` and looks
/// for readers elsewhere.
const TICK: Duration = Duration::from_secs(1);

/// How long a reader elsewhere counts after its last refresh.
const REMOTE_READER: Duration = Duration::from_secs(3);

struct Keys {
    stream: String,
    meta: String,
    alive: String,
    stop: String,
    remote: String,
}

fn keys(prefix: &str, id: &str) -> Keys {
    let base = format!("{prefix}log:{id}");
    Keys {
        meta: format!("{base}:meta"),
        alive: format!("{base}:alive"),
        stop: format!("{base}:stop"),
        remote: format!("{base}:remote"),
        stream: base,
    }
}

/// Mirrors `log` into Redis until it ends; the keys then live `ttl` (the
/// finished log's resume window).
pub fn mirror(redis: &SharedLimits, log: Arc<AnswerLog>, message_id: &str, ttl: Duration) {
    let conn = redis.connection();
    let k = keys(redis.prefix(), message_id);
    let id = message_id.to_owned();
    tokio::spawn(async move {
        if let Err(e) = run_mirror(conn, &log, &k, ttl).await {
            tracing::warn!(error = %e, message = %id, "mirroring the answer to Redis failed: it resumes on this replica only");
        }
    });
}

async fn run_mirror(
    mut conn: redis::aio::ConnectionManager,
    log: &Arc<AnswerLog>,
    k: &Keys,
    ttl: Duration,
) -> redis::RedisResult<()> {
    let ttl_ms = ttl.as_millis().max(1) as u64;
    redis::pipe()
        .hset_multiple(
            &k.meta,
            &[
                ("widget", log.widget.as_str()),
                ("visitor", log.owner.visitor.as_str()),
                ("user", log.owner.user.as_deref().unwrap_or("")),
                ("conversation", log.conversation_id.as_str()),
            ],
        )
        .pexpire(&k.meta, ttl_ms as i64 + 3_600_000)
        .set_options(
            &k.alive,
            1,
            redis::SetOptions::default()
                .with_expiration(redis::SetExpiry::PX(ALIVE.as_millis() as u64)),
        )
        .exec_async(&mut conn)
        .await?;
    let mut progress = log.progress();
    let mut tick = tokio::time::interval(TICK);
    let mut written = 0;
    let mut remote_reader = None;
    loop {
        let (len, ended) = *progress.borrow_and_update();
        if written < len {
            let mut pipe = redis::pipe();
            for frame in log.frames_between(written, len) {
                pipe.xadd(&k.stream, "*", &[("f", frame.as_ref())]).ignore();
            }
            pipe.exec_async(&mut conn).await?;
            written = len;
        }
        if ended {
            redis::pipe()
                .xadd(&k.stream, "*", &[("end", "1")])
                .ignore()
                .pexpire(&k.stream, ttl_ms as i64)
                .ignore()
                .pexpire(&k.meta, ttl_ms as i64)
                .ignore()
                .del(&[&k.alive, &k.stop, &k.remote])
                .ignore()
                .exec_async(&mut conn)
                .await?;
            return Ok(());
        }
        tokio::select! {
            changed = progress.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                let (stop, remote): (Option<String>, bool) = redis::pipe()
                    .set_options(
                        &k.alive,
                        1,
                        redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ALIVE.as_millis() as u64)),
                    )
                    .ignore()
                    .get(&k.stop)
                    .exists(&k.remote)
                    .query_async(&mut conn)
                    .await?;
                if stop.is_some() {
                    log.stop();
                }
                // Someone reads elsewhere: the answer is not abandoned.
                match (remote, remote_reader.is_some()) {
                    (true, false) => remote_reader = Some(log.hold_reader()),
                    (false, true) => remote_reader = None,
                    _ => {}
                }
            }
        }
    }
}

/// An answer running (or run) on another replica, found in Redis.
#[derive(Debug)]
pub struct RemoteLog {
    client: redis::Client,
    conn: redis::aio::ConnectionManager,
    keys_prefix: String,
    id: String,
}

/// Looks up answer `id` in Redis: `Ok(None)` when Redis has no log of it,
/// `Err` when it is there but not `widget`'s or not `owner`'s to read.
pub async fn find(
    redis: &SharedLimits,
    widget: &str,
    owner: &Owner,
    id: &str,
) -> redis::RedisResult<Option<Result<RemoteLog, ()>>> {
    let mut conn = redis.connection();
    let k = keys(redis.prefix(), id);
    let meta: std::collections::HashMap<String, String> = conn.hgetall(&k.meta).await?;
    if meta.is_empty() {
        return Ok(None);
    }
    let get = |f: &str| meta.get(f).map(String::as_str).unwrap_or("");
    let user = Some(get("user")).filter(|u| !u.is_empty());
    if get("widget") != widget || !owner.may_read(Some(get("visitor")), user) {
        return Ok(Some(Err(())));
    }
    Ok(Some(Ok(RemoteLog {
        client: redis.client().clone(),
        conn,
        keys_prefix: redis.prefix().to_owned(),
        id: id.to_owned(),
    })))
}

impl RemoteLog {
    /// Asks the replica running the answer to stop it (within a second).
    pub async fn stop(&self) -> redis::RedisResult<()> {
        let k = keys(&self.keys_prefix, &self.id);
        let mut conn = self.conn.clone();
        conn.set_ex::<_, _, ()>(&k.stop, 1, 600).await
    }

    /// The events after `after` (all for `None`), then the live ones, as
    /// SSE bytes, ending after the terminal event; `heartbeat` comments
    /// while it waits; a terminal `interrupted` error when the replica
    /// running the answer is gone (its `alive` key expired before `end`).
    pub fn follow(
        self,
        after: Option<u64>,
        heartbeat: Duration,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + use<> {
        let skip = after.map_or(0, |n| n.saturating_add(1));
        let k = keys(&self.keys_prefix, &self.id);
        let state = Follow {
            log: self,
            k,
            conn: None,
            last_id: "0-0".to_owned(),
            index: 0,
            skip,
            finished: false,
            quiet_since: tokio::time::Instant::now(),
            gone_once: false,
        };
        futures_util::stream::unfold(state, move |mut st| async move {
            if st.finished {
                return None;
            }
            match st.next(heartbeat).await {
                Ok(bytes) => Some((Ok(bytes), st)),
                Err(e) => {
                    tracing::warn!(error = %e, "reading a shared answer log failed");
                    st.finished = true;
                    let frame = interrupted(st.index);
                    Some((Ok(frame), st))
                }
            }
        })
    }
}

/// The terminal error a reader gets when the answer's replica is gone.
fn interrupted(index: u64) -> Bytes {
    Bytes::from(
        StreamEvent::Error(ApiError::new(
            ErrorCode::Interrupted,
            "The server writing this answer went away; what it wrote is in the conversation. Please ask again.",
        ))
        .to_sse(index),
    )
}

struct Follow {
    log: RemoteLog,
    k: Keys,
    /// A connection of its own: a blocking read must not hold up others.
    conn: Option<redis::aio::MultiplexedConnection>,
    last_id: String,
    /// The SSE id of the next frame.
    index: u64,
    skip: u64,
    finished: bool,
    quiet_since: tokio::time::Instant,
    /// `alive` was missing at the last look.
    gone_once: bool,
}

impl Follow {
    async fn next(&mut self, heartbeat: Duration) -> redis::RedisResult<Bytes> {
        if self.conn.is_none() {
            self.conn = Some(self.log.client.get_multiplexed_async_connection().await?);
        }
        loop {
            // Still reading: the running replica keeps the answer going.
            let mut shared = self.log.conn.clone();
            shared
                .pset_ex::<_, _, ()>(&self.k.remote, 1, REMOTE_READER.as_millis() as u64)
                .await?;
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let options = StreamReadOptions::default()
                .count(256)
                .block(TICK.as_millis() as usize);
            let reply: Option<StreamReadReply> = conn
                .xread_options(&[&self.k.stream], &[&self.last_id], &options)
                .await?;
            let mut out = Vec::new();
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                for entry in key.ids {
                    self.last_id = entry.id.clone();
                    if entry.map.contains_key("end") {
                        self.finished = true;
                        break;
                    }
                    if let Some(redis::Value::BulkString(frame)) = entry.map.get("f") {
                        if self.index >= self.skip {
                            out.extend_from_slice(frame);
                        }
                        self.index += 1;
                    }
                }
            }
            if !out.is_empty() || self.finished {
                self.quiet_since = tokio::time::Instant::now();
                if out.is_empty() {
                    // Ended with nothing new for this reader.
                    return Ok(Bytes::new());
                }
                return Ok(Bytes::from(out));
            }
            let alive: bool = shared.exists(&self.k.alive).await?;
            if !alive {
                // The replica may have ended the answer (and dropped
                // `alive`) just after that read: one more read decides.
                if self.gone_once {
                    self.finished = true;
                    return Ok(interrupted(self.index));
                }
                self.gone_once = true;
                continue;
            }
            self.gone_once = false;
            if self.quiet_since.elapsed() >= heartbeat {
                self.quiet_since = tokio::time::Instant::now();
                return Ok(Bytes::from_static(protocol::event::HEARTBEAT.as_bytes()));
            }
        }
    }
}
