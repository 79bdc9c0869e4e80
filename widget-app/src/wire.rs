//! The protocol's JSON read field by field, without serde.
//!
//! The browser parses the JSON (`JSON.parse`); these readers take the
//! protocol types out of the parsed value. serde's derived decoders cost
//! the panel about 10 KB of gzip wasm: besides their own code, their
//! errors format floats (`WithDecimalPoint`, `f64`'s `Display`) and
//! escape strings, and every decoder keeps that alive. The shapes are the
//! ones `protocol` pins with its own tests, and the tests below read what
//! `protocol` writes with serde_json, so the two cannot drift.
//!
//! Like serde with the protocol's attributes: a missing optional field
//! takes its default, a wrong type fails the whole value (`None`), unknown
//! fields are ignored, and an unknown error code reads as `unknown`.

use protocol::event::{ChunkEvent, DoneEvent, MetaEvent, SourceRef, Usage};
use protocol::widget::{
    ConversationView, MessageStatus, MessageView, Rating, Role, Theme, ThemeMode, WidgetConfig,
};
use protocol::{ApiError, ErrorCode, StreamEvent};

/// A parsed JSON value: a browser value in the panel, serde_json's in tests.
pub trait Json: Sized {
    /// The field `key` of an object; `None` when absent, `null` or
    /// `undefined`.
    fn field(&self, key: &str) -> Option<Self>;
    fn string(&self) -> Option<String>;
    fn number(&self) -> Option<f64>;
    fn boolean(&self) -> Option<bool>;
    fn items(&self) -> Option<Vec<Self>>;
}

impl Json for wasm_bindgen::JsValue {
    fn field(&self, key: &str) -> Option<Self> {
        if !self.is_object() {
            return None;
        }
        js_sys::Reflect::get(self, &key.into())
            .ok()
            .filter(|v| !v.is_null() && !v.is_undefined())
    }
    fn string(&self) -> Option<String> {
        self.as_string()
    }
    fn number(&self) -> Option<f64> {
        self.as_f64()
    }
    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }
    fn items(&self) -> Option<Vec<Self>> {
        js_sys::Array::is_array(self).then(|| js_sys::Array::from(self).iter().collect())
    }
}

/// A required string.
fn text<J: Json>(v: &J, key: &str) -> Option<String> {
    v.field(key)?.string()
}

/// An optional string: `Some(None)` when absent, `None` when not a string.
fn maybe_text<J: Json>(v: &J, key: &str) -> Option<Option<String>> {
    match v.field(key) {
        None => Some(None),
        Some(x) => x.string().map(Some),
    }
}

/// A string with a default.
fn text_or<J: Json>(v: &J, key: &str, default: &str) -> Option<String> {
    maybe_text(v, key).map(|s| s.unwrap_or_else(|| default.to_owned()))
}

/// A whole number in `0..=max`.
fn whole<J: Json>(v: &J, key: &str, max: f64) -> Option<f64> {
    let n = v.field(key)?.number()?;
    (n.fract() == 0.0 && (0.0..=max).contains(&n)).then_some(n)
}

fn strings<J: Json>(v: &J, key: &str) -> Option<Vec<String>> {
    match v.field(key) {
        None => Some(Vec::new()),
        Some(list) => list.items()?.iter().map(Json::string).collect(),
    }
}

/// The widget's settings from its page.
pub fn config<J: Json>(v: &J) -> Option<WidgetConfig> {
    Some(WidgetConfig {
        widget_id: text(v, "widget_id")?,
        public_key: text(v, "public_key")?,
        session: text(v, "session")?,
        api_base: text_or(v, "api_base", "")?,
        title: text(v, "title")?,
        greeting: text_or(v, "greeting", "")?,
        starters: strings(v, "starters")?,
        theme: match v.field("theme") {
            None => Theme::default(),
            Some(t) => theme(&t)?,
        },
        lang: text_or(v, "lang", "")?,
        rtl: match v.field("rtl") {
            None => false,
            Some(b) => b.boolean()?,
        },
        strings: strings(v, "strings")?,
    })
}

