//! Two replicas sharing Redis (and, under `PORTHOLE_TEST_STORE=postgres`,
//! one PostgreSQL server): a rate limit and a token budget hold across
//! both, and a replica whose Redis is unreachable refuses to spend blind.

use mock_upstream::{MockUpstream, Script};
use porthole::Settings;
use porthole::limits::WidgetLimits;
use protocol::StreamEvent;
use serde_json::json;

use crate::helpers::{EventReader, KEY, TestApp, api_error, open_store, spawn_app, test_settings};

/// Settings of one replica: Redis at `redis` under `prefix`, the session
/// secret both replicas share, no limits but what `tweak` sets.
fn replica(upstream: &str, redis: &str, prefix: &str, tweak: &impl Fn(&mut Settings)) -> Settings {
    let mut s = test_settings(Some(upstream.to_owned()));
    s.redis.url = Some(redis.to_owned());
    s.redis.key_prefix = prefix.to_owned();
    s.session.secret = Some("a secret both replicas share, 32+ bytes".to_owned().into());
    s.limits.requests_per_minute_per_key = 10_000;
    s.limits.requests_per_minute_per_session = 10_000;
    s.limits.requests_per_minute_per_ip = 10_000;
    s.limits.concurrent_streams_per_session = 100;
    s.limits.daily_tokens = 0;
    s.limits.monthly_tokens = 0;
    tweak(&mut s);
    s
}

/// Two replicas on one Redis, each with its own mock upstream and store
/// (whose database paths come with them).
async fn two_replicas(
    script: Script,
    tweak: impl Fn(&mut Settings),
) -> Option<([TestApp; 2], [std::path::PathBuf; 2])> {
    let redis = porthole::testing::service_url("PORTHOLE_TEST_REDIS_URL", "Redis")?;
    let prefix = format!("test:{}:", porthole::ids::new_id("replicas"));
    let (mut apps, mut dbs) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let mock = MockUpstream::start(script.clone()).await.expect("mock");
        let s = replica(&mock.base_url(), &redis, &prefix, &tweak);
        dbs.push(s.store.path.clone());
        apps.push(spawn_app(s, Some(mock), false).await);
    }
    Some((apps.try_into().ok()?, dbs.try_into().ok()?))
}

async fn ask(app: &TestApp, message: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/chat"))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .json(&json!({ "message": message }))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn a_keys_rate_limit_of_n_admits_n_across_two_replicas() {
    let Some(([a, b], _)) = two_replicas(Script::words("Short answer.", 1), |s| {
        s.limits.requests_per_minute_per_key = 6;
    })
    .await
    else {
        return;
    };
    let (mut admitted, mut refused) = (0, 0);
    for i in 0..12 {
        let r = ask(if i % 2 == 0 { &a } else { &b }, &format!("q{i}")).await;
        if r.status() == 200 {
            let _ = r.text().await;
            admitted += 1;
        } else {
            assert_eq!(r.headers()["ratelimit-scope"], "key");
            assert_eq!(api_error(r).await, (429, "rate_limited".into()));
            refused += 1;
        }
    }
    assert_eq!(
        (admitted, refused),
        (6, 6),
        "6 a minute for the key, on both together"
    );
}

