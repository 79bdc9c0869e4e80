//! An OpenAI-compatible chat completions server that streams scripted tokens
//! over real HTTP/1.1, with pacing and faults, for Porthole's tests and
//! benchmarks. It is a plain TCP server on purpose: a fault such as a
//! connection reset mid-stream or a stall must be exactly what goes over the
//! wire, and it must see the moment its client hangs up.
//!
//! It speaks `POST {base}/chat/completions` with `"stream": true` and answers
//! in the real format: `chat.completion.chunk` objects as SSE `data:` lines,
//! a final chunk with `finish_reason`, an optional usage chunk with empty
//! `choices`, then `data: [DONE]`.
//!
//! It also speaks `POST {base}/embeddings` (one string or a list): each
//! input becomes a deterministic vector ([`embedding`]: its words hashed
//! into [`EMBEDDING_DIMENSIONS`] signed buckets, normalised), so texts that
//! share words are near and the same text always gets the same vector. It
//! counts calls and inputs, and can be told to fail ([`MockUpstream::set_embeddings_fault`]).

pub mod receiver;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the mock does wrong, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// Answer with this HTTP status and an OpenAI-style error body.
    Status(u16),
    /// Reset the connection (TCP RST) after this many tokens.
    ResetAfter(usize),
    /// Stop sending after this many tokens, keeping the connection open.
    StallAfter(usize),
    /// Send a chunk that is not JSON after this many tokens.
    MalformedAfter(usize),
    /// End the body after the tokens without a finish reason or `[DONE]`.
    NoDone,
    /// Send the final usage chunk with `"choices": null`, as vLLM does.
    NullChoicesUsage,
}

/// What the mock answers.
#[derive(Debug, Clone)]
pub struct Script {
    /// The answer, token by token.
    pub tokens: Vec<String>,
    /// Wait before the first token.
    pub first_token_delay: Duration,
    /// Wait between tokens.
    pub token_delay: Duration,
    pub fault: Fault,
    /// When set, requests must carry `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
}

impl Default for Script {
    fn default() -> Self {
        Self::words("The quick brown fox jumps over the lazy dog.", 5)
    }
}

impl Script {
    /// Streams `text` split after each space, `delay_ms` apart.
    pub fn words(text: &str, delay_ms: u64) -> Self {
        Self {
            tokens: text.split_inclusive(' ').map(str::to_owned).collect(),
            first_token_delay: Duration::from_millis(delay_ms),
            token_delay: Duration::from_millis(delay_ms),
            fault: Fault::None,
            api_key: None,
        }
    }

    /// Streams `text` in pieces of `chars` characters, `delay_ms` apart:
    /// for scripts written without spaces (Japanese, Chinese).
    pub fn chars(text: &str, chars: usize, delay_ms: u64) -> Self {
        let all: Vec<char> = text.chars().collect();
        Self {
            tokens: all
                .chunks(chars.max(1))
                .map(|c| c.iter().collect())
                .collect(),
            ..Self::words("", delay_ms)
        }
    }

    /// `count` tokens `tok0 tok1 …`, `delay_ms` apart.
    pub fn numbered(count: usize, delay_ms: u64) -> Self {
        Self {
            tokens: (0..count).map(|i| format!("tok{i} ")).collect(),
            first_token_delay: Duration::from_millis(delay_ms),
            token_delay: Duration::from_millis(delay_ms),
            fault: Fault::None,
            api_key: None,
        }
    }

    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }
}

/// Counters of what the mock has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Streams started (headers sent).
    pub opened: usize,
    /// Streams sent to their end.
    pub completed: usize,
    /// Streams whose client hung up before the end.
    pub client_closed: usize,
    /// Embeddings requests answered (failed ones included).
    pub embedding_calls: usize,
    /// Texts embedded by successful requests.
    pub embedded_inputs: usize,
}

/// The length of the mock's vectors.
pub const EMBEDDING_DIMENSIONS: usize = 256;

/// The mock's vector for `text`: each lower-cased word (letters and digits;
/// a trailing `s` dropped, so plurals meet their singular) adds ±1 to a
/// bucket chosen by its FNV-1a hash, and the sum is scaled to length 1.
/// Texts with no word get a fixed unit vector.
pub fn embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; EMBEDDING_DIMENSIONS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        let word = word
            .strip_suffix('s')
            .filter(|w| w.len() > 2)
            .unwrap_or(&word);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let bucket = (h % EMBEDDING_DIMENSIONS as u64) as usize;
        v[bucket] += if (h >> 32) & 1 == 0 { 1.0 } else { -1.0 };
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[derive(Debug)]
struct State {
    script: Mutex<Script>,
    requests: Mutex<Vec<Value>>,
    opened: AtomicUsize,
    completed: AtomicUsize,
    client_closed: AtomicUsize,
    embedding_calls: AtomicUsize,
    embedded_inputs: AtomicUsize,
    embeddings_fault: Mutex<Option<u16>>,
    embeddings_delay: Mutex<Duration>,
    changed: Notify,
}

