use std::time::Duration;

use mock_upstream::{Fault, Script};
use protocol::{ErrorCode, StreamEvent};

use porthole::store::AdminMessage;
use protocol::widget::{MessageStatus, Role};

use crate::helpers::{EventReader, TestApp, api_error, spawn_with_mock, text_of};

/// The stored messages of the test widget's only conversation, once no
/// answer is streaming any more (no relay task left behind).
async fn stored(app: &TestApp, db: &std::path::Path) -> Vec<(Role, MessageStatus, String)> {
    let mut open = u64::MAX;
    for _ in 0..100 {
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        open = metrics
            .lines()
            .find_map(|l| l.strip_prefix("porthole_open_streams "))
            .and_then(|v| v.trim().parse().ok())
            .expect("gauge");
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0, "a relay task is still running");
    let conversation = only_conversation(db).await;
    let store = crate::helpers::open_store(db).await;
    let messages: Vec<AdminMessage> = store
        .conversation_messages("test", &conversation, 10, 0)
        .await
        .expect("read")
        .expect("exists");
    messages
        .into_iter()
        .map(|m| (m.role, m.status, m.content))
        .collect()
}

async fn status_for(fault: Fault) -> (u16, String, Option<String>) {
    let mut db = std::path::PathBuf::new();
    let app = spawn_with_mock(Script::numbered(5, 1).with_fault(fault), |s| {
        db = s.store.path.clone()
    })
    .await;
    let response = app.ask("hello").await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, conversation) = (header("retry-after"), header("x-conversation-id"));
    let (status, code) = api_error(response).await;
    // The question is kept; the answer that never came is an empty `error`.
    assert_eq!(
        stored(&app, &db).await,
        [
            (Role::User, MessageStatus::Complete, "hello".to_owned()),
            (Role::Assistant, MessageStatus::Error, String::new()),
        ]
    );
    // And the refusal names the conversation it is in, so a retry goes on
    // with it rather than leaving it behind.
    assert_eq!(conversation, Some(only_conversation(&db).await));
    (status, code, retry_after)
}

/// The id of the test widget's only conversation.
async fn only_conversation(db: &std::path::Path) -> String {
    let store = crate::helpers::open_store(db).await;
    let (conversations, _) = store.conversations("test", 10, None).await.expect("list");
    assert_eq!(conversations.len(), 1);
    conversations[0].id.clone()
}

#[tokio::test]
async fn a_retry_after_the_model_failed_before_its_first_token_continues_the_same_conversation() {
    let mut db = std::path::PathBuf::new();
    let app = spawn_with_mock(
        Script::words("Sorry for the wait.", 4).with_fault(Fault::Status(500)),
        |s| db = s.store.path.clone(),
    )
    .await;
    let refused = app.ask("Where is my order?").await;
    assert_eq!(refused.status(), 502);
    // Readable by a browser on another origin, too.
    let exposed = refused.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        exposed.contains("x-conversation-id") && exposed.contains("retry-after"),
        "{exposed}"
    );
    let conversation = refused.headers()["x-conversation-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    app.mock()
        .set_script(Script::words("Sorry for the wait.", 4));
    let all = EventReader::new(
        app.chat(
            serde_json::json!({"message": "Where is my order?", "conversation_id": conversation}),
        )
        .await,
    )
    .collect()
    .await;
    assert_eq!(text_of(&all), "Sorry for the wait.");
    assert_eq!(
        stored(&app, &db).await,
        [
            (
                Role::User,
                MessageStatus::Complete,
                "Where is my order?".to_owned()
            ),
            (Role::Assistant, MessageStatus::Error, String::new()),
            (
                Role::User,
                MessageStatus::Complete,
                "Where is my order?".to_owned()
            ),
            (
                Role::Assistant,
                MessageStatus::Complete,
                "Sorry for the wait.".to_owned()
            ),
        ]
    );
    assert_eq!(only_conversation(&db).await, conversation);
    // The model was asked the question once: the failed attempt stays in
    // the record, not in the prompt.
    let asked = app.mock().requests();
    let messages = asked.last().expect("asked")["messages"].to_string();
    assert_eq!(
        messages.matches("Where is my order?").count(),
        1,
        "{messages}"
    );
}

#[tokio::test]
async fn upstream_500_before_the_first_byte_is_a_502() {
    assert_eq!(
        status_for(Fault::Status(500)).await,
        (502, "upstream_error".into(), None)
    );
}

#[tokio::test]
async fn upstream_429_is_a_503_with_retry_after() {
    let (status, code, retry) = status_for(Fault::Status(429)).await;
    assert_eq!((status, code.as_str()), (503, "upstream_unavailable"));
    assert!(retry.is_some());
}