fn theme<J: Json>(v: &J) -> Option<Theme> {
    let default = Theme::default();
    Some(Theme {
        primary: text_or(v, "primary", &default.primary)?,
        mode: match maybe_text(v, "mode")?.as_deref() {
            None => default.mode,
            Some("light") => ThemeMode::Light,
            Some("dark") => ThemeMode::Dark,
            Some("auto") => ThemeMode::Auto,
            Some(_) => return None,
        },
        radius: match v.field("radius") {
            None => default.radius,
            Some(_) => whole(v, "radius", 255.0)? as u8,
        },
        font: text_or(v, "font", &default.font)?,
        avatar: text_or(v, "avatar", "")?,
    })
}

/// A refusal's body.
pub fn api_error<J: Json>(v: &J) -> Option<ApiError> {
    Some(ApiError::new(
        ErrorCode::from_name(&text(v, "code")?),
        text(v, "message")?,
    ))
}

/// An answer's event, by its SSE event name (`message` for chunks);
/// `None` for an unknown name or data that does not fit it.
pub fn event<J: Json>(name: &str, v: &J) -> Option<StreamEvent> {
    Some(match name {
        "message" => StreamEvent::Chunk(ChunkEvent {
            chunk: text(v, "chunk")?,
        }),
        "meta" => StreamEvent::Meta(MetaEvent {
            conversation_id: text(v, "conversation_id")?,
            user_message_id: text(v, "user_message_id")?,
            message_id: text(v, "message_id")?,
        }),
        "sources" => StreamEvent::Sources(sources(v)?),
        "done" => StreamEvent::Done(DoneEvent {
            finish_reason: text(v, "finish_reason")?,
            usage: match v.field("usage") {
                None => None,
                Some(u) => Some(Usage {
                    prompt_tokens: whole(&u, "prompt_tokens", f64::from(u32::MAX))? as u32,
                    completion_tokens: whole(&u, "completion_tokens", f64::from(u32::MAX))? as u32,
                    total_tokens: whole(&u, "total_tokens", f64::from(u32::MAX))? as u32,
                }),
            },
        }),
        "error" => StreamEvent::Error(api_error(v)?),
        _ => return None,
    })
}

fn sources<J: Json>(list: &J) -> Option<Vec<SourceRef>> {
    list.items()?
        .iter()
        .map(|s| {
            Some(SourceRef {
                n: whole(s, "n", f64::from(u32::MAX))? as u32,
                title: text(s, "title")?,
                url: maybe_text(s, "url")?,
                snippet: text(s, "snippet")?,
            })
        })
        .collect()
}

/// A conversation's history.
pub fn conversation<J: Json>(v: &J) -> Option<ConversationView> {
    Some(ConversationView {
        conversation_id: text(v, "conversation_id")?,
        messages: v
            .field("messages")?
            .items()?
            .iter()
            .map(message)
            .collect::<Option<_>>()?,
    })
}

