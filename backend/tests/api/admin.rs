//! The admin API and the CLI, against a real SQLite file.

use std::time::Duration;

use mock_upstream::{MockUpstream, Script};
use serde_json::{Value, json};

use crate::helpers::{
    EventReader, KEY, TestApp, admin_key, api_error, cli, page_session, session_in_page, spawn_app,
    start_binary, temp_dir, test_settings, write_config,
};

/// An in-process server whose database the CLI can reach through a config
/// file; returns the app, the config and an admin key.
pub(crate) async fn admin_app(mock: Option<MockUpstream>) -> (TestApp, std::path::PathBuf, String) {
    let mut settings = test_settings(mock.as_ref().map(|m| m.base_url()));
    let dir = temp_dir("admin");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = crate::helpers::postgres_store(&dir);
    let config = write_config(&dir, "");
    let app = spawn_app(settings, mock, false).await;
    let key = admin_key(&config);
    (app, config, key)
}

pub(crate) async fn admin(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app
        .client
        .request(method, app.url(&format!("/api/v1/admin{path}")))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("sent")
}

pub(crate) async fn ok_json(r: reqwest::Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let body = r.text().await.expect("body");
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The widget page's status and, when served, its config JSON.
async fn page(app: &TestApp, id: &str, key: &str) -> (u16, String) {
    let r = app.get(&format!("/widget/{id}?key={key}")).await;
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test]
async fn the_admin_api_refuses_a_missing_or_wrong_key() {
    let (app, _, key) = admin_app(None).await;
    let r = app
        .client
        .get(app.url("/api/v1/admin/widgets"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(api_error(r).await, (401, "unauthorized".into()));
    let almost = format!("{}x", &key[..key.len() - 1]);
    for wrong in [almost.as_str(), "ak_wrong", KEY, app.session.as_str(), ""] {
        for (method, path) in [
            ("GET", "/widgets"),
            ("POST", "/widgets"),
            ("GET", "/widgets/test"),
            ("PATCH", "/widgets/test"),
            ("DELETE", "/widgets/test"),
            ("POST", "/widgets/test/rotate-key"),
            ("GET", "/widgets/test/conversations"),
            ("GET", "/widgets/test/usage"),
        ] {
            let r = admin(&app, wrong, method, path, Some(json!({"title": "x"}))).await;
            assert_eq!(
                api_error(r).await,
                (401, "unauthorized".into()),
                "{method} {path}"
            );
        }
    }
    // Nothing was changed by the refused calls.
    let widgets = ok_json(admin(&app, &key, "GET", "/widgets", None).await, 200).await;
    assert_eq!(widgets.as_array().map(Vec::len), Some(1));
    assert_eq!(widgets[0]["title"], "Test");
}

#[tokio::test]
async fn the_admin_api_creates_reads_updates_rotates_and_deletes_widgets() {
    let (app, _, key) = admin_app(None).await;
    let created = ok_json(
        admin(
            &app,
            &key,
            "POST",
            "/widgets",
            Some(json!({"title": "Acme Docs", "allowed_sites": ["https://acme.example"], "greeting": "Hi!"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["widget"]["id"], "acme-docs");
    let pk = created["public_key"].as_str().expect("key").to_owned();
    assert!(pk.starts_with("pk_"));
    let embed = created["embed"].as_str().expect("embed");
    assert!(
        embed.contains(&format!("data-key=\"{pk}\""))
            && embed.contains("data-widget-id=\"acme-docs\""),
        "{embed}"
    );

    // Served at once, framed only by its site.
    let r = app.get(&format!("/widget/acme-docs?key={pk}")).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.ends_with("frame-ancestors https://acme.example"),
        "{csp}"
    );

    let one = ok_json(
        admin(&app, &key, "GET", "/widgets/acme-docs", None).await,
        200,
    )
    .await;
    assert_eq!(
        (one["greeting"].as_str(), one["source"].as_str()),
        (Some("Hi!"), Some("admin"))
    );
    assert!(
        one.get("public_key").is_none(),
        "keys are stored hashed: {one}"
    );
    let all = ok_json(admin(&app, &key, "GET", "/widgets", None).await, 200).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));

    // Update: only the given fields change; bad values name the field.
    let patched = ok_json(
        admin(
            &app,
            &key,
            "PATCH",
            "/widgets/acme-docs",
            Some(json!({"greeting": "Welcome back", "model": "llama3"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (patched["greeting"].as_str(), patched["title"].as_str()),
        (Some("Welcome back"), Some("Acme Docs"))
    );
    assert!(
        page(&app, "acme-docs", &pk)
            .await
            .1
            .contains("Welcome back")
    );
    for (body, field) in [
        (
            json!({"allowed_sites": ["https://x.com; script-src *"]}),
            "allowed_sites",
        ),
        (json!({"temperature": 9}), "temperature"),
        (json!({"theme": {"primary": "red"}}), "theme.primary"),
        (json!({"title": ""}), "title"),
    ] {
        let r = admin(&app, &key, "PATCH", "/widgets/acme-docs", Some(body)).await;
        let status = r.status().as_u16();
        let e: protocol::ApiError = r.json().await.expect("ApiError");
        assert_eq!((status, e.code.as_str()), (422, "invalid_field"));
        assert!(e.message.starts_with(field), "{}", e.message);
    }
    let r = admin(
        &app,
        &key,
        "PATCH",
        "/widgets/acme-docs",
        Some(json!({"colour": "red"})),
    )
    .await;
    assert_eq!(api_error(r).await, (400, "invalid_request".into()));
    let r = admin(
        &app,
        &key,
        "POST",
        "/widgets",
        Some(json!({"id": "acme-docs", "title": "Again"})),
    )
    .await;
    assert_eq!(api_error(r).await, (409, "conflict".into()));
    // Without an id, a taken title gets a numbered id.
    let again = ok_json(
        admin(
            &app,
            &key,
            "POST",
            "/widgets",
            Some(json!({"title": "Acme Docs"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(again["widget"]["id"], "acme-docs-2");
    let r = admin(&app, &key, "GET", "/widgets/nope", None).await;
    assert_eq!(api_error(r).await, (404, "not_found".into()));

    // Rotate: the old key stops working at once, the new one works.
    let rotated = ok_json(
        admin(&app, &key, "POST", "/widgets/acme-docs/rotate-key", None).await,
        200,
    )
    .await;
    let new_pk = rotated["public_key"].as_str().expect("key").to_owned();
    assert_ne!(new_pk, pk);
    assert_eq!(page(&app, "acme-docs", &pk).await.0, 404);
    let (status, body) = page(&app, "acme-docs", &new_pk).await;
    assert_eq!(status, 200);
    let session = session_in_page(&body).expect("session");
    let chat = |k: String, s: String| {
        let client = app.client.clone();
        let url = app.url("/api/v1/chat");
        async move {
            client
                .post(url)
                .header("x-api-key", k)
                .bearer_auth(s)
                .json(&json!({"message": "hello"}))
                .send()
                .await
                .expect("sent")
        }
    };
    assert_eq!(chat(new_pk.clone(), session.clone()).await.status(), 200);
    assert_eq!(
        api_error(chat(pk.clone(), session.clone()).await).await,
        (401, "invalid_api_key".into())
    );

    // Disabled: as if it did not exist; enabled again: back.
    admin(
        &app,
        &key,
        "PATCH",
        "/widgets/acme-docs",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(page(&app, "acme-docs", &new_pk).await.0, 404);
    assert_eq!(
        api_error(chat(new_pk.clone(), session.clone()).await).await,
        (401, "invalid_api_key".into())
    );
    admin(
        &app,
        &key,
        "PATCH",
        "/widgets/acme-docs",
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(page(&app, "acme-docs", &new_pk).await.0, 200);

    // Delete: gone, with its conversations.
    let r = admin(&app, &key, "DELETE", "/widgets/acme-docs", None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(page(&app, "acme-docs", &new_pk).await.0, 404);
    let r = admin(&app, &key, "GET", "/widgets/acme-docs/conversations", None).await;
    assert_eq!(api_error(r).await, (404, "not_found".into()));
    let r = admin(&app, &key, "DELETE", "/widgets/acme-docs", None).await;
    assert_eq!(api_error(r).await, (404, "not_found".into()));
}

#[tokio::test]
async fn conversations_messages_and_daily_usage_are_listed_page_by_page() {
    let mock = MockUpstream::start(Script::words("One two three.", 1))
        .await
        .expect("mock");
    let (app, _, key) = admin_app(Some(mock)).await;
    let mut conversations = Vec::new();
    for q in ["first", "second", "third"] {
        let events = EventReader::new(app.ask(q).await).collect().await;
        let protocol::StreamEvent::Meta(meta) = &events[0] else {
            panic!("{events:?}")
        };
        conversations.push(meta.conversation_id.clone());
    }
    let more = app
        .chat(json!({"message": "fourth", "conversation_id": conversations[2]}))
        .await;
    EventReader::new(more).collect().await;

    let page1 = ok_json(
        admin(
            &app,
            &key,
            "GET",
            "/widgets/test/conversations?limit=2",
            None,
        )
        .await,
        200,
    )
    .await;
    let items = page1["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], conversations[2].as_str(), "newest first");
    assert_eq!(items[0]["messages"], 4);
    let cursor = page1["next_cursor"].as_str().expect("a next page");
    let page2 = ok_json(
        admin(
            &app,
            &key,
            "GET",
            &format!("/widgets/test/conversations?limit=2&cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page2["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page2["items"][0]["id"], conversations[0].as_str());
    assert!(page2["next_cursor"].is_null());

    let path = format!(
        "/widgets/test/conversations/{}/messages?limit=3",
        conversations[2]
    );
    let m1 = ok_json(admin(&app, &key, "GET", &path, None).await, 200).await;
    let contents: Vec<&str> = m1["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, ["third", "One two three.", "fourth"]);
    assert_eq!(m1["items"][1]["status"], "complete");
    let after = m1["next_after"].as_u64().expect("more");
    let m2 = ok_json(
        admin(&app, &key, "GET", &format!("{path}&after={after}"), None).await,
        200,
    )
    .await;
    assert_eq!(m2["items"].as_array().map(Vec::len), Some(1));
    assert!(m2["next_after"].is_null());
    let r = admin(
        &app,
        &key,
        "GET",
        "/widgets/test/conversations/conv_nope/messages",
        None,
    )
    .await;
    assert_eq!(api_error(r).await, (404, "conversation_not_found".into()));

    // Usage: the mock reports 10 prompt tokens per answer.
    let usage = ok_json(
        admin(&app, &key, "GET", "/widgets/test/usage?days=7", None).await,
        200,
    )
    .await;
    let days = usage.as_array().expect("days");
    assert_eq!(days.len(), 1, "{usage}");
    assert_eq!(days[0]["answers"], 4);
    assert_eq!(days[0]["prompt_tokens"], 40);
    assert!(days[0]["completion_tokens"].as_u64().unwrap_or(0) > 0);
    let today = days[0]["day"].as_str().expect("day");
    assert_eq!(today.len(), 10, "{today}");
}

/// Polls until `check` holds (the server picks up CLI changes within a second).
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..40 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not pick up the change within 4 s");
}

#[tokio::test]
async fn the_cli_manages_widgets_of_a_running_server() {
    let dir = temp_dir("cli");
    let config = write_config(&dir, "");
    let (_server, base) = start_binary(&config).await;
    let client = reqwest::Client::new();
    let status = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            client
                .get(url)
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };

    let (ok, out, err) = cli(
        &config,
        &[
            "widget",
            "create",
            "--name",
            "Acme Docs",
            "--allow",
            "https://acme.example",
            "--starter",
            "Pricing?",
        ],
    );
    assert!(ok, "{err}");
    let snippet = out
        .lines()
        .find(|l| l.starts_with("<script"))
        .expect("an embed snippet")
        .to_owned();
    assert!(
        snippet.contains("/widget.js\" data-widget-id=\"acme-docs\" data-key=\"pk_"),
        "{snippet}"
    );
    let pk = snippet
        .split("data-key=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("key")
        .to_owned();
    eventually(async || status(format!("/widget/acme-docs?key={pk}")).await == 200).await;

    let (ok, out, _) = cli(&config, &["widget", "list"]);
    assert!(
        ok && out.contains("acme-docs\tAcme Docs\tenabled\tadmin\thttps://acme.example"),
        "{out}"
    );
    let (ok, out, _) = cli(&config, &["widget", "show", "acme-docs"]);
    let shown: Value = serde_json::from_str(&out).expect("JSON");
    assert!(ok);
    assert_eq!(shown["starters"], json!(["Pricing?"]));

    let (ok, _, err) = cli(
        &config,
        &[
            "widget",
            "update",
            "acme-docs",
            "--greeting",
            "Hello from the CLI",
            "--allow",
            "https://docs.acme.example",
        ],
    );
    assert!(ok, "{err}");
    eventually(async || {
        let page = client
            .get(format!("{base}/widget/acme-docs?key={pk}"))
            .send()
            .await
            .expect("sent");
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        let text = page.text().await.unwrap_or_default();
        text.contains("Hello from the CLI")
            && csp.ends_with("frame-ancestors https://docs.acme.example")
    })
    .await;
    let (ok, _, err) = cli(
        &config,
        &["widget", "update", "acme-docs", "--temperature", "7"],
    );
    assert!(!ok && err.contains("temperature"), "{err}");
    // A colour white text cannot be read on: kept as chosen, shown darker,
    // and the CLI says so.
    let (ok, out, err) = cli(
        &config,
        &["widget", "update", "acme-docs", "--color", "#ffcc00"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Note: theme.primary #ffcc00 has a contrast of 1.5:1")
            && out.contains("visitors see #876c00"),
        "{out}"
    );
    let (ok, out, err) = cli(
        &config,
        &["widget", "update", "acme-docs", "--color", "#1e3a8a"],
    );
    assert!(ok && !out.contains("Note:"), "{out}{err}");

    let (ok, out, _) = cli(&config, &["widget", "rotate-key", "acme-docs"]);
    assert!(ok, "{out}");
    let new_pk = out
        .lines()
        .find_map(|l| l.strip_prefix("New public key: "))
        .expect("new key")
        .to_owned();
    eventually(async || status(format!("/widget/acme-docs?key={pk}")).await == 404).await;
    assert_eq!(status(format!("/widget/acme-docs?key={new_pk}")).await, 200);
    // The new key's page gives a working session.
    let session = page_session(&client, &base, "acme-docs", &new_pk).await;
    let r = client
        .post(format!("{base}/api/v1/chat"))
        .header("x-api-key", &new_pk)
        .bearer_auth(session)
        .json(&json!({"message": "hello"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);

    let (ok, _, err) = cli(&config, &["widget", "delete", "acme-docs"]);
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, _, err) = cli(&config, &["widget", "delete", "acme-docs", "--yes"]);
    assert!(ok, "{err}");
    eventually(async || status(format!("/widget/acme-docs?key={new_pk}")).await == 404).await;
    let (ok, _, err) = cli(&config, &["widget", "show", "acme-docs"]);
    assert!(!ok && err.contains("no widget"), "{err}");
}

#[tokio::test]
async fn the_cli_sets_a_widgets_own_limits_and_the_running_server_enforces_them() {
    let dir = temp_dir("cli-limits");
    let config = write_config(&dir, "");
    let (_server, base) = start_binary(&config).await;
    let limits = |config: &std::path::Path| {
        let (ok, out, err) = cli(config, &["widget", "show", "acme"]);
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).expect("JSON")["limits"].clone()
    };

    let (ok, out, err) = cli(
        &config,
        &[
            "widget",
            "create",
            "--name",
            "Acme",
            "--requests-per-minute-per-session",
            "2",
            "--daily-tokens",
            "50000",
        ],
    );
    assert!(ok, "{err}");
    let pk = out
        .lines()
        .find_map(|l| l.strip_prefix("Public key: "))
        .expect("key")
        .to_owned();
    assert_eq!(
        limits(&config),
        json!({"requests_per_minute_per_key": null, "requests_per_minute_per_session": 2,
               "requests_per_minute_per_ip": null, "concurrent_streams_per_session": null,
               "history_tokens": null, "daily_tokens": 50000, "monthly_tokens": null})
    );

    // The running server holds the visitor to two chats a minute.
    let client = reqwest::Client::new();
    eventually(async || {
        client
            .get(format!("{base}/widget/acme?key={pk}"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let session = page_session(&client, &base, "acme", &pk).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let r = client
            .post(format!("{base}/api/v1/chat"))
            .header("x-api-key", &pk)
            .bearer_auth(&session)
            .json(&json!({"message": "hello"}))
            .send()
            .await
            .expect("sent");
        statuses.push(r.status().as_u16());
        retry_after = r.headers().get("retry-after").cloned().or(retry_after);
        let _ = r.bytes().await;
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert!(retry_after.is_some(), "no Retry-After on the 429");

    // An update changes only the limits it names; `default` hands one back
    // to the server's `[limits]`.
    let (ok, _, err) = cli(
        &config,
        &[
            "widget",
            "update",
            "acme",
            "--history-tokens",
            "500",
            "--daily-tokens",
            "default",
        ],
    );
    assert!(ok, "{err}");
    let now = limits(&config);
    assert_eq!(
        (
            &now["requests_per_minute_per_session"],
            &now["history_tokens"],
            &now["daily_tokens"]
        ),
        (&json!(2), &json!(500), &Value::Null)
    );
    // An update without limit flags leaves them alone.
    let (ok, _, err) = cli(&config, &["widget", "update", "acme", "--greeting", "Hi"]);
    assert!(ok, "{err}");
    assert_eq!(limits(&config), now);

    // Bad values are refused, naming the limit, and change nothing.
    for (flag, value, names) in [
        (
            "--concurrent-streams-per-session",
            "0",
            "concurrent_streams_per_session",
        ),
        ("--history-tokens", "5", "history_tokens"),
        ("--daily-tokens", "lots", "lots"),
        ("--requests-per-minute-per-ip", "-1", "-1"),
    ] {
        let (ok, _, err) = cli(&config, &["widget", "update", "acme", flag, value]);
        assert!(!ok && err.contains(names), "{flag} {value}: {err}");
    }
    assert_eq!(limits(&config), now);
}

/// The page a visitor's browser gets for a widget, asked in `languages`.
async fn page_in(app: &TestApp, path: &str, languages: &str) -> String {
    app.client
        .get(app.url(path))
        .header("accept-language", languages)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("page")
}

#[tokio::test]
async fn a_widget_speaks_the_visitors_language_with_the_owners_wording_and_a_readable_colour() {
    let (app, _, key) = admin_app(None).await;
    let created = ok_json(
        admin(
            &app,
            &key,
            "POST",
            "/widgets",
            Some(json!({
                "title": "Tienda",
                "greeting": "Hi!",
                "theme": {"primary": "#ffcc00"},
                "language": {"translations": {"es": {
                    "greeting": "¡Hola! ¿En qué puedo ayudarte?",
                    "strings": {"send": "Mandar"}
                }}}
            })),
        )
        .await,
        201,
    )
    .await;
    let pk = created["public_key"].as_str().expect("key").to_owned();
    let path = format!("/widget/tienda?key={pk}");

    // Accept-Language picks Spanish; the owner's greeting and Send win, the
    // rest is the catalogue's; the yellow is darkened for white text.
    let es = page_in(&app, &path, "es-MX,es;q=0.9,en;q=0.5").await;
    let config: Value = serde_json::from_str(
        es.split("id=\"porthole-config\">")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .expect("config in the page"),
    )
    .expect("config JSON");
    assert!(es.contains("<html lang=\"es-MX\" dir=\"ltr\""), "{es}");
    assert_eq!(config["lang"], "es-MX");
    assert_eq!(config["greeting"], "¡Hola! ¿En qué puedo ayudarte?");
    let strings = config["strings"].as_array().expect("strings");
    assert_eq!(strings.len(), protocol::i18n::KEYS.len());
    assert_eq!(strings[protocol::i18n::Text::Send as usize], "Mandar");
    assert_eq!(
        strings[protocol::i18n::Text::Placeholder as usize],
        "Escribe tu pregunta…"
    );
    assert_eq!(config["theme"]["primary"], "#876c00", "{config}");
    // Only the chosen language reaches the visitor.
    assert!(
        !es.contains("Type your question"),
        "English in a Spanish page"
    );
    // The page goes compressed to a browser that takes gzip, and varies by
    // the languages and encodings asked for.
    // (a client that leaves the body as it comes)
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let r = raw
        .get(app.url(&path))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "accept-language, accept-encoding");
    let zipped = r.bytes().await.expect("body");
    let mut html = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut html)
        .expect("gzip");
    assert!(
        html.contains("porthole-config") && zipped.len() * 2 < html.len(),
        "{}",
        zipped.len()
    );
    let plain = raw
        .get(app.url(&path))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .expect("sent");
    assert!(plain.headers().get("content-encoding").is_none());
    // The loader's navigator.languages win over the header.
    let ar = page_in(&app, &format!("{path}&lang=ar"), "es").await;
    assert!(ar.contains("<html lang=\"ar\" dir=\"rtl\""), "{ar}");
    assert!(ar.contains("اكتب سؤالك…"));
    assert!(
        ar.contains("\"greeting\":\"Hi!\""),
        "no Arabic greeting: the widget's own"
    );

    // A fixed locale; a locale nobody ships, or a key no catalogue has, is
    // refused with the field named and nothing changes.
    ok_json(
        admin(
            &app,
            &key,
            "PATCH",
            "/widgets/tienda",
            Some(json!({"language": {"locale": "de"}})),
        )
        .await,
        200,
    )
    .await;
    let de = page_in(&app, &path, "es").await;
    assert!(de.contains("<html lang=\"de\""), "{de}");
    for (bad, field) in [
        (json!({"locale": "tlh"}), "language.locale"),
        (
            json!({"translations": {"de": {"strings": {"sned": "x"}}}}),
            "language.translations",
        ),
    ] {
        let r = admin(
            &app,
            &key,
            "PATCH",
            "/widgets/tienda",
            Some(json!({ "language": bad })),
        )
        .await;
        assert_eq!(r.status(), 422);
        let body = r.text().await.expect("body");
        assert!(
            body.contains("invalid_field") && body.contains(field),
            "{body}"
        );
    }
    let still = page_in(&app, &path, "es").await;
    assert!(
        still.contains("<html lang=\"de\""),
        "a refused change changed the widget"
    );
}

#[tokio::test]
async fn an_avatar_is_an_https_image_the_page_may_load_and_nothing_else() {
    let (app, _config, key) = admin_app(None).await;
    for bad in [
        "http://cdn.example/logo.png",
        "https://cdn.example/logo.png\" onerror=\"alert(1)",
        "https://cdn.example/a.png; script-src *",
        "javascript:alert(1)",
    ] {
        let r = admin(
            &app,
            &key,
            "PATCH",
            "/widgets/test",
            Some(json!({"theme": {"avatar": bad}})),
        )
        .await;
        let body = r.text().await.expect("body");
        assert!(
            body.contains("invalid_field") && body.contains("theme.avatar"),
            "{bad}: {body}"
        );
    }
    let r = app.get(&format!("/widget/test?key={KEY}")).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("img-src 'self';"),
        "no avatar, no other image source: {csp}"
    );

    ok_json(
        admin(
            &app,
            &key,
            "PATCH",
            "/widgets/test",
            Some(json!({"theme": {"avatar": "https://cdn.acme.example/logo.png?v=2"}})),
        )
        .await,
        200,
    )
    .await;
    let r = app.get(&format!("/widget/test?key={KEY}")).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("img-src 'self' https://cdn.acme.example;"),
        "the avatar's origin only: {csp}"
    );
    let html = r.text().await.expect("page");
    assert!(
        html.contains("https://cdn.acme.example/logo.png?v=2"),
        "{html}"
    );
}
