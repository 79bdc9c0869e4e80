use std::time::Duration;

use mock_upstream::Script;
use protocol::StreamEvent;
use serde_json::json;

use crate::helpers::{EventReader, spawn_with_mock, text_of};

#[tokio::test]
async fn deltas_arrive_incrementally_framed_as_the_contract_says() {
    let app = spawn_with_mock(Script::numbered(10, 40), |_| {}).await;
    let response = app.ask("Count for me").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache, no-transform");
    assert_eq!(headers["x-accel-buffering"], "no");

    let timed = EventReader::new(response).collect_timed().await;
    let events: Vec<StreamEvent> = timed.iter().map(|(e, _)| e.clone()).collect();
    assert!(matches!(events[0], StreamEvent::Meta(_)), "{events:?}");
    assert_eq!(
        text_of(&events),
        (0..10).map(|i| format!("tok{i} ")).collect::<String>()
    );
    match events.last() {
        Some(StreamEvent::Done(done)) => {
            assert_eq!(done.finish_reason, "stop");
            let usage = done.usage.expect("the mock reports usage");
            assert_eq!(usage.completion_tokens, 10);
        }
        other => panic!("expected done, got {other:?}"),
    }
    // Arrival times: the chunks came 40 ms apart as the mock sent them, not
    // in one burst at the end.
    let chunk_times: Vec<_> = timed
        .iter()
        .filter(|(e, _)| matches!(e, StreamEvent::Chunk(_)))
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(chunk_times.len(), 10);
    let spread = chunk_times[9] - chunk_times[0];
    assert!(
        spread >= Duration::from_millis(300),
        "chunks spread over {spread:?}"
    );
    let gaps = chunk_times
        .windows(2)
        .filter(|w| w[1] - w[0] >= Duration::from_millis(20))
        .count();
    assert!(
        gaps >= 8,
        "only {gaps} of 9 gaps show pacing: {chunk_times:?}"
    );
}

#[tokio::test]
async fn every_event_has_an_increasing_id() {
    let app = spawn_with_mock(Script::numbered(3, 1), |_| {}).await;
    let body = app.ask("hi").await.text().await.expect("body");
    let ids: Vec<u64> = body
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|id| id.parse().expect("numeric id"))
        .collect();
    let blocks = body.split("\n\n").filter(|b| !b.trim().is_empty()).count();
    assert_eq!(ids, (0..blocks as u64).collect::<Vec<_>>(), "{body}");
}

#[tokio::test]
async fn follow_up_questions_carry_the_earlier_turns() {
    let app = spawn_with_mock(Script::words("Paris is the capital.", 1), |_| {}).await;
    let first = EventReader::new(app.ask("What is the capital of France?").await)
        .collect()
        .await;
    let StreamEvent::Meta(meta) = &first[0] else {
        panic!("meta first: {first:?}");
    };
    let second = app
        .chat(json!({"message": "And its population?", "conversation_id": meta.conversation_id}))
        .await;
    assert_eq!(second.status(), 200);
    let second = EventReader::new(second).collect().await;
    let StreamEvent::Meta(meta2) = &second[0] else {
        panic!("meta first: {second:?}");
    };
    assert_eq!(meta2.conversation_id, meta.conversation_id);

    let requests = app.mock().requests();
    assert_eq!(requests.len(), 2);
    let messages = requests[1]["messages"].as_array().expect("messages");
    let turns: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        turns,
        [
            ("system", "You are a test."),
            ("user", "What is the capital of France?"),
            ("assistant", "Paris is the capital."),
            ("user", "And its population?"),
        ]
    );
    assert_eq!(requests[1]["stream"], true);
    assert!(requests[1]["max_tokens"].as_u64().is_some());
}

