//! Webhooks end to end: a receiver on loopback gets each event signed as
//! the Standard Webhooks spec says (checked here with the spec's own
//! algorithm, written out independently), a failed attempt is retried
//! with the same id, the delivery log shows it, and a manual redelivery
//! sends it again; private targets are refused by default. On SQLite and
//! (with PORTHOLE_TEST_STORE=postgres) PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use mock_upstream::{MockUpstream, Script};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin::{admin, ok_json};
use crate::helpers::{KEY, admin_key, api_error, spawn_app, temp_dir, test_settings, write_config};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A receiver on loopback that answers 500 to its first `fail` requests,
/// then 204, and keeps what it got.
async fn receiver(fail: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/hooks/porthole",
        listener.local_addr().expect("addr")
    );
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body_start) = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..at]).into_owned(), at + 4);
                    }
                };
                let headers: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_start + length {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = String::from_utf8_lossy(&buf[body_start..]).into_owned();
                let answered = {
                    let mut seen = seen.lock().expect("lock");
                    let answered = if seen.len() < fail { 500 } else { 204 };
                    seen.push(Received {
                        headers,
                        body,
                        answered,
                    });
                    answered
                };
                let reply = format!(
                    "HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, got)
}

/// The spec's verification: the base64 HMAC-SHA256, keyed with the
/// secret's bytes, of `{id}.{timestamp}.{body}`, among the header's
/// space-separated `v1,` signatures.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(
        format!(
            "{}.{}.{}",
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.body
        )
        .as_bytes(),
    );
    let expected = BASE64.encode(mac.finalize().into_bytes());
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, what: &str, done: impl Fn(&[Received]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if done(&got.lock().expect("lock")) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            got.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
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

    let (url, got) = receiver(1).await;
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
    let received = got.lock().expect("lock").clone();
    for r in &received {
        assert!(verifies(&secret, r), "signed as the spec says: {r:?}");
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
    wait_for(&got, "feedback.created", |got| {
        got.iter().any(|r| r.body.contains("feedback.created"))
    })
    .await;
    let feedback: Value = serde_json::from_str(
        &got.lock()
            .unwrap()
            .iter()
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
    let before = got.lock().expect("lock").len();
    let id = retried["id"].as_str().expect("id");
    let r = admin(&app, &key, "POST", &format!("{path}/{id}/redeliver"), None).await;
    assert_eq!(r.status(), 202);
    wait_for(&got, "the redelivery", |got| got.len() > before).await;
    assert_eq!(
        got.lock().expect("lock")[before].header("webhook-id"),
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
