//! Rate limits, stream caps, history trimming and token budgets, over real
//! HTTP against the mock upstream, with the stored state checked.

use std::time::Duration;

use mock_upstream::{MockUpstream, Script};
use porthole::Settings;
use porthole::config::WidgetSettings;
use porthole::limits::WidgetLimits;
use protocol::StreamEvent;
use serde_json::json;

use crate::helpers::{
    EventReader, KEY, TestApp, api_error, page_session, spawn_app, test_settings, text_of,
};

/// A server on the mock with every limit high, then `tweak`.
async fn app_with(script: Script, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mock = MockUpstream::start(script).await.expect("mock");
    let mut s = test_settings(Some(mock.base_url()));
    s.limits.requests_per_minute_per_key = 10_000;
    s.limits.requests_per_minute_per_session = 10_000;
    s.limits.requests_per_minute_per_ip = 10_000;
    s.limits.concurrent_streams_per_session = 100;
    s.limits.daily_tokens = 0;
    s.limits.monthly_tokens = 0;
    tweak(&mut s);
    spawn_app(s, Some(mock), false).await
}

async fn post(
    app: &TestApp,
    session: &str,
    forwarded: Option<&str>,
    body: serde_json::Value,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/chat"))
        .header("x-api-key", KEY)
        .bearer_auth(session)
        .json(&body);
    if let Some(ip) = forwarded {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.expect("sent")
}

/// Sends `n` questions one after another; returns the statuses, with the
/// headers of the first refusal.
async fn burst(
    app: &TestApp,
    n: usize,
    session: impl Fn(usize) -> String,
    forwarded: impl Fn(usize) -> Option<String>,
) -> (Vec<u16>, Option<reqwest::header::HeaderMap>) {
    let mut statuses = Vec::new();
    let mut refused = None;
    for i in 0..n {
        let r = post(
            app,
            &session(i),
            forwarded(i).as_deref(),
            json!({"message": format!("q{i}")}),
        )
        .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            if refused.is_none() {
                refused = Some(r.headers().clone());
            }
            assert_eq!(api_error(r).await.1, "rate_limited");
        } else {
            EventReader::new(r).collect().await;
        }
    }
    (statuses, refused)
}

