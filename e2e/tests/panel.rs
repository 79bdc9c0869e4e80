//! The chat panel as a visitor uses it: real Chromium, real server, the mock
//! upstream over HTTP. Screenshots land in docs/screenshots/.

use std::time::Duration;

use chromiumoxide::Page;
use e2e::{
    CutProxy, Harness, ask, eval, panel_path, press, ready, screenshot, screenshot_dir, set_dark,
    wait_for,
};
use mock_upstream::{Fault, Script};

const T: Duration = Duration::from_secs(20);

const ANSWER: &str = "Porthole streams each answer **token by token** over server-sent events.\n\n\
    - One `<script>` tag on your site\n- Works with OpenAI, Ollama and vLLM\n- Stop any answer mid-way\n\n\
    More in [the guide](https://example.com/guide).";

/// The last answer's visible text and state.
const LAST: &str = "(() => { const m = [...document.querySelectorAll('[data-role=assistant]')]; \
    const l = m[m.length - 1]; if (!l) return null; \
    return [l.textContent.replace(/^Assistant: /, ''), l.dataset.state]; })()";

async fn last_answer(page: &Page) -> (String, String) {
    let v = eval(page, LAST).await.unwrap_or_default();
    (
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
    )
}

async fn wait_state(page: &Page, state: &str) -> String {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (text, s) = last_answer(page).await;
        if s == state {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "answer never became {state}; last: {s} {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_watches_the_answer_stream_stops_one_reloads_and_keeps_the_history() {
    let h = Harness::start(Script::words(ANSWER, 40), |_| {})
        .await
        .expect("harness");
    let page = h.open(&panel_path(), 420, 680, false).await.expect("page");
    ready(&page).await;

    // Enter sends; the answer grows on screen before it is done.
    ask(&page, "How does streaming work?").await;
    let mut states: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (text, state) = last_answer(&page).await;
        if state == "streaming" && !text.is_empty() && states.last() != Some(&text) {
            states.push(text.clone());
        }
        if state == "complete" {
            assert!(text.contains("token by token"), "{text}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no complete answer; states {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        states.len() >= 3,
        "saw only {} intermediate states: {states:?}",
        states.len()
    );
    assert!(
        states
            .windows(2)
            .all(|w| w[1].starts_with(&w[0][..w[0].len().min(20)])),
        "{states:?}"
    );
    // The markdown became real elements, not text with asterisks.
    let rendered = eval(
        &page,
        "(() => { const l = [...document.querySelectorAll('[data-role=assistant]')].pop(); \
         return [l.querySelectorAll('strong').length, l.querySelectorAll('li').length, \
                 l.querySelector('a') && [l.querySelector('a').target, l.querySelector('a').rel]]; })()",
    )
    .await
    .expect("dom");
    assert_eq!(
        rendered,
        serde_json::json!([1, 3, ["_blank", "noopener noreferrer"]])
    );

    // Stop mid-answer: what arrived stays, the upstream is closed.
    h.mock.set_script(Script::numbered(300, 40));
    ask(&page, "Tell me more").await;
    let deadline = tokio::time::Instant::now() + T;
    while last_answer(&page).await.0.len() < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second answer never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    page.find_element("button.stop")
        .await
        .expect("a Stop button while streaming")
        .click()
        .await
        .expect("click");
    assert!(
        h.mock
            .wait_for(Duration::from_secs(1), |s| s.client_closed >= 1)
            .await,
        "upstream not closed within 1 s of Stop: {:?}",
        h.mock.stats()
    );
    let kept = wait_state(&page, "interrupted").await;
    assert!(kept.starts_with("tok0 tok1"), "{kept}");

    // Reload: the conversation comes back from the server.
    page.reload().await.expect("reload");
    ready(&page).await;
    wait_for(
        &page,
        "document.querySelectorAll('[data-role]').length === 4",
        T,
    )
    .await
    .expect("history restored after reload");
    let roles = eval(
        &page,
        "[...document.querySelectorAll('[data-role]')].map(m => m.dataset.role + ':' + m.dataset.state)",
    )
    .await
    .expect("roles");
    assert_eq!(
        roles,
        serde_json::json!([
            "user:complete",
            "assistant:complete",
            "user:complete",
            "assistant:interrupted"
        ])
    );
    let first_user = eval(
        &page,
        "document.querySelector('[data-role=user]').textContent",
    )
    .await
    .expect("text");
    assert!(
        first_user
            .as_str()
            .unwrap_or_default()
            .contains("How does streaming work?")
    );

    // Keyboard only: Tab reaches every control, and focus is visible.
    eval(
        &page,
        "document.activeElement && document.activeElement.blur()",
    )
    .await
    .expect("blur");
    let mut visited = Vec::new();
    for _ in 0..12 {
        press(&page, "Tab", "Tab", 9, false).await.expect("tab");
        let v = eval(
            &page,
            "(() => { const e = document.activeElement; if (!e || e === document.body) return null; \
             const s = getComputedStyle(e); \
             return [e.getAttribute('aria-label') || e.textContent.trim(), s.outlineStyle !== 'none' || e.tagName === 'TEXTAREA']; })()",
        )
        .await
        .expect("focus");
        if let Some(label) = v[0].as_str() {
            assert_eq!(v[1], true, "focus on {label} is not visible");
            visited.push(label.to_owned());
        }
    }
    for control in ["New conversation", "Close chat", "the guide", "Message"] {
        assert!(
            visited.iter().any(|l| l == control),
            "Tab never reached {control}: {visited:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_light_dark_and_phone() {
    let h = Harness::start(Script::words(ANSWER, 2), |_| {})
        .await
        .expect("harness");
    let dir = screenshot_dir();
    for (name, width, height, mobile, dark) in [
        ("light", 400, 640, false, false),
        ("dark", 400, 640, false, true),
        ("phone", 360, 740, true, false),
    ] {
        let page = h
            .open(&panel_path(), width, height, mobile)
            .await
            .expect("page");
        set_dark(&page, dark).await.expect("color scheme");
        ready(&page).await;
        // A fresh conversation for each picture (the pages share storage).
        eval(&page, "localStorage.clear()").await.expect("clear");
        page.reload().await.expect("reload");
        ready(&page).await;
        ask(&page, "How does Porthole stream answers?").await;
        wait_state(&page, "complete").await;
        // The panel fills the viewport at every size.
        let fits = eval(
            &page,
            "(() => { const r = document.body.firstElementChild.getBoundingClientRect(); \
             return [Math.round(r.width), Math.round(r.height), document.documentElement.scrollWidth <= innerWidth]; })()",
        )
        .await
        .expect("layout");
        assert_eq!(fits, serde_json::json!([width, height, true]), "{name}");
        let bg = eval(
            &page,
            "getComputedStyle(document.body.firstElementChild).backgroundColor",
        )
        .await
        .expect("bg");
        let expect_bg = if dark {
            "rgb(23, 25, 29)"
        } else {
            "rgb(255, 255, 255)"
        };
        assert_eq!(bg, expect_bg, "{name}");
        let input_font = eval(
            &page,
            "getComputedStyle(document.querySelector('textarea')).fontSize",
        )
        .await
        .expect("font");
        assert_eq!(input_font, "16px", "iOS zooms into inputs under 16 px");
        screenshot(&page, &dir.join(format!("{name}.png")))
            .await
            .expect("screenshot");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_model_output_never_becomes_live_html() {
    let hostile = "<img src=x onerror=\"window.__pwned=1\"> [click](javascript:window.__pwned=2) \
        ![pixel](https://evil.example/t.png) <script>window.__pwned=3</script> \
        [x](data:text/html,hi) <a href=\"javascript:alert(1)\">a</a>";
    let h = Harness::start(Script::words(hostile, 1), |_| {})
        .await
        .expect("harness");
    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    ready(&page).await;
    ask(&page, "hi").await;
    let text = wait_state(&page, "complete").await;
    assert!(
        text.contains("<img src=x"),
        "the markup shows as text: {text}"
    );
    // The thumbs under an answer are the panel's own icons, not the model's.
    let audit = eval(
        &page,
        "(() => { const m = [...document.querySelectorAll('[data-role=assistant]')].pop(); \
         const ours = e => e.closest('.rate'); \
         return [[...m.querySelectorAll('img,script,iframe,svg,object,embed')].filter(e => !ours(e)).length, \
                 [...m.querySelectorAll('a')].map(a => a.getAttribute('href')), \
                 [...m.querySelectorAll('*')].some(e => [...e.attributes].some(a => a.name.startsWith('on'))), \
                 typeof window.__pwned]; })()",
    )
    .await
    .expect("audit");
    assert_eq!(
        audit,
        serde_json::json!([0, ["https://evil.example/t.png"], false, "undefined"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failure_shows_a_clear_error_and_retry_works() {
    let h = Harness::start(
        Script::words("Back again.", 5).with_fault(Fault::Status(500)),
        |_| {},
    )
    .await
    .expect("harness");
    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    ready(&page).await;
    ask(&page, "Are you there?").await;
    let alert = wait_for(
        &page,
        "document.querySelector('[role=alert]')?.textContent",
        T,
    )
    .await
    .expect("error shown");
    assert!(
        alert
            .as_str()
            .unwrap_or_default()
            .contains("The assistant is unavailable right now"),
        "{alert}"
    );
    screenshot(&page, &screenshot_dir().join("error.png"))
        .await
        .expect("screenshot");
    h.mock.set_script(Script::words("Back again.", 5));
    page.find_element("[role=alert] button")
        .await
        .expect("Retry")
        .click()
        .await
        .expect("click");
    let text = wait_state(&page, "complete").await;
    assert_eq!(text, "Back again.");
    assert_eq!(
        eval(&page, "document.querySelector('[role=alert]')")
            .await
            .expect("gone"),
        serde_json::Value::Null
    );
    // The retry went on in the conversation the refused question was
    // stored in (none left behind), and the model heard it once.
    let store = porthole::store::SqliteStore::open(&h.db)
        .await
        .expect("store");
    let (conversations, _) =
        porthole::store::TenantStore::conversations(&store, e2e::WIDGET, 10, None)
            .await
            .expect("conversations");
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    let asked = h.mock.requests();
    let messages = asked.last().expect("asked")["messages"].to_string();
    assert_eq!(messages.matches("Are you there?").count(), 1, "{messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_assets_are_served_as_a_cdn_would() {
    let h = Harness::start(Script::default(), |_| {})
        .await
        .expect("harness");
    // Raw responses: the workspace's reqwest has gzip on (the crawler uses
    // it), which would otherwise decode and hide the content-encoding.
    let client = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let page = client.get(h.url(&panel_path())).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("\"widget_id\":\"e2e\""),
        "settings are in the page"
    );
    let wasm = html
        .split("assets/")
        .filter_map(|s| s.split('"').next())
        .find(|s| s.ends_with(".wasm"))
        .expect("wasm named in the page")
        .to_owned();
    let asset = client
        .get(h.url(&format!("/widget/assets/{wasm}")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(asset.headers()["content-encoding"], "gzip");
    assert_eq!(asset.headers()["content-type"], "application/wasm");

    let missing = client.get(h.url("/widget/nope")).send().await.expect("404");
    assert_eq!(missing.status(), 404);
    assert!(
        missing.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(
        missing
            .text()
            .await
            .expect("body")
            .contains("not available here")
    );
    // A title with markup cannot break out of the page.
    let xss = Harness::start(Script::default(), |s| {
        s.widgets[0].title = "</script><script>alert(1)</script>".into()
    })
    .await
    .expect("harness");
    let html = client
        .get(xss.url(&panel_path()))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(!html.contains("</script><script>alert(1)"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_follows_the_answer_unless_the_visitor_scrolled_up() {
    let long: String = (0..120)
        .map(|i| format!("Line {i} of a long answer.\n\n"))
        .collect();
    let h = Harness::start(Script::words(&long, 8), |_| {})
        .await
        .expect("harness");
    let page = h.open(&panel_path(), 400, 480, false).await.expect("page");
    ready(&page).await;
    ask(&page, "Tell me everything").await;
    let log = "document.querySelector('[role=log]')";
    let gap = format!(
        "(() => {{ const l = {log}; return l.scrollHeight - l.scrollTop - l.clientHeight; }})()"
    );
    // While it streams and the visitor stays put, the newest line is in view.
    wait_for(
        &page,
        &format!("{log}.scrollHeight > 2 * {log}.clientHeight"),
        T,
    )
    .await
    .expect("long enough");
    let at_bottom = eval(&page, &gap)
        .await
        .expect("gap")
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(
        at_bottom < 60.0,
        "not following: {at_bottom}px from the bottom"
    );
    // The visitor scrolls up: the list stays where they put it.
    eval(
        &page,
        &format!("{log}.scrollTop = 0; {log}.dispatchEvent(new Event('scroll')); 0"),
    )
    .await
    .expect("scroll");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let top = eval(&page, &format!("{log}.scrollTop"))
        .await
        .expect("top")
        .as_f64()
        .unwrap_or(-1.0);
    assert!(top < 5.0, "the list jumped back down to {top}");
    assert_eq!(
        last_answer(&page).await.1,
        "streaming",
        "the answer should still be streaming"
    );
}

/// A panel left open past its session's life renews the token by itself
/// and keeps the conversation, after a reload too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed_without_the_visitor_noticing() {
    let h = Harness::start(Script::words("Still here.", 5), |s| s.session.ttl_secs = 1)
        .await
        .expect("harness");
    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    ready(&page).await;
    ask(&page, "First?").await;
    wait_state(&page, "complete").await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    ask(&page, "Second?").await;
    wait_for(
        &page,
        "document.querySelectorAll('[data-role=assistant][data-state=complete]').length === 2",
        T,
    )
    .await
    .expect("the second answer completes");
    assert_eq!(last_answer(&page).await.0, "Still here.");
    // One conversation: the renewed session is the same visitor.
    assert_eq!(h.mock.requests().len(), 2);
    let second = &h.mock.requests()[1];
    assert!(
        second["messages"].to_string().contains("First?"),
        "the follow-up carried the history: {second}"
    );
    // A reload after expiry: the kept token is past its life but within
    // the resume window, so the history comes back.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    page.reload().await.expect("reload");
    ready(&page).await;
    wait_for(
        &page,
        "document.querySelectorAll('[data-role=assistant][data-state=complete]').length === 2",
        T,
    )
    .await
    .expect("history restored after the reload");
}

/// Takes the page's network away (`true`) or gives it back, as DevTools'
/// offline switch does: new requests fail (a response already streaming
/// goes on; the test's proxy cuts those).
async fn offline(page: &Page, off: bool) {
    use chromiumoxide::cdp::browser_protocol::network::{
        EmulateNetworkConditionsByRuleParams, EnableParams, NetworkConditions,
    };
    page.execute(EnableParams::default())
        .await
        .expect("network domain");
    // One global rule (an empty URL pattern), no throttling.
    let all = NetworkConditions::new("", 0.0, -1.0, -1.0);
    page.execute(EmulateNetworkConditionsByRuleParams::new(off, vec![all]))
        .await
        .expect("network conditions");
}

async fn wait_tokens(page: &Page, n: usize) {
    let deadline = tokio::time::Instant::now() + T;
    while last_answer(page).await.0.split_whitespace().count() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the answer never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_drop_mid_answer_reconnects_and_finishes_the_same_answer() {
    let script = Script::numbered(60, 50);
    let expected = script.tokens.concat().trim().to_owned();
    let h = Harness::start(script, |_| {}).await.expect("harness");
    // The panel reaches the server through a proxy whose connections the
    // test can cut.
    let proxy = CutProxy::start(&h.base).await.expect("proxy");
    let page = h.browser.new_page("about:blank").await.expect("page");
    page.goto(proxy.url(&panel_path())).await.expect("panel");
    ready(&page).await;
    ask(&page, "Tell me everything").await;
    wait_tokens(&page, 5).await;
    // The network goes: new requests fail, the open stream breaks.
    offline(&page, true).await;
    proxy.cut();
    wait_for(
        &page,
        "!!document.querySelector('[data-state=reconnecting]')",
        T,
    )
    .await
    .expect("the panel says it is reconnecting");
    screenshot(&page, &screenshot_dir().join("panel-reconnecting.png"))
        .await
        .expect("screenshot");
    let cut_at = last_answer(&page).await.0;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        last_answer(&page).await.0,
        cut_at,
        "nothing arrives while offline"
    );
    offline(&page, false).await;
    let text = wait_state(&page, "complete").await;
    assert_eq!(
        text.trim(),
        expected,
        "the same answer, whole, nothing twice"
    );
    assert_eq!(
        eval(
            &page,
            "!!document.querySelector('[data-state=reconnecting]')"
        )
        .await
        .expect("eval"),
        serde_json::json!(false)
    );
    assert_eq!(
        eval(
            &page,
            "document.querySelectorAll('[data-role=user]').length"
        )
        .await
        .expect("eval"),
        serde_json::json!(1)
    );
    let stats = h.mock.stats();
    assert_eq!(
        (stats.opened, stats.completed),
        (1, 1),
        "asked once: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_mid_answer_resumes_it_without_asking_again() {
    let script = Script::numbered(60, 50);
    let expected = script.tokens.concat().trim().to_owned();
    let h = Harness::start(script, |_| {}).await.expect("harness");
    let page = h.open(&panel_path(), 420, 680, false).await.expect("page");
    ready(&page).await;
    ask(&page, "Tell me everything").await;
    wait_tokens(&page, 5).await;
    page.reload().await.expect("reload");
    ready(&page).await;
    let text = wait_state(&page, "complete").await;
    assert_eq!(text.trim(), expected);
    assert_eq!(
        eval(&page, "document.querySelectorAll('[data-role]').length")
            .await
            .expect("eval"),
        serde_json::json!(2),
        "one question, one answer"
    );
    let stats = h.mock.stats();
    assert_eq!(
        (stats.opened, stats.completed),
        (1, 1),
        "asked once: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_thumbs_an_answer_down_with_a_comment_and_it_is_kept() {
    use porthole::store::SqliteStore;
    use porthole::store::tenants::TenantStore;

    let h = Harness::start(Script::words("The orders page lists them.", 0), |_| {})
        .await
        .expect("harness");
    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    ready(&page).await;
    ask(&page, "Where is my order?").await;
    wait_state(&page, "complete").await;
    let down = "[data-role=assistant] button[aria-label='Not helpful']";
    wait_for(&page, &format!("!!document.querySelector({down:?})"), T)
        .await
        .expect("the rating buttons under the answer");
    page.find_element(down)
        .await
        .expect("thumbs down")
        .click()
        .await
        .expect("click");
    let comment = "[data-role=assistant] .rate input";
    wait_for(&page, &format!("!!document.querySelector({comment:?})"), T)
        .await
        .expect("the comment box");
    let pressed = eval(
        &page,
        &format!("document.querySelector({down:?}).getAttribute('aria-pressed')"),
    )
    .await
    .expect("pressed");
    assert_eq!(pressed, "true");
    let found = e2e::axe_serious(&page, "body")
        .await
        .expect("axe-core runs");
    assert!(found.is_empty(), "the comment box: {found:#?}");
    page.find_element(comment)
        .await
        .expect("comment")
        .click()
        .await
        .expect("click")
        .type_str("It did not say where the page is.")
        .await
        .expect("type");
    screenshot(&page, &screenshot_dir().join("panel-feedback.png"))
        .await
        .expect("screenshot");
    page.find_element("[data-role=assistant] .rate form button")
        .await
        .expect("send")
        .click()
        .await
        .expect("click");
    wait_for(
        &page,
        "document.querySelector('[data-role=assistant] .thanks')?.textContent === 'Thanks for your feedback.'",
        T,
    )
    .await
    .expect("thanked");

    // Stored with the answer, comment and all.
    let store = SqliteStore::open(&h.db).await.expect("store");
    let deadline = tokio::time::Instant::now() + T;
    let rated = loop {
        let (list, _) = store
            .conversations(e2e::WIDGET, 10, None)
            .await
            .expect("conversations");
        let messages = store
            .conversation_messages(e2e::WIDGET, &list[0].id, 10, 0)
            .await
            .expect("read")
            .expect("the conversation");
        if messages[1].rating_comment.is_some() {
            break messages[1].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{messages:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        rated.rating,
        Some(porthole::store::conversations::Rating::Down)
    );
    assert_eq!(
        rated.rating_comment.as_deref(),
        Some("It did not say where the page is.")
    );

    // A reload shows the rating the visitor gave; pressing it again takes
    // it back.
    page.reload().await.expect("reload");
    ready(&page).await;
    wait_for(
        &page,
        &format!("document.querySelector({down:?})?.getAttribute('aria-pressed') === 'true'"),
        T,
    )
    .await
    .expect("the rating after a reload");
    page.find_element(down)
        .await
        .expect("thumbs down")
        .click()
        .await
        .expect("click");
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let (list, _) = store
            .conversations(e2e::WIDGET, 10, None)
            .await
            .expect("conversations");
        let messages = store
            .conversation_messages(e2e::WIDGET, &list[0].id, 10, 0)
            .await
            .expect("read")
            .expect("the conversation");
        if messages[1].rating.is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never taken back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
