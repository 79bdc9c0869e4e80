//! The panel in the visitor's language, in real Chromium: the language
//! chosen from the loader's `navigator.languages` or the browser's
//! Accept-Language, Arabic mirrored, an owner's wording winning, the
//! launcher labelled in Hebrew on the left, and the loading skeleton in the
//! visitor's language when the wasm is slow. Screenshots land in
//! docs/screenshots/ (PORTHOLE_UPDATE_SCREENSHOTS=1).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::fetch::{EnableParams, RequestPattern};
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::network::SetUserAgentOverrideParams;
use e2e::{
    Harness, KEY, WIDGET, eval, panel_path, ready, screenshot, screenshot_dir, serve_pages,
    wait_for,
};
use mock_upstream::Script;
use porthole::tenants::i18n::Translation;

const T: Duration = Duration::from_secs(20);

/// Opens `url` with the browser's languages set to `languages` (both
/// `navigator.languages` and Accept-Language).
async fn open_in(h: &Harness, url: &str, languages: &str, w: i64, ht: i64) -> Page {
    let page = h.browser.new_page("about:blank").await.expect("tab");
    page.execute(SetDeviceMetricsOverrideParams::new(w, ht, 1.0, false))
        .await
        .expect("viewport");
    let ua = eval(&page, "navigator.userAgent").await.expect("ua");
    page.execute(
        SetUserAgentOverrideParams::builder()
            .user_agent(ua.as_str().unwrap_or_default())
            .accept_language(languages)
            .build()
            .expect("override"),
    )
    .await
    .expect("languages");
    // A visitor of their own: no conversation saved by an earlier tab.
    page.goto(h.url("/ready")).await.expect("server origin");
    eval(&page, "localStorage.clear()").await.expect("clear");
    page.goto(url).await.expect("navigate");
    page
}

/// Types `text` as an input method would (any script), then Enter.
async fn ask(page: &Page, text: &str) {
    let composer = page.find_element("textarea").await.expect("composer");
    composer.click().await.expect("click");
    page.execute(InsertTextParams::new(text))
        .await
        .expect("type");
    composer.press_key("Enter").await.expect("enter");
}

