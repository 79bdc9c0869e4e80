//! Resumable answers on one node: a visitor whose connection drops comes
//! back with `Last-Event-ID` and gets exactly the rest, while the model is
//! called once; an answer nobody comes back to is cancelled after the
//! grace period; Stop cancels at once.

use std::time::Duration;

use mock_upstream::Script;
use protocol::{ErrorCode, StreamEvent};
use serde_json::Value;

use crate::helpers::{
    EventReader, KEY, TestApp, api_error, page_session, spawn_with_mock, text_of,
};

pub(crate) fn message_id(events: &[StreamEvent]) -> String {
    match events.first() {
        Some(StreamEvent::Meta(m)) => m.message_id.clone(),
        other => panic!("no meta first: {other:?}"),
    }
}

pub(crate) async fn resume(
    app: &TestApp,
    session: &str,
    id: &str,
    header: Option<u64>,
) -> reqwest::Response {
    let mut req = app
        .client
        .get(app.url(&format!("/api/v1/chat/{id}/stream")))
        .header("x-api-key", KEY)
        .bearer_auth(session);
    if let Some(last) = header {
        req = req.header("last-event-id", last.to_string());
    }
    req.send().await.expect("sent")
}

pub(crate) async fn stop(app: &TestApp, id: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/chat/{id}/stop")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .send()
        .await
        .expect("sent")
}

/// Reads events until `chunks` chunks have come; returns them.
pub(crate) async fn read_chunks(reader: &mut EventReader, chunks: usize) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Chunk(_)))
        .count()
        < chunks
    {
        events.push(reader.next().await.expect("the stream goes on"));
    }
    events
}

#[tokio::test]
async fn a_dropped_answer_resumes_after_its_last_event_with_one_model_call() {
    let script = Script::numbered(30, 15);
    let expected: String = script.tokens.concat();
    let app = spawn_with_mock(script, |_| {}).await;
    let mut reader = EventReader::new(app.ask("Tell me a story").await);
    let first = read_chunks(&mut reader, 5).await;
    let first_ids = reader.ids.clone();
    let id = message_id(&first);
    // The connection drops.
    drop(reader);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let r = resume(&app, &app.session, &id, first_ids.last().copied()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let mut rest = EventReader::new(r);
    let later = rest.rest().await;
    assert!(
        matches!(later.last(), Some(StreamEvent::Done(_))),
        "{later:?}"
    );
    // Stitched, the text is exactly what the mock sent, no event twice.
    let mut all = first.clone();
    all.extend(later);
    assert_eq!(text_of(&all), expected);
    let ids: Vec<u64> = first_ids.iter().chain(&rest.ids).copied().collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids go up by one with no gap or repeat: {ids:?}"
    );
    let stats = app.mock().stats();
    assert_eq!((stats.opened, stats.completed), (1, 1), "{stats:?}");
}

#[tokio::test]
async fn a_finished_answer_replays_to_its_end_from_the_query_parameter_too() {
    let app = spawn_with_mock(Script::words("One two three.", 1), |_| {}).await;
    let events = EventReader::new(app.ask("Count").await).collect().await;
    let id = message_id(&events);
    // Everything, from the start.
    let again = EventReader::new(resume(&app, &app.session, &id, None).await)
        .collect()
        .await;
    assert_eq!(again, events);
    // After the meta event, by query parameter.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/chat/{id}/stream?last_event_id=0")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .send()
        .await
        .expect("sent");
    let tail = EventReader::new(r).collect().await;
    assert_eq!(tail, events[1..]);
    // Past the end: nothing but the end of the stream.
    let last = events.len() as u64 - 1;
    let none = EventReader::new(resume(&app, &app.session, &id, Some(last)).await)
        .collect()
        .await;
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(app.mock().stats().opened, 1);
}

