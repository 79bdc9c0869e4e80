//! Any OpenAI-compatible chat completions API, through async-openai.
//!
//! Requests and chunks use our own lenient types (async-openai's "bring your
//! own types" calls) because real servers differ from OpenAI's schema in ways
//! that would otherwise fail every chunk: vLLM sends `"choices": null` in its
//! usage chunk, some servers omit `created` or `model`.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_trait::async_trait;
use futures_util::StreamExt;
use protocol::Usage;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;

use super::{ChatProvider, Delta, DeltaStream, PromptRequest, PromptRole, ProviderError};
use crate::config::UpstreamSettings;
use crate::tenants::Widget;

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    model: String,
    temperature: f32,
    max_tokens: u32,
}

impl OpenAiProvider {
    pub fn new(settings: &UpstreamSettings) -> anyhow::Result<Self> {
        let mut config = OpenAIConfig::new().with_api_base(settings.base_url.trim_end_matches('/'));
        config = config.with_api_key(
            settings
                .api_key
                .as_ref()
                .map(|k| k.expose_secret().to_owned())
                .unwrap_or_default(),
        );
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| anyhow::anyhow!("building the upstream HTTP client: {e}"))?;
        Ok(Self {
            client: Client::with_config(config).with_http_client(http),
            model: settings.model.clone(),
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
        })
    }

    /// The JSON body sent upstream.
    pub fn request_body(&self, widget: &Widget, request: &PromptRequest) -> serde_json::Value {
        let mut system = widget.system_prompt.trim().to_owned();
        if !request.knowledge.is_empty() {
            if !system.is_empty() {
                system.push_str("\n\n");
            }
            system.push_str(
                "Answer from these numbered sources. Cite the ones you use by their \
                 number in brackets, like [1]. If they do not answer the question, say so.\n",
            );
            for passage in &request.knowledge {
                system.push_str(&format!("\n[{}] {}\n", passage.n, passage.title));
                system.push_str(&passage.text);
                system.push('\n');
            }
        }
        let mut messages = Vec::with_capacity(request.history.len() + 2);
        if !system.is_empty() {
            messages.push(json!({"role": "system", "content": system}));
        }
        for m in &request.history {
            messages.push(json!({"role": m.role.as_str(), "content": m.content}));
        }
        messages.push(json!({"role": PromptRole::User.as_str(), "content": request.question}));
        json!({
            "model": widget.model.as_deref().unwrap_or(&self.model),
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": widget.temperature.unwrap_or(self.temperature),
            "max_tokens": widget.max_tokens.unwrap_or(self.max_tokens),
        })
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<ChoiceDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    #[serde(default)]
    total_tokens: u32,
}

fn map_error(e: OpenAIError) -> ProviderError {
    match e {
        OpenAIError::ApiError(api) => ProviderError::Status {
            status: api.status_code.as_u16(),
            message: api.api_error.message,
        },
        OpenAIError::Reqwest(e) if e.is_connect() || e.is_timeout() => {
            ProviderError::Connect(e.to_string())
        }
        OpenAIError::Reqwest(e) => ProviderError::Stream(e.to_string()),
        OpenAIError::JSONDeserialize(e, content) => ProviderError::Malformed(format!(
            "{e}; content: {}",
            content.chars().take(200).collect::<String>()
        )),
        OpenAIError::StreamError(e) => ProviderError::Stream(e.to_string()),
        other => ProviderError::Stream(other.to_string()),
    }
}

/// The deltas one chunk carries, in order.
fn deltas(chunk: Chunk) -> Vec<Delta> {
    let mut out = Vec::new();
    for choice in chunk.choices.unwrap_or_default().into_iter().take(1) {
        if let Some(text) = choice
            .delta
            .and_then(|d| d.content)
            .filter(|t| !t.is_empty())
        {
            out.push(Delta::Text(text));
        }
        if let Some(reason) = choice.finish_reason {
            out.push(Delta::Finish(reason));
        }
    }
    if let Some(u) = chunk.usage {
        out.push(Delta::Usage(Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens.max(u.prompt_tokens + u.completion_tokens),
        }));
    }
    out
}

#[async_trait]
impl ChatProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    async fn start(
        &self,
        widget: &Widget,
        request: PromptRequest,
    ) -> Result<DeltaStream, ProviderError> {
        let body = self.request_body(widget, &request);
        let chunks = self
            .client
            .chat()
            .create_stream_byot::<_, Chunk>(body)
            .await
            .map_err(map_error)?;
        let deltas = chunks.flat_map(|item| {
            let items: Vec<Result<Delta, ProviderError>> = match item {
                Ok(chunk) => deltas(chunk).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(map_error(e))],
            };
            futures_util::stream::iter(items)
        });
        Ok(Box::pin(deltas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Vec<Delta> {
        deltas(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn chunks_of_real_servers_are_read() {
        assert_eq!(
            parse(
                r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#
            ),
            [Delta::Text("Hi".into())]
        );
        assert_eq!(
            parse(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            [Delta::Finish("stop".into())]
        );
        // vLLM's final usage chunk.
        assert_eq!(
            parse(
                r#"{"choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#
            ),
            [Delta::Usage(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                total_tokens: 7
            })]
        );
        assert_eq!(parse(r#"{"choices":[],"usage":null}"#), []);
    }

    #[test]
    fn the_request_carries_system_prompt_knowledge_history_and_limits() {
        let settings = UpstreamSettings::default();
        let provider = OpenAiProvider::new(&settings).unwrap();
        let widget = Widget::demo();
        let body = provider.request_body(
            &widget,
            &PromptRequest {
                history: vec![super::super::PromptMessage {
                    role: PromptRole::User,
                    content: "earlier".into(),
                }],
                question: "Does it work with Ollama?".into(),
                knowledge: vec![super::super::Passage {
                    n: 1,
                    title: "Models".into(),
                    text: "Any OpenAI-compatible server: Ollama, vLLM.".into(),
                }],
            },
        );
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages[0]["role"], "system");
        let system = messages[0]["content"].as_str().unwrap();
        assert!(system.starts_with(&widget.system_prompt), "{system}");
        assert!(
            system.contains("[1] Models\nAny OpenAI-compatible server: Ollama, vLLM."),
            "{system}"
        );
        assert_eq!(messages[1]["content"], "earlier");
        assert_eq!(messages[2]["content"], "Does it work with Ollama?");
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 800);
        assert_eq!(body["model"], "gpt-4o-mini");
        // A widget's own model settings win over the server's.
        let mut def = crate::tenants::WidgetDef::demo();
        def.model = Some("llama3".into());
        def.temperature = Some(1.5);
        def.max_tokens = Some(64);
        let own = Widget::from_def(&def).unwrap();
        let body = provider.request_body(
            &own,
            &PromptRequest {
                history: vec![],
                question: "hi".into(),
                knowledge: vec![],
            },
        );
        assert_eq!(
            (&body["model"], &body["temperature"], &body["max_tokens"]),
            (
                &serde_json::json!("llama3"),
                &serde_json::json!(1.5),
                &serde_json::json!(64)
            )
        );
    }
}
