//! The console's accounts against the real server: signing in, the session
//! cookie, CSRF, roles, the audit log, the first-run setup, and passwords
//! kept out of responses and logs. Every refusal is checked to change
//! nothing.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    KEY, TestApp, admin_key, api_error, open_store, spawn_app, temp_dir, test_settings,
    write_config,
};

const PASSWORD: &str = "correct horse battery staple";

/// A server whose database the CLI reaches; returns the app, its config
/// and an admin key.
async fn console_app() -> (TestApp, std::path::PathBuf, String) {
    let mut settings = test_settings(None);
    let dir = temp_dir("console");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = crate::helpers::postgres_store(&dir);
    let config = write_config(&dir, "");
    let app = spawn_app(settings, None, false).await;
    let key = admin_key(&config);
    (app, config, key)
}

/// `porthole user <args>` with the password in the environment.
fn user_cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_porthole"))
        .arg("--config")
        .arg(config)
        .arg("user")
        .args(args)
        .env("PORTHOLE_USER_PASSWORD", PASSWORD)
        .output()
        .expect("the CLI runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn create_user(config: &std::path::Path, email: &str, role: &str) -> String {
    let (ok, out, err) = user_cli(config, &["create", "--email", email, "--role", role]);
    assert!(ok, "user create failed: {err}");
    out.trim().to_owned()
}

/// A browser's console session: its cookie and CSRF token.
#[derive(Debug, Clone, Default)]
struct Browser {
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/console/session"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sent")
}

/// The cookie pair (`name=value`) a response sets.
fn cookie_of(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    set.split(';').next().expect("a pair").to_owned()
}