#[tokio::test]
async fn an_answer_nobody_comes_back_to_is_cancelled_after_the_grace_and_says_so() {
    let app = spawn_with_mock(Script::numbered(500, 20), |s| {
        s.chat.resume_grace_secs = 1;
    })
    .await;
    let mut reader = EventReader::new(app.ask("Tell me a long story").await);
    let first = read_chunks(&mut reader, 2).await;
    let id = message_id(&first);
    drop(reader);
    // Within the grace the model goes on...
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.mock().stats().client_closed, 0, "cancelled too early");
    // ...and is cancelled once nobody came back.
    assert!(
        app.mock()
            .wait_for(Duration::from_secs(3), |s| s.client_closed == 1)
            .await,
        "{:?}",
        app.mock().stats()
    );
    // A late reader gets the end: what was written, then `interrupted`.
    let late = EventReader::new(resume(&app, &app.session, &id, Some(0)).await)
        .collect()
        .await;
    match late.last() {
        Some(StreamEvent::Error(e)) => assert_eq!(e.code, ErrorCode::Interrupted),
        other => panic!("{other:?}"),
    }
    assert!(text_of(&late).starts_with("tok0 tok1 "), "{late:?}");
}

#[tokio::test]
async fn stop_cancels_the_model_at_once_and_readers_get_done_stopped() {
    let app = spawn_with_mock(Script::numbered(500, 20), |_| {}).await;
    let mut reader = EventReader::new(app.ask("Tell me a long story").await);
    let first = read_chunks(&mut reader, 2).await;
    let id = message_id(&first);
    let conversation = match &first[0] {
        StreamEvent::Meta(m) => m.conversation_id.clone(),
        _ => unreachable!(),
    };
    let r = stop(&app, &id).await;
    assert_eq!(r.status(), 204);
    assert!(
        app.mock()
            .wait_for(Duration::from_secs(1), |s| s.client_closed == 1)
            .await,
        "{:?}",
        app.mock().stats()
    );
    let mut end = None;
    while let Some(e) = reader.next().await {
        end = Some(e);
    }
    match end {
        Some(StreamEvent::Done(d)) => assert_eq!(d.finish_reason, "stopped"),
        other => panic!("{other:?}"),
    }
    // Stored as interrupted, with what was written.
    let mut status = Value::Null;
    for _ in 0..50 {
        let history: Value = app
            .client
            .get(app.url(&format!("/api/v1/conversations/{conversation}")))
            .header("x-api-key", KEY)
            .bearer_auth(&app.session)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        status = history["messages"][1]["status"].clone();
        if status == "interrupted" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "interrupted");
    // Stopping again changes nothing.
    assert_eq!(stop(&app, &id).await.status(), 204);
}

#[tokio::test]
async fn other_visitors_unknown_ids_bad_ids_and_expired_logs_are_refused_clearly() {
    let app = spawn_with_mock(Script::words("Short answer.", 1), |s| {
        s.chat.resume_ttl_secs = 0;
    })
    .await;
    let events = EventReader::new(app.ask("Hello").await).collect().await;
    let id = message_id(&events);
    // Another visitor of the same widget cannot read or stop it.
    let other = page_session(&app.client, &app.base, "test", KEY).await;
    let (status, code) = api_error(resume(&app, &other, &id, None).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let (status, code) = api_error(resume(&app, &app.session, "msg_nope", None).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let r = app
        .client
        .get(app.url(&format!("/api/v1/chat/{id}/stream")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .header("last-event-id", "seven")
        .send()
        .await
        .expect("sent");
    let (status, code) = api_error(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_field"));
    // No session at all.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/chat/{id}/stream")))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    // The log expired: 410, and the conversation is named.
    let mut r = resume(&app, &app.session, &id, None).await;
    for _ in 0..50 {
        if r.status() == 410 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        r = resume(&app, &app.session, &id, None).await;
    }
    let conversation = r
        .headers()
        .get(protocol::api::CONVERSATION_HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let (status, code) = api_error(r).await;
    assert_eq!((status, code.as_str()), (410, "stream_expired"));
    match &events[0] {
        StreamEvent::Meta(m) => assert_eq!(conversation, Some(m.conversation_id.clone())),
        other => panic!("{other:?}"),
    }
}
