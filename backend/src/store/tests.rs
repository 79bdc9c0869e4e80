//! The same behaviour from every store: each test runs against SQLite and,
//! when `PORTHOLE_TEST_DATABASE_URL` names a server, PostgreSQL (in a fresh
//! schema of its own). `scripts/test` starts PostgreSQL and sets
//! `PORTHOLE_REQUIRE_SERVICES`, under which a missing server fails the test
//! rather than skipping it.

use std::sync::Arc;
use std::time::SystemTime;

use super::knowledge::{NewChunk, NewPage, NewSource, SourceKind, SyncStatus};
use super::rows::now_ms;
use super::*;
use crate::ids::new_id;
use crate::knowledge::{index_terms, question_terms};
use crate::tenants::{WidgetDef, WidgetId};

/// A database for one test, which can be opened more than once (as a
/// second process would).
struct TestDb(Location);

impl std::fmt::Display for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TestDb {
    /// A fresh SQLite file and, when a server is configured, a fresh
    /// PostgreSQL schema, both named after `test`.
    async fn each(test: &str) -> Vec<TestDb> {
        let dir = std::env::temp_dir().join(format!("porthole-store-{}", new_id(test)));
        let mut dbs = vec![TestDb(Location::Sqlite(dir.join("sub/porthole.db")))];
        if let Some(url) = postgres::testing::server_url() {
            let url = postgres::testing::fresh_schema(&url, &format!("unit_{test}"))
                .await
                .expect("a fresh PostgreSQL schema");
            dbs.push(TestDb(Location::Postgres(url)));
        }
        dbs
    }

    async fn open(&self) -> Arc<dyn Store> {
        open(&self.0).await.expect("the store opens")
    }
}

pub(super) fn me() -> Owner {
    Owner {
        visitor: "vis_me".into(),
        user: None,
    }
}

pub(super) fn user(content: &str) -> StoredMessage {
    StoredMessage {
        id: new_id("msg"),
        role: Role::User,
        content: content.into(),
        status: MessageStatus::Complete,
        usage: None,
        created_at: SystemTime::now(),
        sources: Vec::new(),
        rating: None,
    }
}

async fn with_widgets(store: &dyn Store, widgets: &[&str]) {
    for w in widgets {
        let def = WidgetDef::new(WidgetId::parse(w).unwrap(), w, "admin");
        store
            .create_widget(&def, &KeyHash::of(&format!("pk_{w}")))
            .await
            .unwrap();
    }
}

async fn page(store: &dyn Store, widget: &str, url: &str, chunks: &[(&str, &str)]) {
    let source = format!("src_{}", widget.replace('-', "dash"));
    let _ = store
        .add_source(&NewSource {
            id: source.clone(),
            widget_id: widget.into(),
            kind: SourceKind::Text,
            name: "t".into(),
            url: None,
            body: None,
            sync_every_secs: None,
        })
        .await;
    let page = NewPage {
        url: url.into(),
        title: String::new(),
        etag: None,
        last_modified: None,
        content_hash: url.into(),
        chunks: chunks
            .iter()
            .map(|(h, t)| NewChunk {
                heading: (*h).into(),
                anchor: None,
                page_no: None,
                text: (*t).into(),
                terms: index_terms(h, t),
            })
            .collect(),
    };
    store.put_page(&source, widget, &page).await.unwrap();
}

