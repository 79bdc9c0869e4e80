use std::time::Duration;

use mock_upstream::{MockUpstream, Script};
use porthole::config::{ProviderKind, WidgetSettings};
use porthole::state::Lifecycle;
use porthole::{Application, Settings};
use protocol::{SseParser, StreamEvent};
use serde_json::{Value, json};
use tokio::time::Instant;

pub const KEY: &str = "pk_test";

/// A fresh folder under the system's temp dir, unique in this test run.
pub fn temp_dir(label: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("porthole-test-{}-{label}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// With `PORTHOLE_TEST_STORE=postgres` (scripts/test runs the suite once
/// so), the store of the test folder `dir` is a schema of its own on the
/// PostgreSQL server of `PORTHOLE_TEST_DATABASE_URL` instead of the SQLite
/// file in it: made fresh the first time it is asked for, the same after.
pub fn postgres_store(dir: &std::path::Path) -> Option<String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static SCHEMAS: Mutex<Option<HashMap<std::path::PathBuf, String>>> = Mutex::new(None);
    if std::env::var("PORTHOLE_TEST_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    let mut schemas = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
    let schemas = schemas.get_or_insert_with(HashMap::new);
    if let Some(url) = schemas.get(dir) {
        return Some(url.clone());
    }
    let url = std::env::var("PORTHOLE_TEST_DATABASE_URL")
        .expect("PORTHOLE_TEST_STORE=postgres needs PORTHOLE_TEST_DATABASE_URL");
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let schema = format!("api_{name}");
    // Settings are made outside any runtime's reach: a thread of its own.
    let made = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(porthole::store::postgres::testing::fresh_schema(
                &url, &schema,
            ))
    })
    .join()
    .expect("the schema thread")
    .expect("a fresh PostgreSQL schema");
    schemas.insert(dir.to_owned(), made.clone());
    Some(made)
}

/// The store of the test folder holding `db` (its SQLite file, or its
/// PostgreSQL schema under `PORTHOLE_TEST_STORE=postgres`), opened as a
/// second process would.
pub async fn open_store(db: &std::path::Path) -> std::sync::Arc<dyn porthole::store::Store> {
    let dir = db.parent().expect("the database is in a folder");
    let location = match postgres_store(dir) {
        Some(url) => porthole::store::Location::Postgres(url),
        None => porthole::store::Location::Sqlite(db.to_owned()),
    };
    porthole::store::open(&location).await.expect("store")
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub lifecycle: Lifecycle,
    pub mock: Option<MockUpstream>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// A session of the test widget, from its page.
    pub session: String,
}

/// Settings for a test server that talks to `base_url`.
pub fn test_settings(base_url: Option<String>) -> Settings {
    let mut settings = Settings {
        addr: "127.0.0.1:0".parse().expect("literal address"),
        shutdown_deadline_ms: 2_000,
        ..Settings::default()
    };
    let dir = temp_dir("api");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = postgres_store(&dir);
    settings.upstream.first_token_timeout_ms = 2_000;
    settings.upstream.idle_timeout_ms = 1_000;
    settings.offline.word_delay_ms = 1;
    match base_url {
        Some(url) => {
            settings.upstream.provider = ProviderKind::Openai;
            settings.upstream.base_url = url;
            settings.upstream.api_key = Some("sk-test".to_owned().into());
        }
        None => settings.upstream.provider = ProviderKind::Offline,
    }
    settings.widgets.push(WidgetSettings {
        id: "test".into(),
        public_key: KEY.into(),
        title: "Test".into(),
        system_prompt: "You are a test.".into(),
        knowledge: None,
        greeting: "Hello from the test widget.".into(),
        starters: vec!["What can you do?".into()],
        ..Default::default()
    });
    settings
}

/// The session token minted into `/widget/{id}?key=…`, as the widget
/// reads it from its page.
pub async fn page_session(client: &reqwest::Client, base: &str, id: &str, key: &str) -> String {
    let response = client
        .get(format!("{base}/widget/{id}?key={key}"))
        .send()
        .await
        .expect("page request is sent");
    let status = response.status();
    let page = response.text().await.expect("page body");
    assert_eq!(
        status, 200,
        "the widget page must be served (is the widget built? run scripts/build-widget): {page}"
    );
    session_in_page(&page).unwrap_or_else(|| panic!("no session in the page: {page}"))
}

/// The `session` of the config JSON in a widget page.
pub fn session_in_page(page: &str) -> Option<String> {
    let start = page.find("\"session\":\"")? + "\"session\":\"".len();
    let len = page[start..].find('"')?;
    Some(page[start..start + len].to_owned())
}

pub async fn spawn_app(settings: Settings, mock: Option<MockUpstream>, demo: bool) -> TestApp {
    let app = Application::build(settings, demo)
        .await
        .expect("app builds");
    let base = format!("http://{}", app.addr());
    let lifecycle = app.lifecycle();
    let server = tokio::spawn(app.run());
    let client = reqwest::Client::new();
    let session = page_session(&client, &base, "test", KEY).await;
    TestApp {
        base,
        client,
        lifecycle,
        mock,
        server,
        session,
    }
}

