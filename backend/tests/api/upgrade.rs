//! Starting on an existing database: migrations from the previous release,
//! config widgets re-applied, the demo created on the first run only.

use serde_json::{Value, json};

use crate::helpers::{
    EventReader, admin_key, cli, page_session, start_binary_with, temp_dir, write_config,
    write_sqlite_config,
};

async fn admin_get(client: &reqwest::Client, base: &str, key: &str, path: &str) -> Value {
    let r = client
        .get(format!("{base}/api/v1/admin{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("JSON")
}

#[tokio::test]
async fn migrations_upgrade_a_database_made_by_the_previous_release() {
    let dir = temp_dir("upgrade");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v0.1.0.db"),
        dir.join("porthole.db"),
    )
    .expect("fixture copied");
    // The config that release ran with.
    let config = write_sqlite_config(
        &dir,
        "[[widgets]]\nid = \"acme\"\npublic_key = \"pk_acme_0001\"\ntitle = \"Acme help\"\nallowed_sites = [\"https://acme.example\"]\n",
    );
    let (_server, base) = start_binary_with(&config, &["--demo"]).await;
    let client = reqwest::Client::new();
    let key = admin_key(&config);

    // Every message of that release is there, untouched.
    for (widget, question, answer_len) in [
        ("demo", "How do I install the widget?", 312),
        ("acme", "hello there", 85),
    ] {
        let list = admin_get(
            &client,
            &base,
            &key,
            &format!("/widgets/{widget}/conversations"),
        )
        .await;
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{widget}: {list}");
        assert!(items[0]["visitor_id"].is_null());
        let id = items[0]["id"].as_str().expect("id");
        let messages = admin_get(
            &client,
            &base,
            &key,
            &format!("/widgets/{widget}/conversations/{id}/messages"),
        )
        .await;
        let m = messages["items"].as_array().expect("items");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["content"], question);
        assert_eq!(
            m[1]["content"].as_str().map(|s| s.chars().count()),
            Some(answer_len)
        );
        assert_eq!(
            (m[0]["status"].as_str(), m[1]["status"].as_str()),
            (Some("complete"), Some("complete"))
        );
    }
    // Its widgets and keys keep working.
    let r = client
        .get(format!("{base}/widget/acme?key=pk_acme_0001"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .ends_with("frame-ancestors https://acme.example")
    );
    let session = page_session(&client, &base, "demo", "pk_demo").await;
    let r = client
        .post(format!("{base}/api/v1/chat"))
        .header("x-api-key", "pk_demo")
        .bearer_auth(session)
        .json(&json!({"message": "Which models are supported?"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    let events = EventReader::new(r).collect().await;
    assert!(matches!(
        events.last(),
        Some(protocol::StreamEvent::Done(_))
    ));
    let list = admin_get(&client, &base, &key, "/widgets/demo/conversations").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn config_widgets_are_reapplied_and_the_demo_is_made_on_the_first_run_only() {
    let dir = temp_dir("firstrun");
    let widget = |title: &str| {
        format!("[[widgets]]\nid = \"site\"\npublic_key = \"pk_site_1\"\ntitle = \"{title}\"\n")
    };
    let config = write_config(&dir, &widget("First title"));
    let client = reqwest::Client::new();
    {
        let (_server, base) = start_binary_with(&config, &["--demo"]).await;
        for (id, key) in [("demo", "pk_demo"), ("site", "pk_site_1")] {
            let r = client
                .get(format!("{base}/widget/{id}?key={key}"))
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), 200, "{id}");
        }
        // The operator removes the demo.
        let (ok, _, err) = cli(&config, &["widget", "delete", "demo", "--yes"]);
        assert!(ok, "{err}");
    }
    // The config changes; the server restarts, still with --demo.
    write_config(&dir, &widget("Second title"));
    let (_server, base) = start_binary_with(&config, &["--demo"]).await;
    let demo = client
        .get(format!("{base}/widget/demo?key=pk_demo"))
        .send()
        .await
        .expect("sent");
    assert_eq!(demo.status(), 404, "the demo stays deleted");
    let site = client
        .get(format!("{base}/widget/site?key=pk_site_1"))
        .send()
        .await
        .expect("sent");
    assert!(site.text().await.expect("page").contains("Second title"));
    let (ok, out, _) = cli(&config, &["widget", "list"]);
    assert!(
        ok && out.contains("site\tSecond title\tenabled\tconfig"),
        "{out}"
    );
    assert!(!out.contains("demo"), "{out}");
}
