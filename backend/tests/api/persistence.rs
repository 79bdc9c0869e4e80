use std::time::Duration;

use mock_upstream::{MockUpstream, Script};
use protocol::StreamEvent;
use protocol::widget::{ConversationView, MessageStatus, Role};
use serde_json::json;

use crate::helpers::{EventReader, KEY, page_session, start_binary, temp_dir, write_config};

fn config(dir: &std::path::Path, upstream: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[chat]\nanswer_lease_secs = 3\n[upstream]\nprovider = \"openai\"\nbase_url = \"{upstream}\"\napi_key = \"sk-test\"\nfirst_token_timeout_ms = 2000\n[[widgets]]\nid = \"test\"\npublic_key = \"{KEY}\"\n"
        ),
    )
}

async fn ask(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    body: serde_json::Value,
) -> EventReader {
    let response = client
        .post(format!("{base}/api/v1/chat"))
        .header("x-api-key", KEY)
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    EventReader::new(response)
}

/// kill -9 mid-answer: after a restart every earlier message is there and
/// the cut-off answer is kept as `interrupted` with what was saved of it.
#[tokio::test]
async fn a_server_killed_mid_answer_loses_nothing_earlier_and_marks_the_partial_answer() {
    let mock = MockUpstream::start(Script::words("The first answer.", 1))
        .await
        .expect("mock");
    let dir = temp_dir("kill9");
    let config = config(&dir, &mock.base_url());
    let client = reqwest::Client::new();

    let (mut server, base) = start_binary(&config).await;
    let session = page_session(&client, &base, "test", KEY).await;
    let first = ask(
        &client,
        &base,
        &session,
        json!({"message": "First question"}),
    )
    .await
    .collect()
    .await;
    let StreamEvent::Meta(meta) = &first[0] else {
        panic!("meta first: {first:?}")
    };
    let conversation = meta.conversation_id.clone();
    assert!(matches!(first.last(), Some(StreamEvent::Done(_))));

    mock.set_script(Script::numbered(1_000, 50));
    let mut reader = ask(
        &client,
        &base,
        &session,
        json!({"message": "Second question", "conversation_id": conversation}),
    )
    .await;
    let mut chunks = 0;
    while chunks < 3 {
        if let Some(StreamEvent::Chunk(_)) = reader.next().await {
            chunks += 1;
        }
    }
    // Past one checkpoint, then the hard way down.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    server.start_kill().expect("SIGKILL");
    let _ = server.wait().await;
    drop(reader);

    // The session from before the crash still works: the signing secret
    // lives in the database.
    // A SQLite file has one process: the new one ends the answer as it
    // starts. On PostgreSQL (replicas) the answer's lease must run out
    // first: 3 s here, then the next sweep (every half lease).
    let killed = tokio::time::Instant::now();
    let (_server, base) = start_binary(&config).await;
    let view = loop {
        let view: ConversationView = client
            .get(format!("{base}/api/v1/conversations/{conversation}"))
            .header("x-api-key", KEY)
            .bearer_auth(&session)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("history");
        if view.messages[3].status != MessageStatus::Streaming {
            break view;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(3 + 2 + 3),
            "still streaming past the lease and a sweep"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let got: Vec<(Role, MessageStatus)> =
        view.messages.iter().map(|m| (m.role, m.status)).collect();
    assert_eq!(
        got,
        [
            (Role::User, MessageStatus::Complete),
            (Role::Assistant, MessageStatus::Complete),
            (Role::User, MessageStatus::Complete),
            (Role::Assistant, MessageStatus::Interrupted),
        ]
    );
    assert_eq!(view.messages[0].content, "First question");
    assert_eq!(view.messages[1].content, "The first answer.");
    assert_eq!(view.messages[2].content, "Second question");
    let partial = &view.messages[3].content;
    assert!(
        partial.starts_with("tok0 tok1 tok2 "),
        "partial answer: {partial:?}"
    );

    // The conversation goes on after the restart.
    mock.set_script(Script::words("Still here.", 1));
    let third = ask(
        &client,
        &base,
        &session,
        json!({"message": "Third", "conversation_id": conversation}),
    )
    .await
    .collect()
    .await;
    assert!(matches!(third.last(), Some(StreamEvent::Done(_))));
}
