//! Property tests: the SSE framing and parser, and request decoding.

use proptest::prelude::*;
use protocol::event::{DoneEvent, MetaEvent};
use protocol::{ApiError, ChatRequest, ErrorCode, SseParser, StreamEvent, Usage};

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, with the characters that matter to SSE framing often.
    prop::collection::vec(
        prop_oneof![
            any::<char>().prop_map(String::from),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("\r".to_owned()),
            Just("data: ".to_owned()),
            Just(": ".to_owned()),
            Just("event: done".to_owned()),
            Just("\u{0}".to_owned()),
        ],
        0..20,
    )
    .prop_map(|parts| parts.concat())
}

fn event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        text().prop_map(StreamEvent::chunk),
        (text(), text(), text()).prop_map(|(c, u, m)| StreamEvent::Meta(MetaEvent {
            conversation_id: c,
            user_message_id: u,
            message_id: m,
        })),
        (text(), any::<Option<(u32, u32)>>()).prop_map(|(reason, usage)| StreamEvent::Done(
            DoneEvent {
                finish_reason: reason,
                usage: usage.map(|(p, c)| Usage {
                    prompt_tokens: p,
                    completion_tokens: c,
                    total_tokens: p.saturating_add(c),
                }),
            }
        )),
        text().prop_map(|m| StreamEvent::Error(ApiError::new(ErrorCode::UpstreamError, m))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the events hold and however the bytes are cut in transit,
    /// the parser gives back exactly the events that were sent, with their ids.
    #[test]
    fn events_survive_framing_and_any_split(
        events in prop::collection::vec(event(), 1..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire: String = events
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_sse(i as u64))
            .collect();
        let bytes = wire.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut parser = SseParser::new();
        let mut got = Vec::new();
        let mut from = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            got.extend(parser.push(&bytes[from..p]));
            from = p;
        }
        prop_assert_eq!(got.len(), events.len());
        for (i, (msg, sent)) in got.iter().zip(&events).enumerate() {
            prop_assert_eq!(msg.id.clone(), Some(i.to_string()));
            let decoded = StreamEvent::from_sse(msg);
            prop_assert_eq!(decoded.as_ref().ok(), Some(sent));
        }
    }

    /// Arbitrary bytes, cut anywhere, never make the parser panic.
    #[test]
    fn any_bytes_are_parsed_without_panicking(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
    ) {
        let mut parser = SseParser::new();
        for c in &chunks {
            for msg in parser.push(c) {
                let _ = StreamEvent::from_sse(&msg);
            }
        }
    }

    /// Decoding a chat request from any text never panics; what decodes is
    /// exactly `message` and maybe `conversation_id`, and survives a round trip.
    #[test]
    fn chat_request_decoding_is_total_and_exact(body in prop_oneof![
        text(),
        "\\{\"message\": ?\"[^\"\\\\]{0,20}\"(, ?\"conversation_id\": ?\"[a-z_0-9]{0,10}\")?\\}",
        "\\{\"(message|conversation_id|x)\": ?(1|null|\\[\\]|\\{\\}|\"a\"|true)(, ?\"(message|x)\": ?\"b\")?\\}",
    ]) {
        if let Ok(req) = serde_json::from_str::<ChatRequest>(&body) {
            let again = serde_json::to_string(&req).expect("serialises");
            prop_assert_eq!(serde_json::from_str::<ChatRequest>(&again).ok(), Some(req));
            // `"x"` as a key (followed by `:`), not as a conversation id's value.
            prop_assert!(
                !body.contains("\"x\":") && !body.contains("\"x\" :"),
                "an unknown field was accepted: {}",
                body
            );
        }
    }
}
