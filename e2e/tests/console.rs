//! The console in a real Chromium against the real server: the first run's
//! setup from this machine, the widget list, creating a widget and reading
//! its snippet, adding a user, signing out, a wrong password, and a viewer
//! who sees no editing. axe-core checks each screen; the page's CSP keeps
//! it out of frames.

use std::time::Duration;

use chromiumoxide::Page;
use e2e::{Harness, Pages, axe_serious, eval, screenshot, screenshot_dir, wait_for};
use mock_upstream::Script;

const T: Duration = Duration::from_secs(20);
const PASSWORD: &str = "correct horse battery staple";

async fn type_into(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .expect("click")
        .type_str(text)
        .await
        .expect("type");
}

async fn click(page: &Page, selector: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Clicks the button whose text is `label`.
async fn click_button(page: &Page, label: &str) {
    let js = format!(
        "(() => {{ const b = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === {label:?}); \
         if (b) b.setAttribute('data-e2e', 'target'); return !!b; }})()"
    );
    wait_for(page, &js, T).await.expect(label);
    click(page, "button[data-e2e=target]").await;
    eval(
        page,
        "document.querySelector('[data-e2e=target]')?.removeAttribute('data-e2e')",
    )
    .await
    .expect("unmark");
}

async fn text(page: &Page) -> String {
    eval(page, "document.body.innerText")
        .await
        .expect("text")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn audit(page: &Page, what: &str) {
    let found = axe_serious(page, "body").await.expect("axe-core runs");
    assert!(found.is_empty(), "{what}: {found:#?}");
}

async fn sign_in(page: &Page, email: &str, password: &str) {
    wait_for(page, "!!document.querySelector('#sign-in-title')", T)
        .await
        .expect("the sign-in form");
    eval(page, "document.querySelector('#email').value = ''; document.querySelector('#password').value = ''")
        .await
        .expect("clear");
    type_into(page, "#email", email).await;
    type_into(page, "#password", password).await;
    click(page, "button[type=submit]").await;
}

/// Creates the first owner on the setup page and waits for the widgets.
async fn set_up_owner(page: &Page) {
    wait_for(page, "!!document.querySelector('#setup-title')", T)
        .await
        .expect("the setup form");
    type_into(page, "#email", "owner@example.com").await;
    type_into(page, "#password", PASSWORD).await;
    type_into(page, "#again", PASSWORD).await;
    click(page, "button[type=submit]").await;
    wait_for(page, "document.querySelectorAll('tbody tr').length >= 2", T)
        .await
        .expect("the widget list");
}

/// Picks `widget` in the section's picker `select`.
async fn pick(page: &Page, select: &str, widget: &str) {
    wait_for(
        page,
        &format!("!!document.querySelector('{select} option')"),
        T,
    )
    .await
    .expect("the widget picker");
    eval(
        page,
        &format!(
            "(() => {{ const s = document.querySelector('{select}'); s.value = {widget:?}; \
             s.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()"
        ),
    )
    .await
    .expect("pick the widget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_sets_up_the_console_creates_a_widget_and_a_viewer_only_reads() {
    let h = Harness::start(Script::default(), |_| {})
        .await
        .expect("harness");

    // The page's own headers: a strict CSP, never framed.
    let r = reqwest::get(h.url("/console")).await.expect("console page");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for part in [
        "frame-ancestors 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !r.text().await.expect("page").contains("<script>"),
        "no inline script"
    );

    // First run, from this machine: create the first owner.
    let page = h.open("/console", 1280, 800, false).await.expect("page");
    wait_for(&page, "!!document.querySelector('#setup-title')", T)
        .await
        .expect("the setup form");
    audit(&page, "setup").await;
    screenshot(&page, &screenshot_dir().join("console-setup.png"))
        .await
        .expect("screenshot");
    type_into(&page, "#email", "owner@example.com").await;
    type_into(&page, "#password", PASSWORD).await;
    type_into(&page, "#again", PASSWORD).await;
    click(&page, "button[type=submit]").await;

    // The widget list: the demo widget and the configured one.
    wait_for(
        &page,
        "document.querySelectorAll('tbody tr').length >= 2",
        T,
    )
    .await
    .expect("the widget list");
    let shown = text(&page).await;
    assert!(shown.contains("owner@example.com (owner)"), "{shown}");
    assert!(
        shown.contains("Acme Support") && shown.contains("demo"),
        "{shown}"
    );
    audit(&page, "widgets").await;

    // Create a widget: its snippet is shown once.
    type_into(&page, "#new-title", "Docs Helper").await;
    click_button(&page, "Create").await;
    let embed = wait_for(&page, "document.querySelector('.ok pre')?.textContent", T)
        .await
        .expect("the snippet");
    let embed = embed.as_str().unwrap_or_default();
    assert!(
        embed.contains("data-widget-id=\"docs-helper\"") && embed.contains("pk_"),
        "{embed}"
    );
    wait_for(&page, "document.body.innerText.includes('docs-helper')", T)
        .await
        .expect("the new widget is listed");
    screenshot(&page, &screenshot_dir().join("console-widgets.png"))
        .await
        .expect("screenshot");

    // Edit it: the preview is the real panel and shows a new colour and
    // greeting before they are saved.
    click(&page, "button[aria-label='Open docs-helper']").await;
    let header_colour = "(() => { const d = document.querySelector('.preview iframe')?.contentDocument; \
         const h = d && d.querySelector('header'); return h ? getComputedStyle(h).backgroundColor : ''; })()";
    let before = wait_for(&page, header_colour, T)
        .await
        .expect("the preview's panel");
    assert_eq!(before, "rgb(79, 70, 229)", "the default accent");
    audit(&page, "editor").await;
    // A colour white text cannot be read on: the editor says what
    // visitors will see, and the preview already shows it darkened.
    eval(&page, "document.querySelector('#w-primary').value = ''")
        .await
        .expect("clear");
    type_into(&page, "#w-primary", "#ffcc00").await;
    let note = "document.querySelector('#w-primary-note').textContent";
    let darkened = format!(
        "{note}.includes('contrast of 1.5:1') && /visitors see #[0-9a-f]{{6}} instead/.test({note}) \
         && !['rgb(79, 70, 229)', 'rgb(255, 204, 0)', ''].includes({header_colour})"
    );
    if let Err(e) = wait_for(&page, &darkened, T).await {
        let note = eval(&page, note).await;
        panic!("no contrast note or no darkened preview: {e}: {note:?}");
    }
    screenshot(&page, &screenshot_dir().join("console-editor-contrast.png"))
        .await
        .expect("screenshot");
    eval(&page, "document.querySelector('#w-primary').value = ''")
        .await
        .expect("clear");
    type_into(&page, "#w-primary", "#0f766e").await;
    eval(&page, "document.querySelector('#w-greeting').value = ''")
        .await
        .expect("clear");
    type_into(&page, "#w-greeting", "Ask me about the docs!").await;
    pick(&page, "#w-font", "Georgia, \"Times New Roman\", serif").await;
    type_into(&page, "#w-temperature", "0.3").await;
    type_into(&page, "#w-daily-tokens", "50000").await;
    let changed = format!(
        "{header_colour} === 'rgb(15, 118, 110)' && document.querySelector('.preview iframe').contentDocument.body.innerText.includes('Ask me about the docs!') \
         && getComputedStyle(document.querySelector('.preview iframe').contentDocument.querySelector('header')).fontFamily.includes('Georgia')"
    );
    if let Err(e) = wait_for(&page, &changed, T).await {
        let seen = eval(
            &page,
            "(() => { const f = document.querySelector('.preview iframe'); \
             return [f.contentWindow.performance.getEntriesByType('resource').map(e => e.name + ' ' + e.responseStatus), f.contentDocument.documentElement.outerHTML.slice(0, 3000)]; })()",
        )
        .await;
        panic!("the preview does not show the draft: {e}\n{seen:?}");
    }
    assert!(text(&page).await.contains("Unsaved changes"));
    assert_eq!(
        eval(&page, note).await.expect("the note"),
        "",
        "a readable colour needs no note"
    );
    let stored: serde_json::Value = reqwest::Client::new()
        .get(h.url("/api/v1/console/session"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        stored["code"], "unauthorized",
        "no cookie outside the browser"
    );
    eval(&page, "window.scrollTo(0, 0)")
        .await
        .expect("scroll up");
    screenshot(&page, &screenshot_dir().join("console-editor-preview.png"))
        .await
        .expect("screenshot");
    click_button(&page, "Save").await;
    wait_for(&page, "document.body.innerText.includes('Saved.')", T)
        .await
        .expect("saved");
    // The model setting and the limit are stored as typed.
    let kept = eval(
        &page,
        "[document.querySelector('#w-temperature').value, document.querySelector('#w-daily-tokens').value, document.querySelector('#w-font').value]",
    )
    .await
    .expect("the saved fields");
    assert_eq!(
        kept,
        serde_json::json!(["0.3", "50000", "Georgia, \"Times New Roman\", serif"])
    );
    // An avatar address shows in the preview's header at once (the
    // picture itself is on the internet, which these tests do not reach).
    type_into(&page, "#w-avatar", "https://cdn.acme.example/logo.png").await;
    wait_for(
        &page,
        "document.querySelector('.preview iframe').contentDocument.querySelector('header img.avatar')?.getAttribute('src') === 'https://cdn.acme.example/logo.png'",
        T,
    )
    .await
    .expect("the avatar in the preview");
    eval(
        &page,
        "(() => { const i = document.querySelector('#w-avatar'); i.value = ''; i.dispatchEvent(new InputEvent('input', { bubbles: true })); })()",
    )
    .await
    .expect("clear the avatar");
    wait_for(
        &page,
        "!document.querySelector('.preview iframe').contentDocument.querySelector('header img') && !document.body.innerText.includes('Unsaved changes')",
        T,
    )
    .await
    .expect("back to the letter, nothing unsaved");
    // Saved for visitors: the widget's own page now has the colour.
    let key = embed
        .split("data-key=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the key in the snippet");
    let visitor_page = reqwest::get(h.url(&format!("/widget/docs-helper?key={key}")))
        .await
        .expect("widget page")
        .text()
        .await
        .expect("page");
    assert!(visitor_page.contains("#0f766e") && visitor_page.contains("Ask me about the docs!"));

    // Add a viewer.
    click_button(&page, "Users").await;
    wait_for(
        &page,
        "!!document.querySelector('#user-email') && !!document.querySelector('tbody tr')",
        T,
    )
    .await
    .expect("the users page");
    type_into(&page, "#user-email", "viewer@example.com").await;
    type_into(&page, "#user-password", PASSWORD).await;
    eval(
        &page,
        "document.querySelector('#user-role').value = 'viewer'",
    )
    .await
    .expect("role");
    click_button(&page, "Add user").await;
    if let Err(e) = wait_for(
        &page,
        "document.body.innerText.includes('viewer@example.com can now sign in as viewer')",
        T,
    )
    .await
    {
        panic!("the viewer is not added: {e}\n{}", text(&page).await);
    }
    audit(&page, "users").await;

    // The audit log names the owner's changes.
    click_button(&page, "Audit log").await;
    wait_for(
        &page,
        "document.body.innerText.includes('POST /api/v1/admin/widgets')",
        T,
    )
    .await
    .expect("the widget's creation is in the audit log");
    let shown = text(&page).await;
    assert!(shown.contains("user:owner@example.com"), "{shown}");
    assert!(shown.contains("POST /api/v1/console/users"), "{shown}");

    // A visitor's conversation in the panel appears under Conversations,
    // with its transcript and each answer's status.
    let visitor = h
        .open(&e2e::panel_path(), 400, 640, false)
        .await
        .expect("panel");
    e2e::ready(&visitor).await;
    e2e::ask(&visitor, "Where is my order?").await;
    wait_for(
        &visitor,
        "document.querySelector('[data-role=assistant][data-state=complete]')",
        T,
    )
    .await
    .expect("the visitor's answer");
    visitor.close().await.expect("close the visitor's tab");
    page.bring_to_front().await.expect("back to the console");
    click_button(&page, "Conversations").await;
    wait_for(&page, "!!document.querySelector('#f-widget option')", T)
        .await
        .expect("the widget picker");
    eval(
        &page,
        &format!(
            "(() => {{ const s = document.querySelector('#f-widget'); s.value = {:?}; \
             s.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()",
            e2e::WIDGET
        ),
    )
    .await
    .expect("pick the widget");
    let read = "button[aria-label^='Read conversation']";
    wait_for(&page, &format!("!!document.querySelector({read:?})"), T)
        .await
        .expect("the visitor's conversation is listed");
    click(&page, read).await;
    wait_for(
        &page,
        "document.querySelector('.transcript')?.innerText.includes('Where is my order?')",
        T,
    )
    .await
    .expect("the transcript");
    let transcript = eval(&page, "document.querySelector('.transcript').innerText")
        .await
        .expect("transcript");
    let transcript = transcript.as_str().unwrap_or_default();
    assert!(
        transcript.contains("assistant") && transcript.contains("complete"),
        "{transcript}"
    );
    audit(&page, "conversations").await;
    screenshot(&page, &screenshot_dir().join("console-conversations.png"))
        .await
        .expect("screenshot");

    // Sign out; a wrong password is refused with a clear message.
    click_button(&page, "Sign out").await;
    sign_in(&page, "owner@example.com", "not the password").await;
    wait_for(
        &page,
        "document.querySelector('[role=alert]')?.textContent",
        T,
    )
    .await
    .expect("the refusal");
    let shown = text(&page).await;
    assert!(shown.contains("The email or password is wrong."), "{shown}");
    audit(&page, "sign-in with an error").await;
    screenshot(&page, &screenshot_dir().join("console-sign-in.png"))
        .await
        .expect("screenshot");

    // The viewer reads the widgets but is offered no editing and no users.
    sign_in(&page, "viewer@example.com", PASSWORD).await;
    wait_for(
        &page,
        "document.querySelectorAll('tbody tr').length >= 3",
        T,
    )
    .await
    .expect("the viewer's widget list");
    let shown = text(&page).await;
    assert!(shown.contains("viewer@example.com (viewer)"), "{shown}");
    assert!(!shown.contains("Create a widget"), "{shown}");
    assert!(
        !shown.contains("Users") && !shown.contains("Audit log"),
        "{shown}"
    );

    // A session that ends elsewhere sends the console back to sign in.
    click_button(&page, "Sign out everywhere").await;
    wait_for(
        &page,
        "document.body.innerText.includes('Signed out on every browser.')",
        T,
    )
    .await
    .expect("signed out everywhere");
    page.reload().await.expect("reload");
    wait_for(&page, "!!document.querySelector('#sign-in-title')", T)
        .await
        .expect("signed out after a reload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_cannot_be_framed_even_by_its_own_origin() {
    let h = Harness::start(Script::default(), |_| {})
        .await
        .expect("harness");
    // A page of the server's own origin frames a plain route (the control:
    // its document is readable) and the console (refused by
    // frame-ancestors 'none': Chromium puts its error page there, which the
    // parent cannot read).
    let page = h.open("/health", 800, 600, false).await.expect("page");
    let framed = |path: &str| {
        format!(
            "new Promise(done => {{ const f = document.createElement('iframe'); \
             f.onload = () => setTimeout(() => {{ let d = null; try {{ d = f.contentDocument; }} catch (e) {{}} \
             done(!!d && d.location.href.endsWith({path:?})); }}, 300); \
             f.src = {path:?}; document.body.appendChild(f); }})"
        )
    };
    let control = eval(&page, &framed("/ready")).await.expect("control frame");
    assert_eq!(
        control,
        serde_json::Value::Bool(true),
        "a frameable route loads"
    );
    let console = eval(&page, &framed("/console"))
        .await
        .expect("console frame");
    assert_eq!(
        console,
        serde_json::Value::Bool(false),
        "the console was framed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_adds_a_site_watches_it_sync_reads_its_errors_and_tries_a_question() {
    // A docs site on loopback: a sitemap of two pages and one that is gone.
    let mut pages = Pages::new();
    let article = |title: &str, body: &str| {
        (
            format!(
                "<!doctype html><html><head><title>{title}</title></head><body><main><article>\
                 <h1>{title}</h1>{body}</article></main></body></html>"
            ),
            vec![],
        )
    };
    pages.insert(
        "/install".into(),
        article(
            "Install",
            "<p>Acme runs anywhere containers run. This page explains how to install it and keep its data safe.</p>\
             <h2 id=\"docker\">Docker</h2><p>Pull the acme image and run it with the data folder mounted as a volume, \
             so the database survives restarts and upgrades of the container.</p>",
        ),
    );
    pages.insert(
        "/billing".into(),
        article(
            "Billing",
            "<p>Invoices are sent on the first day of each month. Teams on the yearly plan get two months free \
             and can pay by bank transfer.</p>",
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let site = listener.local_addr().expect("address");
    let loc = |p: &str| format!("<url><loc>http://{site}{p}</loc></url>");
    pages.insert(
        "/sitemap.xml".into(),
        (
            format!(
                "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{}{}{}</urlset>",
                loc("/install"),
                loc("/billing"),
                loc("/gone")
            ),
            vec![],
        ),
    );
    e2e::serve_pages_on(listener, pages).expect("site");
    let h = Harness::start(Script::default(), |s| {
        s.knowledge.allow_private_addresses = true;
        // Slow enough to watch the progress.
        s.knowledge.crawl_delay_ms = 700;
    })
    .await
    .expect("harness");
    let page = h.open("/console", 1280, 900, false).await.expect("page");
    set_up_owner(&page).await;

    click_button(&page, "Knowledge").await;
    pick(&page, "#knowledge-widget", e2e::WIDGET).await;
    wait_for(
        &page,
        "document.body.innerText.includes('No knowledge yet')",
        T,
    )
    .await
    .expect("no sources yet");
    audit(&page, "knowledge, empty").await;

    // Add the site; its progress shows while it syncs.
    type_into(&page, "#source-url", &format!("http://{site}/")).await;
    type_into(&page, "#source-name", "Acme docs").await;
    click_button(&page, "Add").await;
    if let Err(e) = wait_for(
        &page,
        "!!document.querySelector('table[aria-label=Sources] progress')",
        T,
    )
    .await
    {
        panic!("no progress shown: {e}\n{}", text(&page).await);
    }
    let shown = text(&page).await;
    assert!(
        shown.contains("Syncing") || shown.contains("Waiting"),
        "{shown}"
    );
    assert!(shown.contains("of 3 pages"), "{shown}");
    screenshot(
        &page,
        &screenshot_dir().join("console-knowledge-syncing.png"),
    )
    .await
    .expect("screenshot");

    // Ready without a reload: two pages read, the gone one failed.
    if let Err(e) = wait_for(
        &page,
        "document.querySelector('table[aria-label=Sources] .pill.ready')",
        T,
    )
    .await
    {
        panic!("never ready: {e}\n{}", text(&page).await);
    }
    let row = eval(
        &page,
        "document.querySelector('table[aria-label=Sources] tbody tr').innerText",
    )
    .await
    .expect("row");
    let row = row.as_str().unwrap_or_default();
    assert!(
        row.contains("Acme docs") && row.contains("3 of 3 pages, 1 failed"),
        "{row}"
    );
    click_button(&page, "Details").await;
    wait_for(
        &page,
        "!!document.querySelector('table[aria-label=\"Page errors\"]')",
        T,
    )
    .await
    .expect("the page errors");
    let errors = eval(
        &page,
        "document.querySelector('table[aria-label=\"Page errors\"]').innerText",
    )
    .await
    .expect("errors");
    let errors = errors.as_str().unwrap_or_default();
    assert!(
        errors.contains(&format!("http://{site}/gone")) && errors.contains("404"),
        "{errors}"
    );
    audit(&page, "knowledge, ready with a page error").await;

    // Try a question: the install page's Docker section comes first, as
    // passage [1], linked to its anchor; the model is never asked.
    type_into(
        &page,
        "#try-question",
        "How do I run the docker image with a volume?",
    )
    .await;
    click_button(&page, "Show what it retrieves").await;
    if let Err(e) = wait_for(
        &page,
        "!!document.querySelector('table[aria-label=\"Retrieved chunks\"]')",
        T,
    )
    .await
    {
        panic!("nothing retrieved: {e}\n{}", text(&page).await);
    }
    let first = eval(
        &page,
        "(() => { const r = document.querySelector('table[aria-label=\"Retrieved chunks\"] tbody tr'); \
         return [r.cells[0].innerText, r.querySelector('a')?.getAttribute('href'), r.innerText]; })()",
    )
    .await
    .expect("first candidate");
    assert_eq!(first[0], "[1]", "{first}");
    assert_eq!(first[1], format!("http://{site}/install#docker"), "{first}");
    assert!(
        first[2]
            .as_str()
            .unwrap_or_default()
            .contains("Pull the acme image"),
        "{first}"
    );
    assert!(text(&page).await.contains("would be grounded in"));
    assert_eq!(h.mock.stats().opened, 0, "the model was never asked");
    audit(&page, "knowledge, a question tried").await;
    eval(
        &page,
        "document.querySelector('section[aria-label=Retrieval]').scrollIntoView()",
    )
    .await
    .expect("scroll to the results");
    screenshot(&page, &screenshot_dir().join("console-knowledge-try.png"))
        .await
        .expect("screenshot");

    // A question nothing covers says what the visitor would get.
    eval(&page, "document.querySelector('#try-question').value = ''")
        .await
        .expect("clear");
    type_into(
        &page,
        "#try-question",
        "What is the boiling point of mercury?",
    )
    .await;
    click_button(&page, "Show what it retrieves").await;
    wait_for(
        &page,
        "document.body.innerText.includes('Nothing covers this question')",
        T,
    )
    .await
    .expect("unanswered");

    // FAQs are added as text; removing one asks first and takes it away.
    eval(
        &page,
        "(() => { const s = document.querySelector('#source-kind'); s.value = 'faq'; \
         s.dispatchEvent(new Event('change', { bubbles: true })); })()",
    )
    .await
    .expect("faq");
    wait_for(&page, "!!document.querySelector('textarea#source-text')", T)
        .await
        .expect("the FAQ box");
    // Typed text cannot hold a line break here: set the two lines.
    eval(
        &page,
        "document.querySelector('#source-text').value = 'question,answer\\nDo you ship abroad?,Yes: to 40 countries.'",
    )
    .await
    .expect("the FAQ text");
    eval(
        &page,
        "document.querySelector('#source-name').value = 'Shipping FAQ'",
    )
    .await
    .expect("name");
    click_button(&page, "Add").await;
    wait_for(
        &page,
        "document.querySelectorAll('table[aria-label=Sources] .pill.ready').length === 2",
        T,
    )
    .await
    .expect("the FAQ is ready");
    eval(
        &page,
        "window.__asked = ''; window.confirm = m => { window.__asked = m; return true; }",
    )
    .await
    .expect("answer the confirmation");
    let remove = "button[aria-label='Remove Shipping FAQ']";
    click(&page, remove).await;
    wait_for(
        &page,
        "document.querySelectorAll('table[aria-label=Sources] tbody tr').length === 1",
        T,
    )
    .await
    .expect("the FAQ is removed");
    let asked = eval(&page, "window.__asked").await.expect("asked");
    assert!(
        asked
            .as_str()
            .unwrap_or_default()
            .contains("Remove “Shipping FAQ”?"),
        "{asked}"
    );
    assert!(text(&page).await.contains("Removed “Shipping FAQ”."));
}

/// Sets a filter of the inbox's form as a person choosing it would.
async fn filter(page: &Page, selector: &str, value: &str) {
    eval(
        page,
        &format!(
            "(() => {{ const s = document.querySelector({selector:?}); s.value = {value:?}; \
             s.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()"
        ),
    )
    .await
    .expect("set the filter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thumbs_down_reaches_the_inbox_the_questions_to_fix_the_csv_export_and_the_analytics() {
    use chromiumoxide::cdp::browser_protocol::browser::{
        SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
    };

    let h = Harness::start(Script::words("The orders page lists them.", 0), |s| {
        // A price a visitor's few tokens show as cents.
        s.prices.insert(
            s.upstream.model.clone(),
            porthole::config::ModelPrice {
                input_per_million: 2_000.0,
                output_per_million: 8_000.0,
            },
        );
    })
    .await
    .expect("harness");
    let page = h.open("/console", 1280, 900, false).await.expect("page");
    set_up_owner(&page).await;

    // Two visitors on the host page: one asks about shipping, the other
    // about an order and rates the answer down with a comment.
    let visitor = h
        .open(&e2e::panel_path(), 400, 640, false)
        .await
        .expect("panel");
    e2e::ready(&visitor).await;
    e2e::ask(&visitor, "Do you ship to Canada?").await;
    let done = "document.querySelector('[data-role=assistant][data-state=complete]')";
    wait_for(&visitor, done, T).await.expect("the first answer");
    eval(&visitor, "localStorage.clear(); sessionStorage.clear()")
        .await
        .expect("a new visitor");
    visitor.reload().await.expect("reload");
    e2e::ready(&visitor).await;
    e2e::ask(&visitor, "Where is my order?").await;
    wait_for(&visitor, done, T)
        .await
        .expect("the second answer");
    let down = "[data-role=assistant] button[aria-label='Not helpful']";
    wait_for(&visitor, &format!("!!document.querySelector({down:?})"), T)
        .await
        .expect("the rating buttons");
    click(&visitor, down).await;
    let comment = "[data-role=assistant] .rate input";
    wait_for(
        &visitor,
        &format!("!!document.querySelector({comment:?})"),
        T,
    )
    .await
    .expect("the comment box");
    type_into(&visitor, comment, "It never said where the orders page is.").await;
    click(&visitor, "[data-role=assistant] .rate form button").await;
    wait_for(
        &visitor,
        "!!document.querySelector('[data-role=assistant] .thanks')",
        T,
    )
    .await
    .expect("thanked");
    visitor.close().await.expect("close the visitor's tab");

    // The inbox lists both; the rating filter keeps the thumbed-down one.
    page.bring_to_front().await.expect("back to the console");
    click_button(&page, "Conversations").await;
    let rows = "document.querySelectorAll('table[aria-label=Conversations] tbody tr').length";
    wait_for(&page, &format!("{rows} === 2"), T)
        .await
        .expect("both conversations listed");
    filter(&page, "#f-rating", "down").await;
    wait_for(&page, &format!("{rows} === 1"), T)
        .await
        .expect("only the thumbed-down conversation");
    let shown = text(&page).await;
    assert!(shown.contains("Where is my order?"), "{shown}");
    assert!(!shown.contains("Do you ship to Canada?"), "{shown}");
    assert!(shown.contains("▼ 1"), "{shown}");
    click(&page, "button[aria-label^='Read conversation']").await;
    wait_for(
        &page,
        "document.querySelector('.transcript')?.innerText.includes('It never said where the orders page is.')",
        T,
    )
    .await
    .expect("the rating and its comment in the transcript");
    audit(&page, "the inbox, filtered").await;
    screenshot(&page, &screenshot_dir().join("console-inbox.png"))
        .await
        .expect("screenshot");

    // Export CSV: the browser downloads the filtered rows.
    let downloads = std::env::temp_dir().join(format!("porthole-downloads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&downloads);
    std::fs::create_dir_all(&downloads).expect("downloads folder");
    let mut allow = SetDownloadBehaviorParams::new(SetDownloadBehaviorBehavior::Allow);
    allow.download_path = Some(downloads.to_string_lossy().into_owned());
    h.browser.execute(allow).await.expect("allow downloads");
    let link = "a[download='porthole-conversations.csv']";
    let href = eval(
        &page,
        &format!("document.querySelector({link:?}).getAttribute('href')"),
    )
    .await
    .expect("href");
    assert!(
        href.as_str().unwrap_or_default().contains("rating=down"),
        "{href}"
    );
    click(&page, link).await;
    let file = downloads.join("porthole-conversations.csv");
    let deadline = tokio::time::Instant::now() + T;
    let csv = loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.ends_with('\n')
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no download in {}",
            downloads.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and the two messages: {csv}");
    assert!(lines[0].starts_with("conversation_id,widget_id"), "{csv}");
    assert!(lines[1].ends_with(",Where is my order?"), "{csv}");
    assert!(
        lines[2].contains(",assistant,complete,down,It never said where the orders page is.,"),
        "{csv}"
    );
    assert!(!csv.contains("Canada"), "{csv}");
    let _ = std::fs::remove_dir_all(&downloads);

    // Questions to fix: the thumbed-down question, its comment, and its
    // conversation with the answer marked.
    click_button(&page, "Questions to fix").await;
    wait_for(
        &page,
        "!!document.querySelector('table[aria-label=\"Questions to fix\"]')",
        T,
    )
    .await
    .expect("the questions to fix");
    let shown = text(&page).await;
    assert!(shown.contains("Where is my order?"), "{shown}");
    assert!(shown.contains("1 rated not helpful"), "{shown}");
    assert!(!shown.contains("Do you ship to Canada?"), "{shown}");
    click_button(&page, "Show cases").await;
    wait_for(
        &page,
        "document.querySelector('tr.cases')?.innerText.includes('It never said where the orders page is.')",
        T,
    )
    .await
    .expect("the case with its comment");
    click(&page, "tr.cases button").await;
    wait_for(
        &page,
        "document.querySelector('.turn.marked')?.innerText.includes('The orders page lists them.')",
        T,
    )
    .await
    .expect("the conversation, its answer marked");
    audit(&page, "questions to fix").await;
    screenshot(
        &page,
        &screenshot_dir().join("console-questions-to-fix.png"),
    )
    .await
    .expect("screenshot");

    // Analytics: today's two conversations, one rated down, their tokens
    // and cost, drawn and in the table; the days before are zeros.
    click_button(&page, "Analytics").await;
    let table = "table[aria-label=\"Analytics per day\"]";
    wait_for(&page, &format!("!!document.querySelector({table:?})"), T)
        .await
        .expect("the analytics");
    let tiles = eval(
        &page,
        "document.querySelector('.tiles').innerText.replace(/\\s+/g, ' ')",
    )
    .await
    .expect("tiles");
    let tiles = tiles.as_str().unwrap_or_default();
    assert!(tiles.contains("Conversations 2 Messages 4 "), "{tiles}");
    assert!(tiles.contains("0 up, 1 down"), "{tiles}");
    assert!(tiles.contains("Estimated cost $"), "{tiles}");
    let rows = eval(
        &page,
        &format!(
            "[...document.querySelectorAll({:?})].map(r => [...r.cells].map(c => c.innerText))",
            format!("{table} tbody tr")
        ),
    )
    .await
    .expect("rows");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 30, "every day of the period");
    assert_eq!(rows[0][1], "2", "today's conversations: {:?}", rows[0]);
    assert_eq!(rows[0][2], "4", "{:?}", rows[0]);
    assert_eq!(rows[0][6], "1", "a thumbs down: {:?}", rows[0]);
    assert!(
        rows[0][9].as_str().unwrap_or_default().starts_with('$'),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[1][2], "0", "yesterday was quiet: {:?}", rows[1]);
    let drawn = eval(
        &page,
        "[document.querySelectorAll('figure.chart svg').length, document.querySelectorAll('figure.chart rect:not(.hit)').length]",
    )
    .await
    .expect("charts");
    assert_eq!(drawn[0], 5, "five charts, cost among them: {drawn}");
    assert!(drawn[1].as_u64().unwrap_or(0) >= 5, "today's bars: {drawn}");
    // Only today has bars; the tallest reaches the top of its chart.
    let tallest = eval(
        &page,
        "Math.max(...[...document.querySelectorAll('figure.chart rect:not(.hit)')].map(r => +r.getAttribute('height')))",
    )
    .await
    .expect("heights");
    assert_eq!(tallest, 140, "{tallest}");
    audit(&page, "analytics").await;
    screenshot(&page, &screenshot_dir().join("console-analytics.png"))
        .await
        .expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_adds_a_webhook_and_a_loopback_receiver_gets_a_signed_message_completed() {
    let receiver = mock_upstream::receiver::Receiver::start(1)
        .await
        .expect("receiver");
    let h = Harness::start(Script::words("Returns are free for 30 days.", 0), |s| {
        // The receiver is on loopback: allowed here, refused by default.
        s.webhooks.allow_private_addresses = true;
        s.webhooks.retry_schedule_ms = vec![500, 500];
    })
    .await
    .expect("harness");
    let page = h.open("/console", 1280, 900, false).await.expect("page");
    set_up_owner(&page).await;

    click_button(&page, "Webhooks").await;
    pick(&page, "#wh-widget", e2e::WIDGET).await;
    wait_for(
        &page,
        "document.body.innerText.includes('No webhooks yet.')",
        T,
    )
    .await
    .expect("no webhooks yet");
    type_into(&page, "#wh-url", &receiver.url).await;
    // message.completed only.
    click(&page, "#wh-ev-conversation\\.created").await;
    click(&page, "#wh-ev-feedback\\.created").await;
    click_button(&page, "Add webhook").await;
    wait_for(&page, "!!document.querySelector('#wh-secret')", T)
        .await
        .expect("the secret, shown once");
    let secret = eval(&page, "document.querySelector('#wh-secret').innerText")
        .await
        .expect("secret");
    let secret = secret.as_str().unwrap_or_default().trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = text(&page).await;
    assert!(listed.contains(&receiver.url), "{listed}");

    // A visitor on the shop's own page (another origin, the loader's
    // iframe) asks; the answer reaches the receiver, signed, and its first
    // answer (500) makes Porthole try again with the same id.
    let mut shop = Pages::new();
    shop.insert(
        "/".into(),
        (
            format!(
                "<!doctype html><html><head><title>Shop</title></head><body><h1>Acme shop</h1>\
                 <script src=\"{}/widget.js\" data-widget-id=\"{}\" data-key=\"{}\" async></script></body></html>",
                h.base,
                e2e::WIDGET,
                e2e::KEY
            ),
            vec![],
        ),
    );
    let shop = e2e::serve_pages(shop).await.expect("the shop's server");
    let visitor = h
        .browser
        .new_page(format!("http://localhost:{}/", shop.port()))
        .await
        .expect("the shop's page");
    wait_for(
        &visitor,
        "!!window.Porthole && !!document.querySelector('porthole-widget')",
        T,
    )
    .await
    .expect("the loader ran");
    eval(
        &visitor,
        "window.__answers = []; Porthole('on', 'answer', d => __answers.push(d.text)); Porthole('send', 'Can I return a jacket?')",
    )
    .await
    .expect("ask on the host page");
    wait_for(&visitor, "__answers.length === 1", T)
        .await
        .expect("the answer on the host page");
    let got = receiver
        .wait_for(T, |got| got.iter().any(|r| r.answered == 204))
        .await
        .unwrap_or_else(|got| panic!("no delivery: {got:?}"));
    assert_eq!(got.len(), 2, "a 500, then the retry: {got:?}");
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    for r in &got {
        assert!(r.signed_with(&secret), "signed as the spec says: {r:?}");
    }
    let body: serde_json::Value = serde_json::from_str(&got[1].body).expect("JSON");
    assert_eq!(body["type"], "message.completed");
    assert_eq!(body["data"]["content"], "Returns are free for 30 days.");
    assert_eq!(body["data"]["widget_id"], e2e::WIDGET);

    // The delivery log says so; a redelivery sends it again.
    page.bring_to_front().await.expect("back to the console");
    click_button(&page, "Deliveries").await;
    wait_for(
        &page,
        "!!document.querySelector('table[aria-label=Deliveries] tr[data-status=delivered]')",
        T,
    )
    .await
    .expect("the delivery, delivered");
    let row = eval(
        &page,
        "document.querySelector('table[aria-label=Deliveries] tbody tr').innerText.replace(/\\s+/g, ' ')",
    )
    .await
    .expect("row");
    let row = row.as_str().unwrap_or_default();
    assert!(row.contains("message.completed"), "{row}");
    assert!(row.contains("Delivered"), "{row}");
    assert!(
        row.contains(" 2 HTTP 204"),
        "two attempts, the last 204: {row}"
    );
    audit(&page, "webhooks").await;
    screenshot(&page, &screenshot_dir().join("console-webhooks.png"))
        .await
        .expect("screenshot");
    click(&page, "button[aria-label^=Redeliver]").await;
    let again = receiver
        .wait_for(T, |got| got.len() == 3)
        .await
        .unwrap_or_else(|got| panic!("no redelivery: {got:?}"));
    assert_eq!(again[2].header("webhook-id"), got[0].header("webhook-id"));
    assert!(again[2].signed_with(&secret));
}
