//! The events of a streamed chat answer and their SSE framing.
//!
//! An answer is `meta`, then `sources` when knowledge was used, then any
//! number of chunks (the default SSE event, so phase-1 clients that only
//! read `data: {"chunk": …}` keep working), then exactly one of `done` or
//! `error`. Every event carries an `id:`: its
//! sequence number within the answer, starting at 0.

use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::sse::SseMessage;

/// A comment line that keeps idle proxies from closing the stream.
pub const HEARTBEAT: &str = ": ping\n\n";

/// Payload of the `meta` event, sent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct MetaEvent {
    /// The conversation this answer belongs to; send it back as
    /// `conversation_id` to continue the conversation.
    pub conversation_id: String,
    /// The id of the visitor's message, as stored.
    pub user_message_id: String,
    /// The id the answer is stored under.
    pub message_id: String,
}

/// One source an answer used, as the `sources` event and the history list
/// them. `n` is the number the answer cites it by (`[1]`). `title`,
/// `url` and `snippet` come from the site's documents, so clients show them
/// as text and follow `url` only when it is `http` or `https`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct SourceRef {
    pub n: u32,
    pub title: String,
    /// The page, with its heading anchor where it has one; absent for pasted
    /// text and FAQs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The start of the passage used.
    pub snippet: String,
}

/// Payload of a chunk (the default SSE event): a piece of the answer's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct ChunkEvent {
    pub chunk: String,
}

/// Token counts reported by the model provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// Payload of the `done` event, sent last when the answer is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct DoneEvent {
    /// Why the model stopped: `stop`, `length`, `content_filter`, …
    pub finish_reason: String,
    /// Token usage, when the provider reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One event of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Meta(MetaEvent),
    /// The knowledge the answer uses; before the first chunk.
    Sources(Vec<SourceRef>),
    Chunk(ChunkEvent),
    Done(DoneEvent),
    Error(ApiError),
}

/// Why an SSE message is not a [`StreamEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// An event name this client does not know.
    UnknownEvent(String),
    /// The data is not the JSON that the event name promises (the event's name).
    BadData(&'static str),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownEvent(name) => write!(f, "unknown event {name:?}"),
            Self::BadData(event) => write!(
                f,
                "the data of a {event:?} event is not what the contract says"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

impl StreamEvent {
    pub fn chunk(text: impl Into<String>) -> Self {
        Self::Chunk(ChunkEvent { chunk: text.into() })
    }

    /// The SSE event name; `None` for chunks, which use the default event.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Self::Meta(_) => Some("meta"),
            Self::Sources(_) => Some("sources"),
            Self::Chunk(_) => None,
            Self::Done(_) => Some("done"),
            Self::Error(_) => Some("error"),
        }
    }

    /// Whether this event ends the stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Done(_) | Self::Error(_))
    }

    /// The event framed for the wire, with its sequence number as `id:`.
    pub fn to_sse(&self, id: u64) -> String {
        let data = match self {
            Self::Meta(e) => serde_json::to_string(e),
            Self::Sources(e) => serde_json::to_string(e),
            Self::Chunk(e) => serde_json::to_string(e),
            Self::Done(e) => serde_json::to_string(e),
            Self::Error(e) => serde_json::to_string(e),
        }
        // These types hold only strings and integers: serialising cannot fail.
        .unwrap_or_default();
        let mut out = String::with_capacity(data.len() + 32);
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
        if let Some(name) = self.name() {
            out.push_str("event: ");
            out.push_str(name);
            out.push('\n');
        }
        // JSON escapes line breaks, so the data is always one line.
        out.push_str("data: ");
        out.push_str(&data);
        out.push_str("\n\n");
        out
    }

    /// Reads an event from a parsed SSE message.
    pub fn from_sse(msg: &SseMessage) -> Result<Self, DecodeError> {
        let mut data = serde_json::Deserializer::from_str(&msg.data);
        let event = Self::from_parts(&msg.event, &mut data)?;
        data.end()
            .map_err(|_| DecodeError::BadData(event_name(&msg.event)))?;
        Ok(event)
    }

    /// Reads an event from its SSE name and any deserializer of its data
    /// (the wasm widget passes the browser's parsed JSON, so it needs no
    /// JSON parser of its own).
    pub fn from_parts<'de, D: serde::Deserializer<'de>>(
        event: &str,
        data: D,
    ) -> Result<Self, DecodeError> {
        use serde::Deserialize;
        // The serde error's text is dropped on purpose: formatting it would
        // pull serde's error messages into the wasm widget.
        let bad = |_| DecodeError::BadData(event_name(event));
        match event {
            "message" => ChunkEvent::deserialize(data).map(Self::Chunk).map_err(bad),
            "meta" => MetaEvent::deserialize(data).map(Self::Meta).map_err(bad),
            "sources" => Vec::<SourceRef>::deserialize(data)
                .map(Self::Sources)
                .map_err(bad),
            "done" => DoneEvent::deserialize(data).map(Self::Done).map_err(bad),
            "error" => ApiError::deserialize(data).map(Self::Error).map_err(bad),
            other => Err(DecodeError::UnknownEvent(other.to_owned())),
        }
    }
}

