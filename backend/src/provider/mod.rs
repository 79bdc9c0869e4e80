//! Model providers: something that turns a prompt into a stream of deltas.
//! The chat relay does not know which one answers.

mod offline;
mod openai;

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use protocol::Usage;

pub use offline::OfflineProvider;
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

/// What a provider is asked.
#[derive(Debug, Clone)]
pub struct PromptRequest {
    /// Earlier turns of the conversation, oldest first, without the question.
    pub history: Vec<PromptMessage>,
    /// The visitor's new message.
    pub question: String,
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
