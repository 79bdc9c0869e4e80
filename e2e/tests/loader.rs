//! The loader on a customer's page: a host page on another origin (the
//! `localhost` name of a second server) includes widget.js from the
//! Porthole server (`127.0.0.1`), with hostile CSS or a strict CSP.

use std::collections::HashMap;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::layout::Point;
use e2e::{Harness, KEY, WIDGET, eval, screenshot, screenshot_dir, serve_pages, wait_for};
use mock_upstream::Script;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

/// The page's queue stub (README), and a record of the errors it hears.
const QUEUE: &str = "window.__errors = []; window.Porthole = function () { (Porthole.q = Porthole.q || []).push(arguments); }; \
    Porthole('on', 'error', function (d) { __errors.push([d.widget, d.code]); }); Porthole('open');";

const HOSTILE_CSS: &str = "<style>* { all: unset !important; } iframe { display: none !important; } \
    div { position: static !important; } * { z-index: 2147483647 !important; } \
    body { display: block !important; height: 3000px !important; }</style>";

/// Before any page script: remember the page's globals and record CSP
/// violations and answers.
const PROBE: &str = "window.__globalsBefore = Object.keys(window); window.__violations = []; \
    document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));";

async fn host_page(h: &Harness, head: &str, headers: Vec<(String, String)>) -> String {
    let script = format!(
        "<script src=\"{}/widget.js\" data-widget-id=\"{WIDGET}\" data-key=\"{KEY}\" async></script>",
        h.base
    );
    let body = format!(
        "<!doctype html><html><head><title>Shop</title>{head}</head><body><h1>Acme shop</h1><p>Products.</p>{script}</body></html>"
    );
    let mut pages = HashMap::new();
    pages.insert("/".to_owned(), (body, headers));
    let addr = serve_pages(pages).await.expect("host server");
    // `localhost` is another origin than the server's 127.0.0.1.
    format!("http://localhost:{}/", addr.port())
}

async fn open_host(h: &Harness, url: &str, width: i64, height: i64, mobile: bool) -> Page {
    let page = h.browser.new_page("about:blank").await.expect("tab");
    page.execute(SetDeviceMetricsOverrideParams::new(
        width, height, 1.0, mobile,
    ))
    .await
    .expect("viewport");
    page.execute(AddScriptToEvaluateOnNewDocumentParams::new(PROBE))
        .await
        .expect("probe");
    page.goto(url).await.expect("navigate");
    wait_for(
        &page,
        "window.Porthole && document.querySelector('porthole-widget')",
        T,
    )
    .await
    .expect("the loader ran");
    eval(&page, "window.__events = []; ['ready','open','close','message','answer'].forEach(n => Porthole('on', n, d => __events.push([n, d.text || ''])))")
        .await
        .expect("listen");
    page
}

/// `[left, top, width, height]` of an element in the widget's shadow root.
async fn rect(page: &Page, selector: &str) -> Vec<f64> {
    let v = eval(
        page,
        &format!(
            "(() => {{ const e = document.querySelector('porthole-widget').shadowRoot.querySelector('{selector}'); \
             if (!e) return null; const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }})()"
        ),
    )
    .await
    .expect("rect");
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(-1.0)).collect())
        .unwrap_or_default()
}

/// Waits until the widget's shadow root holds `selector`.
async fn wait_shadow(page: &Page, selector: &str) -> anyhow::Result<Value> {
    let js =
        format!("document.querySelector('porthole-widget').shadowRoot.querySelector('{selector}')");
    wait_for(page, &js, T).await
}