fn assert_refused_after(statuses: &[u16], allowed: usize) {
    assert!(
        statuses[..allowed].iter().all(|s| *s == 200)
            && statuses[allowed..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
}

fn assert_limit_headers(headers: &reqwest::header::HeaderMap, limit: &str, scope: &str) {
    let retry: u64 = headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(headers["ratelimit-limit"], limit);
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-scope"], scope);
    assert!(headers.contains_key("ratelimit-reset"));
}

#[tokio::test]
async fn twice_the_rate_per_session_is_refused_with_retry_after_and_no_upstream_call() {
    let app = app_with(Script::words("ok", 1), |s| {
        s.limits.requests_per_minute_per_session = 5
    })
    .await;
    let session = app.session.clone();
    let (statuses, refused) = burst(&app, 10, |_| session.clone(), |_| None).await;
    assert_refused_after(&statuses, 5);
    assert_limit_headers(&refused.expect("a refusal"), "5", "session");
    assert_eq!(
        app.mock().requests().len(),
        5,
        "refused requests never reach upstream"
    );
    // Another visitor is not held back.
    let other = page_session(&app.client, &app.base, "test", KEY).await;
    assert_eq!(
        post(&app, &other, None, json!({"message": "hi"}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn twice_the_rate_per_key_is_refused_across_sessions() {
    let app = app_with(Script::words("ok", 1), |s| {
        s.limits.requests_per_minute_per_key = 5
    })
    .await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(page_session(&app.client, &app.base, "test", KEY).await);
    }
    let (statuses, refused) = burst(&app, 10, |i| sessions[i].clone(), |_| None).await;
    assert_refused_after(&statuses, 5);
    assert_limit_headers(&refused.expect("a refusal"), "5", "key");
    assert_eq!(app.mock().requests().len(), 5);
}

#[tokio::test]
async fn twice_the_rate_per_ip_is_refused_and_forwarded_for_counts_only_when_trusted() {
    let app = app_with(Script::words("ok", 1), |s| {
        s.limits.requests_per_minute_per_ip = 5
    })
    .await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(page_session(&app.client, &app.base, "test", KEY).await);
    }
    // X-Forwarded-For is ignored unless trusted: every request is 127.0.0.1.
    let (statuses, refused) = burst(
        &app,
        10,
        |i| sessions[i].clone(),
        |i| Some(format!("10.0.0.{i}")),
    )
    .await;
    assert_refused_after(&statuses, 5);
    assert_limit_headers(&refused.expect("a refusal"), "5", "ip");
    assert_eq!(app.mock().requests().len(), 5);

    // Behind a trusted proxy, each client address has its own bucket.
    let proxied = app_with(Script::words("ok", 1), |s| {
        s.limits.requests_per_minute_per_ip = 5;
        s.limits.trust_forwarded_for = true;
    })
    .await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(page_session(&proxied.client, &proxied.base, "test", KEY).await);
    }
    let (statuses, _) = burst(
        &proxied,
        10,
        |i| sessions[i].clone(),
        |i| Some(format!("10.0.0.{}, 127.0.0.1", i % 2)),
    )
    .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (statuses, _) = burst(
        &proxied,
        2,
        |i| sessions[i].clone(),
        |_| Some("10.0.0.0".into()),
    )
    .await;
    assert_eq!(statuses, [429, 429]);
}

#[tokio::test]
async fn a_widget_overrides_the_server_limits() {
    let app = app_with(Script::words("ok", 1), |s| {
        s.widgets[0].limits = WidgetLimits {
            requests_per_minute_per_session: Some(2),
            ..Default::default()
        }
    })
    .await;
    let session = app.session.clone();
    let (statuses, _) = burst(&app, 4, |_| session.clone(), |_| None).await;
    assert_refused_after(&statuses, 2);
}

#[tokio::test]
async fn too_many_streams_at_once_for_one_session_is_a_429_until_one_ends() {
    let app = app_with(Script::numbered(500, 20), |s| {
        s.limits.concurrent_streams_per_session = 2
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let r = post(&app, &app.session, None, json!({"message": "long"})).await;
        assert_eq!(r.status(), 200);
        let mut reader = EventReader::new(r);
        let Some(StreamEvent::Meta(meta)) = reader.next().await else {
            panic!("no meta");
        };
        open.push((reader, meta.message_id));
    }
    let r = post(&app, &app.session, None, json!({"message": "third"})).await;
    let headers = r.headers().clone();
    assert_eq!(api_error(r).await, (429, "rate_limited".into()));
    assert_limit_headers(&headers, "2", "streams");
    assert_eq!(app.mock().requests().len(), 2);
    // Another session has its own slots.
    let other = page_session(&app.client, &app.base, "test", KEY).await;
    let r = post(&app, &other, None, json!({"message": "mine"})).await;
    assert_eq!(r.status(), 200);
    drop(r);
    // One ends (the visitor stops it; one that merely loses its reader
    // goes on for the resume grace): its slot comes back.
    let (reader, id) = open.pop().expect("two open");
    let stopped = app
        .client
        .post(app.url(&format!("/api/v1/chat/{id}/stop")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .send()
        .await
        .expect("sent");
    assert_eq!(stopped.status(), 204);
    drop(reader);
    let mut status = 0;
    for _ in 0..50 {
        let r = post(&app, &app.session, None, json!({"message": "now?"})).await;
        status = r.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_500_turn_conversation_is_trimmed_to_the_history_budget() {
    let app = app_with(Script::words("Fine, thanks. ", 0), |s| {
        s.chat.history_messages = 100_000;
        s.widgets[0].limits = WidgetLimits {
            history_tokens: Some(300),
            ..Default::default()
        };
    })
    .await;
    let mut conversation: Option<String> = None;
    for i in 0..500 {
        let mut body = json!({"message": format!("Question number {i}: how are you today?")});
        if let Some(c) = &conversation {
            body["conversation_id"] = json!(c);
        }
        let events = EventReader::new(post(&app, &app.session, None, body).await)
            .collect()
            .await;
        assert!(
            matches!(events.last(), Some(StreamEvent::Done(_))),
            "turn {i}"
        );
        if let StreamEvent::Meta(m) = &events[0] {
            conversation = Some(m.conversation_id.clone());
        }
    }
    let requests = app.mock().requests();
    assert_eq!(requests.len(), 500);
    for (i, r) in requests.iter().enumerate() {
        assert!(
            r["max_tokens"].as_u64().is_some_and(|n| n > 0),
            "turn {i}: {r}"
        );
    }
    let last = &requests[499];
    let messages = last["messages"].as_array().expect("messages");
    // System prompt first, the question last, the newest history between.
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(
        messages.last().map(|m| m["content"].clone()),
        Some(json!("Question number 499: how are you today?"))
    );
    let history = &messages[1..messages.len() - 1];
    let chars: usize = history
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().chars().count())
        .sum();
    let estimate = chars.div_ceil(4) + 4 * history.len();
    assert!(
        estimate <= 300,
        "history of {} messages, ~{estimate} tokens",
        history.len()
    );
    assert!(
        history.len() >= 10,
        "only {} earlier messages kept",
        history.len()
    );
    assert_eq!(
        history[history.len() - 2]["content"],
        "Question number 498: how are you today?"
    );
    assert_eq!(history[history.len() - 1]["content"], "Fine, thanks. ");
}

/// The stored answers of the test widget's newest conversation.
async fn stored_answers(app: &TestApp, db: &std::path::Path) -> Vec<porthole::store::AdminMessage> {
    let _ = app;
    let store = crate::helpers::open_store(db).await;
    let (conversations, _) = store.conversations("test", 1, None).await.expect("list");
    store
        .conversation_messages("test", &conversations[0].id, 100, 0)
        .await
        .expect("read")
        .expect("exists")
        .into_iter()
        .filter(|m| m.role == protocol::widget::Role::Assistant)
        .collect()
}

#[tokio::test]
async fn the_token_budget_ends_an_answer_then_refuses_before_upstream() {
    let mut db = std::path::PathBuf::new();
    // 60 words of 5 characters: about 75 completion tokens.
    let long: String = (0..60).map(|i| format!("w{i:03} ")).collect();
    let app = app_with(Script::words(&long, 1), |s| {
        s.widgets[0].limits = WidgetLimits {
            daily_tokens: Some(100),
            ..Default::default()
        };
        db = s.store.path.clone();
    })
    .await;
    // First answer: 10 prompt + 60 completion tokens (the mock's count).
    let first = EventReader::new(post(&app, &app.session, None, json!({"message": "one"})).await)
        .collect()
        .await;
    assert!(
        matches!(first.last(), Some(StreamEvent::Done(_))),
        "{first:?}"
    );
    // Second: 30 tokens left, so it is cut with budget_exceeded.
    let second = EventReader::new(post(&app, &app.session, None, json!({"message": "two"})).await)
        .collect()
        .await;
    match second.last() {
        Some(StreamEvent::Error(e)) => assert_eq!(e.code.as_str(), "budget_exceeded"),
        other => panic!("expected budget_exceeded, got {other:?}"),
    }
    let partial = text_of(&second);
    assert!(
        !partial.is_empty() && partial.len() < long.len(),
        "{partial:?}"
    );
    // Third: refused before anything is stored or asked.
    let r = post(&app, &app.session, None, json!({"message": "three"})).await;
    let retry = r.headers()["retry-after"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(api_error(r).await, (429, "budget_exceeded".into()));
    assert!(retry.parse::<u64>().is_ok_and(|s| s <= 86_400), "{retry}");
    assert_eq!(app.mock().requests().len(), 2);

    let answers = stored_answers(&app, &db).await;
    let last = answers.last().expect("answers");
    assert_eq!(last.status, protocol::widget::MessageStatus::Interrupted);
    assert_eq!(last.content, partial);
    assert!(
        last.completion_tokens.is_some_and(|n| n > 0),
        "usage recorded: {last:?}"
    );
}

#[tokio::test]
async fn a_visitor_leaving_after_two_chunks_closes_upstream_and_records_partial_usage() {
    let mut db = std::path::PathBuf::new();
    let app = app_with(Script::numbered(1_000, 30), |s| {
        db = s.store.path.clone();
        s.chat.resume_grace_secs = 0;
    })
    .await;
    let r = post(&app, &app.session, None, json!({"message": "go on"})).await;
    let mut reader = EventReader::new(r);
    let mut chunks = 0;
    while chunks < 2 {
        if let Some(StreamEvent::Chunk(_)) = reader.next().await {
            chunks += 1;
        }
    }
    let left = std::time::Instant::now();
    drop(reader);
    assert!(
        app.mock()
            .wait_for(Duration::from_secs(1), |s| s.client_closed >= 1)
            .await,
        "upstream closed within 1 s"
    );
    assert!(left.elapsed() < Duration::from_secs(1));
    // The partial answer and its (estimated) usage are stored.
    let mut answer = None;
    for _ in 0..50 {
        let answers = stored_answers(&app, &db).await;
        if answers
            .last()
            .is_some_and(|a| a.status == protocol::widget::MessageStatus::Interrupted)
        {
            answer = answers.last().cloned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = answer.expect("the partial answer is stored as interrupted");
    assert!(answer.content.starts_with("tok0 tok1"), "{answer:?}");
    assert!(answer.prompt_tokens.is_some_and(|n| n > 0), "{answer:?}");
    assert!(
        answer.completion_tokens.is_some_and(|n| n > 0),
        "{answer:?}"
    );
}

#[tokio::test]
async fn limits_are_set_per_widget_through_the_config_file_too() {
    let toml = "[[widgets]]\nid = \"a\"\npublic_key = \"pk_aaa\"\n[widgets.limits]\ndaily_tokens = 5\nrequests_per_minute_per_ip = 3\n";
    let s = Settings::from_toml(toml).expect("parses");
    s.validate().expect("valid");
    let w: &WidgetSettings = &s.widgets[0];
    assert_eq!(w.limits.daily_tokens, Some(5));
    assert_eq!(w.limits.requests_per_minute_per_ip, Some(3));
    let bad = "[[widgets]]\nid = \"a\"\npublic_key = \"pk_aaa\"\n[widgets.limits]\nrequests_per_minute_per_ip = 0\n";
    let e = Settings::from_toml(bad)
        .expect("parses")
        .validate()
        .unwrap_err();
    assert!(
        e.to_string().contains("limits.requests_per_minute_per_ip"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_answers_reserve_their_tokens_before_the_model_and_never_overspend_the_budget() {
    let mut db = std::path::PathBuf::new();
    // 60 words: about 75 completion tokens; slow enough that all overlap.
    let long: String = (0..60).map(|i| format!("w{i:03} ")).collect();
    let app = app_with(Script::words(&long, 10), |s| {
        s.widgets[0].limits = WidgetLimits {
            daily_tokens: Some(3_000),
            ..Default::default()
        };
        s.widgets[0].max_tokens = Some(200);
        db = s.store.path.clone();
    })
    .await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let r = post(
                &app,
                &app.session,
                None,
                json!({"message": format!("question {i}")}),
            )
            .await;
            if r.status() == 200 {
                let events = EventReader::new(r).collect().await;
                Ok(events)
            } else {
                Err(api_error(r).await)
            }
        }));
    }
    let (mut answered, mut refused) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(events) => {
                // Whole, or (the last reservations, smaller than asked)
                // cut at what they reserved.
                match events.last() {
                    Some(StreamEvent::Done(_)) => {}
                    Some(StreamEvent::Error(e)) => assert_eq!(e.code.as_str(), "budget_exceeded"),
                    other => panic!("{other:?}"),
                }
                answered += 1;
            }
            Err(e) => {
                assert_eq!(e, (429, "budget_exceeded".into()));
                refused += 1;
            }
        }
    }
    assert!(
        answered >= 1 && refused >= 1,
        "{answered} answered, {refused} refused"
    );
    let store = crate::helpers::open_store(&db).await;
    let today = porthole::limits::day_string(porthole::limits::Ledger::today().0);
    let widget = porthole::tenants::WidgetId::parse("test").expect("id");
    let (spent, _) = porthole::store::ConversationStore::spent(&*store, &widget, &today)
        .await
        .expect("spent");
    assert!(
        spent <= 3_000,
        "{answered} answers spent {spent} tokens of a 3,000-token budget"
    );
    assert!(spent > 0);
}
