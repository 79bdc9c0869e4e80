//! Visitors rate answers: thumbs up or down with a comment, changed or
//! taken back, seen in their history and by the site owner; refused
//! clearly for what cannot be rated, and rate limited per session.

use mock_upstream::Script;
use serde_json::{Value, json};

use crate::admin::{admin, admin_app, ok_json};
use crate::helpers::{EventReader, KEY, TestApp, api_error, page_session};
use crate::resume::message_id;

async fn rate(app: &TestApp, session: &str, id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/chat/{id}/feedback")))
        .header("x-api-key", KEY)
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_visitor_rates_an_answer_changes_their_mind_and_the_owner_reads_it() {
    let mock = mock_upstream::MockUpstream::start(Script::words("Check the orders page.", 0))
        .await
        .expect("mock");
    let (app, _config, key) = admin_app(Some(mock)).await;
    let events = EventReader::new(app.ask("Where is my order?").await)
        .collect()
        .await;
    let answer = message_id(&events);
    let (conversation, question) = match events.first() {
        Some(protocol::StreamEvent::Meta(m)) => {
            (m.conversation_id.clone(), m.user_message_id.clone())
        }
        other => panic!("no meta: {other:?}"),
    };

    // Thumbs down with a comment: saved, and the visitor's history shows it.
    let r = rate(
        &app,
        &app.session,
        &answer,
        json!({"rating": "down", "comment": "  It did not say where the page is.  "}),
    )
    .await;
    assert_eq!(r.status(), 204);
    let history = |app: &TestApp| {
        let (client, url, session) = (
            app.client.clone(),
            app.url(&format!("/api/v1/conversations/{conversation}")),
            app.session.clone(),
        );
        async move {
            let r = client
                .get(url)
                .header("x-api-key", KEY)
                .bearer_auth(session)
                .send()
                .await
                .expect("sent");
            ok_json(r, 200).await
        }
    };
    let h = history(&app).await;
    assert_eq!(h["messages"][1]["rating"], "down", "{h}");
    assert!(h["messages"][0].get("rating").is_none(), "{h}");

    // The owner reads the rating and the trimmed comment.
    let path = format!("/widgets/test/conversations/{conversation}/messages");
    let m = ok_json(admin(&app, &key, "GET", &path, None).await, 200).await;
    assert_eq!(m["items"][1]["rating"], "down", "{m}");
    assert_eq!(
        m["items"][1]["rating_comment"],
        "It did not say where the page is."
    );

    // Changed to up without a comment: the old comment goes.
    assert_eq!(
        rate(&app, &app.session, &answer, json!({"rating": "up"}))
            .await
            .status(),
        204
    );
    let m = ok_json(admin(&app, &key, "GET", &path, None).await, 200).await;
    assert_eq!(m["items"][1]["rating"], "up", "{m}");
    assert!(m["items"][1].get("rating_comment").is_none(), "{m}");

    // Taken back.
    assert_eq!(
        rate(&app, &app.session, &answer, json!({"rating": null}))
            .await
            .status(),
        204
    );
    let h = history(&app).await;
    assert!(h["messages"][1].get("rating").is_none(), "{h}");

    // What cannot be rated is refused clearly and changes nothing.
    let refused = |status: u16, code: &str| (status, code.to_owned());
    assert_eq!(
        api_error(rate(&app, &app.session, &question, json!({"rating": "up"})).await).await,
        refused(400, "invalid_request"),
        "the visitor's own message"
    );
    assert_eq!(
        api_error(rate(&app, &app.session, "msg_nope", json!({"rating": "up"})).await).await,
        refused(404, "not_found")
    );
    assert_eq!(
        api_error(rate(&app, &app.session, &answer, json!({"rating": "meh"})).await).await,
        refused(400, "invalid_request")
    );
    assert_eq!(
        api_error(
            rate(
                &app,
                &app.session,
                &answer,
                json!({"rating": "down", "comment": "x".repeat(1001)})
            )
            .await
        )
        .await,
        refused(422, "invalid_field")
    );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/chat/{answer}/feedback")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .body("rating=up")
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await, refused(415, "unsupported_media_type"));
    let r = app
        .client
        .post(app.url(&format!("/api/v1/chat/{answer}/feedback")))
        .header("x-api-key", KEY)
        .json(&json!({"rating": "up"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(api_error(r).await.0, 401, "no session");
    let h = history(&app).await;
    assert!(h["messages"][1].get("rating").is_none(), "{h}");

    // Another visitor cannot rate it, and a session sending too many
    // ratings is told to wait.
    let other = page_session(&app.client, &app.base, "test", KEY).await;
    for _ in 0..20 {
        let r = rate(&app, &other, &answer, json!({"rating": "down"})).await;
        assert_eq!(api_error(r).await, refused(404, "not_found"));
    }
    let r = rate(&app, &other, &answer, json!({"rating": "down"})).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(api_error(r).await, refused(429, "rate_limited"));
    // The first visitor's own bucket is untouched.
    assert_eq!(
        rate(&app, &app.session, &answer, json!({"rating": "up"}))
            .await
            .status(),
        204
    );
    let h = history(&app).await;
    assert_eq!(h["messages"][1]["rating"], "up", "{h}");
}
