//! `trunk serve` for UI work, as the README says to use it: the server
//! running, `trunk serve` beside it, the panel at `/widget/assets/` on
//! trunk's port. The panel must get its settings and session from the
//! server and answer through trunk's proxy. Driven here so it cannot break
//! silently again.

use std::process::Stdio;
use std::time::Duration;

use e2e::{Harness, eval, screenshot, screenshot_dir, wait_for};
use mock_upstream::Script;

const T: Duration = Duration::from_secs(30);

/// Kills trunk (and the cargo it may run) when the test ends.
struct Child(tokio::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_under_trunk_serve_gets_a_session_and_answers_through_the_proxy() {
    let h = Harness::start(Script::words("Served through trunk's proxy.", 5), |_| {})
        .await
        .expect("harness");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned();
    // The repo's Trunk.toml, pointed at this test's server and a free port,
    // building into its own folder (dist/ is the server's).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let server = h.base.trim_start_matches("http://").to_owned();
    let config = std::fs::read_to_string(root.join("Trunk.toml"))
        .expect("Trunk.toml")
        .replace("127.0.0.1:8080", &server)
        .replace("port = 8081", &format!("port = {port}"))
        // The config lives in target/: its paths are relative to it, so
        // they are made absolute.
        .replace(
            "target = \"index.html\"",
            &format!("target = \"{}\"", root.join("index.html").display()),
        )
        .replace(
            "dist = \"dist\"",
            &format!(
                "dist = \"{}\"",
                root.join("target/trunk-serve-e2e").display()
            ),
        );
    assert!(config.contains(&server), "the proxies name the server");
    let config_path = root.join(format!("target/Trunk.e2e-{}.toml", std::process::id()));
    std::fs::write(&config_path, &config).expect("config written");
    let tools = root.join(".tools/node_modules/.bin");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log_path = root.join(format!("target/trunk-serve-e2e-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("log file");
    let child = tokio::process::Command::new("trunk")
        .args(["serve", "--no-autoreload", "--config"])
        .arg(&config_path)
        .current_dir(&root)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("trunk (scripts/test installs it)");
    let mut trunk = Child(child);
    // Trunk builds first, then listens.
    let url = format!("http://127.0.0.1:{port}/widget/assets/");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status() == 200
        {
            break;
        }
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Ok(Some(status)) = trunk.0.try_wait() {
            panic!("trunk serve exited ({status}):\n{}", log());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "trunk serve never served {url}:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let page = h.browser.new_page("about:blank").await.expect("page");
    page.goto(&url).await.expect("the panel");
    wait_for(&page, "!!document.querySelector('textarea')", T)
        .await
        .expect("the panel starts (its settings and session came from the server)");
    let text = eval(&page, "document.body.innerText").await.expect("text");
    assert!(
        !text
            .as_str()
            .unwrap_or_default()
            .contains("could not start"),
        "{text}"
    );
    page.find_element("textarea")
        .await
        .expect("composer")
        .click()
        .await
        .expect("click")
        .type_str("Does Porthole work with Ollama?")
        .await
        .expect("type")
        .press_key("Enter")
        .await
        .expect("enter");
    wait_for(
        &page,
        "(() => { const a = [...document.querySelectorAll('[data-role=assistant]')].pop(); \
         return a && a.dataset.state === 'complete' && a.textContent.includes('trunk'); })()",
        T,
    )
    .await
    .expect("an answer through trunk's proxy");
    screenshot(&page, &screenshot_dir().join("trunk-serve.png"))
        .await
        .expect("screenshot");
    assert_eq!(h.mock.stats().completed, 1);
    let _ = std::fs::remove_file(&config_path);
    let _ = std::fs::remove_file(&log_path);
}