/// A server whose upstream is a mock playing `script`; `tweak` adjusts settings.
pub async fn spawn_with_mock(script: Script, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mock = MockUpstream::start(script).await.expect("mock starts");
    let mut settings = test_settings(Some(mock.base_url()));
    tweak(&mut settings);
    spawn_app(settings, Some(mock), false).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn mock(&self) -> &MockUpstream {
        self.mock.as_ref().expect("this app has a mock upstream")
    }

    /// `POST /api/v1/chat` with the test key, its session and a JSON body.
    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/chat"))
            .header("x-api-key", KEY)
            .bearer_auth(&self.session)
            .json(&body)
            .send()
            .await
            .expect("request is sent")
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request is sent")
    }

    pub async fn ask(&self, message: &str) -> reqwest::Response {
        self.chat(json!({ "message": message })).await
    }
}

/// Reads SSE events off a response as they arrive.
pub struct EventReader {
    response: reqwest::Response,
    parser: SseParser,
    pending: std::collections::VecDeque<StreamEvent>,
    pub comments_seen: usize,
    /// The `id:` of each event read so far, in order.
    pub ids: Vec<u64>,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            parser: SseParser::new(),
            pending: Default::default(),
            comments_seen: 0,
            ids: Vec::new(),
        }
    }

    /// The next event, or `None` at the end of the body. Panics after 10 s.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let bytes = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .ok()??;
            self.comments_seen += bytes.windows(2).filter(|w| w == b"\n:").count()
                + usize::from(bytes.starts_with(b":"));
            for msg in self.parser.push(&bytes) {
                self.ids.push(
                    msg.id
                        .as_deref()
                        .and_then(|id| id.parse().ok())
                        .expect("every event has a numeric id"),
                );
                self.pending
                    .push_back(StreamEvent::from_sse(&msg).expect("every event decodes"));
            }
        }
    }

    /// The events left, to the end of the body (the reader keeps their
    /// ids in [`Self::ids`]).
    pub async fn rest(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }

    /// All remaining events with their arrival times.
    pub async fn collect_timed(mut self) -> Vec<(StreamEvent, Instant)> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push((e, Instant::now()));
        }
        out
    }

    pub async fn collect(self) -> Vec<StreamEvent> {
        self.collect_timed()
            .await
            .into_iter()
            .map(|(e, _)| e)
            .collect()
    }
}

/// The text of all chunk events.
pub fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Chunk(c) => Some(c.chunk.as_str()),
            _ => None,
        })
        .collect()
}

/// The JSON body of a non-2xx response, checked to be an `ApiError`.
pub async fn api_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "status {status}, content-type {content_type:?}"
    );
    let body: protocol::ApiError = response.json().await.expect("an ApiError body");
    assert!(!body.message.is_empty());
    (status, body.code.as_str().to_owned())
}

/// Starts the real `porthole` binary with `config`; returns it and its base
/// URL (read from the line it prints once listening).
pub async fn start_binary(config: &std::path::Path) -> (tokio::process::Child, String) {
    start_binary_with(config, &[]).await
}

/// [`start_binary`] with more arguments to `serve` (`--demo`).
pub async fn start_binary_with(
    config: &std::path::Path,
    extra: &[&str],
) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_porthole"))
        .args(["serve", "--config"])
        .arg(config)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("listening line in time")
        .expect("stdout readable")
        .expect("a line");
    let base = line.rsplit(' ').next().expect("url").to_owned();
    (child, base)
}

/// Runs a `porthole` CLI command against `config`'s database; returns the
/// exit success, stdout and stderr.
pub fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_porthole"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("the CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a config file in `dir` for a server on port 0 with its database
/// there; `more` is appended (widgets, upstream).
pub fn write_config(dir: &std::path::Path, more: &str) -> std::path::PathBuf {
    let url = postgres_store(dir)
        .map(|url| format!("url = \"{url}\"\n"))
        .unwrap_or_default();
    write_config_with(dir, &url, more)
}

/// [`write_config`] with the SQLite file whatever the suite's store (a
/// test of SQLite itself).
pub fn write_sqlite_config(dir: &std::path::Path, more: &str) -> std::path::PathBuf {
    write_config_with(dir, "", more)
}

fn write_config_with(dir: &std::path::Path, store: &str, more: &str) -> std::path::PathBuf {
    let path = dir.join("porthole.toml");
    std::fs::write(
        &path,
        format!(
            "addr = \"127.0.0.1:0\"\n[store]\npath = \"{}\"\n{store}{more}",
            dir.join("porthole.db").display(),
        ),
    )
    .expect("config written");
    path
}

/// A new admin key made with `porthole admin-key create`.
pub fn admin_key(config: &std::path::Path) -> String {
    let (ok, out, err) = cli(config, &["admin-key", "create", "--name", "tests"]);
    assert!(ok, "admin-key create failed: {err}");
    let key = out.trim().to_owned();
    assert!(key.starts_with("ak_"), "{out}");
    key
}
