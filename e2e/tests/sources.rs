//! Cited answers in the real panel: the widget's knowledge crawled from a
//! site on loopback, the answer's sources listed under it as links, and a
//! hostile page title staying inert text, live and after a reload.

use std::time::Duration;

use e2e::{Harness, Pages, panel_path, screenshot, screenshot_dir, serve_pages, wait_for};
use mock_upstream::Script;
use porthole::store::SqliteStore;
use porthole::store::knowledge::{KnowledgeStore, NewSource, SourceKind, SyncStatus};

const T: Duration = Duration::from_secs(20);

/// The newest answer's sources, and whether anything live (markup, a
/// handler) got into it besides the rating buttons the panel draws.
const SOURCES: &str = "(() => { const m = [...document.querySelectorAll('[data-role=assistant]')].pop(); \
    if (!m || m.dataset.state !== 'complete') return null; \
    const list = m.querySelector('.sources'); if (!list) return null; \
    return { links: [...list.querySelectorAll('a')].map(a => [a.getAttribute('href'), a.target, a.rel, a.textContent]), \
             text: list.textContent, \
             live: [...m.querySelectorAll('img,script,iframe,svg,object,embed')].filter(e => !e.closest('.rate')).length, \
             handlers: [...m.querySelectorAll('*')].some(e => [...e.attributes].some(a => a.name.startsWith('on'))), \
             pwned: typeof window.__pwned }; })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lists_its_sources_as_links_and_a_hostile_title_stays_text() {
    let mut pages = Pages::new();
    pages.insert(
        "/install".into(),
        (
            "<!doctype html><html><head><title>&lt;img src=x onerror=\"window.__pwned=1\"&gt; Install</title></head><body>\
             <nav><a href=\"/\">Home</a></nav><main><article><h1>Install</h1>\
             <p>Acme runs anywhere containers run. This page explains how to install it and keep its data safe across upgrades.</p>\
             <h2 id=\"docker\">Docker</h2><p>Pull the acme image and run it with the data folder mounted as a volume, so the \
             database survives restarts and upgrades of the container.</p></article></main></body></html>"
                .into(),
            vec![],
        ),
    );
    let site = serve_pages(pages).await.expect("site");
    let page_url = format!("http://{site}/install");
    let h = Harness::start(
        Script::words("Run it with a volume for the data folder [1].", 1),
        |s| {
            s.knowledge.allow_private_addresses = true;
            s.knowledge.crawl_delay_ms = 0;
        },
    )
    .await
    .expect("harness");
    let store = SqliteStore::open(&h.db).await.expect("store");
    store
        .add_source(&NewSource {
            id: "src_e2e_install".into(),
            widget_id: e2e::WIDGET.into(),
            kind: SourceKind::Url,
            name: "Install guide".into(),
            url: Some(page_url.clone()),
            body: None,
            sync_every_secs: None,
        })
        .await
        .expect("source added");
    // The server's background sync picks it up.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let s = store
            .source("src_e2e_install")
            .await
            .expect("read")
            .expect("source");
        if s.status == SyncStatus::Ready {
            break;
        }
        assert!(s.status != SyncStatus::Failed, "{s:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never synced: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    wait_for(&page, "!!document.querySelector('textarea')", T)
        .await
        .expect("ready");
    page.find_element("textarea")
        .await
        .expect("composer")
        .click()
        .await
        .expect("click")
        .type_str("How do I run the docker image with a volume?")
        .await
        .expect("type")
        .press_key("Enter")
        .await
        .expect("enter");
    let live = wait_for(&page, SOURCES, T)
        .await
        .expect("the answer shows its sources");
    let link = &live["links"][0];
    assert_eq!(live["links"].as_array().map(Vec::len), Some(1), "{live}");
    assert_eq!(
        (&link[0], &link[1], &link[2]),
        (
            &serde_json::json!(format!("{page_url}#docker")),
            &serde_json::json!("_blank"),
            &serde_json::json!("noopener noreferrer nofollow")
        ),
        "{live}"
    );
    // The page's title (readability trims it at its '>') shows as text.
    let label = link[3].as_str().unwrap_or_default();
    assert!(
        label.starts_with("[1] <img src=x onerror=") && label.ends_with("› Docker"),
        "{label}"
    );
    let expected_link = live["links"].clone();
    assert_eq!(
        (&live["live"], &live["handlers"], &live["pwned"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(false),
            &serde_json::json!("undefined")
        )
    );
    screenshot(&page, &screenshot_dir().join("sources.png"))
        .await
        .expect("screenshot");

    // After a reload, the history shows the same links.
    page.reload().await.expect("reload");
    let restored = wait_for(&page, SOURCES, T)
        .await
        .expect("the restored answer shows its sources");
    assert_eq!(restored["links"], expected_link, "{restored}");
    assert_eq!(restored["pwned"], "undefined");
}
