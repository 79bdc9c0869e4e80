use mock_upstream::Script;
use serde_json::json;

use crate::helpers::{KEY, TestApp, api_error, spawn_with_mock};

async fn app() -> TestApp {
    spawn_with_mock(Script::default(), |s| s.chat.max_message_chars = 100).await
}

async fn post(
    app: &TestApp,
    key: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let mut request = app.client.post(app.url("/api/v1/chat")).body(body);
    if let Some(key) = key {
        request = request.header("x-api-key", key).bearer_auth(&app.session);
    }
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    api_error(request.send().await.expect("sent")).await
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_whatever_the_body() {
    let app = app().await;
    let json = Some("application/json");
    assert_eq!(
        post(&app, None, json, r#"{"message":"hi"}"#).await,
        (401, "invalid_api_key".into())
    );
    assert_eq!(
        post(&app, Some("pk_wrong"), json, r#"{"message":"hi"}"#).await,
        (401, "invalid_api_key".into())
    );
    assert_eq!(
        post(&app, Some("pk_wrong"), json, "not json").await,
        (401, "invalid_api_key".into())
    );
    assert!(app.mock().requests().is_empty());
}

#[tokio::test]
async fn bad_bodies_are_4xx_api_errors_and_never_reach_upstream() {
    let app = app().await;
    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "malformed JSON",
            json,
            "{\"message\":".into(),
            400,
            "invalid_request",
        ),
        ("missing field", json, "{}".into(), 400, "invalid_request"),
        (
            "wrong type",
            json,
            r#"{"message": 42}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "duplicate key",
            json,
            r#"{"message":"a","message":"b"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "not an object",
            json,
            "[1,2]".into(),
            400,
            "invalid_request",
        ),
        (
            "invalid UTF-8",
            json,
            String::from_utf8_lossy(b"{\"message\":\"\xff\"}").replace('\u{FFFD}', "\\udc00"),
            400,
            "invalid_request",
        ),
        (
            "a NUL character",
            json,
            r#"{"message":"a\u0000b"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "a raw NUL byte",
            json,
            "{\"message\":\"a\0b\"}".into(),
            400,
            "invalid_request",
        ),
        (
            "JSON nested 10,000 deep",
            json,
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            400,
            "invalid_request",
        ),
        (
            "JSON nested 10,000 deep in an unknown field",
            json,
            format!(
                "{{\"message\":\"hi\",\"x\":{}{}}}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
            400,
            "invalid_request",
        ),
        (
            "a 100,000-character message",
            json,
            json!({"message": "x".repeat(100_000)}).to_string(),
            413,
            "payload_too_large",
        ),
        (
            "null message",
            json,
            r#"{"message": null}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "conversation id of the wrong type",
            json,
            r#"{"message":"hi","conversation_id":7}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "empty message",
            json,
            r#"{"message":""}"#.into(),
            422,
            "empty_message",
        ),
        (
            "blank message",
            json,
            r#"{"message":"  \n\t "}"#.into(),
            422,
            "empty_message",
        ),
        (
            "oversized message",
            json,
            json!({"message": "x".repeat(101)}).to_string(),
            422,
            "message_too_long",
        ),
        (
            "unknown conversation",
            json,
            r#"{"message":"hi","conversation_id":"conv_0000"}"#.into(),
            404,
            "conversation_not_found",
        ),
        (
            "hostile conversation id",
            json,
            r#"{"message":"hi","conversation_id":"../../etc"}"#.into(),
            404,
            "conversation_not_found",
        ),
        (
            "form body",
            Some("application/x-www-form-urlencoded"),
            "message=hi".into(),
            415,
            "unsupported_media_type",
        ),
        (
            "no content type",
            None,
            r#"{"message":"hi"}"#.into(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (name, ct, body, status, code) in cases {
        assert_eq!(
            post(&app, Some(KEY), ct, body).await,
            (status, code.to_owned()),
            "{name}"
        );
    }
    assert!(
        app.mock().requests().is_empty(),
        "a bad request reached upstream"
    );
}

#[tokio::test]
async fn raw_invalid_utf8_bytes_are_a_400() {
    let app = app().await;
    let body: Vec<u8> = b"{\"message\":\"\xff\xfe\"}".to_vec();
    assert_eq!(
        post(&app, Some(KEY), Some("application/json"), body).await,
        (400, "invalid_request".into())
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_with_mock(Script::default(), |s| s.chat.max_body_bytes = 1_000).await;
    let big = json!({"message": "x".repeat(2_000)}).to_string();
    let (status, code) = post(&app, Some(KEY), Some("application/json"), big.clone()).await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    // Without Content-Length (chunked), the limit holds while reading.
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let (status, code) = post(
        &app,
        Some(KEY),
        Some("application/json"),
        reqwest::Body::wrap_stream(stream),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "payload_too_large"));
    assert!(app.mock().requests().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = app().await;
    let r = app.get("/api/v1/nope").await;
    assert_eq!(api_error(r).await, (404, "not_found".into()));
    let r = app
        .client
        .get(app.url("/api/v1/chat"))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .send()
        .await
        .expect("sent");
    let (status, _) = api_error(r).await;
    assert!(status == 404 || status == 405, "{status}");
}

/// Request decoding, fuzzed over real HTTP: random bytes and mangled JSON
/// get a 4xx `ApiError` (never a 5xx, never a hang), and only bodies that
/// are valid requests reach the model.
#[tokio::test]
async fn fuzzed_bodies_get_4xx_api_errors_and_only_valid_ones_reach_upstream() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    let app = spawn_with_mock(Script::words("ok", 0), |s| {
        s.limits.requests_per_minute_per_session = 100_000;
        s.limits.requests_per_minute_per_ip = 100_000;
        s.limits.requests_per_minute_per_key = 100_000;
    })
    .await;
    let bodies = proptest::prop_oneof![
        proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..200),
        "\\{\"message\": ?(\"[^\"\\\\]{0,30}\"|[0-9]{1,3}|null|true|\\[\\]|\\{\\})(, ?\"(conversation_id|message|extra)\": ?(\"[a-z_0-9]{0,12}\"|1|null))?\\}"
            .prop_map(String::into_bytes),
        "[\\[\\{\"a-z:,0-9\\]\\} \\\\]{0,60}".prop_map(String::into_bytes),
        "\\{\"message\": ?\"[a-zA-Z ?]{0,30}\"\\}".prop_map(String::into_bytes),
    ];
    let mut runner = TestRunner::deterministic();
    let mut valid = 0;
    for _ in 0..300 {
        let body = bodies.new_tree(&mut runner).expect("a body").current();
        let expected_valid =
            serde_json::from_slice::<protocol::ChatRequest>(&body).is_ok_and(|r| {
                !r.message.trim().is_empty()
                    && !r.message.contains('\0')
                    && r.message.chars().count() <= 100
                    && r.conversation_id.is_none()
            });
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            app.client
                .post(app.url("/api/v1/chat"))
                .header("x-api-key", KEY)
                .bearer_auth(&app.session)
                .header("content-type", "application/json")
                .body(body.clone())
                .send(),
        )
        .await
        .expect("an answer within 5 s")
        .expect("sent");
        let status = response.status().as_u16();
        if expected_valid {
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            valid += 1;
            crate::helpers::EventReader::new(response).collect().await;
        } else {
            assert!(
                (400..500).contains(&status),
                "{status} for {}",
                String::from_utf8_lossy(&body)
            );
            api_error(response).await;
        }
    }
    assert_eq!(app.mock().requests().len(), valid);
    assert!(valid > 10, "only {valid} valid bodies were generated");
}