#[tokio::test]
async fn with_no_resume_grace_a_client_that_leaves_closes_the_upstream_within_a_second() {
    let app = spawn_with_mock(Script::numbered(100, 50), |s| s.chat.resume_grace_secs = 0).await;
    let mut reader = EventReader::new(app.ask("Tell me a long story").await);
    let mut chunks = 0;
    while chunks < 2 {
        match reader.next().await {
            Some(StreamEvent::Chunk(_)) => chunks += 1,
            Some(_) => {}
            None => panic!("stream ended early"),
        }
    }
    drop(reader);
    let closed = app
        .mock()
        .wait_for(Duration::from_secs(1), |s| s.client_closed == 1)
        .await;
    assert!(closed, "mock stats: {:?}", app.mock().stats());
    assert_eq!(app.mock().stats().completed, 0);
}

#[tokio::test]
async fn idle_streams_get_heartbeat_comments() {
    let mut script = Script::numbered(3, 10);
    script.token_delay = Duration::from_millis(2_500);
    let app = spawn_with_mock(script, |s| {
        s.chat.heartbeat_secs = 1;
        s.upstream.idle_timeout_ms = 5_000;
    })
    .await;
    let mut reader = EventReader::new(app.ask("slowly").await);
    while let Some(event) = reader.next().await {
        if event.is_terminal() {
            break;
        }
    }
    assert!(
        reader.comments_seen >= 2,
        "saw {} heartbeats",
        reader.comments_seen
    );
}

#[tokio::test]
async fn cors_preflight_allows_the_public_api_from_any_site() {
    let app = spawn_with_mock(Script::default(), |_| {}).await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/chat"))
        .header("origin", "https://customer.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-api-key,authorization",
        )
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap_or_default();
    assert!(allowed.contains("x-api-key"), "{allowed}");
    assert!(allowed.contains("authorization"), "{allowed}");
}

#[tokio::test]
async fn done_is_sent_only_once_the_answer_is_stored() {
    use sqlx::Connection;
    let mut db = std::path::PathBuf::new();
    // Ten words over half a second: done long before the first checkpoint.
    let app = spawn_with_mock(
        Script::words("one two three four five six seven eight nine ten", 50),
        |s| db = s.store.path.clone(),
    )
    .await;
    let mut reader = EventReader::new(app.ask("Count to ten").await);
    let Some(StreamEvent::Meta(meta)) = reader.next().await else {
        panic!("meta first");
    };
    // Another process holds the store's write lock while the answer ends.
    let dir = db.parent().expect("folder");
    let hold: Box<dyn std::any::Any> = match crate::helpers::postgres_store(dir) {
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("pg");
            sqlx::query("BEGIN")
                .execute(&mut conn)
                .await
                .expect("begin");
            sqlx::query("SELECT 1 FROM messages WHERE id = $1 FOR UPDATE")
                .bind(&meta.message_id)
                .execute(&mut conn)
                .await
                .expect("row lock");
            Box::new(conn)
        }
        None => {
            let url = format!("sqlite:{}", db.display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("write lock");
            Box::new(conn)
        }
    };
    // The model ends within the second; its `done` must wait for the store.
    let early = tokio::time::timeout(Duration::from_millis(1_500), async {
        while let Some(event) = reader.next().await {
            if matches!(event, StreamEvent::Done(_) | StreamEvent::Error(_)) {
                return Some(event);
            }
        }
        None
    })
    .await;
    assert!(
        early.is_err(),
        "the end came while the store was locked: {early:?}"
    );
    drop(hold);
    let rest = reader.rest().await;
    assert!(
        matches!(rest.last(), Some(StreamEvent::Done(_))),
        "{rest:?}"
    );
    // And a visitor who has seen it finds the answer in the history.
    let history: serde_json::Value = app
        .client
        .get(app.url(&format!("/api/v1/conversations/{}", meta.conversation_id)))
        .header("x-api-key", crate::helpers::KEY)
        .bearer_auth(&app.session)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("history");
    assert_eq!(history["messages"][1]["status"], "complete", "{history}");
}