/// Waits until the answer on screen is streaming with at least `chars`
/// characters: mid-answer.
async fn mid_answer(page: &Page, chars: usize) {
    let js = format!(
        "(() => {{ const m = [...document.querySelectorAll('[data-role=assistant]')].pop(); \
         return !!m && m.dataset.state === 'streaming' && m.textContent.length > {chars}; }})()"
    );
    wait_for(page, &js, T).await.expect("mid-answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_arabic_the_panel_is_mirrored_and_the_send_button_is_on_the_left() {
    let answer = "يعمل Porthole على أي خادم متوافق مع OpenAI، ويعرض الإجابة كلمةً بكلمة أثناء كتابتها. \
                  يمكنك إيقاف أي إجابة في منتصفها، وتبقى المحادثة محفوظة بعد إعادة تحميل الصفحة.";
    let h = Harness::start(Script::words(answer, 120), |_| {})
        .await
        .expect("harness");
    // The loader passes navigator.languages as `lang`; Arabic first.
    let page = open_in(
        &h,
        &h.url(&format!("{}&lang=ar-EG,en", panel_path())),
        "en",
        400,
        640,
    )
    .await;
    ready(&page).await;
    let facts = eval(
        &page,
        "(() => { const t = document.querySelector('textarea'), b = document.querySelector('textarea + button'); \
         const tr = t.getBoundingClientRect(), br = b.getBoundingClientRect(); \
         return [document.documentElement.dir, document.documentElement.lang, t.placeholder, b.textContent, \
                 br.right <= tr.left + 1, getComputedStyle(document.querySelector('header')).direction]; })()",
    )
    .await
    .expect("facts");
    assert_eq!(facts[0], "rtl", "{facts}");
    assert_eq!(facts[1], "ar-EG", "{facts}");
    assert_eq!(facts[2], "اكتب سؤالك…", "{facts}");
    assert_eq!(facts[3], "إرسال", "{facts}");
    assert_eq!(
        facts[4], true,
        "the send button is not left of the composer: {facts}"
    );
    assert_eq!(facts[5], "rtl", "{facts}");

    ask(&page, "كيف يعمل Porthole؟").await;
    mid_answer(&page, 40).await;
    // The visitor's bubble sits on the right's mirror: the start side.
    let sides = eval(
        &page,
        "(() => { const u = document.querySelector('[data-role=user]').getBoundingClientRect(), \
         a = [...document.querySelectorAll('[data-role=assistant]')].pop().getBoundingClientRect(); \
         return [u.left < a.left, document.querySelector('[data-role=user]').dir]; })()",
    )
    .await
    .expect("sides");
    assert_eq!(
        sides[0], true,
        "the visitor's bubble is not on the left in Arabic: {sides}"
    );
    assert_eq!(sides[1], "auto");
    screenshot(&page, &screenshot_dir().join("panel-ar.png"))
        .await
        .expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn japanese_and_german_follow_the_browser_and_an_owner_override_wins() {
    let h = Harness::start(
        Script::words(
            "Porthole streams each answer token by token, so the visitor reads it while it is written.",
            120,
        ),
        |s| {
            let w = &mut s.widgets[0];
            w.language.translations.insert(
                "de".into(),
                Translation {
                    greeting: Some("Hallo! Fragen Sie mich alles über Acme.".into()),
                    starters: Some(vec!["Wie fange ich an?".into()]),
                    strings: BTreeMap::from([("send".to_owned(), "Abschicken".to_owned())]),
                },
            );
        },
    )
    .await
    .expect("harness");

    // German from Accept-Language alone (no `lang` from a loader), with the
    // owner's greeting, starter and wording of Send.
    let de = open_in(
        &h,
        &h.url(&panel_path()),
        "de-AT,de;q=0.9,en;q=0.5",
        400,
        640,
    )
    .await;
    ready(&de).await;
    let facts = eval(
        &de,
        "[document.documentElement.lang, document.querySelector('textarea').placeholder, \
          document.querySelector('textarea + button').textContent, \
          document.querySelector('.msg.assistant').textContent, \
          document.querySelector('.starters button').textContent, \
          document.querySelector('header button').getAttribute('aria-label')]",
    )
    .await
    .expect("facts");
    assert_eq!(
        facts,
        serde_json::json!([
            "de-AT",
            "Ihre Frage…",
            "Abschicken",
            "Hallo! Fragen Sie mich alles über Acme.",
            "Wie fange ich an?",
            "Neues Gespräch"
        ])
    );
    h.mock.set_script(Script::words(
        "Porthole sendet jede Antwort Wort für Wort, sodass Besucher sie lesen, während sie entsteht.",
        120,
    ));
    ask(&de, "Wie funktioniert das Streaming?").await;
    mid_answer(&de, 30).await;
    screenshot(&de, &screenshot_dir().join("panel-de.png"))
        .await
        .expect("screenshot");

    // Japanese: the loader's navigator.languages win over Accept-Language;
    // no override for Japanese, so the catalogue's own Send.
    let ja = open_in(
        &h,
        &h.url(&format!("{}&lang=ja-JP", panel_path())),
        "de",
        400,
        640,
    )
    .await;
    ready(&ja).await;
    let facts = eval(
        &ja,
        "[document.documentElement.lang, document.querySelector('textarea').placeholder, \
          document.querySelector('textarea + button').textContent, \
          document.querySelector('.msg.assistant').textContent]",
    )
    .await
    .expect("facts");
    assert_eq!(
        facts,
        serde_json::json!([
            "ja-JP",
            "質問を入力してください…",
            "送信",
            "Hi! Ask me anything about Acme."
        ])
    );
    h.mock.set_script(Script::chars(
        "Porthole は回答を少しずつストリーミングで表示するので、訪問者は書かれている途中から読み始められます。",
        4,
        120,
    ));
    ask(&ja, "ストリーミングの仕組みは？").await;
    mid_answer(&ja, 30).await;
    screenshot(&ja, &screenshot_dir().join("panel-ja.png"))
        .await
        .expect("screenshot");

    // A language nobody ships: the widget's fallback, English.
    let xx = open_in(
        &h,
        &h.url(&format!("{}&lang=xx,yy", panel_path())),
        "xx",
        400,
        640,
    )
    .await;
    ready(&xx).await;
    let lang = eval(&xx, "[document.documentElement.lang, document.documentElement.dir, document.querySelector('textarea').placeholder]")
        .await
        .expect("lang");
    assert_eq!(
        lang,
        serde_json::json!(["en", "ltr", "Type your question…"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_hebrew_the_launcher_sits_on_the_left_with_hebrew_labels() {
    let h = Harness::start(Script::words("שלום! במה אפשר לעזור?", 20), |_| {})
        .await
        .expect("harness");
    let script = format!(
        "<script src=\"{}/widget.js\" data-widget-id=\"{WIDGET}\" data-key=\"{KEY}\" data-position=\"left\" async></script>",
        h.base
    );
    let body = format!(
        "<!doctype html><html lang=\"he\" dir=\"rtl\"><head><meta charset=\"utf-8\"><title>חנות</title></head>\
         <body style=\"font-family:system-ui\"><h1>חנות Acme</h1><p>מוצרים ושירותים.</p>{script}</body></html>"
    );
    let addr = serve_pages(HashMap::from([("/".to_owned(), (body, vec![]))]))
        .await
        .expect("host");
    let host = format!("http://localhost:{}/", addr.port());
    let page = open_in(&h, &host, "he-IL,he;q=0.9", 1024, 720).await;
    // The panel preloads at idle and says hello with its labels.
    let label = wait_for(
        &page,
        "(() => { const b = document.querySelector('porthole-widget')?.shadowRoot?.querySelector('button'); \
         return b && b.getAttribute('aria-label') === 'פתיחת הצ׳אט' ? b.getBoundingClientRect().left : null; })()",
        T,
    )
    .await
    .expect("a Hebrew launcher label");
    assert!(
        label.as_f64().unwrap_or(999.0) < 40.0,
        "launcher at {label}"
    );
    eval(&page, "Porthole('open')").await.expect("open");
    let state = wait_for(
        &page,
        "(() => { const r = document.querySelector('porthole-widget').shadowRoot; \
         const d = r.querySelector('div.shown'); if (!d) return null; \
         return [r.querySelector('button').getAttribute('aria-label'), r.querySelector('iframe').title, \
                 d.getBoundingClientRect().left]; })()",
        T,
    )
    .await
    .expect("open panel");
    assert_eq!(state[0], "סגירת הצ׳אט", "{state}");
    assert_eq!(state[1], "צ׳אט", "{state}");
    assert!(state[2].as_f64().unwrap_or(999.0) < 40.0, "{state}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    screenshot(&page, &screenshot_dir().join("launcher-he-left.png"))
        .await
        .expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_wasm_is_on_its_way_the_visitor_sees_a_skeleton_in_their_language() {
    let h = Harness::start(Script::words("Hi.", 5), |_| {})
        .await
        .expect("harness");
    let page = h.browser.new_page("about:blank").await.expect("tab");
    page.execute(SetDeviceMetricsOverrideParams::new(400, 640, 1.0, false))
        .await
        .expect("viewport");
    // The wasm never arrives (its request is held and never let go): what
    // the page shows alone is the skeleton.
    page.execute(
        EnableParams::builder()
            .pattern(RequestPattern::builder().url_pattern("*.wasm").build())
            .build(),
    )
    .await
    .expect("hold the wasm");
    page.goto(h.url(&format!("{}&lang=fr", panel_path())))
        .await
        .expect("navigate");
    let skeleton = wait_for(
        &page,
        "(() => { const s = document.getElementById('ph-skeleton'); if (!s) return null; \
         const r = s.getBoundingClientRect(); \
         return [r.width, r.height, s.querySelector('header').textContent, s.querySelector('[role=status]').textContent, \
                 s.querySelector('footer span').textContent]; })()",
        T,
    )
    .await
    .expect("skeleton");
    assert_eq!(skeleton[0], 400, "{skeleton}");
    assert_eq!(skeleton[1], 640, "{skeleton}");
    assert_eq!(skeleton[2], "Acme Support");
    assert_eq!(skeleton[3], "Chargement de la discussion…");
    assert_eq!(skeleton[4], "Posez votre question…");
    screenshot(&page, &screenshot_dir().join("skeleton.png"))
        .await
        .expect("screenshot");

    // With the wasm, the live panel replaces it.
    let page = h.open(&panel_path(), 400, 640, false).await.expect("page");
    ready(&page).await;
    let gone = wait_for(&page, "document.getElementById('ph-skeleton') === null", T)
        .await
        .expect("skeleton removed");
    assert_eq!(gone, true);
}
