//! Answer logs: every event of an answer, kept as it is relayed, so a
//! visitor whose connection dropped (Wi-Fi to mobile data, a reload) can
//! come back with `Last-Event-ID` and get the events after it, then follow
//! live, while the model is called once.
//!
//! The relay appends frames and never waits for a reader; each reader
//! ([`AnswerLog::follow`]) keeps its own place and sends the SSE heartbeat
//! while it waits. Nobody reading is not the end: the relay goes on for a
//! grace period ([`AnswerLog::abandoned`]) and is cancelled only when
//! nobody came back; the Stop button ([`AnswerLog::stop`]) cancels at once.
//! A finished answer's log is kept for a while (`resume_ttl_secs`) so a late
//! reader still replays it to its end; after that, the history API has it.
//! Finished logs are also held to a memory budget (`resume_buffer_mib`):
//! past it the oldest go first, so a busy server's memory stays flat
//! whatever its answer rate.
//!
//! This log is the process's own; with Redis, `shared_log` mirrors it so
//! any replica can serve it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::Owner;

/// One answer's events.
#[derive(Debug)]
pub struct AnswerLog {
    /// The widget and visitor it belongs to: only they may read it.
    pub widget: String,
    pub owner: Owner,
    /// The conversation, for a reader that needs it.
    pub conversation_id: String,
    frames: Mutex<Vec<Bytes>>,
    /// (frames so far, ended): moves with every append.
    progress: watch::Sender<(usize, bool)>,
    /// Readers connected now.
    readers: watch::Sender<usize>,
    stop: CancellationToken,
}

impl AnswerLog {
    fn frames(&self) -> std::sync::MutexGuard<'_, Vec<Bytes>> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the frame of the next event (its `id:` is its index).
    pub fn push(&self, frame: Bytes) {
        let len = {
            let mut frames = self.frames();
            frames.push(frame);
            frames.len()
        };
        self.progress.send_modify(|p| p.0 = len);
    }

    /// Moves the frames into one allocation (each frame a slice of it) and
    /// returns the memory they hold: a finished log kept for replay costs
    /// its bytes, not an allocation per event.
    fn compact(&self) -> usize {
        let mut frames = self.frames();
        let total: usize = frames.iter().map(Bytes::len).sum();
        let mut all = bytes::BytesMut::with_capacity(total);
        for f in frames.iter() {
            all.extend_from_slice(f);
        }
        let all = all.freeze();
        let mut at = 0;
        for f in frames.iter_mut() {
            let n = f.len();
            *f = all.slice(at..at + n);
            at += n;
        }
        frames.shrink_to_fit();
        total + frames.len() * std::mem::size_of::<Bytes>()
    }

    /// (frames so far, ended), following every append.
    pub fn progress(&self) -> watch::Receiver<(usize, bool)> {
        self.progress.subscribe()
    }

    /// Frames `from..to`, as they were appended.
    pub fn frames_between(&self, from: usize, to: usize) -> Vec<Bytes> {
        let frames = self.frames();
        frames
            .get(from..to.min(frames.len()))
            .map(<[Bytes]>::to_vec)
            .unwrap_or_default()
    }

    /// Counts a reader elsewhere (on another replica) while the guard lives.
    pub fn hold_reader(self: &Arc<Self>) -> Reader {
        Reader::new(self.clone())
    }

    /// The terminal event has been appended: readers end after it.
    pub fn end(&self) {
        self.progress.send_modify(|p| p.1 = true);
    }

    pub fn is_ended(&self) -> bool {
        self.progress.borrow().1
    }

    /// Cancels the answer at once (the Stop button).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Resolves when the answer is stopped.
    pub async fn stopped(&self) {
        self.stop.cancelled().await;
    }