async fn signed_in(app: &TestApp, email: &str) -> Browser {
    let r = sign_in(app, email, PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = cookie_of(&r);
    let body: Value = r.json().await.expect("JSON");
    Browser {
        cookie,
        csrf: body["csrf"].as_str().expect("csrf").to_owned(),
    }
}

/// A request as the console makes it: the cookie, and the CSRF token when
/// `csrf` says so.
async fn call(
    app: &TestApp,
    b: &Browser,
    method: &str,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.client.request(method, app.url(path));
    if !b.cookie.is_empty() {
        req = req.header("cookie", &b.cookie);
    }
    if csrf {
        req = req.header("x-csrf-token", &b.csrf);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("sent")
}

async fn title(app: &TestApp, key: &str) -> String {
    let r = app
        .client
        .get(app.url("/api/v1/admin/widgets/test"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent");
    let def: Value = r.json().await.expect("JSON");
    def["title"].as_str().expect("title").to_owned()
}

#[tokio::test]
async fn a_user_signs_in_with_a_strict_cookie_works_and_signs_out() {
    let (app, config, _) = console_app().await;
    create_user(&config, "Ada@Example.com", "editor");

    let r = sign_in(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = cookie_of(&r);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "editor");
    let b = Browser {
        cookie,
        csrf: body["csrf"].as_str().expect("csrf").to_owned(),
    };

    // Who am I, and the admin API through the cookie.
    let me: Value = call(&app, &b, "GET", "/api/v1/console/session", None, false)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(me["csrf"], b.csrf.as_str());
    let r = call(&app, &b, "GET", "/api/v1/admin/widgets", None, false).await;
    assert_eq!(r.status(), 200);
    let r = call(
        &app,
        &b,
        "PATCH",
        "/api/v1/admin/widgets/test",
        Some(json!({"title": "Renamed"})),
        true,
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    // Signing out ends the session and clears the cookie.
    let r = call(&app, &b, "DELETE", "/api/v1/console/session", None, true).await;
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    let r = call(&app, &b, "GET", "/api/v1/admin/widgets", None, false).await;
    assert_eq!(api_error(r).await, (401, "unauthorized".into()));
}

#[tokio::test]
async fn no_forged_or_expired_cookie_and_no_csrf_token_gets_in_or_changes_anything() {
    let (app, config, key) = console_app().await;
    let id = create_user(&config, "owner@example.com", "owner");
    let good = signed_in(&app, "owner@example.com").await;
    let before = title(&app, &key).await;
    let rename = || Some(json!({"title": "Hijacked"}));

    // No cookie, a forged one, and one whose session has expired.
    let store = open_store(&config.parent().expect("dir").join("porthole.db")).await;
    let expired_token = "expiredtoken0123456789abcdef";
    store
        .create_session(
            &porthole::tenants::session::hash_key(expired_token),
            &id,
            "csrf-of-expired",
            1,
        )
        .await
        .expect("session row");
    for cookie in [
        String::new(),
        "porthole_console=forged".to_owned(),
        format!(
            "porthole_console={}x",
            &good.cookie["porthole_console=".len()..]
        ),
        format!("porthole_console={expired_token}"),
    ] {
        let b = Browser {
            cookie,
            csrf: "csrf-of-expired".into(),
        };
        for (method, path) in [
            ("GET", "/api/v1/admin/widgets"),
            ("PATCH", "/api/v1/admin/widgets/test"),
            ("GET", "/api/v1/console/users"),
            ("GET", "/api/v1/console/audit"),
            ("POST", "/api/v1/console/session/everywhere"),
            ("GET", "/api/v1/console/session"),
        ] {
            let r = call(&app, &b, method, path, rename(), true).await;
            assert_eq!(
                api_error(r).await,
                (401, "unauthorized".into()),
                "{method} {path} {b:?}"
            );
        }
    }

    // A genuine cookie without the CSRF token, or with another session's.
    let other = signed_in(&app, "owner@example.com").await;
    for csrf in [String::new(), other.csrf.clone(), format!("{}0", good.csrf)] {
        let b = Browser {
            cookie: good.cookie.clone(),
            csrf,
        };
        let send = !b.csrf.is_empty();
        for (method, path) in [
            ("PATCH", "/api/v1/admin/widgets/test"),
            ("POST", "/api/v1/admin/widgets/test/rotate-key"),
            ("DELETE", "/api/v1/admin/widgets/test"),
            ("POST", "/api/v1/console/users"),
            ("DELETE", "/api/v1/console/session"),
        ] {
            let body = if path.ends_with("users") {
                Some(json!({"email": "mallory@example.com", "password": PASSWORD, "role": "owner"}))
            } else {
                rename()
            };
            let r = call(&app, &b, method, path, body, send).await;
            assert_eq!(
                api_error(r).await,
                (403, "forbidden".into()),
                "{method} {path}"
            );
        }
    }
    // Nothing changed: the title, the key, the widget, the users, the session.
    assert_eq!(title(&app, &key).await, before);
    let page = app.get(&format!("/widget/test?key={KEY}")).await;
    assert_eq!(page.status(), 200);
    let users: Value = call(&app, &good, "GET", "/api/v1/console/users", None, false)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
}

#[tokio::test]
async fn each_role_does_only_what_it_may() {
    let (app, config, key) = console_app().await;
    create_user(&config, "owner@example.com", "owner");
    create_user(&config, "editor@example.com", "editor");
    create_user(&config, "viewer@example.com", "viewer");
    let owner = signed_in(&app, "owner@example.com").await;
    let editor = signed_in(&app, "editor@example.com").await;
    let viewer = signed_in(&app, "viewer@example.com").await;

    // The identity verification secret is for owners (and admin keys).
    let r = app
        .client
        .patch(app.url("/api/v1/admin/widgets/test"))
        .bearer_auth(&key)
        .json(&json!({"verification_secret": "vouch-for-anyone"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    for (b, shown) in [(&viewer, false), (&editor, false), (&owner, true)] {
        let one: Value = call(&app, b, "GET", "/api/v1/admin/widgets/test", None, false)
            .await
            .json()
            .await
            .expect("JSON");
        let all: Value = call(&app, b, "GET", "/api/v1/admin/widgets", None, false)
            .await
            .json()
            .await
            .expect("JSON");
        let listed = all
            .as_array()
            .and_then(|a| a.iter().find(|w| w["id"] == "test"))
            .expect("listed");
        for def in [&one, listed] {
            assert_eq!(
                def["verification_secret"] == "vouch-for-anyone",
                shown,
                "{def}"
            );
        }
    }

    // Viewers read, and change nothing.
    for (method, path) in [
        ("GET", "/api/v1/admin/widgets"),
        ("GET", "/api/v1/admin/widgets/test"),
        ("GET", "/api/v1/admin/widgets/test/conversations"),
        ("GET", "/api/v1/admin/widgets/test/usage"),
        ("GET", "/api/v1/admin/widgets/test/webhooks"),
        ("GET", "/api/v1/admin/analytics"),
        ("GET", "/api/v1/admin/conversations"),
        ("GET", "/api/v1/admin/questions-to-fix"),
    ] {
        let r = call(&app, &viewer, method, path, None, false).await;
        assert_eq!(r.status(), 200, "{method} {path}");
    }
    for (method, path, body) in [
        (
            "PATCH",
            "/api/v1/admin/widgets/test",
            json!({"title": "By viewer"}),
        ),
        (
            "POST",
            "/api/v1/admin/widgets",
            json!({"id": "v", "title": "V"}),
        ),
        ("DELETE", "/api/v1/admin/widgets/test", json!({})),
    ] {
        let r = call(&app, &viewer, method, path, Some(body), true).await;
        assert_eq!(
            api_error(r).await,
            (403, "forbidden".into()),
            "{method} {path}"
        );
    }
    assert_eq!(title(&app, &key).await, "Test");

    // Editors change widgets, but not keys or users.
    let r = call(
        &app,
        &editor,
        "PATCH",
        "/api/v1/admin/widgets/test",
        Some(json!({"title": "By editor"})),
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(title(&app, &key).await, "By editor");
    for (method, path, body) in [
        ("POST", "/api/v1/admin/widgets/test/rotate-key", None),
        // A webhook sends visitors' words elsewhere: owners only.
        (
            "POST",
            "/api/v1/admin/widgets/test/webhooks",
            Some(json!({"url": "https://hooks.example.com/x"})),
        ),
        ("GET", "/api/v1/console/users", None),
        ("GET", "/api/v1/console/audit", None),
        (
            "POST",
            "/api/v1/console/users",
            Some(json!({"email": "x@example.com", "password": PASSWORD, "role": "owner"})),
        ),
    ] {
        let r = call(&app, &editor, method, path, body, true).await;
        assert_eq!(
            api_error(r).await,
            (403, "forbidden".into()),
            "{method} {path}"
        );
    }
    let page = app.get(&format!("/widget/test?key={KEY}")).await;
    assert_eq!(page.status(), 200, "the key was not rotated");
    let hooks: Value = call(
        &app,
        &owner,
        "GET",
        "/api/v1/admin/widgets/test/webhooks",
        None,
        false,
    )
    .await
    .json()
    .await
    .expect("JSON");
    assert_eq!(hooks, json!([]), "the editor made no webhook");
    let r = call(
        &app,
        &owner,
        "POST",
        "/api/v1/admin/widgets/test/webhooks",
        Some(json!({"url": "https://hooks.example.com/x"})),
        true,
    )
    .await;
    assert_eq!(r.status(), 201, "owners make webhooks");

    // Owners manage users; the last owner cannot be removed or demoted.
    let r = call(
        &app,
        &owner,
        "POST",
        "/api/v1/console/users",
        Some(json!({"email": "new@example.com", "password": PASSWORD, "role": "viewer"})),
        true,
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("JSON");
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());
    let users: Vec<Value> = call(&app, &owner, "GET", "/api/v1/console/users", None, false)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(users.len(), 4);
    assert!(users.iter().all(|u| u.get("password_hash").is_none()));
    let owner_id = users
        .iter()
        .find(|u| u["email"] == "owner@example.com")
        .and_then(|u| u["id"].as_str())
        .expect("owner id");
    let r = call(
        &app,
        &owner,
        "PATCH",
        &format!("/api/v1/console/users/{owner_id}"),
        Some(json!({"role": "viewer"})),
        true,
    )
    .await;
    assert_eq!(api_error(r).await, (409, "conflict".into()));
    let r = call(
        &app,
        &owner,
        "DELETE",
        &format!("/api/v1/console/users/{owner_id}"),
        None,
        true,
    )
    .await;
    assert_eq!(api_error(r).await, (409, "conflict".into()));
    let r = call(
        &app,
        &owner,
        "POST",
        "/api/v1/admin/widgets/test/rotate-key",
        None,
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = app.get(&format!("/widget/test?key={KEY}")).await;
    assert_ne!(page.status(), 200, "the old key stops working");

    // A demoted user's next request has the new role.
    let editor_id = users
        .iter()
        .find(|u| u["email"] == "editor@example.com")
        .and_then(|u| u["id"].as_str())
        .expect("editor id");
    let r = call(
        &app,
        &owner,
        "PATCH",
        &format!("/api/v1/console/users/{editor_id}"),
        Some(json!({"role": "viewer"})),
        true,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = call(
        &app,
        &editor,
        "PATCH",
        "/api/v1/admin/widgets/test",
        Some(json!({"title": "Again"})),
        true,
    )
    .await;
    assert_eq!(api_error(r).await, (403, "forbidden".into()));
}

#[tokio::test]
async fn sign_in_is_limited_and_does_not_say_which_emails_exist() {
    let (app, config, _) = console_app().await;
    create_user(&config, "ada@example.com", "viewer");
    let wrong_password = sign_in(&app, "ada@example.com", "not the password").await;
    let wrong_email = sign_in(&app, "nobody@example.com", PASSWORD).await;
    let (a, b) = (
        wrong_password.json::<Value>().await.expect("JSON"),
        wrong_email.json::<Value>().await.expect("JSON"),
    );
    assert_eq!(
        a, b,
        "the same answer for a wrong email and a wrong password"
    );
    assert_eq!(a["code"], "unauthorized");

    // Ten attempts a minute per email: the rest wait, even the right password.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            sign_in(&app, "ada@example.com", "guess")
                .await
                .status()
                .as_u16(),
        );
    }
    let r = sign_in(&app, "ada@example.com", PASSWORD).await;
    assert!(statuses.contains(&401));
    assert_eq!(r.status(), 429, "{statuses:?}");
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(api_error(r).await, (429, "rate_limited".into()));
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_user_only() {
    let (app, config, _) = console_app().await;
    create_user(&config, "ada@example.com", "viewer");
    create_user(&config, "bob@example.com", "viewer");
    let laptop = signed_in(&app, "ada@example.com").await;
    let phone = signed_in(&app, "ada@example.com").await;
    let bob = signed_in(&app, "bob@example.com").await;
    let r = call(
        &app,
        &phone,
        "POST",
        "/api/v1/console/session/everywhere",
        None,
        true,
    )
    .await;
    assert_eq!(r.status(), 204);
    for b in [&laptop, &phone] {
        let r = call(&app, b, "GET", "/api/v1/admin/widgets", None, false).await;
        assert_eq!(r.status(), 401);
    }
    let r = call(&app, &bob, "GET", "/api/v1/admin/widgets", None, false).await;
    assert_eq!(r.status(), 200);
    // A new password also ends the sessions.
    let (ok, _, err) = user_cli(&config, &["set-password", "--email", "bob@example.com"]);
    assert!(ok, "{err}");
    let r = call(&app, &bob, "GET", "/api/v1/admin/widgets", None, false).await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn every_change_is_audited_with_who_made_it_and_only_owners_read_the_log() {
    let (app, config, key) = console_app().await;
    create_user(&config, "owner@example.com", "owner");
    let owner = signed_in(&app, "owner@example.com").await;
    let r = call(
        &app,
        &owner,
        "PATCH",
        "/api/v1/admin/widgets/test",
        Some(json!({"title": "By owner"})),
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .patch(app.url("/api/v1/admin/widgets/test"))
        .bearer_auth(&key)
        .json(&json!({"title": "By key"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    // A refused change is logged with its status; reads are not logged.
    let r = call(
        &app,
        &owner,
        "PATCH",
        "/api/v1/admin/widgets/test",
        Some(json!({"temperature": 9.0})),
        true,
    )
    .await;
    let refused = r.status().as_u16();
    assert!(refused >= 400);
    call(&app, &owner, "GET", "/api/v1/admin/widgets", None, false).await;

    let log: Value = call(
        &app,
        &owner,
        "GET",
        "/api/v1/console/audit?limit=3",
        None,
        false,
    )
    .await
    .json()
    .await
    .expect("JSON");
    let entries = log["entries"].as_array().expect("entries");
    let seen: Vec<(String, String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_owned(),
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["target"].as_str().unwrap_or_default().to_owned(),
                e["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let prefix = &key[..10];
    assert_eq!(
        seen,
        vec![
            (
                "user:owner@example.com".into(),
                "PATCH".into(),
                "/api/v1/admin/widgets/test".into(),
                u64::from(refused)
            ),
            (
                format!("key:{prefix}"),
                "PATCH".into(),
                "/api/v1/admin/widgets/test".into(),
                200
            ),
            (
                "user:owner@example.com".into(),
                "PATCH".into(),
                "/api/v1/admin/widgets/test".into(),
                200
            ),
        ]
    );
    assert!(entries.iter().all(|e| e["at"].as_u64().unwrap_or(0) > 0));
    // The next page holds the CLI's creation of the owner.
    let next = log["next"].as_i64().expect("a next page");
    let older: Value = call(
        &app,
        &owner,
        "GET",
        &format!("/api/v1/console/audit?before={next}"),
        None,
        false,
    )
    .await
    .json()
    .await
    .expect("JSON");
    assert!(
        older["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["actor"] == "cli" && e["action"] == "POST"),
        "{older}"
    );
}

#[tokio::test]
async fn the_first_owner_is_set_up_only_from_this_machine_and_only_once() {
    let (app, _, _) = console_app().await;
    let state: Value = app
        .get("/api/v1/console/setup")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(state, json!({"needed": true, "allowed": true}));

    // Through a proxy (even one on this machine) it is refused.
    let r = app
        .client
        .post(app.url("/api/v1/console/setup"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await, (403, "forbidden".into()));
    // A weak password is refused with the field named.
    let r = app
        .client
        .post(app.url("/api/v1/console/setup"))
        .json(&json!({"email": "ada@example.com", "password": "short"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await, (422, "invalid_field".into()));

    let r = app
        .client
        .post(app.url("/api/v1/console/setup"))
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 201);
    let b = Browser {
        cookie: cookie_of(&r),
        csrf: r.json::<Value>().await.expect("JSON")["csrf"]
            .as_str()
            .expect("csrf")
            .to_owned(),
    };
    let users: Value = call(&app, &b, "GET", "/api/v1/console/users", None, false)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(users[0]["role"], "owner");

    let r = app
        .client
        .post(app.url("/api/v1/console/setup"))
        .json(&json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await, (403, "forbidden".into()));
    let state: Value = app
        .get("/api/v1/console/setup")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(state, json!({"needed": false, "allowed": false}));
}

#[tokio::test]
async fn passwords_never_reach_a_response_or_the_log() {
    let dir = temp_dir("console-logs");
    let config = write_config(&dir, "[log]\nfilter = \"debug\"\n");
    let (ok, _, err) = user_cli(
        &config,
        &["create", "--email", "ada@example.com", "--role", "owner"],
    );
    assert!(ok, "{err}");
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_porthole"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(log)
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
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();

    let mut bodies = Vec::new();
    for password in ["wrong password one", PASSWORD] {
        let r = post(
            "/api/v1/console/session",
            json!({"email": "ada@example.com", "password": password}),
        )
        .await
        .expect("sent");
        bodies.push(r.text().await.expect("body"));
    }
    let session: Value = serde_json::from_str(&bodies[1]).expect("signed in");
    let r = post(
        "/api/v1/console/session",
        json!({"email": "ada@example.com", "password": PASSWORD}),
    )
    .await
    .expect("sent");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let secret_new = "the new user's secret 123";
    let r = client
        .post(format!("{base}/api/v1/console/users"))
        .header("cookie", &cookie)
        .header("x-csrf-token", session["csrf"].as_str().expect("csrf"))
        .json(&json!({"email": "bob@example.com", "password": secret_new, "role": "viewer"}))
        .send()
        .await
        .expect("sent");
    bodies.push(r.text().await.expect("body"));
    let r = client
        .get(format!("{base}/api/v1/console/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("sent");
    bodies.push(r.text().await.expect("body"));
    child.kill().await.expect("stopped");

    let logged = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        logged.contains("console sign-in"),
        "the log is captured: {logged}"
    );
    for secret in [PASSWORD, "wrong password one", secret_new, "argon2"] {
        assert!(!logged.contains(secret), "{secret:?} is in the log");
        for body in &bodies {
            assert!(
                !body.contains(secret),
                "{secret:?} is in a response: {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_preview_shows_a_draft_only_to_a_signed_in_user_and_saves_nothing() {
    let (app, config, key) = console_app().await;
    create_user(&config, "viewer@example.com", "viewer");
    let viewer = signed_in(&app, "viewer@example.com").await;
    let draft = serde_json::to_string(&json!({"title": "Draft title"})).expect("json");
    let path = format!(
        "/console/preview/test?draft={}",
        url::form_urlencoded::byte_serialize(draft.as_bytes()).collect::<String>()
    );
    let r = call(&app, &Browser::default(), "GET", &path, None, false).await;
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.expect("body").contains("Draft title"));

    let r = call(&app, &viewer, "GET", &path, None, false).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
    assert!(r.text().await.expect("body").contains("Draft title"));
    // An invalid draft is refused with the field named; nothing was saved.
    let bad = format!(
        "/console/preview/test?draft={}",
        url::form_urlencoded::byte_serialize(br#"{"temperature": 9}"#).collect::<String>()
    );
    let r = call(&app, &viewer, "GET", &bad, None, false).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.expect("body").contains("temperature"));
    assert_eq!(title(&app, &key).await, "Test");
}