async fn events(page: &Page) -> Vec<Value> {
    eval(page, "__events")
        .await
        .expect("events")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_event(page: &Page, name: &str, count: usize) {
    wait_for(
        page,
        &format!("__events.filter(e => e[0] === '{name}').length >= {count}"),
        T,
    )
    .await
    .unwrap_or_else(|e| panic!("no {name} event: {e}"));
}

/// The launcher is where it should be and on top: the point at its centre
/// belongs to the widget.
async fn launcher_center(page: &Page, width: f64, height: f64) -> Point {
    let r = rect(page, "button").await;
    assert_eq!(r.len(), 4, "no launcher");
    assert!(
        (r[2] - 56.0).abs() < 1.0 && (r[3] - 56.0).abs() < 1.0,
        "launcher size {r:?}"
    );
    assert!(
        (width - (r[0] + r[2]) - 20.0).abs() < 2.0,
        "not 20 px from the right: {r:?}"
    );
    assert!(
        (height - (r[1] + r[3]) - 20.0).abs() < 2.0,
        "not 20 px from the bottom: {r:?}"
    );
    let (x, y) = (r[0] + r[2] / 2.0, r[1] + r[3] / 2.0);
    let on_top = eval(
        page,
        &format!("document.elementFromPoint({x}, {y})?.tagName"),
    )
    .await
    .expect("hit");
    assert_eq!(on_top, "PORTHOLE-WIDGET", "something covers the launcher");
    Point { x, y }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_hostile_page_the_launcher_opens_a_working_panel_and_the_api_drives_it() {
    let h = Harness::start(Script::words("Hello from Acme.", 5), |_| {})
        .await
        .expect("harness");
    let url = host_page(&h, HOSTILE_CSS, vec![]).await;
    let page = open_host(&h, &url, 1024, 768, false).await;
    let launcher = launcher_center(&page, 1024.0, 768.0).await;

    // A click opens the panel, placed above the launcher, with the chat in it.
    page.click(launcher).await.expect("click");
    wait_event(&page, "open", 1).await;
    wait_shadow(&page, "div.shown").await.expect("panel shown");
    let panel = rect(&page, "div").await;
    assert!(
        (panel[2] - 380.0).abs() < 1.0 && panel[3] > 500.0,
        "panel {panel:?}"
    );
    assert!(
        (1024.0 - (panel[0] + panel[2]) - 20.0).abs() < 2.0,
        "panel {panel:?}"
    );
    let frame = rect(&page, "iframe").await;
    assert!(
        frame[2] > 370.0 && frame[3] > 500.0,
        "iframe hidden by host CSS: {frame:?}"
    );
    wait_event(&page, "ready", 1).await;
    screenshot(&page, &screenshot_dir().join("host-open.png"))
        .await
        .expect("screenshot");

    // The API: send shows the question and the answer arrives as events.
    eval(&page, "Porthole('send', 'Hello?')")
        .await
        .expect("send");
    wait_event(&page, "answer", 1).await;
    let ev = events(&page).await;
    assert!(ev.contains(&json!(["message", "Hello?"])), "{ev:?}");
    assert!(
        ev.contains(&json!(["answer", "Hello from Acme."])),
        "{ev:?}"
    );

    // close / toggle / open.
    eval(&page, "Porthole('close')").await.expect("close");
    wait_for(
        &page,
        "!document.querySelector('porthole-widget').shadowRoot.querySelector('div.open')",
        T,
    )
    .await
    .expect("closed");
    eval(&page, "Porthole('toggle')").await.expect("toggle");
    wait_shadow(&page, "div.open").await.expect("toggled open");
    eval(&page, "Porthole('close')").await.expect("close");

    // An answer while closed shows an unread badge.
    eval(&page, "Porthole('send', 'Again?'); Porthole('close')")
        .await
        .expect("send closed");
    wait_event(&page, "answer", 2).await;
    let badge = eval(&page, "(() => { const b = document.querySelector('porthole-widget').shadowRoot.querySelector('b'); return b && [b.checkVisibility(), b.textContent]; })()")
        .await
        .expect("badge");
    assert_eq!(badge, json!([true, "1"]));

    // Messages from the wrong window or origin change nothing.
    let asked = h.mock.requests().len();
    eval(
        &page,
        "(() => { const f = document.querySelector('porthole-widget').shadowRoot.querySelector('iframe'); \
         f.contentWindow.postMessage({type: 'send', v: 1, text: 'forged'}, '*'); \
         f.contentWindow.postMessage({type: 'connect', v: 1}, '*'); \
         window.postMessage({type: 'ready', v: 1}, '*'); \
         window.postMessage({type: 'close', v: 1}, '*'); })()",
    )
    .await
    .expect("forge");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        h.mock.requests().len(),
        asked,
        "a forged message reached the widget"
    );

    // destroy leaves the page as it was.
    eval(&page, "Porthole('destroy')").await.expect("destroy");
    let after = eval(
        &page,
        "[document.querySelector('porthole-widget'), typeof window.Porthole, \
          Object.keys(window).filter(k => !__globalsBefore.includes(k) && !k.startsWith('__')), \
          document.documentElement.getAttribute('style'), \
          [...document.scripts].filter(s => s.src.includes('/loader/')).length]",
    )
    .await
    .expect("after");
    assert_eq!(after, json!([null, "undefined", [], null, 0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_csp_host_page_works_without_violations() {
    let h = Harness::start(Script::words("Strict but fine.", 2), |_| {})
        .await
        .expect("harness");
    let csp = format!(
        "default-src 'none'; script-src {base}; frame-src {base}; style-src 'self'; img-src 'self'",
        base = h.base
    );
    let url = host_page(&h, "", vec![("content-security-policy".into(), csp)]).await;
    let page = open_host(&h, &url, 1024, 768, false).await;
    let launcher = launcher_center(&page, 1024.0, 768.0).await;
    page.click(launcher).await.expect("click");
    wait_event(&page, "ready", 1).await;
    eval(&page, "Porthole('send', 'Hi')").await.expect("send");
    wait_event(&page, "answer", 1).await;
    let violations = eval(&page, "__violations").await.expect("violations");
    assert_eq!(violations, json!([]), "the loader broke the host's CSP");
}

/// A host whose CSP trusts only the path `/widget.js` (not the Porthole
/// origin) lets the launcher draw but refuses `panel.js`: the launcher goes
/// again, the page hears `error` (also for a command it queued) and the
/// console says what to allow, rather than leaving a button that does
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csp_that_trusts_only_the_script_path_gets_a_clear_error_not_a_dead_launcher() {
    let h = Harness::start(Script::words("Unused.", 2), |_| {})
        .await
        .expect("harness");
    let csp = format!(
        "default-src 'none'; script-src {base}/widget.js 'unsafe-inline'; frame-src {base}; style-src 'self'",
        base = h.base,
    );
    let head = format!("<script>{QUEUE}</script>");
    let url = host_page(&h, &head, vec![("content-security-policy".into(), csp)]).await;
    let page = h.browser.new_page("about:blank").await.expect("tab");
    page.execute(AddScriptToEvaluateOnNewDocumentParams::new(PROBE))
        .await
        .expect("probe");
    page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
        "window.__warnings = []; const warn = console.warn; \
         console.warn = (...a) => { __warnings.push(a.join(' ')); warn(...a); };",
    ))
    .await
    .expect("console probe");
    page.goto(url).await.expect("navigate");
    wait_for(&page, "(window.__errors || []).length > 0", T)
        .await
        .expect("the page heard error");
    let state = eval(
        &page,
        "[window.__errors, !!document.querySelector('porthole-widget'), \
          window.__violations.some(v => v.includes('/loader/panel.')), \
          [...document.scripts].filter(s => s.src.includes('/loader/')).length]",
    )
    .await
    .expect("state");
    assert_eq!(
        state,
        json!([[[WIDGET, "not_started"]], false, true, 0]),
        "{state}"
    );
    let warned = eval(
        &page,
        &format!(
            "__warnings.some(w => w.includes('did not load') && w.includes('{}'))",
            h.base
        ),
    )
    .await
    .expect("warnings");
    assert_eq!(warned, true, "the console does not say what to allow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_panel_is_full_screen_and_the_page_does_not_scroll_behind_it() {
    let h = Harness::start(Script::words("Small screen.", 2), |_| {})
        .await
        .expect("harness");
    let url = host_page(
        &h,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>body { height: 3000px; }</style>",
        vec![],
    )
    .await;
    let page = open_host(&h, &url, 390, 740, true).await;
    let launcher = launcher_center(&page, 390.0, 740.0).await;
    let style_before = eval(
        &page,
        "document.documentElement.getAttribute('style') || ''",
    )
    .await
    .expect("style");
    page.click(launcher).await.expect("click");
    wait_event(&page, "ready", 1).await;
    wait_shadow(&page, "div.shown").await.expect("shown");
    // Once the opening animation has settled, the panel covers the screen.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let panel: Vec<f64> = rect(&page, "div").await.iter().map(|v| v.round()).collect();
    assert_eq!(panel, vec![0.0, 0.0, 390.0, 740.0], "not full screen");
    assert_eq!(
        eval(&page, "document.documentElement.style.overflow")
            .await
            .expect("lock"),
        "hidden"
    );
    screenshot(&page, &screenshot_dir().join("host-phone.png"))
        .await
        .expect("screenshot");
    eval(&page, "Porthole('close')").await.expect("close");
    wait_event(&page, "close", 1).await;
    // The page's own inline style is back exactly as it was. (An absent and
    // an empty style attribute are the same here: the loader removes the
    // attribute, but Chromium under DevTools may leave it as "".)
    assert_eq!(
        eval(
            &page,
            "document.documentElement.getAttribute('style') || ''"
        )
        .await
        .expect("unlock"),
        style_before
    );
    assert_ne!(
        eval(&page, "document.documentElement.style.overflow")
            .await
            .expect("overflow"),
        "hidden"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_stub_works_before_load_two_widgets_coexist_and_the_host_keeps_its_globals() {
    let h = Harness::start(Script::words("Two at once.", 2), |_| {})
        .await
        .expect("harness");
    let head = "<script>window.onmessage = function () { window.__hostMessages = (window.__hostMessages || 0) + 1; };\
        window.Porthole = window.Porthole || function () { (Porthole.q = Porthole.q || []).push(arguments); };\
        Porthole('on', 'ready', function (d) { (window.__readyFor = window.__readyFor || []).push(d.widget); });\
        Porthole('open');</script>";
    let second = format!(
        "<script src=\"{}/widget.js\" data-widget-id=\"demo\" data-key=\"pk_demo\" data-position=\"left\" async></script>",
        h.base
    );
    let url = host_page(&h, &format!("{head}{second}"), vec![]).await;
    let page = h.browser.new_page("about:blank").await.expect("tab");
    page.execute(SetDeviceMetricsOverrideParams::new(1024, 768, 1.0, false))
        .await
        .expect("viewport");
    page.execute(AddScriptToEvaluateOnNewDocumentParams::new(PROBE))
        .await
        .expect("probe");
    page.goto(url).await.expect("navigate");

    // Both widgets load; the queued handler hears both; the queued open
    // opened the first.
    wait_for(&page, "(window.__readyFor || []).length === 2", T)
        .await
        .expect("both ready");
    let state = eval(
        &page,
        "[...document.querySelectorAll('porthole-widget')].map(w => { const b = w.shadowRoot.querySelector('button').getBoundingClientRect(); \
         return [Math.round(b.left), !!w.shadowRoot.querySelector('div.open')]; })",
    )
    .await
    .expect("widgets");
    let mut state = state.as_array().cloned().unwrap_or_default();
    state.sort_by_key(|v| v[0].as_i64());
    // One launcher on each side; the queued open went to whichever script
    // ran first (both are async), and only to it.
    assert_eq!(
        state.iter().map(|v| v[0].clone()).collect::<Vec<_>>(),
        vec![json!(20), json!(948)],
        "{state:?}"
    );
    assert_eq!(
        state.iter().filter(|v| v[1] == true).count(),
        1,
        "{state:?}"
    );

    // One global, and the page's own onmessage handler is untouched.
    let globals = eval(
        &page,
        "Object.keys(window).filter(k => !__globalsBefore.includes(k) && !k.startsWith('__'))",
    )
    .await
    .expect("globals");
    assert_eq!(globals, json!(["Porthole"]));
    let handler = eval(&page, "String(window.onmessage).includes('__hostMessages')")
        .await
        .expect("onmessage");
    assert_eq!(handler, true);

    // Esc inside the panel closes it and gives focus back to the launcher.
    let panel = eval(
        &page,
        "(() => { const w = [...document.querySelectorAll('porthole-widget')].find(w => w.shadowRoot.querySelector('div.open')); \
         const r = w.shadowRoot.querySelector('div').getBoundingClientRect(); return [r.left + r.width / 2, r.bottom - 30]; })()",
    )
    .await
    .expect("panel");
    let (x, y) = (
        panel[0].as_f64().unwrap_or(0.0),
        panel[1].as_f64().unwrap_or(0.0),
    );
    page.click(Point { x, y })
        .await
        .expect("click into the composer");
    tokio::time::sleep(Duration::from_millis(200)).await;
    e2e::press(&page, "Escape", "Escape", 27, false)
        .await
        .expect("esc");
    wait_for(&page, "![...document.querySelectorAll('porthole-widget')].some(w => w.shadowRoot.querySelector('div.open'))", T)
        .await
        .expect("Esc closed the panel");
    let focus = eval(&page, "document.activeElement.tagName + ':' + (document.activeElement.shadowRoot?.activeElement?.getAttribute('aria-label') || '')")
        .await
        .expect("focus");
    assert_eq!(focus, "PORTHOLE-WIDGET:Open chat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_host_page_embeds_the_demo_widget_and_its_button_asks() {
    let h = Harness::start(
        Script::words("Porthole works with any OpenAI-compatible server.", 10),
        |_| {},
    )
    .await
    .expect("harness");
    let page = h.browser.new_page("about:blank").await.expect("tab");
    page.execute(SetDeviceMetricsOverrideParams::new(1100, 720, 1.0, false))
        .await
        .expect("viewport");
    page.execute(AddScriptToEvaluateOnNewDocumentParams::new(PROBE))
        .await
        .expect("probe");
    page.goto(h.url("/")).await.expect("navigate");
    wait_for(
        &page,
        "window.Porthole && Porthole.v && document.querySelector('porthole-widget')",
        T,
    )
    .await
    .expect("the loader ran on the demo page");
    eval(
        &page,
        "window.__answers = []; Porthole('on', 'answer', d => __answers.push(d.text))",
    )
    .await
    .expect("listen");
    page.find_element("#ask")
        .await
        .expect("ask button")
        .click()
        .await
        .expect("click");
    wait_for(&page, "__answers.length === 1", T)
        .await
        .expect("an answer");
    assert_eq!(eval(&page, "__violations").await.expect("csp"), json!([]));
    screenshot(&page, &screenshot_dir().join("demo.png"))
        .await
        .expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_is_not_allowed_cannot_show_the_widget() {
    // Two sites: the widget allows only the first.
    let allowed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let allowed_origin = format!(
        "http://localhost:{}",
        allowed.local_addr().expect("addr").port()
    );
    let site = allowed_origin.clone();
    let h = Harness::start(Script::words("Hi.", 2), move |s| {
        s.widgets[0].allowed_sites = vec![site]
    })
    .await
    .expect("harness");
    let page_on = |listener| {
        let body = format!(
            "<!doctype html><html><head><title>Site</title>\
             <script>window.__ready = 0; window.__errors = []; window.Porthole = function () {{ (Porthole.q = Porthole.q || []).push(arguments); }};\
             Porthole('on', 'ready', function () {{ window.__ready++; }});\
             Porthole('on', 'error', function (e) {{ window.__errors.push(e); }});</script></head><body><h1>A site</h1>\
             <script src=\"{}/widget.js\" data-widget-id=\"{WIDGET}\" data-key=\"{KEY}\" data-open=\"true\" async></script></body></html>",
            h.base
        );
        let pages = HashMap::from([("/".to_owned(), (body, vec![]))]);
        e2e::serve_pages_on(listener, pages).expect("host server")
    };
    let allowed_addr = page_on(allowed);
    let other_addr = page_on(other);

    let csp = reqwest::get(h.url(&format!("/widget/{WIDGET}?key={KEY}")))
        .await
        .expect("page")
        .headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.ends_with(&format!("frame-ancestors {allowed_origin}")),
        "{csp}"
    );

    // The allowed site gets a working panel.
    let good = open_host(
        &h,
        &format!("http://localhost:{}/", allowed_addr.port()),
        1024,
        768,
        false,
    )
    .await;
    wait_for(&good, "window.__ready === 1", T)
        .await
        .expect("the allowed site's panel is live");

    // The other site's iframe is refused by the browser: the panel never
    // says hello, so nothing reaches the API, and the loader takes its
    // launcher and the empty panel away, saying why.
    let bad = open_host(
        &h,
        &format!("http://localhost:{}/", other_addr.port()),
        1024,
        768,
        false,
    )
    .await;
    wait_for(&bad, "window.__errors.length === 1", T)
        .await
        .expect("the loader gives up on a panel that never starts");
    assert_eq!(
        eval(&bad, "window.__errors[0]").await.expect("error"),
        json!({"widget": WIDGET, "code": "not_started"})
    );
    assert_eq!(
        eval(&bad, "document.querySelectorAll('porthole-widget').length")
            .await
            .expect("hosts"),
        json!(0),
        "the launcher of a refused panel is still on the page"
    );
    // (Counted by a handler queued before the loader ran, so no `ready`
    // can slip past it.)
    assert_eq!(
        eval(&bad, "window.__ready").await.expect("ready count"),
        json!(0),
        "a blocked site got a live widget"
    );
    assert_eq!(
        h.mock.requests().len(),
        0,
        "a blocked site reached the model"
    );
    screenshot(&bad, &screenshot_dir().join("blocked-site.png"))
        .await
        .expect("screenshot");
    // Meanwhile the allowed site, open all along, kept its live panel.
    assert_eq!(
        eval(
            &good,
            "[window.__errors.length, document.querySelectorAll('porthole-widget').length]"
        )
        .await
        .expect("good page"),
        json!([0, 1])
    );
}

/// The host page's `identify` with its backend's hash binds the visitor's
/// conversation to that user; after `reset`, a wrong hash stays anonymous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identify_binds_the_conversation_to_the_verified_user_and_a_wrong_hash_stays_anonymous() {
    const SECRET: &str = "acme-backend-secret-42";
    let h = Harness::start(Script::words("Your order ships today.", 5), |s| {
        s.widgets[0].verification_secret = Some(SECRET.into())
    })
    .await
    .expect("harness");
    let url = host_page(&h, "", vec![]).await;
    let page = open_host(&h, &url, 1024, 768, false).await;
    wait_event(&page, "ready", 1).await;
    let good = porthole::tenants::session::identity_hash(SECRET, "alice");
    eval(
        &page,
        &format!("Porthole('identify', {{id: 'alice', name: 'Alice', hash: '{good}'}}); Porthole('send', 'Where is my order?')"),
    )
    .await
    .expect("identify and send");
    wait_event(&page, "answer", 1).await;
    // Logged out; then someone claims to be alice with a made-up hash.
    let forged = porthole::tenants::session::identity_hash("a guess", "alice");
    eval(
        &page,
        &format!("Porthole('reset'); Porthole('identify', {{id: 'alice', hash: '{forged}'}}); Porthole('send', 'Show me alice orders')"),
    )
    .await
    .expect("reset, identify, send");
    wait_event(&page, "answer", 2).await;

    let store = porthole::store::SqliteStore::open(&h.db)
        .await
        .expect("store");
    let (conversations, _) = porthole::store::TenantStore::conversations(&store, WIDGET, 10, None)
        .await
        .expect("conversations");
    let owners: Vec<Option<&str>> = conversations.iter().map(|c| c.user_id.as_deref()).collect();
    // Newest first.
    assert_eq!(owners, [None, Some("alice")], "{conversations:?}");
    assert_ne!(
        conversations[0].visitor_id, conversations[1].visitor_id,
        "reset starts a new visitor"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_and_panel_keep_their_size_whatever_the_host_does_to_zoom_transforms_and_fonts()
 {
    let h = Harness::start(Script::words("Still readable.", 5), |_| {})
        .await
        .expect("harness");
    for (name, css) in [
        ("body-zoom", "body { zoom: 2 !important; }"),
        ("root-zoom", "html { zoom: 1.5 !important; }"),
        (
            "root-and-body-zoom-transform-fonts",
            "html { zoom: 0.8 !important; font-size: 40px !important; } \
             body { zoom: 2 !important; transform: translateX(30px) scale(0.9) !important; } \
             *, *::before, *::after { box-sizing: content-box !important; }",
        ),
    ] {
        let url = host_page(&h, &format!("<style>{css}</style>"), vec![]).await;
        let page = open_host(&h, &url, 1024, 768, false).await;
        // The launcher: 56 px, 20 px from the corner, on top.
        let launcher = launcher_center(&page, 1024.0, 768.0).await;
        page.click(launcher).await.expect("click");
        wait_shadow(&page, "div.shown").await.expect("panel shown");
        let panel = rect(&page, "div").await;
        assert!(
            (panel[2] - 380.0).abs() < 1.0,
            "{name}: panel width {panel:?}"
        );
        assert!(
            panel[1] >= 0.0 && panel[1] + panel[3] <= 768.0 && panel[0] + panel[2] <= 1024.0,
            "{name}: the panel runs off the screen: {panel:?}"
        );
        // Its header (and close button) is reachable: the point near its
        // top right belongs to the widget.
        let (x, y) = (panel[0] + panel[2] - 24.0, panel[1] + 24.0);
        let hit = eval(
            &page,
            &format!("document.elementFromPoint({x}, {y})?.tagName"),
        )
        .await
        .expect("hit");
        assert_eq!(hit, "PORTHOLE-WIDGET", "{name}: the header is covered");
        wait_event(&page, "ready", 1).await;
        screenshot(&page, &screenshot_dir().join(format!("host-{name}.png")))
            .await
            .expect("screenshot");
    }
}
