//! Model providers: something that turns a prompt into a stream of deltas.
//! The chat relay does not know which one answers.

mod offline;
mod openai;

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use protocol::Usage;

pub use offline::{OfflineProvider, compose_answer};
pub use openai::OpenAiProvider;

use crate::tenants::Widget;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptRole {
    System,
    User,
    Assistant,
}

impl PromptRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: PromptRole,
    pub content: String,
}

/// A numbered passage of the widget's knowledge: the answer cites it as
/// `[n]`, and the visitor sees it under the answer as source `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub n: u32,
    /// Where it comes from: the page's title and the heading path.
    pub title: String,
    pub text: String,
}

/// What a provider is asked.
#[derive(Debug, Clone)]
pub struct PromptRequest {
    /// Earlier turns of the conversation, oldest first, without the question.
    pub history: Vec<PromptMessage>,
    /// The visitor's new message.
    pub question: String,
    /// The knowledge relevant to the question, best first.
    pub knowledge: Vec<Passage>,
}

/// A piece of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
    /// The model said why it stopped; usage may still follow.
    Finish(String),
    Usage(Usage),
}

/// Why a provider failed. The text is for the log, never for the visitor.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("upstream answered HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("cannot reach upstream: {0}")]
    Connect(String),
    #[error("upstream stream broke: {0}")]
    Stream(String),
    #[error("upstream sent a chunk we cannot read: {0}")]
    Malformed(String),
}

pub type DeltaStream = Pin<Box<dyn Stream<Item = Result<Delta, ProviderError>> + Send>>;

/// A fixed reply streamed word by word, with no model call: the widget's
/// "I don't know", or a FAQ's answer.
pub fn canned(text: &str) -> DeltaStream {
    let deltas: Vec<Result<Delta, ProviderError>> = offline::words(text)
        .into_iter()
        .map(|w| Ok(Delta::Text(w)))
        .chain([Ok(Delta::Finish("stop".into()))])
        .collect();
    Box::pin(futures_util::stream::iter(deltas))
}

#[async_trait]
pub trait ChatProvider: Send + Sync + std::fmt::Debug {
    /// A short name for logs: `openai`, `offline`.
    fn name(&self) -> &'static str;
    /// Starts an answer. Dropping the stream cancels it.
    async fn start(
        &self,
        widget: &Widget,
        request: PromptRequest,
    ) -> Result<DeltaStream, ProviderError>;
}
