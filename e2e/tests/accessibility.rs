//! axe-core, run in the real Chromium, finds no serious or critical
//! violation in the panel (empty, mid-answer, after an error, with sources,
//! in Arabic, in dark mode) or in the launcher on a host page.

use std::collections::HashMap;
use std::time::Duration;

use chromiumoxide::Page;
use e2e::{
    Harness, KEY, WIDGET, ask, axe_serious, eval, panel_path, ready, serve_pages, set_dark,
    wait_for,
};
use mock_upstream::{Fault, Script};

const T: Duration = Duration::from_secs(20);

async fn last_state(page: &Page, state: &str) {
    let js = format!(
        "(() => {{ const m = [...document.querySelectorAll('[data-role=assistant]')].pop(); \
         return !!m && m.dataset.state === '{state}' && m.textContent.length > 20; }})()"
    );
    wait_for(page, &js, T).await.expect(state);
}

async fn audit(page: &Page, what: &str) {
    let found = axe_serious(page, "body").await.expect("axe-core runs");
    assert!(found.is_empty(), "{what}: {found:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_has_no_serious_violation_empty_mid_answer_after_an_error_and_with_sources() {
    let dir = std::env::temp_dir().join(format!("porthole-axe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let knowledge = dir.join("acme.md");
    std::fs::write(
        &knowledge,
        "# Installing Acme\n\nInstall Acme with one command: run the installer, then open the dashboard \
         and sign in with the account you created.\n",
    )
    .expect("knowledge");
    let answer = "To install Acme, run the installer and then open the dashboard [1]. \
                  Sign in with the account you created, and you are ready to go.";
    let h = Harness::start(Script::words(answer, 60), |s| {
        s.widgets[0].knowledge = Some(knowledge.clone());
    })
    .await
    .expect("harness");
    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    ready(&page).await;
    audit(&page, "empty panel").await;
    // The audit can fail: a button without a name planted in the panel is
    // found, and goes again.
    eval(&page, "document.querySelector('header').append(Object.assign(document.createElement('button'), {id: 'planted'}))")
        .await
        .expect("plant");
    let found = axe_serious(&page, "body").await.expect("axe-core runs");
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("button-name (critical)") && f.contains("#planted")),
        "{found:?}"
    );
    eval(&page, "document.getElementById('planted').remove()")
        .await
        .expect("unplant");

    // Count what a screen reader would be told: changes to live regions.
    eval(
        &page,
        "window.__said = []; new MutationObserver(() => {            const t = document.querySelector('.sr-only[aria-live=polite]').textContent;            if (t && window.__said[window.__said.length - 1] !== t) window.__said.push(t); })          .observe(document.querySelector('.sr-only[aria-live=polite]'), {childList: true, subtree: true, characterData: true})",
    )
    .await
    .expect("observer");
    ask(&page, "How do I install Acme?").await;
    last_state(&page, "streaming").await;
    audit(&page, "mid-answer").await;

    last_state(&page, "complete").await;
    // The answer is said once, whole, when it is finished; the log itself
    // is not live, so its tokens are not read one by one.
    let said = wait_for(&page, "window.__said.length ? window.__said : null", T)
        .await
        .expect("announced");
    assert_eq!(said, serde_json::json!([answer]), "{said}");
    assert_eq!(
        eval(
            &page,
            "document.querySelector('[role=log]').getAttribute('aria-live')"
        )
        .await
        .expect("log"),
        "off"
    );
    wait_for(&page, "!!document.querySelector('.sources')", T)
        .await
        .expect("sources listed");
    audit(&page, "an answer with sources").await;

    set_dark(&page, true).await.expect("dark");
    audit(&page, "dark mode, with sources").await;
    set_dark(&page, false).await.expect("light");

    h.mock
        .set_script(Script::words("never", 5).with_fault(Fault::Status(500)));
    ask(&page, "And how do I install the plugins?").await;
    wait_for(&page, "!!document.querySelector('[role=alert]')", T)
        .await
        .expect("an error");
    audit(&page, "after an error").await;

    // Arabic, mirrored, with a starter prompt and the greeting.
    let ar = h
        .open(&format!("{}&lang=ar", panel_path()), 400, 640, false)
        .await
        .expect("page");
    ready(&ar).await;
    audit(&ar, "the panel in Arabic").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launcher_on_a_host_page_has_no_serious_violation_closed_or_open() {
    let h = Harness::start(Script::words("Hello.", 5), |_| {})
        .await
        .expect("harness");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shop</title></head>\
         <body><main><h1>Acme shop</h1><p>Products.</p></main>\
         <script src=\"{}/widget.js\" data-widget-id=\"{WIDGET}\" data-key=\"{KEY}\" async></script></body></html>",
        h.base
    );
    let addr = serve_pages(HashMap::from([("/".to_owned(), (body, vec![]))]))
        .await
        .expect("host");
    let page = h
        .browser
        .new_page(format!("http://localhost:{}/", addr.port()))
        .await
        .expect("tab");
    wait_for(
        &page,
        "!!document.querySelector('porthole-widget')?.shadowRoot?.querySelector('button')",
        T,
    )
    .await
    .expect("launcher");
    let found = axe_serious(&page, "porthole-widget").await.expect("axe");
    assert!(found.is_empty(), "launcher: {found:#?}");
    eval(&page, "Porthole('open')").await.expect("open");
    wait_for(
        &page,
        "!!document.querySelector('porthole-widget').shadowRoot.querySelector('div.shown')",
        T,
    )
    .await
    .expect("open");
    let found = axe_serious(&page, "porthole-widget").await.expect("axe");
    assert!(found.is_empty(), "open launcher: {found:#?}");
}
