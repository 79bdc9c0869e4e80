//! The inbox across widgets: search, filters, paging and the export as
//! CSV and JSON, on SQLite and (with PORTHOLE_TEST_STORE=postgres)
//! PostgreSQL.

use mock_upstream::{MockUpstream, Script};
use serde_json::{Value, json};

use crate::admin::{admin, admin_app, ok_json};
use crate::helpers::{EventReader, KEY, TestApp, api_error, page_session};
use crate::resume::message_id;

async fn ask_as(app: &TestApp, key: &str, session: &str, message: &str) -> String {
    let r = app
        .client
        .post(app.url("/api/v1/chat"))
        .header("x-api-key", key)
        .bearer_auth(session)
        .json(&json!({ "message": message }))
        .send()
        .await
        .expect("sent");
    message_id(&EventReader::new(r).collect().await)
}

async fn inbox(app: &TestApp, key: &str, query: &str) -> Value {
    ok_json(
        admin(app, key, "GET", &format!("/conversations{query}"), None).await,
        200,
    )
    .await
}

fn questions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["first_question"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_inbox_searches_and_filters_across_widgets_and_exports_what_it_shows() {
    let mock = MockUpstream::start(Script::words("Here is how.", 0))
        .await
        .expect("mock");
    let (app, _config, key) = admin_app(Some(mock)).await;
    let shop = ok_json(
        admin(
            &app,
            &key,
            "POST",
            "/widgets",
            Some(json!({"title": "Shop"})),
        )
        .await,
        201,
    )
    .await;
    let shop_key = shop["public_key"].as_str().expect("key").to_owned();
    let shop_session = page_session(&app.client, &app.base, "shop", &shop_key).await;

    let order = ask_as(&app, KEY, &app.session, "Where is my order?").await;
    let r = app
        .client
        .post(app.url(&format!("/api/v1/chat/{order}/feedback")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .json(&json!({"rating": "down", "comment": "=1+1 not helpful"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    ask_as(&app, KEY, &app.session, "How do REFUNDS work?").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    ask_as(&app, &shop_key, &shop_session, "Your refund policy, please").await;

    // Everything, newest first, across both widgets.
    let all = inbox(&app, &key, "").await;
    assert_eq!(
        questions(&all),
        [
            "Your refund policy, please",
            "How do REFUNDS work?",
            "Where is my order?"
        ]
    );
    assert_eq!(all["items"][0]["widget_id"], "shop");
    assert_eq!(all["items"][2]["widget_id"], "test");
    assert_eq!(all["items"][2]["thumbs_down"], 1);
    assert_eq!(all["items"][2]["messages"], 2);

    // Each filter narrows.
    assert_eq!(
        questions(&inbox(&app, &key, "?widget=shop").await),
        ["Your refund policy, please"]
    );
    assert_eq!(
        questions(&inbox(&app, &key, "?q=refund").await),
        ["Your refund policy, please", "How do REFUNDS work?"],
        "case-insensitive, any message"
    );
    assert_eq!(
        questions(&inbox(&app, &key, "?q=refund&widget=test").await),
        ["How do REFUNDS work?"]
    );
    assert!(questions(&inbox(&app, &key, "?q=100%25").await).is_empty());
    assert_eq!(
        questions(&inbox(&app, &key, "?rating=down").await),
        ["Where is my order?"]
    );
    assert!(questions(&inbox(&app, &key, "?rating=up").await).is_empty());
    assert_eq!(
        questions(&inbox(&app, &key, "?status=complete").await).len(),
        3
    );
    assert!(questions(&inbox(&app, &key, "?status=error").await).is_empty());
    assert!(questions(&inbox(&app, &key, "?unanswered=true").await).is_empty());
    assert!(questions(&inbox(&app, &key, "?user=someone").await).is_empty());
    let second = all["items"][1]["created_at"].as_u64().expect("time");
    assert_eq!(
        questions(&inbox(&app, &key, &format!("?from={second}")).await),
        ["Your refund policy, please", "How do REFUNDS work?"]
    );
    assert_eq!(
        questions(&inbox(&app, &key, &format!("?to={second}")).await),
        ["Where is my order?"]
    );

    // Paged with a cursor.
    let first = inbox(&app, &key, "?limit=2").await;
    assert_eq!(questions(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest = inbox(&app, &key, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(questions(&rest), ["Where is my order?"]);
    assert!(rest["next_cursor"].is_null());

    // A value that is not understood is named, never ignored.
    for bad in [
        "?status=lost",
        "?rating=meh",
        "?unanswered=maybe",
        "?from=yesterday",
    ] {
        let r = admin(&app, &key, "GET", &format!("/conversations{bad}"), None).await;
        assert_eq!(
            api_error(r).await,
            (422, "invalid_field".to_owned()),
            "{bad}"
        );
    }

    // The export: the filtered set's messages as CSV, formulas defused.
    let r = admin(&app, &key, "GET", "/conversations/export?rating=down", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"porthole-conversations.csv\""
    );
    assert_eq!(r.headers()["x-export-truncated"], "false");
    let text = r.text().await.expect("csv");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("conversation_id,widget_id,user_id,seq,role,status,rating"));
    assert!(
        lines[1].contains(",1,user,complete,,,false,") && lines[1].ends_with(",Where is my order?"),
        "{text}"
    );
    assert!(
        lines[2].contains(",2,assistant,complete,down,'=1+1 not helpful,false,"),
        "{text}"
    );
    assert!(lines[2].ends_with(",Here is how."), "{text}");

    let r = admin(
        &app,
        &key,
        "GET",
        "/conversations/export?format=json&q=refund",
        None,
    )
    .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let rows: Value = r.json().await.expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["widget_id"], "shop");
    assert_eq!(rows[0]["content"], "Your refund policy, please");
    assert_eq!(rows[1]["role"], "assistant");
    assert!(rows[1]["rating"].is_null());
    let r = admin(&app, &key, "GET", "/conversations/export?format=xml", None).await;
    assert_eq!(api_error(r).await, (422, "invalid_field".to_owned()));
}
