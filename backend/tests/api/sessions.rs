//! Session tokens and identity verification, against a real SQLite file.

use std::time::Duration;

use porthole::Settings;
use porthole::config::WidgetSettings;
use porthole::tenants::session::{Session, SessionKeys, identity_hash, unix_now};
use protocol::StreamEvent;
use protocol::api::SessionGrant;
use serde_json::{Value, json};

use crate::helpers::{
    EventReader, KEY, TestApp, api_error, page_session, spawn_app, test_settings,
};

const SECRET: &str = "site-secret-0123456789";

fn with_widgets(tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = test_settings(None);
    settings.widgets[0].verification_secret = Some(SECRET.into());
    settings.widgets.push(WidgetSettings {
        id: "other".into(),
        public_key: "pk_other".into(),
        title: "Other".into(),
        ..Default::default()
    });
    settings.widgets.push(WidgetSettings {
        id: "off".into(),
        public_key: "pk_off".into(),
        title: "Off".into(),
        disabled: true,
        ..Default::default()
    });
    tweak(&mut settings);
    settings
}

async fn chat(app: &TestApp, key: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/chat"))
        .header("x-api-key", key)
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("sent")
}

async fn history(app: &TestApp, token: &str, conversation: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/conversations/{conversation}")))
        .header("x-api-key", KEY)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

async fn renew(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/session"))
        .header("x-api-key", KEY)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

async fn grant(app: &TestApp, token: &str, body: Value) -> SessionGrant {
    let r = renew(app, token, body).await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("a SessionGrant")
}

/// Asks a question; returns the conversation id once the answer is done.
async fn converse(app: &TestApp, token: &str, body: Value) -> String {
    let r = chat(app, KEY, Some(token), body).await;
    assert_eq!(r.status(), 200);
    let events = EventReader::new(r).collect().await;
    assert!(
        matches!(events.last(), Some(StreamEvent::Done(_))),
        "{events:?}"
    );
    match &events[0] {
        StreamEvent::Meta(m) => m.conversation_id.clone(),
        other => panic!("meta first, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_foreign_missing_and_expired_tokens_are_refused() {
    let app = spawn_app(with_widgets(|s| s.session.ttl_secs = 1), None, false).await;
    let hi = json!({"message": "hello"});
    let token = app.session.clone();
    let conversation = converse(&app, &token, hi.clone()).await;

    assert_eq!(
        api_error(chat(&app, KEY, None, hi.clone()).await).await,
        (401, "invalid_session".into())
    );
    // Signed with another secret, for this very widget and a long life.
    let forged = SessionKeys::new(b"a guess at the server's secret").mint(&Session {
        widget: "test".into(),
        visitor: "vis_x".into(),
        user: None,
        expires: unix_now() + 3_600,
    });
    // The real token with one character of its signature changed.
    let mut tampered = token.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    // A genuine token of another widget.
    let foreign = page_session(&app.client, &app.base, "other", "pk_other").await;
    for bad in [
        forged.as_str(),
        tampered.as_str(),
        foreign.as_str(),
        "v1.e30.AAAA",
        "junk",
    ] {
        assert_eq!(
            api_error(chat(&app, KEY, Some(bad), hi.clone()).await).await,
            (401, "invalid_session".into()),
            "{bad}"
        );
        assert_eq!(
            api_error(history(&app, bad, &conversation).await).await,
            (401, "invalid_session".into())
        );
        assert_eq!(
            api_error(renew(&app, bad, json!({})).await).await,
            (401, "invalid_session".into())
        );
    }
    // A key that names no widget, whatever the token.
    assert_eq!(
        api_error(chat(&app, "pk_nope", Some(&token), hi.clone()).await).await,
        (401, "invalid_api_key".into())
    );

    // Expired: refused, then renewed (within the grace) for the same visitor.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        api_error(chat(&app, KEY, Some(&token), hi.clone()).await).await,
        (401, "session_expired".into())
    );
    assert_eq!(
        api_error(history(&app, &token, &conversation).await).await,
        (401, "session_expired".into())
    );
    let renewed = grant(&app, &token, json!({})).await;
    assert!(renewed.expires_at > unix_now());
    assert_eq!(
        history(&app, &renewed.session, &conversation)
            .await
            .status(),
        200
    );
    converse(
        &app,
        &renewed.session,
        json!({"message": "again", "conversation_id": conversation}),
    )
    .await;
}

#[tokio::test]
async fn a_token_expired_past_the_renewal_grace_cannot_be_renewed() {
    let app = spawn_app(
        with_widgets(|s| {
            s.session.ttl_secs = 1;
            s.session.renew_grace_secs = 0;
        }),
        None,
        false,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(
        api_error(renew(&app, &app.session, json!({})).await).await,
        (401, "session_expired".into())
    );
}

#[tokio::test]
async fn a_visitor_reads_only_its_own_conversations_and_takes_them_back_after_a_reload() {
    let app = spawn_app(with_widgets(|_| {}), None, false).await;
    let first_visit = app.session.clone();
    let conversation = converse(&app, &first_visit, json!({"message": "hello"})).await;

    // Another visitor (a new page load): neither reads nor continues it.
    let stranger = page_session(&app.client, &app.base, "test", KEY).await;
    assert_eq!(
        api_error(history(&app, &stranger, &conversation).await).await,
        (404, "conversation_not_found".into())
    );
    let r = chat(
        &app,
        KEY,
        Some(&stranger),
        json!({"message": "let me in", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(api_error(r).await, (404, "conversation_not_found".into()));
    // A token of another widget does not hand its visitor over.
    let foreign = page_session(&app.client, &app.base, "other", "pk_other").await;
    let taken = grant(&app, &stranger, json!({"resume": foreign})).await;
    assert_eq!(
        history(&app, &taken.session, &conversation).await.status(),
        404
    );

    // The same browser after a reload: the widget sends its kept token.
    let reload = page_session(&app.client, &app.base, "test", KEY).await;
    let resumed = grant(&app, &reload, json!({"resume": first_visit})).await;
    let view: Value = history(&app, &resumed.session, &conversation)
        .await
        .json()
        .await
        .expect("history");
    assert_eq!(view["messages"][0]["content"], "hello");

    // `fresh` (the host page's reset, on logout): a new visitor, who reads
    // nothing of the one before, even when handed its old token.
    let fresh = grant(
        &app,
        &resumed.session,
        json!({"fresh": true, "resume": first_visit}),
    )
    .await;
    assert_eq!(
        history(&app, &fresh.session, &conversation).await.status(),
        404
    );
}

#[tokio::test]
async fn a_verified_user_gets_their_history_on_any_device_and_a_wrong_hash_stays_anonymous() {
    let app = spawn_app(with_widgets(|_| {}), None, false).await;
    let alice = |hash: &str| json!({"identity": {"user_id": "alice", "user_hash": hash}});
    let good = identity_hash(SECRET, "alice");

    let laptop = grant(&app, &app.session, alice(&good)).await;
    assert_eq!(laptop.user_id.as_deref(), Some("alice"));
    let conversation = converse(&app, &laptop.session, json!({"message": "my order?"})).await;

    // Her phone: a new visitor, the same verified user.
    let phone = page_session(&app.client, &app.base, "test", KEY).await;
    let phone = grant(&app, &phone, alice(&good)).await;
    assert_eq!(
        history(&app, &phone.session, &conversation).await.status(),
        200
    );
    // Upper-case hex is the same hash.
    let upper = grant(&app, &phone.session, alice(&good.to_uppercase())).await;
    assert_eq!(upper.user_id.as_deref(), Some("alice"));

    // Someone claiming to be alice: wrong hash, bob's hash, no hash.
    let bob_hash = identity_hash(SECRET, "bob");
    let wrong = identity_hash("another-secret-0123456789", "alice");
    for hash in [wrong.as_str(), bob_hash.as_str(), "", "not hex"] {
        let page = page_session(&app.client, &app.base, "test", KEY).await;
        let g = grant(&app, &page, alice(hash)).await;
        assert_eq!(g.user_id, None, "{hash}");
        assert_eq!(
            api_error(history(&app, &g.session, &conversation).await).await,
            (404, "conversation_not_found".into())
        );
    }
    // The same browser as alice, when the site then sends a wrong hash (or
    // logs her out): anonymous, and her conversation is not shown.
    let downgraded = grant(&app, &laptop.session, alice(&wrong)).await;
    assert_eq!(downgraded.user_id, None);
    assert_eq!(
        history(&app, &downgraded.session, &conversation)
            .await
            .status(),
        404
    );
    // A widget without a verification secret never verifies anyone.
    let other = page_session(&app.client, &app.base, "other", "pk_other").await;
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .header("x-api-key", "pk_other")
        .bearer_auth(&other)
        .json(&alice(&good))
        .send()
        .await
        .expect("sent");
    let g: SessionGrant = r.json().await.expect("grant");
    assert_eq!(g.user_id, None);
}

#[tokio::test]
async fn unknown_disabled_and_wrong_key_widgets_answer_alike() {
    let app = spawn_app(with_widgets(|_| {}), None, false).await;
    let mut answers = Vec::new();
    for path in [
        "/widget/nope?key=pk_test",
        "/widget/test?key=pk_wrong",
        "/widget/test",
        "/widget/other?key=pk_test",
        "/widget/off?key=pk_off",
    ] {
        let r = app.get(path).await;
        let status = r.status().as_u16();
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        answers.push((status, csp, r.text().await.expect("body")));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
    assert_eq!(answers[0].0, 404);
    assert!(answers[0].1.contains("frame-ancestors 'none'"));
    // The API: a disabled widget's key is as unknown as a made-up one.
    let hi = json!({"message": "hi"});
    let off = chat(&app, "pk_off", Some(&app.session), hi.clone()).await;
    let made_up = chat(&app, "pk_made_up", Some(&app.session), hi).await;
    assert_eq!(api_error(off).await, api_error(made_up).await);
    // The page that works sends a fresh session each time, never cached.
    let r = app.get("/widget/test?key=pk_test").await;
    assert_eq!(r.headers()["cache-control"], "no-store");
}