#[tokio::test]
async fn upstream_401_is_a_502_that_does_not_leak_upstream_text() {
    assert_eq!(
        status_for(Fault::Status(401)).await,
        (502, "upstream_error".into(), None)
    );
    let app = spawn_with_mock(
        Script::numbered(5, 1).with_fault(Fault::Status(401)),
        |_| {},
    )
    .await;
    let body = app.ask("hello").await.text().await.expect("body");
    assert!(body.contains("upstream_error"), "{body}");
    assert!(
        !body.contains("scripted failure"),
        "upstream text leaked: {body}"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_503() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let app = spawn_with_mock(Script::default(), |s| {
        s.upstream.base_url = format!("http://127.0.0.1:{port}/v1");
    })
    .await;
    let (status, code) = api_error(app.ask("hello").await).await;
    assert_eq!((status, code.as_str()), (503, "upstream_unavailable"));
}

#[tokio::test]
async fn a_silent_upstream_before_the_first_token_is_a_504() {
    let mut script = Script::numbered(3, 1);
    script.first_token_delay = Duration::from_secs(5);
    let app = spawn_with_mock(script, |s| s.upstream.first_token_timeout_ms = 300).await;
    let started = std::time::Instant::now();
    let (status, code) = api_error(app.ask("hello").await).await;
    assert_eq!((status, code.as_str()), (504, "upstream_timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        app.mock()
            .wait_for(Duration::from_secs(1), |s| s.client_closed == 1)
            .await,
        "the silent upstream request was not cancelled"
    );
}

/// The events of an answer the upstream breaks with `fault`; checks that
/// the partial answer is stored as `interrupted` (or, when it ended well,
/// `complete`) with exactly the text the visitor saw.
async fn stream_with(
    fault: Fault,
    tweak: impl FnOnce(&mut porthole::Settings),
) -> Vec<StreamEvent> {
    let mut db = std::path::PathBuf::new();
    let app = spawn_with_mock(Script::numbered(5, 5).with_fault(fault), |s| {
        db = s.store.path.clone();
        tweak(s);
    })
    .await;
    let response = app.ask("hello").await;
    assert_eq!(response.status(), 200);
    let events = EventReader::new(response).collect().await;
    let status = match events.last() {
        Some(StreamEvent::Done(_)) => MessageStatus::Complete,
        _ => MessageStatus::Interrupted,
    };
    assert_eq!(
        stored(&app, &db).await,
        [
            (Role::User, MessageStatus::Complete, "hello".to_owned()),
            (Role::Assistant, status, text_of(&events)),
        ]
    );
    events
}

fn last_error(events: &[StreamEvent]) -> ErrorCode {
    match events.last() {
        Some(StreamEvent::Error(e)) => e.code,
        other => panic!("expected an error event last, got {other:?}"),
    }
}

#[tokio::test]
async fn a_connection_reset_mid_stream_is_an_error_event_after_the_partial_answer() {
    let events = stream_with(Fault::ResetAfter(3), |_| {}).await;
    assert_eq!(text_of(&events), "tok0 tok1 tok2 ");
    assert_eq!(last_error(&events), ErrorCode::UpstreamError);
}

#[tokio::test]
async fn a_stall_between_tokens_ends_with_an_upstream_timeout_event() {
    let started = std::time::Instant::now();
    let events = stream_with(Fault::StallAfter(2), |s| s.upstream.idle_timeout_ms = 400).await;
    assert_eq!(text_of(&events), "tok0 tok1 ");
    assert_eq!(last_error(&events), ErrorCode::UpstreamTimeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_malformed_chunk_is_an_error_event() {
    let events = stream_with(Fault::MalformedAfter(2), |_| {}).await;
    assert_eq!(text_of(&events), "tok0 tok1 ");
    assert_eq!(last_error(&events), ErrorCode::UpstreamError);
}

#[tokio::test]
async fn a_stream_that_ends_without_finishing_is_an_error_event() {
    let events = stream_with(Fault::NoDone, |_| {}).await;
    assert_eq!(text_of(&events), "tok0 tok1 tok2 tok3 tok4 ");
    assert_eq!(last_error(&events), ErrorCode::UpstreamError);
}

#[tokio::test]
async fn a_usage_chunk_with_null_choices_is_read_as_usage() {
    let events = stream_with(Fault::NullChoicesUsage, |_| {}).await;
    match events.last() {
        Some(StreamEvent::Done(done)) => {
            assert_eq!(done.usage.map(|u| u.completion_tokens), Some(5))
        }
        other => panic!("expected done, got {other:?}"),
    }
}