#[tokio::test]
async fn conversations_belong_to_their_widget_and_keep_their_order() {
    for db in TestDb::each("order").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        let a = WidgetId::parse("a").unwrap();
        let b = WidgetId::parse("b").unwrap();
        let conv = store
            .start_turn(&a, &me(), None, user("m0"), &new_id("msg"))
            .await
            .unwrap();
        for i in 1..3 {
            let again = store
                .start_turn(
                    &a,
                    &me(),
                    Some(&conv),
                    user(&format!("m{i}")),
                    &new_id("msg"),
                )
                .await
                .unwrap();
            assert_eq!(again, conv);
        }
        let got = store.messages(&a, &me(), &conv).await.unwrap().unwrap();
        let texts: Vec<_> = got.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            texts,
            [
                (Role::User, "m0"),
                (Role::Assistant, ""),
                (Role::User, "m1"),
                (Role::Assistant, ""),
                (Role::User, "m2"),
                (Role::Assistant, ""),
            ]
        );
        assert!(store.messages(&b, &me(), &conv).await.unwrap().is_none());
        assert!(
            store
                .messages(&a, &me(), "conv_nope")
                .await
                .unwrap()
                .is_none()
        );
        // Another widget's conversation, or none: refused, and nothing written.
        for (widget, id) in [(&b, conv.as_str()), (&a, "conv_nope")] {
            let refused = store
                .start_turn(widget, &me(), Some(id), user("x"), &new_id("msg"))
                .await;
            assert!(
                matches!(refused, Err(StoreError::NoSuchConversation(_))),
                "{refused:?}"
            );
        }
        assert_eq!(
            store
                .messages(&a, &me(), &conv)
                .await
                .unwrap()
                .unwrap()
                .len(),
            6
        );
    }
}

