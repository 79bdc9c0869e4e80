use std::time::Duration;

use mock_upstream::{MockUpstream, Script};
use protocol::{ErrorCode, StreamEvent};

use crate::helpers::{EventReader, KEY, spawn_with_mock};

async fn assert_ends_with_shutting_down(mut reader: EventReader) {
    let mut last = None;
    while let Some(e) = reader.next().await {
        last = Some(e);
    }
    match last {
        Some(StreamEvent::Error(e)) => assert_eq!(e.code, ErrorCode::ShuttingDown),
        other => panic!("expected a shutting_down event, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_in_flight_finish_while_the_server_drains() {
    let app = spawn_with_mock(Script::numbered(10, 50), |s| s.shutdown_deadline_ms = 3_000).await;
    let mut reader = EventReader::new(app.ask("short answer").await);
    assert!(matches!(reader.next().await, Some(StreamEvent::Meta(_))));
    app.lifecycle.begin_shutdown();
    let events = reader.collect().await;
    assert!(
        matches!(events.last(), Some(StreamEvent::Done(_))),
        "{events:?}"
    );
    tokio::time::timeout(Duration::from_secs(3), app.server)
        .await
        .expect("server stops once the answer is done")
        .expect("server task")
        .expect("server ran");
}

#[tokio::test]
async fn shutdown_ends_long_streams_with_an_event_and_stops_within_the_deadline() {
    let app = spawn_with_mock(Script::numbered(1_000, 50), |s| {
        s.limits.concurrent_streams_per_session = 10
    })
    .await;
    let mut readers = Vec::new();
    for _ in 0..5 {
        let mut reader = EventReader::new(app.ask("go on").await);
        assert!(matches!(reader.next().await, Some(StreamEvent::Meta(_))));
        readers.push(reader);
    }
    let started = std::time::Instant::now();
    app.lifecycle.begin_shutdown();
    for reader in readers {
        assert_ends_with_shutting_down(reader).await;
    }
    tokio::time::timeout(Duration::from_secs(3), app.server)
        .await
        .expect("server stops within the deadline")
        .expect("server task")
        .expect("server ran");
    assert!(
        started.elapsed() <= Duration::from_millis(2_500),
        "took {:?}",
        started.elapsed()
    );
}

/// The real binary, a real SIGTERM, 100 answers streaming.
#[tokio::test]
async fn sigterm_ends_open_streams_with_an_event_and_exits_within_the_deadline() {
    let mock = MockUpstream::start(Script::numbered(1_000, 50))
        .await
        .expect("mock");
    let dir = crate::helpers::temp_dir("sigterm");
    let config = dir.join("porthole.toml");
    std::fs::write(
        &config,
        format!(
            "addr = \"127.0.0.1:0\"\nshutdown_deadline_ms = 2000\n[store]\npath = \"{db}\"\n[upstream]\nprovider = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-test\"\n[limits]\nconcurrent_streams_per_session = 200\nrequests_per_minute_per_session = 1000\nrequests_per_minute_per_ip = 1000\n[[widgets]]\nid = \"test\"\npublic_key = \"{KEY}\"\n",
            mock.base_url(),
            db = dir.join("porthole.db").display()
        ),
    )
    .expect("config written");
    let (mut child, base) = crate::helpers::start_binary(&config).await;

    let client = reqwest::Client::new();
    let session = crate::helpers::page_session(&client, &base, "test", KEY).await;
    // 100 open answers.
    let mut readers = Vec::new();
    for _ in 0..100 {
        let response = client
            .post(format!("{base}/api/v1/chat"))
            .header("x-api-key", KEY)
            .bearer_auth(&session)
            .json(&serde_json::json!({"message": "go on"}))
            .send()
            .await
            .expect("sent");
        let mut reader = EventReader::new(response);
        assert!(matches!(reader.next().await, Some(StreamEvent::Meta(_))));
        readers.push(reader);
    }
    let pid = child.id().expect("pid").to_string();
    let started = std::time::Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    for reader in readers {
        assert_ends_with_shutting_down(reader).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(4), child.wait())
        .await
        .expect("exits within the deadline")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(dir);
}
