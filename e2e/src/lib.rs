//! The harness for Porthole's end-to-end tests and size report: the real
//! server (in this process, port 0), the mock upstream over real HTTP, and a
//! real headless Chromium driven over the DevTools protocol.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chromiumoxide::cdp::browser_protocol::emulation::{
    MediaFeature, SetDeviceMetricsOverrideParams, SetEmulatedMediaParams,
};
use chromiumoxide::cdp::browser_protocol::input::{DispatchKeyEventParams, DispatchKeyEventType};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures_util::StreamExt;
use mock_upstream::{MockUpstream, Script};
use porthole::config::{ProviderKind, WidgetSettings};
use porthole::state::Lifecycle;
use porthole::{Application, Settings};
use serde_json::Value;

pub const KEY: &str = "pk_e2e";
pub const WIDGET: &str = "e2e";

/// The test widget's panel page, as the loader's iframe opens it.
pub fn panel_path() -> String {
    format!("/widget/{WIDGET}?key={KEY}")
}

/// A running server, its mock upstream and a browser.
pub struct Harness {
    pub base: String,
    pub mock: MockUpstream,
    pub lifecycle: Lifecycle,
    pub browser: Browser,
    /// The server's SQLite file, to check what was stored.
    pub db: PathBuf,
    handler: tokio::task::JoinHandle<()>,
    profile: PathBuf,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.lifecycle.cut_streams();
        self.handler.abort();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where Chromium is: `$CHROMIUM`, else Debian's.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Launches headless Chromium with a fresh profile and no background traffic.
pub async fn launch_browser() -> anyhow::Result<(Browser, tokio::task::JoinHandle<()>, PathBuf)> {
    let exe = chromium_path();
    if !exe.exists() {
        bail!(
            "Chromium not found at {} (scripts/test installs it)",
            exe.display()
        );
    }
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let profile = std::env::temp_dir().join(format!(
        "porthole-e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let config = BrowserConfig::builder()
        .chrome_executable(&exe)
        .no_sandbox()
        .user_data_dir(&profile)
        .viewport(None)
        .launch_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_secs(30))
        .args([
            "disable-gpu",
            "disable-dev-shm-usage",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
            "disable-quic",
            "no-first-run",
            "hide-scrollbars",
        ])
        .build()
        .map_err(anyhow::Error::msg)?;
    let (browser, mut handler) = Browser::launch(config)
        .await
        .context("launching Chromium")?;
    let task = tokio::spawn(async move { while handler.next().await.is_some() {} });
    Ok((browser, task, profile))
}

/// Server settings for the e2e widget, talking to `upstream`.
pub fn settings(upstream: &str) -> Settings {
    let mut s = Settings {
        addr: "127.0.0.1:0".parse().expect("literal address"),
        shutdown_deadline_ms: 1_000,
        ..Settings::default()
    };
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    s.store.path = std::env::temp_dir().join(format!(
        "porthole-e2e-db-{}-{}/porthole.db",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    s.upstream.provider = ProviderKind::Openai;
    s.upstream.base_url = upstream.to_owned();
    s.upstream.api_key = Some("sk-e2e".to_owned().into());
    s.upstream.first_token_timeout_ms = 5_000;
    s.upstream.idle_timeout_ms = 5_000;
    s.widgets.push(WidgetSettings {
        id: WIDGET.into(),
        public_key: KEY.into(),
        title: "Acme Support".into(),
        system_prompt: "Be brief.".into(),
        knowledge: None,
        greeting: "Hi! Ask me anything about Acme.".into(),
        starters: vec!["How do I get started?".into(), "Which models work?".into()],
        ..Default::default()
    });
    s
}

impl Harness {
    /// Starts everything; `tweak` adjusts the server's settings.
    pub async fn start(script: Script, tweak: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        if porthole::assets::WidgetAssets::load().is_none() {
            bail!("the widget is not built: run scripts/build-widget (scripts/test does)");
        }
        let mock = MockUpstream::start(script).await?;
        let mut s = settings(&mock.base_url());
        tweak(&mut s);
        let db = s.store.path.clone();
        let app = Application::build(s, true).await?;
        let base = format!("http://{}", app.addr());
        let lifecycle = app.lifecycle();
        tokio::spawn(app.run());
        let (browser, handler, profile) = launch_browser().await?;
        Ok(Self {
            base,
            mock,
            lifecycle,
            browser,
            db,
            handler,
            profile,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens `path` in a new tab sized `width` x `height` CSS pixels.
    pub async fn open(
        &self,
        path: &str,
        width: i64,
        height: i64,
        mobile: bool,
    ) -> anyhow::Result<Page> {
        let page = self.browser.new_page("about:blank").await?;
        page.execute(SetDeviceMetricsOverrideParams::new(
            width, height, 1.0, mobile,
        ))
        .await?;
        page.goto(self.url(path)).await?;
        Ok(page)
    }
}

/// Switches `prefers-color-scheme` for a page.
pub async fn set_dark(page: &Page, dark: bool) -> anyhow::Result<()> {
    let feature = MediaFeature::new("prefers-color-scheme", if dark { "dark" } else { "light" });
    page.execute(
        SetEmulatedMediaParams::builder()
            .features(vec![feature])
            .build(),
    )
    .await?;
    Ok(())
}

/// Evaluates a JS expression and returns its JSON value.
pub async fn eval(page: &Page, js: &str) -> anyhow::Result<Value> {
    let result = page
        .evaluate(js)
        .await
        .with_context(|| format!("evaluating {js}"))?;
    Ok(result.into_value::<Value>().unwrap_or(Value::Null))
}

/// Polls a JS expression until it is truthy; returns its value.
pub async fn wait_for(page: &Page, js: &str, timeout: Duration) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let v = eval(page, js).await.unwrap_or(Value::Null);
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for `{js}` (last value {v})");
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Presses a key the way a person does (a trusted key event), e.g. "Tab".
pub async fn press(
    page: &Page,
    key: &str,
    code: &str,
    key_code: i64,
    shift: bool,
) -> anyhow::Result<()> {
    for kind in [
        DispatchKeyEventType::RawKeyDown,
        DispatchKeyEventType::KeyUp,
    ] {
        let mut ev = DispatchKeyEventParams::new(kind);
        ev.key = Some(key.into());
        ev.code = Some(code.into());
        ev.windows_virtual_key_code = Some(key_code);
        ev.native_virtual_key_code = Some(key_code);
        if shift {
            ev.modifiers = Some(8);
        }
        page.execute(ev).await?;
    }
    Ok(())
}

/// Saves a PNG screenshot of the page to `path`.
pub async fn screenshot(page: &Page, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let png = page.screenshot(ScreenshotParams::builder().build()).await?;
    std::fs::write(path, png)?;
    Ok(())
}

/// Where the tests write screenshots: `target/screenshots/`, or the
/// README's `docs/screenshots/` with `PORTHOLE_UPDATE_SCREENSHOTS=1`.
pub fn screenshot_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::var_os("PORTHOLE_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    }
}

/// A tiny static server for host pages on another origin: every request gets
/// the page at its path (or 404), with the page's own headers.
pub async fn serve_pages(pages: Pages) -> anyhow::Result<std::net::SocketAddr> {
    serve_pages_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?, pages)
}

/// Pages by path: body and extra headers.
pub type Pages = std::collections::HashMap<String, (String, Vec<(String, String)>)>;

/// [`serve_pages`] on a listener bound beforehand (when its address must be
/// known before the pages are written).
pub fn serve_pages_on(
    listener: tokio::net::TcpListener,
    pages: Pages,
) -> anyhow::Result<std::net::SocketAddr> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = listener.local_addr()?;
    let pages = std::sync::Arc::new(pages);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let pages = pages.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match pages.get(&path) {
                    Some((body, headers)) => {
                        let extra: String = headers
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}\r\n"))
                            .collect();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(addr)
}

/// A TCP proxy in front of the server whose open connections can be cut
/// at once, as a network that drops does (Chromium's offline switch only
/// fails new requests; a response already streaming goes on).
#[derive(Debug)]
pub struct CutProxy {
    pub addr: std::net::SocketAddr,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Forwards 127.0.0.1:(a free port) to `target` (`http://host:port`).
    pub async fn start(target: &str) -> anyhow::Result<Self> {
        let target: std::net::SocketAddr = target
            .trim_start_matches("http://")
            .parse()
            .context("the target's address")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let open = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            }
        });
        Ok(Self { addr, conns, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Drops every open connection, both ways.
    pub fn cut(&self) {
        for conn in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            conn.abort();
        }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// axe-core's script (installed from npm into `.tools/` by the test script;
/// `$AXE_CORE` names another copy).
fn axe_source() -> anyhow::Result<String> {
    let path = std::env::var_os("AXE_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.tools/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading axe-core at {} (scripts/test installs it; or source scripts/tools.sh and run ensure_browser)",
            path.display()
        )
    })
}

/// Runs axe-core in `page` on the element `selector` names (with its open
/// shadow root) and returns the serious and critical violations, each as
/// `"rule (impact): target, …"`. Injected through the DevTools protocol,
/// so the page's own CSP does not stop it; frames are left out (each
/// document is audited on its own).
pub async fn axe_serious(page: &Page, selector: &str) -> anyhow::Result<Vec<String>> {
    let loaded = eval(page, "typeof window.axe === 'object'").await?;
    if loaded != Value::Bool(true) {
        page.evaluate(axe_source()?.as_str())
            .await
            .context("injecting axe-core")?;
    }
    let run = format!(
        "axe.run(document.querySelector({selector:?}), {{ iframes: false, resultTypes: ['violations'] }}) \
         .then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical') \
         .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', ')))"
    );
    let found = eval(page, &run).await?;
    let list = found
        .as_array()
        .with_context(|| format!("axe-core did not run: {found}"))?;
    Ok(list
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Waits until the panel in `page` is interactive (its composer exists).
pub async fn ready(page: &Page) {
    wait_for(
        page,
        "!!document.querySelector('textarea')",
        Duration::from_secs(20),
    )
    .await
    .expect("the panel becomes interactive");
}

/// Types `text` into the panel's composer key by key, then Enter.
pub async fn ask(page: &Page, text: &str) {
    page.find_element("textarea")
        .await
        .expect("composer")
        .click()
        .await
        .expect("click")
        .type_str(text)
        .await
        .expect("type")
        .press_key("Enter")
        .await
        .expect("enter");
}
