use protocol::StreamEvent;

use crate::helpers::{EventReader, page_session, spawn_app, test_settings, text_of};

async fn ask_demo(question: &str) -> Vec<StreamEvent> {
    let app = spawn_app(test_settings(None), None, true).await;
    let session = page_session(&app.client, &app.base, "demo", "pk_demo").await;
    let response = app
        .client
        .post(app.url("/api/v1/chat"))
        .header("x-api-key", "pk_demo")
        .bearer_auth(session)
        .json(&serde_json::json!({ "message": question }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    EventReader::new(response).collect().await
}

#[tokio::test]
async fn the_offline_answerer_answers_from_the_knowledge_word_by_word() {
    let events = ask_demo("Can I use it with Ollama or vLLM?").await;
    let text = text_of(&events);
    assert!(text.contains("OpenAI-compatible"), "{text}");
    let chunks = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Chunk(_)))
        .count();
    assert!(chunks > 10, "streamed in {chunks} chunks");
    assert!(matches!(events.last(), Some(StreamEvent::Done(_))));
}

#[tokio::test]
async fn the_offline_answerer_declines_what_the_knowledge_does_not_cover() {
    let events = ask_demo("What is the boiling point of mercury?").await;
    let text = text_of(&events);
    assert!(
        text.starts_with("I couldn't find anything about that"),
        "{text}"
    );
    // It says what it can help with instead: the knowledge's sections.
    assert!(
        text.ends_with(
            "I can help with: Porthole, Installing the widget, Pricing and cost, Supported models."
        ),
        "{text}"
    );
    assert!(matches!(events.last(), Some(StreamEvent::Done(_))));
}