fn message<J: Json>(v: &J) -> Option<MessageView> {
    Some(MessageView {
        id: text(v, "id")?,
        role: match text(v, "role")?.as_str() {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        },
        content: text(v, "content")?,
        status: match text(v, "status")?.as_str() {
            "complete" => MessageStatus::Complete,
            "interrupted" => MessageStatus::Interrupted,
            "error" => MessageStatus::Error,
            "streaming" => MessageStatus::Streaming,
            _ => return None,
        },
        // Milliseconds since 1970 fit a double exactly for 285,000 years.
        created_at: whole(v, "created_at", 9_007_199_254_740_991.0)? as u64,
        sources: match v.field("sources") {
            None => Vec::new(),
            Some(list) => sources(&list)?,
        },
        rating: match v.field("rating") {
            None => None,
            Some(r) => Some(match r.string()?.as_str() {
                "up" => Rating::Up,
                "down" => Rating::Down,
                _ => return None,
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    impl Json for Value {
        fn field(&self, key: &str) -> Option<Self> {
            self.get(key).filter(|v| !v.is_null()).cloned()
        }
        fn string(&self) -> Option<String> {
            self.as_str().map(str::to_owned)
        }
        fn number(&self) -> Option<f64> {
            self.as_f64()
        }
        fn boolean(&self) -> Option<bool> {
            self.as_bool()
        }
        fn items(&self) -> Option<Vec<Self>> {
            self.as_array().cloned()
        }
    }

    fn config_sample() -> WidgetConfig {
        WidgetConfig {
            widget_id: "acme".into(),
            public_key: "pk_1".into(),
            session: "v1.a.b".into(),
            api_base: "https://chat.example".into(),
            title: "Acme <help>".into(),
            greeting: "¡Hola!".into(),
            starters: vec!["One?".into(), "Two?".into()],
            theme: Theme {
                primary: "#0f766e".into(),
                mode: ThemeMode::Dark,
                radius: 20,
                font: "Georgia, serif".into(),
                avatar: "https://cdn.example/logo.png".into(),
            },
            lang: "ar-EG".into(),
            rtl: true,
            strings: vec!["اكتب سؤالك…".into(), "x".into()],
        }
    }

    /// What `protocol` writes (serde_json), these readers read back whole.
    #[test]
    fn every_type_reads_back_what_protocol_writes() {
        let config = config_sample();
        assert_eq!(
            super::config(&serde_json::to_value(&config).unwrap()),
            Some(config)
        );
        let events = [
            StreamEvent::Meta(MetaEvent {
                conversation_id: "c".into(),
                user_message_id: "u".into(),
                message_id: "m".into(),
            }),
            StreamEvent::Sources(vec![
                SourceRef {
                    n: 1,
                    title: "Install".into(),
                    url: Some("https://x.example/#a".into()),
                    snippet: "Run it".into(),
                },
                SourceRef {
                    n: 2,
                    title: "FAQ".into(),
                    url: None,
                    snippet: "".into(),
                },
            ]),
            StreamEvent::chunk("Hel\"lo\n"),
            StreamEvent::Done(DoneEvent {
                finish_reason: "stop".into(),
                usage: Some(Usage {
                    prompt_tokens: 10,
                    completion_tokens: 3,
                    total_tokens: 13,
                }),
            }),
            StreamEvent::Done(DoneEvent {
                finish_reason: "length".into(),
                usage: None,
            }),
            StreamEvent::Error(ApiError::new(ErrorCode::RateLimited, "slow down")),
        ];
        for e in events {
            let wire = e.to_sse(7);
            let msg = protocol::SseParser::default()
                .push(wire.as_bytes())
                .pop()
                .unwrap();
            let data: Value = serde_json::from_str(&msg.data).unwrap();
            let name = msg.event.clone();
            assert_eq!(super::event(&name, &data), Some(e), "{wire}");
        }
        let history = ConversationView {
            conversation_id: "conv".into(),
            messages: vec![
                MessageView {
                    id: "1".into(),
                    role: Role::User,
                    content: "Q".into(),
                    status: MessageStatus::Complete,
                    created_at: 1_796_323_242_123,
                    sources: Vec::new(),
                    rating: None,
                },
                MessageView {
                    id: "2".into(),
                    role: Role::Assistant,
                    content: "A [1]".into(),
                    status: MessageStatus::Streaming,
                    created_at: 1_796_323_243_000,
                    sources: vec![SourceRef {
                        n: 1,
                        title: "T".into(),
                        url: None,
                        snippet: "s".into(),
                    }],
                    rating: Some(Rating::Down),
                },
            ],
        };
        assert_eq!(
            super::conversation(&serde_json::to_value(&history).unwrap()),
            Some(history)
        );
    }

    #[test]
    fn defaults_fill_gaps_and_wrong_types_fail_as_serde_does() {
        let minimal = json!({"widget_id":"d","public_key":"pk","session":"s","title":"T"});
        let c = super::config(&minimal).unwrap();
        assert_eq!(c.theme, Theme::default());
        assert!(c.starters.is_empty() && c.strings.is_empty() && !c.rtl);
        assert_eq!(
            super::config(&json!({"widget_id":"d","public_key":"pk","session":"s"})),
            None,
            "a missing title"
        );
        let mut bad = minimal.clone();
        bad["theme"] = json!({"mode": "sepia"});
        assert_eq!(super::config(&bad), None);
        bad["theme"] = json!({"radius": 12.5});
        assert_eq!(super::config(&bad), None);
        bad["theme"] = json!({"radius": 12});
        assert_eq!(super::config(&bad).unwrap().theme.radius, 12);
        bad["starters"] = json!(["ok", 3]);
        assert_eq!(super::config(&bad), None);
        // An error code from a newer server reads as unknown.
        assert_eq!(
            super::api_error(&json!({"code": "from_the_future", "message": "m"})),
            Some(ApiError::new(ErrorCode::Unknown, "m"))
        );
        assert_eq!(super::event("party", &json!({})), None);
        assert_eq!(super::event("message", &json!({"chunk": 5})), None);
        assert_eq!(
            super::event("sources", &json!([{"n": -1, "title": "t", "snippet": ""}])),
            None
        );
    }
}
