use mock_upstream::Script;

use crate::helpers::{EventReader, api_error, spawn_with_mock};

#[tokio::test]
async fn health_and_ready_answer_and_ready_fails_while_draining() {
    let app = spawn_with_mock(Script::numbered(1_000, 50), |s| {
        s.shutdown_deadline_ms = 5_000
    })
    .await;
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    // An answer in flight keeps the server draining.
    let mut reader = EventReader::new(app.ask("go on").await);
    assert!(reader.next().await.is_some());
    app.lifecycle.begin_shutdown();
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let (status, code) = api_error(app.ask("one more?").await).await;
    assert_eq!((status, code.as_str()), (503, "shutting_down"));
    // The answer in flight still streams.
    assert!(matches!(
        reader.next().await,
        Some(protocol::StreamEvent::Chunk(_))
    ));
}

#[tokio::test]
async fn the_openapi_spec_documents_the_chat_stream_and_its_events() {
    let app = spawn_with_mock(Script::default(), |_| {}).await;
    let spec: serde_json::Value = app
        .get("/api-doc/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let chat = &spec["paths"]["/api/v1/chat"]["post"];
    assert!(
        chat["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{chat}"
    );
    assert!(chat["responses"]["401"].is_object());
    for schema in [
        "ChatRequest",
        "ApiError",
        "MetaEvent",
        "ChunkEvent",
        "DoneEvent",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    // The session and admin APIs, the admin ones behind the admin key.
    assert!(spec["paths"]["/api/v1/session"]["post"].is_object());
    for (path, method) in [
        ("/api/v1/admin/widgets", "get"),
        ("/api/v1/admin/widgets", "post"),
        ("/api/v1/admin/widgets/{id}", "patch"),
        ("/api/v1/admin/widgets/{id}", "delete"),
        ("/api/v1/admin/widgets/{id}/rotate-key", "post"),
        ("/api/v1/admin/widgets/{id}/conversations", "get"),
        (
            "/api/v1/admin/widgets/{id}/conversations/{conversation}/messages",
            "get",
        ),
        ("/api/v1/admin/widgets/{id}/usage", "get"),
        ("/api/v1/admin/widgets/{id}/retrieval", "get"),
        ("/api/v1/admin/widgets/{id}/sources", "post"),
        ("/api/v1/admin/conversations", "get"),
        ("/api/v1/admin/conversations/export", "get"),
        ("/api/v1/admin/questions-to-fix", "get"),
        ("/api/v1/admin/analytics", "get"),
        ("/api/v1/admin/widgets/{id}/webhooks", "post"),
        ("/api/v1/admin/widgets/{id}/webhooks/{hook}", "patch"),
        (
            "/api/v1/admin/widgets/{id}/webhooks/{hook}/deliveries",
            "get",
        ),
        (
            "/api/v1/admin/widgets/{id}/webhooks/{hook}/deliveries/{delivery}/redeliver",
            "post",
        ),
    ] {
        let op = &spec["paths"][path][method];
        assert_eq!(
            op["security"],
            serde_json::json!([{"admin_key": []}]),
            "{method} {path}"
        );
        assert!(op["responses"]["401"].is_object(), "{method} {path}");
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["admin_key"]["scheme"],
        "bearer"
    );
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.expect("html");
    assert!(html.contains("swagger"), "not swagger ui");
    assert!(!html.contains("cdn"), "docs must not load from a CDN");
}

#[tokio::test]
async fn metrics_count_open_streams_and_live_tasks() {
    // No resume grace: the answer ends as soon as its reader leaves.
    let app = spawn_with_mock(Script::numbered(1_000, 20), |s| {
        s.chat.resume_grace_secs = 0
    })
    .await;
    let gauge = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
    };
    let before = app.get("/metrics").await.text().await.expect("text");
    assert_eq!(gauge(&before, "porthole_open_streams"), 0);
    assert!(gauge(&before, "porthole_runtime_alive_tasks") > 0);
    assert_eq!(gauge(&before, "porthole_widgets"), 1);
    assert!(gauge(&before, "porthole_resident_memory_bytes") > 1_000_000);
    let mut reader = crate::helpers::EventReader::new(app.ask("go on").await);
    reader.next().await;
    let during = app.get("/metrics").await.text().await.expect("text");
    assert_eq!(gauge(&during, "porthole_open_streams"), 1);
    assert_eq!(gauge(&during, "porthole_answer_logs"), 1);
    drop(reader);
    let mut open = 1;
    for _ in 0..50 {
        let now = app.get("/metrics").await.text().await.expect("text");
        open = gauge(&now, "porthole_open_streams");
        if open == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0, "the stream's task ended when the visitor left");
}

#[tokio::test]
async fn metrics_count_chat_outcomes_latencies_tokens_and_resumes() {
    let app = spawn_with_mock(Script::words("Three words here.", 1), |_| {}).await;
    let events = crate::helpers::EventReader::new(app.ask("hello").await)
        .collect()
        .await;
    let id = match &events[0] {
        protocol::StreamEvent::Meta(m) => m.message_id.clone(),
        other => panic!("{other:?}"),
    };
    // A refusal: an empty message.
    let (status, _) = api_error(app.ask("   ").await).await;
    assert_eq!(status, 422);
    // A resume of the finished answer.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/chat/{id}/stream")))
        .header("x-api-key", crate::helpers::KEY)
        .bearer_auth(&app.session)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let text = app.get("/metrics").await.text().await.expect("text");
    for line in [
        "porthole_chat_requests_total{outcome=\"answered\",code=\"\"} 1",
        "porthole_chat_requests_total{outcome=\"refused\",code=\"empty_message\"} 1",
        "porthole_first_token_seconds_count 1",
        "porthole_answer_duration_seconds_count 1",
        "porthole_resumes_total 1",
        "# TYPE porthole_first_token_seconds histogram",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
    assert!(
        text.lines().any(|l| l
            .starts_with("porthole_tokens_total{widget=\"test\",kind=\"completion\"} ")
            && !l.ends_with(" 0")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id_and_the_requests_log_lines_carry_it() {
    use tokio::io::AsyncBufReadExt;
    let mock = mock_upstream::MockUpstream::start(
        Script::numbered(20, 5).with_fault(mock_upstream::Fault::ResetAfter(3)),
    )
    .await
    .expect("mock");
    let dir = crate::helpers::temp_dir("request-id");
    let config = crate::helpers::write_config(
        &dir,
        &format!(
            "[log]\nformat = \"json\"\n[upstream]\nprovider = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-test\"\n[[widgets]]\nid = \"test\"\npublic_key = \"{}\"\n",
            mock.base_url(),
            crate::helpers::KEY
        ),
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_porthole"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
        .await
        .expect("listening in time")
        .expect("readable")
        .expect("a line");
    let base = line.rsplit(' ').next().expect("url").to_owned();
    let client = reqwest::Client::new();
    // Any response, even a 404, names its request.
    let r = client
        .get(format!("{base}/nope"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
    // A chat whose upstream breaks mid-answer: the warning comes from the
    // relay task, after the response started, and still carries the id.
    let session = crate::helpers::page_session(&client, &base, "test", crate::helpers::KEY).await;
    let r = client
        .post(format!("{base}/api/v1/chat"))
        .header("x-api-key", crate::helpers::KEY)
        .bearer_auth(&session)
        .json(&serde_json::json!({"message": "hello"}))
        .send()
        .await
        .expect("sent");
    let id = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(id.len() >= 20, "{id}");
    let _ = r.text().await;
    let stderr = child.stderr.take().expect("stderr");
    let mut log = tokio::io::BufReader::new(stderr).lines();
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(line)) = log.next_line().await {
            if line.contains("upstream failed mid-answer") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the relay's warning in time")
    .expect("the relay's warning");
    assert!(found.contains(&id), "no request id in: {found}");
    // One id per request: every span's id on the line is the response's.
    let line: serde_json::Value = serde_json::from_str(&found).expect("a JSON log line");
    let spans = line["spans"].as_array().expect("spans");
    assert!(!spans.is_empty(), "{found}");
    for span in spans {
        let other = span["request_id"].as_str().unwrap_or_default();
        assert_eq!(
            other.trim_matches('"'),
            id,
            "a second request id in: {found}"
        );
    }
    let _ = child.kill().await;
}

#[tokio::test]
async fn the_loader_and_its_panel_script_are_served_gzipped_and_cached_as_their_names_allow() {
    use std::io::Read;
    let app = spawn_with_mock(Script::default(), |_| {}).await;
    // A client that leaves the body as it came.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let mut req = raw.get(app.url(&path));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        async move { req.send().await.expect("request is sent") }
    };
    let gunzip = |bytes: &[u8]| {
        let mut out = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut out)
            .expect("a gzip body");
        out
    };

    // widget.js: gzip when asked, plain when not, a 304 for its ETag.
    let zipped = get(
        "/widget.js".into(),
        vec![("accept-encoding", "gzip".into())],
    )
    .await;
    assert_eq!(zipped.status(), 200);
    let headers = zipped.headers().clone();
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["cross-origin-resource-policy"], "cross-origin");
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    let script = gunzip(&zipped.bytes().await.expect("body"));
    let plain = get("/widget.js".into(), vec![]).await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.expect("body"), script);
    let again = get("/widget.js".into(), vec![("if-none-match", etag)]).await;
    assert_eq!(again.status(), 304);
    // A 304 says what the 200 would have of the script, the body aside.
    assert_eq!(again.headers()["vary"], "accept-encoding");
    assert_eq!(
        again.headers()["cross-origin-resource-policy"],
        "cross-origin"
    );
    assert_eq!(again.headers()["access-control-allow-origin"], "*");

    // It names panel.js, which is served for a year under that name.
    let path = loader::panel_path();
    assert!(script.contains(path), "{script}");
    let panel = get(path.into(), vec![("accept-encoding", "gzip".into())]).await;
    assert_eq!(panel.status(), 200);
    let headers = panel.headers().clone();
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(headers["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(gunzip(&panel.bytes().await.expect("body")), loader::panel());
    // Another release's name (a widget.js cached before an upgrade, or from
    // a replica not yet upgraded) gets this release's, for five minutes.
    let older = get("/loader/panel.000000abcdef.js".into(), vec![]).await;
    assert_eq!(older.status(), 200);
    assert_eq!(older.headers()["cache-control"], "public, max-age=300");
    assert_eq!(older.text().await.expect("body"), loader::panel());
    for other in [
        "/loader/panel.js",
        "/loader/panel.00000000000G.js",
        "/loader/panel.0000000000000.js",
        "/loader/widget.js",
    ] {
        assert_eq!(get(other.into(), vec![]).await.status(), 404, "{other}");
    }
}