    /// Resolves once nobody has been reading for `grace`.
    pub async fn abandoned(&self, grace: Duration) {
        let mut readers = self.readers.subscribe();
        loop {
            if readers.wait_for(|n| *n == 0).await.is_err() {
                return;
            }
            match tokio::time::timeout(grace, readers.wait_for(|n| *n > 0)).await {
                Err(_) => return,
                Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The events after `after` (all of them for `None`), then the live
    /// ones, as SSE bytes, ending after the terminal event; `heartbeat`
    /// comments while it waits.
    pub fn follow(
        self: &Arc<Self>,
        after: Option<u64>,
        heartbeat: Duration,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + use<> {
        let next = after
            .map_or(0, |n| n.saturating_add(1))
            .min(usize::MAX as u64) as usize;
        let reader = Reader::new(self.clone());
        let progress = self.progress.subscribe();
        futures_util::stream::unfold(
            (reader, progress, next, false),
            move |(reader, mut progress, next, finished)| async move {
                if finished {
                    return None;
                }
                loop {
                    let (len, ended) = *progress.borrow_and_update();
                    if next < len {
                        let mut out = Vec::new();
                        for frame in &reader.log.frames()[next..len] {
                            out.extend_from_slice(frame);
                        }
                        let finished = ended;
                        return Some((Ok(Bytes::from(out)), (reader, progress, len, finished)));
                    }
                    if ended {
                        return None;
                    }
                    match tokio::time::timeout(heartbeat, progress.changed()).await {
                        Ok(Ok(())) => {}
                        // The relay is gone without ending the log.
                        Ok(Err(_)) => return None,
                        Err(_) => {
                            let ping = Bytes::from_static(protocol::event::HEARTBEAT.as_bytes());
                            return Some((Ok(ping), (reader, progress, next, false)));
                        }
                    }
                }
            },
        )
    }
}

/// Counts a reader while it lives.
#[derive(Debug)]
pub struct Reader {
    log: Arc<AnswerLog>,
}

impl Reader {
    fn new(log: Arc<AnswerLog>) -> Self {
        log.readers.send_modify(|n| *n += 1);
        Self { log }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.log.readers.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Finished logs kept for replay: (message id, bytes, kept until), and
/// their bytes in all.
#[derive(Debug, Default)]
struct Finished(VecDeque<(String, usize, Instant)>, usize);

/// The logs of this process's answers, by message id.
#[derive(Debug)]
pub struct AnswerLogs {
    logs: Mutex<HashMap<String, Arc<AnswerLog>>>,
    /// Finished logs, oldest first. One TTL for all, so this is also the
    /// order they expire in.
    finished: Mutex<Finished>,
    ttl: Duration,
    max_finished_bytes: usize,
}

impl Default for AnswerLogs {
    fn default() -> Self {
        Self::new(Duration::from_secs(120), 64 << 20)
    }
}

impl AnswerLogs {
    /// Finished logs are kept `ttl`, and at most `max_finished_bytes` of them.
    pub fn new(ttl: Duration, max_finished_bytes: usize) -> Self {
        Self {
            logs: Mutex::default(),
            finished: Mutex::default(),
            ttl,
            max_finished_bytes,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AnswerLog>>> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the log of a new answer.
    pub fn open(
        &self,
        message_id: &str,
        widget: &str,
        owner: &Owner,
        conversation_id: &str,
    ) -> Arc<AnswerLog> {
        let log = Arc::new(AnswerLog {
            widget: widget.to_owned(),
            owner: owner.clone(),
            conversation_id: conversation_id.to_owned(),
            frames: Mutex::new(Vec::new()),
            progress: watch::Sender::new((0, false)),
            readers: watch::Sender::new(0),
            stop: CancellationToken::new(),
        });
        self.map().insert(message_id.to_owned(), log.clone());
        log
    }

    pub fn get(&self, message_id: &str) -> Option<Arc<AnswerLog>> {
        self.sweep();
        self.map().get(message_id).cloned()
    }

    /// The answer has ended: its log is kept for the TTL, within the budget.
    pub fn finished(&self, message_id: &str) {
        let log = self.map().get(message_id).cloned();
        let bytes = log.map_or(0, |log| log.compact());
        {
            let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            finished
                .0
                .push_back((message_id.to_owned(), bytes, Instant::now() + self.ttl));
            finished.1 += bytes;
        }
        self.sweep();
    }

    /// Drops finished logs past their TTL, and the oldest past the budget.
    fn sweep(&self) {
        let now = Instant::now();
        let mut gone = Vec::new();
        {
            let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            while let Some((_, bytes, until)) = finished.0.front() {
                if *until > now && finished.1 <= self.max_finished_bytes {
                    break;
                }
                let bytes = *bytes;
                if let Some((id, _, _)) = finished.0.pop_front() {
                    gone.push(id);
                }
                finished.1 -= bytes;
            }
        }
        if !gone.is_empty() {
            let mut map = self.map();
            for id in gone {
                map.remove(&id);
            }
        }
    }

    /// Answers being relayed or kept for replay.
    pub fn len(&self) -> usize {
        self.sweep();
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of finished logs kept for replay.
    pub fn finished_bytes(&self) -> usize {
        self.finished.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn owner() -> Owner {
        Owner {
            visitor: "v".into(),
            user: None,
        }
    }

    async fn text(stream: impl Stream<Item = Result<Bytes, Infallible>>) -> String {
        let chunks: Vec<_> = stream.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_reader_replays_after_its_last_event_then_follows_to_the_end() {
        let logs = AnswerLogs::default();
        let log = logs.open("m1", "w", &owner(), "c1");
        log.push(Bytes::from("a\n"));
        log.push(Bytes::from("b\n"));
        let late = log.follow(Some(0), Duration::from_secs(5));
        let all = log.follow(None, Duration::from_secs(5));
        let writer = {
            let log = log.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.push(Bytes::from("c\n"));
                log.end();
            })
        };
        assert_eq!(text(late).await, "b\nc\n");
        assert_eq!(text(all).await, "a\nb\nc\n");
        writer.await.unwrap();
        // Past the end: nothing, at once.
        assert_eq!(text(log.follow(Some(2), Duration::from_secs(5))).await, "");
        // Kept for replay in one allocation, it replays the same.
        logs.finished("m1");
        assert_eq!(
            text(log.follow(Some(0), Duration::from_secs(5))).await,
            "b\nc\n"
        );
        assert!(logs.get("m1").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn finished_logs_go_after_their_ttl_and_the_oldest_first_past_the_budget() {
        let logs = AnswerLogs::new(
            Duration::from_secs(60),
            2 * (4 + std::mem::size_of::<Bytes>()) + 1,
        );
        for id in ["a", "b", "c"] {
            let log = logs.open(id, "w", &owner(), "c");
            log.push(Bytes::from("1234"));
            log.end();
            logs.finished(id);
        }
        // Each holds 4 bytes and one slice handle; the budget keeps two.
        assert!(logs.get("a").is_none());
        assert!(logs.get("b").is_some() && logs.get("c").is_some());
        assert_eq!(
            logs.finished_bytes(),
            2 * (4 + std::mem::size_of::<Bytes>())
        );
        // A running answer is never dropped for the budget.
        let running = logs.open("r", "w", &owner(), "c");
        running.push(Bytes::from("x".repeat(100)));
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(
            logs.len(),
            1,
            "the finished ones expired, the running one stays"
        );
        assert!(logs.get("r").is_some());
        assert_eq!(logs.finished_bytes(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reader_gets_heartbeats() {
        let logs = AnswerLogs::default();
        let log = logs.open("m1", "w", &owner(), "c1");
        let mut reader = Box::pin(log.follow(None, Duration::from_millis(10)));
        let first = reader.next().await.unwrap().unwrap();
        assert_eq!(first, protocol::event::HEARTBEAT.as_bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_abandoned_only_after_the_grace_with_nobody_reading() {
        let logs = AnswerLogs::default();
        let log = logs.open("m1", "w", &owner(), "c1");
        let reader = log.follow(None, Duration::from_secs(60));
        let grace = Duration::from_secs(30);
        let abandoned = {
            let log = log.clone();
            tokio::spawn(async move {
                log.abandoned(grace).await;
                tokio::time::Instant::now()
            })
        };
        let start = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!abandoned.is_finished(), "a reader is connected");
        drop(reader);
        tokio::time::sleep(Duration::from_secs(20)).await;
        // Back within the grace: not abandoned.
        let back = log.follow(Some(0), Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert!(!abandoned.is_finished());
        drop(back);
        let at = abandoned.await.unwrap();
        assert_eq!(at - start, Duration::from_secs(100 + 20 + 40 + 30));
    }
}
