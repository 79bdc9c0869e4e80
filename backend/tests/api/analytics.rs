//! The analytics report: per widget and day, counted from what visitors
//! really did, with every day of the range and the configured price, on
//! SQLite and (with PORTHOLE_TEST_STORE=postgres) PostgreSQL.

use mock_upstream::{MockUpstream, Script};
use serde_json::{Value, json};

use crate::admin::{admin, ok_json};
use crate::helpers::{
    EventReader, KEY, TestApp, admin_key, api_error, page_session, spawn_app, temp_dir,
    test_settings, write_config,
};
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

async fn rate(app: &TestApp, message: &str, rating: &str) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/chat/{message}/feedback")))
        .header("x-api-key", KEY)
        .bearer_auth(&app.session)
        .json(&json!({ "rating": rating }))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 204);
}

fn widget<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["widgets"]
        .as_array()
        .expect("widgets")
        .iter()
        .find(|w| w["widget_id"] == id)
        .unwrap_or_else(|| panic!("{id} in {report}"))
}

#[tokio::test]
async fn analytics_count_each_widgets_days_and_price_their_tokens() {
    let mock = MockUpstream::start(Script::words("Here is how it works.", 0))
        .await
        .expect("mock");
    let mut settings = test_settings(Some(mock.base_url()));
    let dir = temp_dir("analytics");
    settings.store.path = dir.join("porthole.db");
    settings.store.url = crate::helpers::postgres_store(&dir);
    let model = settings.upstream.model.clone();
    settings.prices.insert(
        model.clone(),
        porthole::config::ModelPrice {
            input_per_million: 150.0,
            output_per_million: 600.0,
        },
    );
    let config = write_config(&dir, "");
    let app = spawn_app(settings, Some(mock), false).await;
    let key = admin_key(&config);

    let shop = ok_json(
        admin(
            &app,
            &key,
            "POST",
            "/widgets",
            Some(json!({"title": "Shop", "model": "unpriced-model"})),
        )
        .await,
        201,
    )
    .await;
    let shop_key = shop["public_key"].as_str().expect("key").to_owned();
    let shop_session = page_session(&app.client, &app.base, "shop", &shop_key).await;

    let first = ask_as(&app, KEY, &app.session, "Where is my order?").await;
    rate(&app, &first, "down").await;
    let second = ask_as(&app, KEY, &app.session, "How do refunds work?").await;
    rate(&app, &second, "up").await;
    ask_as(&app, &shop_key, &shop_session, "Do you ship abroad?").await;

    let report = ok_json(
        admin(&app, &key, "GET", "/analytics?days=7", None).await,
        200,
    )
    .await;
    assert_eq!(report["currency"], "USD");
    let test = widget(&report, "test");
    let days = test["days"].as_array().expect("days");
    assert_eq!(days.len(), 7, "every day of the range, quiet ones too");
    assert_eq!(days[6]["date"], report["to"]);
    assert_eq!(days[0]["date"], report["from"]);
    for quiet in &days[..6] {
        assert_eq!(quiet["messages"], 0, "{quiet}");
        assert_eq!(quiet["estimated_cost"], 0.0, "{quiet}");
    }
    let today = &days[6];
    assert_eq!(today["conversations"], 2, "{today}");
    assert_eq!(today["messages"], 4);
    assert_eq!(today["answers"], 2);
    assert_eq!(today["thumbs_up"], 1);
    assert_eq!(today["thumbs_down"], 1);
    let prompt = today["prompt_tokens"].as_u64().expect("prompt tokens");
    let completion = today["completion_tokens"]
        .as_u64()
        .expect("completion tokens");
    assert!(prompt > 0 && completion > 0, "{today}");
    let cost = (prompt as f64 * 150.0 + completion as f64 * 600.0) / 1e6;
    let got = today["estimated_cost"].as_f64().expect("cost");
    assert!((got - cost).abs() < 1e-9, "{got} vs {cost}");
    let totals = &test["totals"];
    assert_eq!(totals["messages"], 4);
    assert_eq!(totals["thumbs_up_ratio"], 0.5);
    let unanswered = totals["unanswered"].as_u64().expect("unanswered");
    assert_eq!(totals["unanswered_rate"], unanswered as f64 / 2.0);
    assert_eq!(test["model"], model.as_str());
    assert_eq!(test["price"]["input_per_million"], 150.0);

    // A model without a price has counts and no estimate.
    let shop = widget(&report, "shop");
    assert_eq!(shop["model"], "unpriced-model");
    assert_eq!(shop["totals"]["conversations"], 1);
    assert_eq!(shop["totals"]["estimated_cost"], Value::Null);
    assert_eq!(shop["totals"]["thumbs_up_ratio"], Value::Null);

    // One widget; 30 days when not said.
    let one = ok_json(
        admin(&app, &key, "GET", "/analytics?widget=shop", None).await,
        200,
    )
    .await;
    assert_eq!(one["widgets"].as_array().expect("widgets").len(), 1);
    assert_eq!(
        one["widgets"][0]["days"].as_array().expect("days").len(),
        30
    );
    assert_eq!(one["widgets"][0]["totals"]["messages"], 2);

    // Bad input is named.
    for (query, status, code) in [
        ("?days=0", 422, "invalid_field"),
        ("?days=367", 422, "invalid_field"),
        ("?days=week", 422, "invalid_field"),
        ("?widget=nope", 404, "not_found"),
    ] {
        let got =
            api_error(admin(&app, &key, "GET", &format!("/analytics{query}"), None).await).await;
        assert_eq!(got, (status, code.to_owned()), "{query}");
    }
    let r = app
        .client
        .get(app.url("/api/v1/admin/analytics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
}