#[tokio::test]
async fn only_the_visitor_or_the_verified_user_reads_a_conversation() {
    for db in TestDb::each("owner").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        let w = WidgetId::parse("w").unwrap();
        let anon = |v: &str| Owner {
            visitor: v.into(),
            user: None,
        };
        let alice = |v: &str| Owner {
            visitor: v.into(),
            user: Some("alice".into()),
        };
        let mine = store
            .start_turn(&w, &anon("vis_a"), None, user("q"), &new_id("msg"))
            .await
            .unwrap();
        let hers = store
            .start_turn(&w, &alice("vis_a"), None, user("q"), &new_id("msg"))
            .await
            .unwrap();
        let read = |o: Owner, c: String| {
            let store = store.clone();
            let w = w.clone();
            async move { store.messages(&w, &o, &c).await.unwrap().is_some() }
        };
        assert!(read(anon("vis_a"), mine.clone()).await);
        assert!(!read(anon("vis_b"), mine.clone()).await);
        // Alice on another device reads hers; the same browser, anonymous
        // again (logged out, or a wrong hash), does not.
        assert!(read(alice("vis_z"), hers.clone()).await);
        assert!(!read(anon("vis_a"), hers.clone()).await);
        let bob = Owner {
            visitor: "vis_a".into(),
            user: Some("bob".into()),
        };
        assert!(!read(bob.clone(), hers.clone()).await);
        // Her anonymous conversation stays hers once she is identified.
        assert!(read(alice("vis_a"), mine.clone()).await);
        let refused = store
            .start_turn(&w, &bob, Some(&hers), user("x"), &new_id("msg"))
            .await;
        assert!(matches!(refused, Err(StoreError::NoSuchConversation(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_turns_is_written_together_and_each_conversation_stays_in_order() {
    for db in TestDb::each("burst").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        let w = WidgetId::parse("w").unwrap();
        let shared = store
            .start_turn(&w, &me(), None, user("first"), &new_id("msg"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (store, w, shared) = (store.clone(), w.clone(), shared.clone());
            tasks.push(tokio::spawn(async move {
                // Every third turn continues the shared conversation.
                let conversation = (i % 3 == 0).then_some(shared);
                store
                    .start_turn(
                        &w,
                        &me(),
                        conversation.as_deref(),
                        user(&format!("q{i}")),
                        &new_id("msg"),
                    )
                    .await
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().expect("every turn is stored"));
        }
        assert_eq!(ids.len(), 41, "40 new conversations and the shared one");
        let got = store.messages(&w, &me(), &shared).await.unwrap().unwrap();
        assert_eq!(got.len(), 2 * 21);
        // Question, answer, question, answer…: each turn's pair is adjacent.
        for pair in got.chunks(2) {
            assert_eq!((pair[0].role, pair[1].role), (Role::User, Role::Assistant));
            assert_eq!(pair[1].status, MessageStatus::Streaming);
        }
    }
}

#[tokio::test]
async fn a_search_finds_one_term_or_many_and_counts_them_in_its_widget_only() {
    for db in TestDb::each("search").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        with_widgets(&*store, &["a-b", "a_b"]).await;
        page(
            &*store,
            "a-b",
            "p1",
            &[
                ("Shipping", "We ship to 40 countries."),
                ("Returns", "Free returns for 30 days."),
            ],
        )
        .await;
        page(
            &*store,
            "a_b",
            "p2",
            &[("Shipping", "Shipping is free over 50 euros.")],
        )
        .await;
        let one = store
            .search("a-b", &question_terms("shipping"), 5)
            .await
            .unwrap();
        assert_eq!(one.total_chunks, 2);
        assert_eq!(one.hits.len(), 1);
        assert_eq!(one.hits[0].heading, "Shipping");
        let term = &question_terms("shipping")[0];
        assert_eq!(one.doc_freq.get(term), Some(&1), "{:?}", one.doc_freq);
        let many = store
            .search("a-b", &question_terms("free returns and shipping"), 5)
            .await
            .unwrap();
        assert_eq!(many.hits.len(), 2);
        assert_eq!(many.hits[0].heading, "Returns");
        assert_eq!(
            many.doc_freq.get("free"),
            Some(&1),
            "a_b's chunk is not counted"
        );
        let other = store
            .search("a_b", &question_terms("returns"), 5)
            .await
            .unwrap();
        assert!(other.hits.is_empty(), "a-b's chunks never show in a_b");
        let none = store.search("a-b", &[], 5).await.unwrap();
        assert!(none.hits.is_empty());
    }
}

#[tokio::test]
async fn vectors_are_stored_per_model_searched_in_their_widget_and_kept_for_unchanged_text() {
    for db in TestDb::each("vectors").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        with_widgets(&*store, &["vec", "other"]).await;
        let chunks = [
            ("Shipping", "We ship to 40 countries."),
            ("Returns", "Free returns for 30 days."),
        ];
        page(&*store, "vec", "p1", &chunks).await;
        page(&*store, "other", "p9", &[("Shipping", "Elsewhere.")]).await;
        let todo = store.chunks_to_embed("src_vec", "m1", 10).await.unwrap();
        assert_eq!(todo.len(), 2);
        assert_eq!(todo[0].1, "Shipping\n\nWe ship to 40 countries.");
        let ids: Vec<i64> = todo.iter().map(|(id, _)| *id).collect();
        store
            .put_embeddings("m1", &[(ids[0], vec![1.0, 0.0]), (ids[1], vec![0.0, 1.0])])
            .await
            .unwrap();
        let other = store.chunks_to_embed("src_other", "m1", 10).await.unwrap();
        store
            .put_embeddings("m1", &[(other[0].0, vec![1.0, 0.0])])
            .await
            .unwrap();
        assert!(
            store
                .chunks_to_embed("src_vec", "m1", 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Another model's vectors are not this one's.
        assert_eq!(
            store
                .chunks_to_embed("src_vec", "m2", 10)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(
            store
                .nearest("vec", "m2", &[1.0, 0.0], 5)
                .await
                .unwrap()
                .is_empty()
        );

        let near = store.nearest("vec", "m1", &[0.1, 0.9], 5).await.unwrap();
        assert_eq!(near.len(), 2, "only this widget's chunks");
        assert_eq!(near[0].heading, "Returns");
        assert!((near[0].score - 0.9939).abs() < 1e-3, "{}", near[0].score);
        assert!(near[0].terms.contains("return"), "{:?}", near[0].terms);
        assert_eq!(
            store
                .nearest("vec", "m1", &[1.0, 0.0], 1)
                .await
                .unwrap()
                .len(),
            1
        );

        // The page changes one chunk: the other keeps its vector.
        page(
            &*store,
            "vec",
            "p1",
            &[chunks[0], ("Returns", "Returns are free for 60 days.")],
        )
        .await;
        let todo = store.chunks_to_embed("src_vec", "m1", 10).await.unwrap();
        assert_eq!(todo.len(), 1);
        assert!(todo[0].1.contains("60 days"), "{todo:?}");
        let info = store.source("src_vec").await.unwrap().unwrap();
        assert_eq!((info.chunks, info.chunks_embedded), (2, 1));
        // The vectors kept in memory follow: the replaced chunk's went...
        let near = store.nearest("vec", "m1", &[0.1, 0.9], 5).await.unwrap();
        assert_eq!(near.len(), 1);
        assert_eq!(near[0].heading, "Shipping");
        // ...and another process's new vector is seen at the next query.
        let cli = db.open().await;
        cli.put_embeddings("m1", &[(todo[0].0, vec![0.0, 1.0])])
            .await
            .unwrap();
        let near = store.nearest("vec", "m1", &[0.1, 0.9], 5).await.unwrap();
        assert_eq!(near.len(), 2);
        assert!(near[0].text.contains("60 days"), "{near:?}");
    }
}

#[tokio::test]
async fn a_scheduled_source_is_due_again_only_when_its_interval_has_passed() {
    for db in TestDb::each("schedule").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        with_widgets(&*store, &["sched"]).await;
        store
            .add_source(&NewSource {
                id: "src_daily".into(),
                widget_id: "sched".into(),
                kind: SourceKind::Url,
                name: "daily".into(),
                url: Some("https://example.com/".into()),
                body: None,
                sync_every_secs: Some(86_400),
            })
            .await
            .unwrap();
        let now = now_ms() as u64;
        assert_eq!(store.due_sources(now).await.unwrap(), vec!["src_daily"]);
        assert!(store.claim_source("src_daily", 60_000).await.unwrap());
        // Claimed: nobody else takes it, nor is it due.
        assert!(!store.claim_source("src_daily", 60_000).await.unwrap());
        store
            .set_progress("src_daily", 60_000, SyncStatus::Ready, 1, 1, 0, None)
            .await
            .unwrap();
        let synced = store
            .source("src_daily")
            .await
            .unwrap()
            .unwrap()
            .synced_at
            .unwrap();
        assert!(store.due_sources(now).await.unwrap().is_empty());
        assert!(!store.claim_source("src_daily", 60_000).await.unwrap());
        let day = 86_400_000;
        assert!(
            store
                .due_sources(synced + day - 1)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.due_sources(synced + day).await.unwrap(),
            vec!["src_daily"]
        );
    }
}

#[tokio::test]
async fn an_answer_ends_once_and_its_tokens_join_the_days_usage() {
    for db in TestDb::each("usage").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        let w = WidgetId::parse("w").unwrap();
        let id = new_id("msg");
        let conv = store
            .start_turn(&w, &me(), None, user("q"), &id)
            .await
            .unwrap();
        store.checkpoint_answer(&id, "part").await.unwrap();
        let usage = protocol::Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        };
        for _ in 0..2 {
            store
                .finish_answer(&id, "whole", MessageStatus::Complete, Some(usage))
                .await
                .unwrap();
        }
        store.checkpoint_answer(&id, "late").await.unwrap();
        let got = store.messages(&w, &me(), &conv).await.unwrap().unwrap();
        assert_eq!(
            (got[1].content.as_str(), got[1].status, got[1].usage),
            ("whole", MessageStatus::Complete, Some(usage))
        );
        let today = crate::limits::day_string(crate::limits::Ledger::today().0);
        assert_eq!(store.spent(&w, &today).await.unwrap(), (7, 7));
        assert_eq!(store.spent(&w, "1999-01-01").await.unwrap(), (0, 0));
        let days = store.usage_by_day("w", "2000-01-01").await.unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!((days[0].answers, days[0].total_tokens), (1, 7));
        // The admin view reads the same rows.
        let (list, next) = store.conversations("w", 10, None).await.unwrap();
        assert_eq!((list.len(), next), (1, None));
        assert_eq!((list[0].messages, list[0].completion_tokens), (2, 4));
        let msgs = store
            .conversation_messages("w", &conv, 10, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msgs[1].seq, 2);
        assert!(
            store
                .conversation_messages("other", &conv, 10, 0)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn widgets_keys_and_the_revision_read_the_same_from_every_store() {
    for db in TestDb::each("tenants").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        let r0 = store.revision().await.unwrap();
        let mut def = WidgetDef::new(WidgetId::parse("shop").unwrap(), "Shop", "admin");
        def.allowed_sites = vec!["https://b.example".into(), "https://a.example".into()];
        def.temperature = Some(0.5);
        def.max_tokens = Some(300);
        def.language.locale = "ja".into();
        def.language.translations.insert(
            "ja".into(),
            crate::tenants::i18n::Translation {
                greeting: Some("こんにちは".into()),
                starters: None,
                strings: [("send".to_owned(), "送る".to_owned())].into(),
            },
        );
        store
            .create_widget(&def, &KeyHash::of("pk_one"))
            .await
            .unwrap();
        let again = store.create_widget(&def, &KeyHash::of("pk_two")).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let got = store.widget("shop").await.unwrap().unwrap();
        assert_eq!(got.allowed_sites, def.allowed_sites, "in the order given");
        assert_eq!((got.temperature, got.max_tokens), (Some(0.5), Some(300)));
        assert_eq!(got.language, def.language);
        assert!(store.revision().await.unwrap() > r0);
        let r1 = store.revision().await.unwrap();
        assert!(
            store
                .rotate_key("shop", &KeyHash::of("pk_two"))
                .await
                .unwrap()
        );
        assert!(store.revision().await.unwrap() > r1);
        let live = store.live_keys().await.unwrap();
        assert_eq!(live, vec![(KeyHash::of("pk_two").hash, "shop".to_owned())]);
        assert!(
            !store
                .rotate_key("nope", &KeyHash::of("pk_x"))
                .await
                .unwrap()
        );
        // A demo made once stays deleted.
        let demo = WidgetDef::new(WidgetId::parse("demo").unwrap(), "Demo", "demo");
        assert!(
            store
                .create_once("demo_created", &demo, &KeyHash::of("pk_demo"))
                .await
                .unwrap()
        );
        assert!(store.delete_widget("demo").await.unwrap());
        assert!(
            !store
                .create_once("demo_created", &demo, &KeyHash::of("pk_demo"))
                .await
                .unwrap()
        );
        assert_eq!(store.meta_or_insert("secret", "a").await.unwrap(), "a");
        assert_eq!(store.meta_or_insert("secret", "b").await.unwrap(), "a");
        store
            .create_admin_key("ops", &KeyHash::of("ak_1"))
            .await
            .unwrap();
        assert!(store.is_admin_key(&KeyHash::of("ak_1").hash).await.unwrap());
        assert!(!store.is_admin_key(&KeyHash::of("ak_2").hash).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once_and_all_open() {
    let Some(url) = postgres::testing::server_url() else {
        return;
    };
    let url = postgres::testing::fresh_schema(&url, "unit_migrate_race")
        .await
        .unwrap();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::open(&url).await.map(|_| ()) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("every replica opens");
    }
    let store = PgStore::open(&url).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0, "nothing left to apply");
}

#[tokio::test]
async fn a_starting_postgres_replica_leaves_other_replicas_live_answers_alone() {
    let Some(url) = postgres::testing::server_url() else {
        return;
    };
    let url = postgres::testing::fresh_schema(&url, "unit_recover")
        .await
        .unwrap();
    let store = PgStore::open(&url).await.unwrap();
    let w = WidgetId::parse("w").unwrap();
    let live = new_id("msg");
    let conv = store
        .start_turn(&w, &me(), None, user("q"), &live)
        .await
        .unwrap();
    let old = new_id("msg");
    store
        .start_turn(&w, &me(), Some(&conv), user("q2"), &old)
        .await
        .unwrap();
    // An answer whose lease ran out: its replica is gone. The other was
    // just renewed.
    let lease = std::time::Duration::from_secs(30);
    sqlx::query("UPDATE messages SET touched_at = touched_at - $1 WHERE id = $2")
        .bind(lease.as_millis() as i64 + 1000)
        .bind(&old)
        .execute(&store.pool)
        .await
        .unwrap();
    store.checkpoint_answer(&live, "so far").await.unwrap();
    assert_eq!(store.recover(Some(lease)).await.unwrap(), 1);
    assert_eq!(store.recover(Some(lease)).await.unwrap(), 0);
    let got = store.messages(&w, &me(), &conv).await.unwrap().unwrap();
    assert_eq!(got[1].status, MessageStatus::Streaming, "another replica's");
    assert_eq!(got[3].status, MessageStatus::Interrupted);
}

#[tokio::test]
async fn a_postgres_store_can_require_tls() {
    let Some(url) = postgres::testing::server_url() else {
        return;
    };
    let url = postgres::testing::fresh_schema(&url, "unit_tls")
        .await
        .unwrap();
    let plain = PgStore::open(&url).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&plain.pool)
        .await
        .unwrap();
    if ssl != "on" {
        eprintln!("this PostgreSQL server has no TLS (ssl = {ssl}): skipped");
        return;
    }
    // A managed database asks for `sslmode=require`: the store speaks TLS.
    let store = PgStore::open(&format!("{url}&sslmode=require"))
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert!(encrypted);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn console_users_sessions_and_the_audit_log_read_the_same_from_every_store() {
    use super::accounts::ConsoleRole;
    for db in TestDb::each("accounts").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        assert_eq!(store.count_users().await.unwrap(), 0);
        let ada = store
            .create_user("ada@example.com", "$argon2id$hash", ConsoleRole::Owner)
            .await
            .unwrap();
        let bob = store
            .create_user("bob@example.com", "$argon2id$other", ConsoleRole::Viewer)
            .await
            .unwrap();
        assert!(matches!(
            store
                .create_user("ada@example.com", "x", ConsoleRole::Viewer)
                .await,
            Err(StoreError::Conflict(_))
        ));
        let found = store
            .user_by_email("ada@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.user, ada);
        assert_eq!(found.password_hash, "$argon2id$hash");
        assert!(
            store
                .user_by_email("eve@example.com")
                .await
                .unwrap()
                .is_none()
        );
        let emails: Vec<_> = store
            .users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.email)
            .collect();
        assert_eq!(emails, ["ada@example.com", "bob@example.com"]);

        // Sessions: found while live, gone when expired or ended.
        let now = now_ms();
        store
            .create_session("h1", &ada.id, "c1", now + 60_000)
            .await
            .unwrap();
        store
            .create_session("h2", &ada.id, "c2", now + 60_000)
            .await
            .unwrap();
        store
            .create_session("h3", &bob.id, "c3", now + 60_000)
            .await
            .unwrap();
        store
            .create_session("old", &bob.id, "c4", now - 1)
            .await
            .unwrap();
        let s = store.session("h1", now).await.unwrap().unwrap();
        assert_eq!(
            (s.user.email.as_str(), s.csrf.as_str()),
            ("ada@example.com", "c1")
        );
        assert!(store.session("old", now).await.unwrap().is_none());
        assert!(store.session("h1", now + 60_000).await.unwrap().is_none());
        store.delete_session("h1").await.unwrap();
        assert!(store.session("h1", now).await.unwrap().is_none());
        assert_eq!(store.delete_sessions_of(&ada.id).await.unwrap(), 1);
        assert!(store.session("h2", now).await.unwrap().is_none());
        assert!(store.session("h3", now).await.unwrap().is_some());

        // Role and password changes; a new password ends the sessions.
        assert!(store.set_role(&bob.id, ConsoleRole::Editor).await.unwrap());
        assert!(
            !store
                .set_role("usr_none", ConsoleRole::Editor)
                .await
                .unwrap()
        );
        assert!(store.set_password(&bob.id, "$argon2id$new").await.unwrap());
        assert!(store.session("h3", now).await.unwrap().is_none());
        let bob_now = store
            .user_by_email("bob@example.com")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob_now.user.role, ConsoleRole::Editor);
        assert_eq!(bob_now.password_hash, "$argon2id$new");
        store
            .create_session("h4", &bob.id, "c5", now + 60_000)
            .await
            .unwrap();
        assert!(store.delete_user(&bob.id).await.unwrap());
        assert!(store.session("h4", now).await.unwrap().is_none());
        assert!(!store.delete_user(&bob.id).await.unwrap());
        assert_eq!(store.count_users().await.unwrap(), 1);

        // The audit log, newest first, in pages.
        for i in 0..5u16 {
            store
                .audit("user:ada@example.com", "PATCH", &format!("/w/{i}"), 200 + i)
                .await
                .unwrap();
        }
        let page = store.audit_log(2, None).await.unwrap();
        let targets: Vec<_> = page.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(targets, ["/w/4", "/w/3"]);
        assert_eq!(page[0].status, 204);
        let older = store.audit_log(10, Some(page[1].id)).await.unwrap();
        let targets: Vec<_> = older.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(targets, ["/w/2", "/w/1", "/w/0"]);
    }
}

#[tokio::test]
async fn webhook_deliveries_are_claimed_once_retried_redelivered_and_pruned_in_every_store() {
    use super::webhooks::{Attempted, DeliveryStatus, Webhook};
    for db in TestDb::each("webhooks").await {
        eprintln!("store: {db}");
        let store = db.open().await;
        with_widgets(&*store, &["shop", "blog"]).await;
        let hook = |id: &str, widget: &str, events: &[&str], disabled: bool| Webhook {
            id: id.into(),
            widget_id: widget.into(),
            url: format!("https://hooks.example/{id}"),
            secret: "whsec_c2VjcmV0".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            disabled,
            created_at: now_ms() as u64,
        };
        for webhook in [
            hook("wh_a", "shop", &["message.completed"], false),
            hook("wh_b", "shop", &["feedback.created"], false),
            hook("wh_off", "shop", &["message.completed"], true),
            hook("wh_blog", "blog", &["message.completed"], false),
        ] {
            store.create_webhook(&webhook).await.unwrap();
        }
        // Only the shop's enabled webhooks that take the event get it.
        let ids = store
            .enqueue(
                "shop",
                "message.completed",
                r#"{"type":"message.completed"}"#,
            )
            .await
            .unwrap();
        assert_eq!(ids.len(), 1);
        let now = now_ms();
        // Two senders at once: one wins the delivery.
        let first = store.claim_due(now, now + 60_000, 10).await.unwrap();
        let second = store.claim_due(now, now + 60_000, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(second.is_empty(), "claimed twice");
        assert_eq!(first[0].url, "https://hooks.example/wh_a");
        assert_eq!(first[0].secret, "whsec_c2VjcmV0");
        // A failure is due again at its time, not before.
        store
            .record_attempt(
                &ids[0],
                &Attempted::Failed {
                    status: Some(503),
                    error: "HTTP 503".into(),
                    next_at: Some(now + 5_000),
                },
            )
            .await
            .unwrap();
        assert!(
            store
                .claim_due(now + 1, now + 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store
            .claim_due(now + 5_000, now + 65_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery.attempts, 1);
        store
            .record_attempt(&ids[0], &Attempted::Delivered { status: 204 })
            .await
            .unwrap();
        let log = store.deliveries("wh_a", 10).await.unwrap();
        assert_eq!(log[0].status, DeliveryStatus::Delivered);
        assert_eq!((log[0].attempts, log[0].last_status), (2, Some(204)));
        assert!(log[0].finished_at.is_some());
        // A redelivery starts again; a pending one cannot be asked twice.
        assert!(store.redeliver("wh_a", &ids[0]).await.unwrap());
        assert!(!store.redeliver("wh_a", &ids[0]).await.unwrap());
        assert!(
            !store.redeliver("wh_b", &ids[0]).await.unwrap(),
            "another webhook's"
        );
        let log = store.deliveries("wh_a", 10).await.unwrap();
        assert_eq!(
            (log[0].status, log[0].attempts),
            (DeliveryStatus::Pending, 0)
        );
        // Pruning forgets what is finished only.
        assert_eq!(store.prune_deliveries(now_ms() + 1).await.unwrap(), 0);
        store
            .record_attempt(
                &ids[0],
                &Attempted::Failed {
                    status: None,
                    error: "timed out".into(),
                    next_at: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.deliveries("wh_a", 10).await.unwrap()[0].status,
            DeliveryStatus::Failed
        );
        assert_eq!(store.prune_deliveries(now_ms() + 1).await.unwrap(), 1);
        assert!(store.deliveries("wh_a", 10).await.unwrap().is_empty());
        // A removed webhook takes its deliveries with it; a removed widget
        // its webhooks.
        store
            .enqueue("blog", "message.completed", "{}")
            .await
            .unwrap();
        assert!(store.delete_webhook("blog", "wh_blog").await.unwrap());
        assert!(store.deliveries("wh_blog", 10).await.unwrap().is_empty());
        assert!(store.delete_widget("shop").await.unwrap());
        assert!(store.webhooks("shop").await.unwrap().is_empty());
    }
}