/// The static name of a known event, for error reports.
fn event_name(event: &str) -> &'static str {
    match event {
        "message" => "message",
        "meta" => "meta",
        "sources" => "sources",
        "done" => "done",
        "error" => "error",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;
    use crate::sse::SseParser;

    fn samples() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Meta(MetaEvent {
                conversation_id: "conv_1".into(),
                user_message_id: "msg_u".into(),
                message_id: "msg_a".into(),
            }),
            StreamEvent::Sources(vec![
                SourceRef {
                    n: 1,
                    title: "Install > Docker".into(),
                    url: Some("https://docs.example.com/install#docker".into()),
                    snippet: "Run the image".into(),
                },
                SourceRef {
                    n: 2,
                    title: "FAQ".into(),
                    url: None,
                    snippet: "Yes.".into(),
                },
            ]),
            StreamEvent::chunk("Hello"),
            StreamEvent::chunk(" wörld\nline two \u{1F600} \"quoted\""),
            StreamEvent::Done(DoneEvent {
                finish_reason: "stop".into(),
                usage: Some(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                    total_tokens: 5,
                }),
            }),
            StreamEvent::Error(ApiError::new(ErrorCode::UpstreamTimeout, "slow")),
        ]
    }

    #[test]
    fn framing_is_pinned_byte_for_byte() {
        let framed: Vec<String> = samples()
            .iter()
            .enumerate()
            .map(|(i, e)| e.to_sse(i as u64))
            .collect();
        assert_eq!(
            framed[0],
            "id: 0\nevent: meta\ndata: {\"conversation_id\":\"conv_1\",\"user_message_id\":\"msg_u\",\"message_id\":\"msg_a\"}\n\n"
        );
        assert_eq!(
            framed[1],
            "id: 1\nevent: sources\ndata: [{\"n\":1,\"title\":\"Install > Docker\",\"url\":\"https://docs.example.com/install#docker\",\"snippet\":\"Run the image\"},{\"n\":2,\"title\":\"FAQ\",\"snippet\":\"Yes.\"}]\n\n"
        );
        assert_eq!(framed[2], "id: 2\ndata: {\"chunk\":\"Hello\"}\n\n");
        assert_eq!(
            framed[3],
            "id: 3\ndata: {\"chunk\":\" wörld\\nline two 😀 \\\"quoted\\\"\"}\n\n"
        );
        assert_eq!(
            framed[4],
            "id: 4\nevent: done\ndata: {\"finish_reason\":\"stop\",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
        );
        assert_eq!(
            framed[5],
            "id: 5\nevent: error\ndata: {\"code\":\"upstream_timeout\",\"message\":\"slow\"}\n\n"
        );
    }

    #[test]
    fn every_event_round_trips_through_the_parser() {
        let events = samples();
        let mut wire = String::new();
        for (i, e) in events.iter().enumerate() {
            wire.push_str(HEARTBEAT);
            wire.push_str(&e.to_sse(i as u64));
        }
        let mut parser = SseParser::new();
        let messages = parser.push(wire.as_bytes());
        assert_eq!(messages.len(), events.len());
        for (i, (msg, event)) in messages.iter().zip(&events).enumerate() {
            assert_eq!(msg.id.as_deref(), Some(i.to_string().as_str()));
            assert_eq!(&StreamEvent::from_sse(msg).unwrap(), event);
        }
    }

    #[test]
    fn unknown_events_and_bad_data_are_reported() {
        let msg = SseMessage {
            id: None,
            event: "surprise".into(),
            data: "{}".into(),
        };
        assert_eq!(
            StreamEvent::from_sse(&msg),
            Err(DecodeError::UnknownEvent("surprise".into()))
        );
        let msg = SseMessage {
            id: None,
            event: "done".into(),
            data: "not json".into(),
        };
        assert!(matches!(
            StreamEvent::from_sse(&msg),
            Err(DecodeError::BadData(_))
        ));
    }
}