/// A running mock; it stops when dropped.
#[derive(Debug)]
pub struct MockUpstream {
    addr: std::net::SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    /// Starts on 127.0.0.1 with an OS-chosen port.
    pub async fn start(script: Script) -> std::io::Result<Self> {
        Self::bind("127.0.0.1:0", script).await
    }

    pub async fn bind(addr: &str, script: Script) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            script: Mutex::new(script),
            requests: Mutex::new(Vec::new()),
            opened: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            client_closed: AtomicUsize::new(0),
            embedding_calls: AtomicUsize::new(0),
            embedded_inputs: AtomicUsize::new(0),
            embeddings_fault: Mutex::new(None),
            embeddings_delay: Mutex::new(Duration::ZERO),
            changed: Notify::new(),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve(socket, accept_state.clone()));
            }
        });
        Ok(Self { addr, state, task })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The base URL to give an OpenAI client, ending in `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_script(&self, script: Script) {
        *lock(&self.state.script) = script;
    }

    /// Makes `/embeddings` answer with this HTTP status (`None`: answer).
    pub fn set_embeddings_fault(&self, status: Option<u16>) {
        *lock(&self.state.embeddings_fault) = status;
    }

    /// Makes `/embeddings` wait this long before it answers.
    pub fn set_embeddings_delay(&self, delay: Duration) {
        *lock(&self.state.embeddings_delay) = delay;
    }

    /// The JSON bodies of the chat requests received so far.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.state.requests).clone()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            opened: self.state.opened.load(Ordering::SeqCst),
            completed: self.state.completed.load(Ordering::SeqCst),
            client_closed: self.state.client_closed.load(Ordering::SeqCst),
            embedding_calls: self.state.embedding_calls.load(Ordering::SeqCst),
            embedded_inputs: self.state.embedded_inputs.load(Ordering::SeqCst),
        }
    }

    /// Waits until `cond` holds for the stats, or `timeout` passes; returns
    /// whether it held.
    pub async fn wait_for(&self, timeout: Duration, cond: impl Fn(Stats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            if cond(self.stats()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return cond(self.stats());
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads one request: head and `Content-Length` body.
async fn read_request(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

async fn respond_json(socket: &mut TcpStream, status: u16, body: &Value) -> bool {
    let body = body.to_string();
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await.is_ok()
}

fn openai_error(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

/// Serves requests on one connection, keeping it alive between them as
/// real providers do, until the client closes it or a fault ends it.
async fn serve(mut socket: TcpStream, state: Arc<State>) {
    while let Some((head, body)) = read_request(&mut socket).await {
        let keep_alive = answer(&mut socket, &state, &head, &body).await;
        state.changed.notify_waiters();
        if !keep_alive {
            return;
        }
    }
}

/// Answers one request; false when the connection must not be reused.
async fn answer(socket: &mut TcpStream, state: &State, head: &str, body: &[u8]) -> bool {
    let script = lock(&state.script).clone();
    let request_line = head.lines().next().unwrap_or_default();
    let embeddings = request_line.starts_with("POST ") && request_line.contains("/embeddings ");
    if !embeddings
        && (!request_line.starts_with("POST ") || !request_line.contains("/chat/completions "))
    {
        return respond_json(
            socket,
            404,
            &openai_error("no such route", "invalid_request_error"),
        )
        .await;
    }
    if let Some(key) = &script.api_key {
        let expected = format!("Bearer {key}");
        if header(head, "authorization") != Some(expected.as_str()) {
            return respond_json(
                socket,
                401,
                &openai_error("Incorrect API key provided", "invalid_request_error"),
            )
            .await;
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return respond_json(
            socket,
            400,
            &openai_error("body is not JSON", "invalid_request_error"),
        )
        .await;
    };
    if embeddings {
        return answer_embeddings(socket, state, &request).await;
    }
    lock(&state.requests).push(request.clone());
    if let Fault::Status(status) = script.fault {
        return respond_json(
            socket,
            status,
            &openai_error("scripted failure", "server_error"),
        )
        .await;
    }
    let model = request["model"].as_str().unwrap_or("mock").to_owned();
    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);

    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    if socket.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    state.opened.fetch_add(1, Ordering::SeqCst);
    state.changed.notify_waiters();

    let outcome = {
        let (mut reader, mut writer) = socket.split();
        // The client may hang up at any moment, also while we wait between
        // tokens: watch the read half for EOF alongside the writer.
        let hung_up = wait_for_eof(&mut reader);
        tokio::select! {
            outcome = write_stream(&mut writer, &script, &model, include_usage) => outcome,
            _ = hung_up => Outcome::ClientGone,
        }
    };
    match outcome {
        Outcome::Completed => {
            state.completed.fetch_add(1, Ordering::SeqCst);
            true
        }
        Outcome::ClientGone => {
            state.client_closed.fetch_add(1, Ordering::SeqCst);
            false
        }
        Outcome::Reset => {
            // Closing with SO_LINGER 0 sends RST instead of FIN.
            let _ = socket.set_zero_linger();
            false
        }
        Outcome::Stalled => {
            // Stay silent, connection open, until the client gives up.
            let (mut reader, _) = socket.split();
            wait_for_eof(&mut reader).await;
            state.client_closed.fetch_add(1, Ordering::SeqCst);
            false
        }
    }
}

/// `POST /embeddings`: `input` is a string or a list of strings.
async fn answer_embeddings(socket: &mut TcpStream, state: &State, request: &Value) -> bool {
    state.embedding_calls.fetch_add(1, Ordering::SeqCst);
    let delay = *lock(&state.embeddings_delay);
    tokio::time::sleep(delay).await;
    let fault = *lock(&state.embeddings_fault);
    if let Some(status) = fault {
        return respond_json(
            socket,
            status,
            &openai_error("scripted failure", "server_error"),
        )
        .await;
    }
    let inputs: Vec<&str> = match &request["input"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            return respond_json(
                socket,
                400,
                &openai_error(
                    "'input' must be a string or a non-empty list of strings",
                    "invalid_request_error",
                ),
            )
            .await;
        }
    };
    state
        .embedded_inputs
        .fetch_add(inputs.len(), Ordering::SeqCst);
    let tokens: usize = inputs
        .iter()
        .map(|t| t.split_whitespace().count().max(1))
        .sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": embedding(text)}))
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": request["model"].as_str().unwrap_or("mock-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    respond_json(socket, 200, &body).await
}

async fn wait_for_eof(reader: &mut (impl AsyncReadExt + Unpin)) {
    let mut sink = [0u8; 512];
    loop {
        match reader.read(&mut sink).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    ClientGone,
    Reset,
    Stalled,
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000u32,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    })
    .to_string()
}

async fn send_event(w: &mut (impl AsyncWriteExt + Unpin), data: &str) -> bool {
    let event = format!("data: {data}\n\n");
    let framed = format!("{:x}\r\n{event}\r\n", event.len());
    w.write_all(framed.as_bytes()).await.is_ok()
}

async fn write_stream(
    w: &mut (impl AsyncWriteExt + Unpin),
    script: &Script,
    model: &str,
    include_usage: bool,
) -> Outcome {
    let started = tokio::time::Instant::now();
    for (i, token) in script.tokens.iter().enumerate() {
        match script.fault {
            Fault::ResetAfter(n) if n == i => return Outcome::Reset,
            Fault::StallAfter(n) if n == i => return Outcome::Stalled,
            Fault::MalformedAfter(n) if n == i && !send_event(w, "{\"choices\": [oops").await => {
                return Outcome::ClientGone;
            }
            _ => {}
        }
        // Pace against absolute deadlines so timer slop does not add up:
        // token i leaves at first_token_delay + i * token_delay.
        let due = started + script.first_token_delay + script.token_delay * i as u32;
        if due > tokio::time::Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let delta = if i == 0 {
            json!({"role": "assistant", "content": token})
        } else {
            json!({"content": token})
        };
        if !send_event(w, &chunk(model, delta, None)).await {
            return Outcome::ClientGone;
        }
    }
    match script.fault {
        Fault::ResetAfter(_) => return Outcome::Reset,
        Fault::StallAfter(_) => return Outcome::Stalled,
        Fault::NoDone => {
            let _ = w.write_all(b"0\r\n\r\n").await;
            return Outcome::Completed;
        }
        _ => {}
    }
    if !send_event(w, &chunk(model, json!({}), Some("stop"))).await {
        return Outcome::ClientGone;
    }
    let completion = script.tokens.len() as u32;
    let usage = json!({"prompt_tokens": 10, "completion_tokens": completion, "total_tokens": 10 + completion});
    if include_usage || script.fault == Fault::NullChoicesUsage {
        let choices = if script.fault == Fault::NullChoicesUsage {
            Value::Null
        } else {
            json!([])
        };
        let last = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000u32,
            "model": model,
            "choices": choices,
            "usage": usage,
        });
        if !send_event(w, &last.to_string()).await {
            return Outcome::ClientGone;
        }
    }
    if !send_event(w, "[DONE]").await || w.write_all(b"0\r\n\r\n").await.is_err() {
        return Outcome::ClientGone;
    }
    Outcome::Completed
}