#[tokio::test]
async fn concurrent_answers_on_two_replicas_never_overspend_a_shared_budget() {
    // 60 words: about 75 completion tokens, over six seconds: every request
    // arrives (even on a slow, loaded machine) while the first answers
    // still hold their tokens.
    let long: String = (0..60).map(|i| format!("w{i:03} ")).collect();
    let Some(([a, b], dbs)) = two_replicas(Script::words(&long, 100), |s| {
        s.widgets[0].limits = WidgetLimits {
            daily_tokens: Some(3_000),
            ..Default::default()
        };
        s.widgets[0].max_tokens = Some(200);
    })
    .await
    else {
        return;
    };
    let apps = std::sync::Arc::new([a, b]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let apps = apps.clone();
        tasks.push(tokio::spawn(async move {
            let r = ask(&apps[i % 2], &format!("question {i}")).await;
            if r.status() == 200 {
                Ok(EventReader::new(r).collect().await)
            } else {
                Err(api_error(r).await)
            }
        }));
    }
    let (mut answered, mut refused) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(events) => {
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
    // Each answer admitted holds its prompt and 200 completion tokens (the
    // last one granted may hold less): one 3,000-token budget for both
    // replicas admits at most 3,000 / 200 + 1 at once, not twice that.
    assert!(
        answered <= 3_000 / 200 + 1,
        "{answered} answers admitted at once against one 3,000-token budget"
    );
    // What both replicas stored, together.
    let today = porthole::limits::day_string(porthole::limits::Ledger::today().0);
    let widget = porthole::tenants::WidgetId::parse("test").expect("id");
    let mut spent = 0;
    for db in &dbs {
        let store = open_store(db).await;
        spent += porthole::store::ConversationStore::spent(&*store, &widget, &today)
            .await
            .expect("spent")
            .0;
    }
    assert!(
        spent > 0 && spent <= 3_000,
        "{answered} answers on two replicas spent {spent} tokens of a 3,000-token budget"
    );
}

#[tokio::test]
async fn without_redis_limits_go_local_and_a_budget_refuses_rather_than_spend_blind() {
    if porthole::testing::service_url("PORTHOLE_TEST_REDIS_URL", "Redis").is_none() {
        return;
    }
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let dead = format!("redis://127.0.0.1:{port}/");
    let mock = MockUpstream::start(Script::words("Still here.", 1))
        .await
        .expect("mock");
    let s = replica(&mock.base_url(), &dead, "dead:", &|_: &mut Settings| {});
    let app = spawn_app(s, Some(mock), false).await;
    // No budget: answered, with this replica's own limits.
    let r = ask(&app, "hello").await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await;
    let ready: serde_json::Value = app.get("/ready").await.json().await.expect("json");
    assert!(
        ready["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("degraded"),
        "{ready}"
    );
    // A budget: refused before anything is stored or asked.
    let mock = MockUpstream::start(Script::words("Never.", 1))
        .await
        .expect("mock");
    let s = replica(&mock.base_url(), &dead, "dead:", &|s: &mut Settings| {
        s.limits.daily_tokens = 10_000;
    });
    let app = spawn_app(s, Some(mock), false).await;
    let r = ask(&app, "hello").await;
    assert_eq!(r.headers()["retry-after"], "5");
    assert_eq!(api_error(r).await, (503, "budget_unavailable".into()));
    assert_eq!(app.mock().stats().opened, 0, "the model was never asked");
}

/// Two `porthole serve` processes on one PostgreSQL schema and one Redis,
/// nginx round robin in front with the example configuration, one mock
/// upstream: the deployment of deploy/README.md, in miniature.
struct Deployment {
    replicas: Vec<(tokio::process::Child, String)>,
    nginx: crate::nginx::Nginx,
    mock: MockUpstream,
}

async fn deployment(script: Script) -> Option<Deployment> {
    let redis = porthole::testing::service_url("PORTHOLE_TEST_REDIS_URL", "Redis")?;
    let pg = porthole::store::postgres::testing::server_url()?;
    let dir = crate::helpers::temp_dir("deployment");
    let schema = format!("deploy_{}", porthole::ids::new_id("d"));
    let store = porthole::store::postgres::testing::fresh_schema(&pg, &schema)
        .await
        .expect("schema");
    let mock = MockUpstream::start(script).await.expect("mock");
    let config = dir.join("porthole.toml");
    std::fs::write(
        &config,
        format!(
            "addr = \"127.0.0.1:0\"\n\
             [store]\nurl = \"{store}\"\n\
             [redis]\nurl = \"{redis}\"\nkey_prefix = \"{schema}:\"\n\
             [chat]\nanswer_lease_secs = 3\n\
             [upstream]\nprovider = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-test\"\nfirst_token_timeout_ms = 2000\n\
             [[widgets]]\nid = \"test\"\npublic_key = \"{KEY}\"\n\
             [[widgets]]\nid = \"limited\"\npublic_key = \"pk_limited\"\n\
             [widgets.limits]\nrequests_per_minute_per_key = 6\n",
            mock.base_url()
        ),
    )
    .expect("config");
    // As the README says: migrate first, then start the replicas.
    let (ok, out, err) = crate::helpers::cli(&config, &["migrate"]);
    assert!(ok, "{out}{err}");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(crate::helpers::start_binary(&config).await);
    }
    let ports: Vec<u16> = replicas
        .iter()
        .map(|(_, base)| {
            base.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port")
        })
        .collect();
    let nginx = crate::nginx::start_nginx(&ports).await;
    Some(Deployment {
        replicas,
        nginx,
        mock,
    })
}

async fn ask_at(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    session: &str,
    body: serde_json::Value,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/chat"))
        .header("x-api-key", key)
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .expect("sent")
}

/// Resumes answer `message` at `base` after event `seen`.
async fn resume_at(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    message: &str,
    seen: u64,
) -> reqwest::Response {
    client
        .get(format!("{base}/api/v1/chat/{message}/stream"))
        .header("x-api-key", KEY)
        .header("last-event-id", seen.to_string())
        .bearer_auth(session)
        .send()
        .await
        .expect("sent")
}

/// Chat requests a replica has counted, from its own /metrics.
async fn chats_served(client: &reqwest::Client, base: &str) -> f64 {
    metric(client, base, "porthole_chat_requests_total").await
}

/// The sum of a metric's samples on a replica's /metrics.
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn behind_nginx_two_replicas_share_conversations_limits_and_a_dead_ones_answers() {
    let Some(mut d) = deployment(Script::words("Fine, thanks.", 1)).await else {
        return;
    };
    let client = reqwest::Client::new();
    let base = d.nginx.base.clone();
    let session = crate::helpers::page_session(&client, &base, "test", KEY).await;

    // One conversation, four turns, nginx taking turns between replicas:
    // each turn's prompt carries every earlier turn, whoever stored it.
    let mut conversation: Option<String> = None;
    for turn in 0..4 {
        let mut body = json!({ "message": format!("Question {turn}") });
        if let Some(c) = &conversation {
            body["conversation_id"] = json!(c);
        }
        let r = ask_at(&client, &base, KEY, &session, body).await;
        assert_eq!(r.status(), 200, "turn {turn}");
        let events = EventReader::new(r).collect().await;
        assert!(
            matches!(events.last(), Some(StreamEvent::Done(_))),
            "{events:?}"
        );
        if let Some(StreamEvent::Meta(m)) = events.first() {
            conversation = Some(m.conversation_id.clone());
        }
    }
    let last = d.mock.requests().pop().expect("requests");
    let messages = last["messages"].as_array().expect("messages");
    let turns: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        turns,
        [
            "Question 0",
            "Fine, thanks.",
            "Question 1",
            "Fine, thanks.",
            "Question 2",
            "Fine, thanks.",
            "Question 3"
        ],
        "{last}"
    );
    for (_, base) in &d.replicas {
        assert!(
            chats_served(&client, base).await >= 1.0,
            "nginx used both replicas"
        );
    }

    // An answer dropped after five chunks resumes through nginx; asked
    // twice, round robin lands once on each replica: both give exactly the
    // rest, and the model was called once.
    let script = Script::numbered(40, 25);
    let expected: String = script.tokens.concat();
    d.mock.set_script(script);
    let calls = d.mock.stats().opened;
    let r = ask_at(&client, &base, KEY, &session, json!({"message": "A story"})).await;
    let mut reader = EventReader::new(r);
    let first = crate::resume::read_chunks(&mut reader, 5).await;
    let seen = reader.ids.last().copied().expect("ids");
    let message = crate::resume::message_id(&first);
    drop(reader);
    for _ in 0..2 {
        let r = resume_at(&client, &base, &session, &message, seen).await;
        assert_eq!(r.status(), 200);
        let mut rest = EventReader::new(r);
        let mut all = first.clone();
        all.extend(rest.rest().await);
        assert!(matches!(all.last(), Some(StreamEvent::Done(_))), "{all:?}");
        assert_eq!(crate::helpers::text_of(&all), expected);
        assert_eq!(rest.ids.first(), Some(&(seen + 1)), "no event twice");
    }
    assert_eq!(d.mock.stats().opened, calls + 1, "one model call");
    for (_, base) in &d.replicas {
        assert!(
            metric(&client, base, "porthole_resumes_total").await >= 1.0,
            "each replica served one resume"
        );
    }

    // A key limit of 6 a minute admits 6 through both replicas, not 12.
    d.mock.set_script(Script::words("Fine, thanks.", 1));
    let limited = crate::helpers::page_session(&client, &base, "limited", "pk_limited").await;
    let mut admitted = 0;
    for i in 0..12 {
        let r = ask_at(
            &client,
            &base,
            "pk_limited",
            &limited,
            json!({"message": format!("q{i}")}),
        )
        .await;
        if r.status() == 200 {
            let _ = r.text().await;
            admitted += 1;
        } else {
            assert_eq!(r.headers()["ratelimit-scope"], "key");
            assert_eq!(api_error(r).await, (429, "rate_limited".into()));
        }
    }
    assert_eq!(admitted, 6);

    // kill -9 of the replica producing an answer: the other marks it
    // interrupted, with what was saved, within the lease (3 s) and a sweep.
    d.mock.set_script(Script::numbered(1_000, 50));
    let (_, first) = &d.replicas[0];
    let r = ask_at(
        &client,
        first,
        KEY,
        &session,
        json!({"message": "A long one", "conversation_id": conversation}),
    )
    .await;
    let mut reader = EventReader::new(r);
    let mut message = String::new();
    let mut chunks = 0;
    while chunks < 30 {
        match reader.next().await {
            Some(StreamEvent::Chunk(_)) => chunks += 1,
            Some(StreamEvent::Meta(m)) => message = m.message_id,
            Some(_) => {}
            None => panic!("the answer ended after {chunks} chunks"),
        }
    }
    // Past a checkpoint, then the hard way down.
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let (mut dead, _) = d.replicas.remove(0);
    dead.start_kill().expect("SIGKILL");
    let _ = dead.wait().await;
    let seen = reader.ids.last().copied().expect("ids");
    drop(reader);
    let killed = tokio::time::Instant::now();
    let (_, survivor) = &d.replicas[0];
    // The visitor resumes on the survivor: the rest of what the dead
    // replica mirrored, then a terminal `interrupted` once its `alive` key
    // has expired (5 s), never a spinner.
    let r = resume_at(&client, survivor, &session, &message, seen).await;
    assert_eq!(r.status(), 200);
    let mut resumed = EventReader::new(r);
    let rest = resumed.rest().await;
    match rest.last() {
        Some(StreamEvent::Error(e)) => assert_eq!(e.code.as_str(), "interrupted"),
        other => panic!("{other:?}"),
    }
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(5 + 3),
        "the interruption took {:?}",
        killed.elapsed()
    );
    assert!(
        resumed.ids.first().is_none_or(|first| *first == seen + 1),
        "no event twice: {:?}",
        resumed.ids
    );
    let conversation = conversation.expect("conversation");
    loop {
        let history: serde_json::Value = client
            .get(format!("{survivor}/api/v1/conversations/{conversation}"))
            .header("x-api-key", KEY)
            .bearer_auth(&session)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("history");
        let answer = &history["messages"][9];
        if answer["status"] != "streaming" {
            assert_eq!(answer["status"], "interrupted", "{history}");
            assert!(
                answer["content"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("tok0 tok1 tok2"),
                "the saved part is kept: {answer}"
            );
            break;
        }
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(3 + 2 + 3),
            "still streaming past the lease and a sweep: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And the conversation goes on, through nginx, on the survivor.
    let r = ask_at(
        &client,
        &base,
        KEY,
        &session,
        json!({"message": "Again", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_answer_dropped_on_one_replica_resumes_and_stops_on_the_other() {
    let script = Script::numbered(40, 25);
    let expected: String = script.tokens.concat();
    let Some(([a, b], _)) = two_replicas(script, |_| {}).await else {
        return;
    };
    use crate::resume::{message_id, read_chunks, resume, stop};
    // Five chunks on A, then the connection drops.
    let mut reader = EventReader::new(ask(&a, "Tell me a story").await);
    let first = read_chunks(&mut reader, 5).await;
    let first_ids = reader.ids.clone();
    let id = message_id(&first);
    drop(reader);
    // Back through B (a's session: the replicas share the signing secret).
    let r = resume(&b, &a.session, &id, first_ids.last().copied()).await;
    assert_eq!(r.status(), 200);
    let mut rest = EventReader::new(r);
    let later = rest.rest().await;
    assert!(
        matches!(later.last(), Some(StreamEvent::Done(_))),
        "{later:?}"
    );
    let mut all = first.clone();
    all.extend(later);
    assert_eq!(crate::helpers::text_of(&all), expected);
    let ids: Vec<u64> = first_ids.iter().chain(&rest.ids).copied().collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids go up by one with no gap or repeat: {ids:?}"
    );
    let (sa, sb) = (a.mock().stats(), b.mock().stats());
    assert_eq!(
        (sa.opened, sa.completed, sb.opened),
        (1, 1, 0),
        "the model was called once"
    );

    // Another visitor, or an id nobody has, is refused on B too.
    let stranger = crate::helpers::page_session(&b.client, &b.base, "test", KEY).await;
    assert_eq!(resume(&b, &stranger, &id, None).await.status(), 404);
    assert_eq!(resume(&b, &a.session, "msg_nope", None).await.status(), 404);

    // Stop pressed on B stops the answer A runs, within a second or two
    // (A polls for it every second), not after the ten seconds it would take.
    a.mock().set_script(Script::numbered(400, 25));
    let mut reader = EventReader::new(ask(&a, "Another story").await);
    let first = read_chunks(&mut reader, 3).await;
    let id = message_id(&first);
    let asked = tokio::time::Instant::now();
    let b_as_a = TestApp {
        session: a.session.clone(),
        ..b
    };
    assert_eq!(stop(&b_as_a, &id).await.status(), 204);
    let mut last = None;
    while let Some(e) = reader.next().await {
        last = Some(e);
    }
    match last {
        Some(StreamEvent::Done(d)) => assert_eq!(d.finish_reason, "stopped"),
        other => panic!("{other:?}"),
    }
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn a_reader_on_the_other_replica_keeps_the_answer_going_past_the_grace() {
    // Three seconds of answer, one second of grace.
    let script = Script::numbered(120, 25);
    let expected: String = script.tokens.concat();
    let Some(([a, b], _)) = two_replicas(script, |s| s.chat.resume_grace_secs = 1).await else {
        return;
    };
    use crate::resume::{message_id, read_chunks, resume};
    let mut reader = EventReader::new(ask(&a, "A long story").await);
    let first = read_chunks(&mut reader, 3).await;
    let seen = reader.ids.last().copied();
    let id = message_id(&first);
    drop(reader);
    // Nobody reads on A now; the visitor reads on B for the rest.
    let mut rest = EventReader::new(resume(&b, &a.session, &id, seen).await);
    let mut all = first.clone();
    all.extend(rest.rest().await);
    assert!(
        matches!(all.last(), Some(StreamEvent::Done(_))),
        "{:?}",
        all.last()
    );
    assert_eq!(crate::helpers::text_of(&all), expected);
}
