//! Webhooks end to end: a receiver on loopback gets each event signed as
//! the Standard Webhooks spec says (checked here with the spec's own
//! algorithm, written out independently), a failed attempt is retried
//! with the same id, the delivery log shows it, and a manual redelivery
//! sends it again; private targets are refused by default. On SQLite and
//! (with PORTHOLE_TEST_STORE=postgres) PostgreSQL.

use std::time::Duration;

use mock_upstream::receiver::{Received, Receiver};
use mock_upstream::{MockUpstream, Script};
use serde_json::{Value, json};

use crate::admin::{admin, ok_json};
use crate::helpers::{KEY, admin_key, api_error, spawn_app, temp_dir, test_settings, write_config};

async fn wait_for(got: &Receiver, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
    match got.wait_for(Duration::from_secs(10), done).await {
        Ok(r) => r,
        Err(r) => panic!("{what}: {r:?}"),
    }
}

#[tokio::test]
async fn a_receiver_on_loopback_gets_signed_events_retried_logged_and_redelivered() {
    let mock = MockUpstream::start(Script::words("Orders ship in two days.", 0))
        .await
        .expect("mock");
    let mut settings = test_settings(Some(mock.base_url()));
    let dir = temp_dir("webhooks");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = crate::helpers::postgres_store(&dir);
    settings.webhooks.allow_private_addresses = true;
    settings.webhooks.retry_schedule_ms = vec![300, 300];
    let config = write_config(&dir, "");
    let app = spawn_app(settings, Some(mock), false).await;
    let key = admin_key(&config);

    let got = Receiver::start(1).await.expect("receiver");
    let url = got.url.clone();
    for (body, code) in [
        (
            json!({"url": url, "events": ["message.deleted"]}),
            "invalid_field",
        ),
        (json!({"url": "ftp://example.com/x"}), "invalid_field"),
        (json!({"events": ["message.completed"]}), "invalid_field"),
    ] {
        let r = admin(
            &app,
            &key,
            "POST",
            "/widgets/test/webhooks",
            Some(body.clone()),
        )
        .await;
        assert_eq!(api_error(r).await, (422, code.to_owned()), "{body}");
    }
    let made = ok_json(
        admin(
            &app,
            &key,
            "POST",
            "/widgets/test/webhooks",
            Some(json!({"url": url, "events": ["conversation.created", "message.completed", "feedback.created"]})),
        )
        .await,
        201,
    )
    .await;
    let secret = made["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{made}");
    let hook = made["webhook"]["id"].as_str().expect("id").to_owned();
    let listed = ok_json(
        admin(&app, &key, "GET", "/widgets/test/webhooks", None).await,
        200,
    )
    .await;
    assert_eq!(listed[0]["url"], url.as_str());
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once: {listed}"
    );

    // A visitor's question: the conversation and the answer are events.
    let r = app.ask("When do orders ship?").await;
    assert_eq!(r.status(), 200);
    let events = crate::helpers::EventReader::new(r).collect().await;
    let answer = crate::resume::message_id(&events);
    wait_for(&got, "both events delivered", |got| {
        got.iter().filter(|r| r.answered == 204).count() >= 2
    })
    .await;
    let received = got.received();
    for r in &received {
        assert!(r.signed_with(&secret), "signed as the spec says: {r:?}");
        assert_eq!(r.header("content-type"), "application/json");
        let ts: i64 = r.header("webhook-timestamp").parse().expect("seconds");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_secs() as i64;
        assert!((now - ts).abs() < 60, "{ts} vs {now}");
    }
    // The first attempt got a 500; it came again with the same id.
    let failed = &received[0];
    assert_eq!(failed.answered, 500);
    let again: Vec<&Received> = received
        .iter()
        .filter(|r| r.header("webhook-id") == failed.header("webhook-id"))
        .collect();
    assert_eq!(again.len(), 2, "{received:?}");
    assert_eq!(again[0].body, again[1].body);
    let bodies: Vec<Value> = received
        .iter()
        .filter(|r| r.answered == 204)
        .map(|r| serde_json::from_str(&r.body).expect("JSON"))
        .collect();
    let completed = bodies
        .iter()
        .find(|b| b["type"] == "message.completed")
        .expect("message.completed");
    assert_eq!(completed["data"]["message_id"], answer.as_str());
    assert_eq!(completed["data"]["content"], "Orders ship in two days.");
    assert_eq!(completed["data"]["widget_id"], "test");
    assert!(
        completed["timestamp"]
            .as_str()
            .expect("time")
            .ends_with('Z')
    );
    let created = bodies
        .iter()
        .find(|b| b["type"] == "conversation.created")
        .expect("conversation.created");
    assert_eq!(
        created["data"]["message"]["content"],
        "When do orders ship?"
    );
    assert_eq!(
        created["data"]["conversation_id"],
        completed["data"]["conversation_id"]
    );

    // A thumbs down is an event too.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/chat/{answer}/feedback")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .json(&json!({"rating": "down", "comment": "Which days?"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    let all = wait_for(&got, "feedback.created", |got| {
        got.iter().any(|r| r.body.contains("feedback.created"))
    })
    .await;
    let feedback: Value = serde_json::from_str(
        &all.iter()
            .find(|r| r.body.contains("feedback.created"))
            .expect("feedback")
            .body,
    )
    .expect("JSON");
    assert_eq!(feedback["data"]["rating"], "down");
    assert_eq!(feedback["data"]["comment"], "Which days?");

    // The log: every delivery, the retried one with two attempts.
    let path = format!("/widgets/test/webhooks/{hook}/deliveries");
    let log = ok_json(admin(&app, &key, "GET", &path, None).await, 200).await;
    let log = log.as_array().expect("deliveries").clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
    let retried = log
        .iter()
        .find(|d| d["id"] == failed.header("webhook-id"))
        .expect("the retried delivery");
    assert_eq!(retried["attempts"], 2);
    assert_eq!(retried["last_status"], 204);

    // Redelivery: the same id, sent again.
    let before = got.received().len();
    let id = retried["id"].as_str().expect("id");
    let r = admin(&app, &key, "POST", &format!("{path}/{id}/redeliver"), None).await;
    assert_eq!(r.status(), 202);
    wait_for(&got, "the redelivery", |got| got.len() > before).await;
    assert_eq!(
        got.received()[before].header("webhook-id"),
        id,
        "the same webhook-id"
    );
    let r = admin(
        &app,
        &key,
        "POST",
        &format!("{path}/msg_nope/redeliver"),
        None,
    )
    .await;
    assert_eq!(api_error(r).await.0, 404);

    // Disabled: nothing more is queued for it.
    ok_json(
        admin(
            &app,
            &key,
            "PATCH",
            &format!("/widgets/test/webhooks/{hook}"),
            Some(json!({"disabled": true})),
        )
        .await,
        200,
    )
    .await;
    let r = app.ask("And returns?").await;
    crate::helpers::EventReader::new(r).collect().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = ok_json(admin(&app, &key, "GET", &path, None).await, 200).await;
    assert_eq!(log.as_array().expect("deliveries").len(), 3);

    // Removed with its log.
    let r = admin(
        &app,
        &key,
        "DELETE",
        &format!("/widgets/test/webhooks/{hook}"),
        None,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = admin(&app, &key, "GET", &path, None).await;
    assert_eq!(api_error(r).await.0, 404);
}

#[tokio::test]
async fn private_and_loopback_targets_are_refused_by_default() {
    let mut settings = test_settings(None);
    let dir = temp_dir("webhooks-private");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = crate::helpers::postgres_store(&dir);
    let config = write_config(&dir, "");
    let app = spawn_app(settings, None, false).await;
    let key = admin_key(&config);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/",
        "http://10.0.0.8/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
    ] {
        let r = admin(
            &app,
            &key,
            "POST",
            "/widgets/test/webhooks",
            Some(json!({ "url": url })),
        )
        .await;
        assert_eq!(
            api_error(r).await,
            (422, "invalid_field".to_owned()),
            "{url}"
        );
    }
    let listed = ok_json(
        admin(&app, &key, "GET", "/widgets/test/webhooks", None).await,
        200,
    )
    .await;
    assert_eq!(listed, json!([]));
    let r = admin(&app, &key, "GET", "/widgets/nope/webhooks", None).await;
    assert_eq!(api_error(r).await.0, 404);
}
