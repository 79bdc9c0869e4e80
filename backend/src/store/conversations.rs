//! Conversations as the store keeps them: messages, their owner, and the
//! [`ConversationStore`] trait every store (SQLite today, PostgreSQL next)
//! implements.
//!
//! Nothing accepted is lost: the visitor's message is committed before the
//! model is asked; the answer's row is created `streaming` when it starts,
//! checkpointed while it streams, and finished as `complete`, `interrupted`
//! or `error`. A process killed mid-answer leaves a `streaming` row, which
//! the next start turns into `interrupted` with what was checkpointed.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use protocol::Usage;

pub use protocol::widget::{MessageStatus, Rating, Role};

use super::StoreError;
use crate::tenants::WidgetId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub usage: Option<Usage>,
    pub created_at: SystemTime,
    /// The knowledge an answer used (its `sources` event).
    pub sources: Vec<protocol::SourceRef>,
    /// The visitor's rating of an answer.
    pub rating: Option<Rating>,
}

impl StoredMessage {
    /// The message as the history API shows it.
    pub fn view(&self) -> protocol::widget::MessageView {
        protocol::widget::MessageView {
            id: self.id.clone(),
            role: self.role,
            content: self.content.clone(),
            status: self.status,
            created_at: millis(self.created_at),
            sources: self.sources.clone(),
            rating: self.rating,
        }
    }
}

/// The answer a turn starts: its id, the knowledge it is grounded in, and
/// whether the question found nothing relevant (an unanswered question).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnswer {
    pub id: String,
    pub sources: Vec<protocol::SourceRef>,
    pub unanswered: bool,
}

/// What rating an answer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rated {
    /// No such message, or not one the visitor may read.
    NotFound,
    /// The visitor's own message, or an answer still being written.
    NotAnswer,
    /// Saved; `first` when the answer had no rating before.
    Saved { first: bool },
}

/// Whose a conversation is: the session's anonymous visitor, and the
/// verified user when the site identified one.
///
/// A conversation with a user is readable by that user's sessions only; one
/// without is readable by the visitor that started it only. So a visitor
/// whose identity hash was wrong (anonymous) never reads a user's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub visitor: String,
    pub user: Option<String>,
}

impl Owner {
    /// Whether this owner may read a conversation stored with `visitor` and `user`.
    pub fn may_read(&self, visitor: Option<&str>, user: Option<&str>) -> bool {
        match user {
            Some(user) => self.user.as_deref() == Some(user),
            None => visitor.is_some_and(|v| v == self.visitor),
        }
    }
}

#[async_trait]
pub trait ConversationStore: Send + Sync + std::fmt::Debug {
    /// Starts a turn in one transaction: creates the conversation when
    /// `conversation` is `None` (or checks that `owner` may continue it),
    /// commits the visitor's message, and starts the answer as an empty
    /// `streaming` message (with its sources). Returns the conversation's id.
    async fn begin_turn(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: Option<&str>,
        question: StoredMessage,
        answer: &NewAnswer,
    ) -> Result<String, StoreError>;
    /// [`Self::begin_turn`] for an answer without sources.
    async fn start_turn(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: Option<&str>,
        question: StoredMessage,
        answer_id: &str,
    ) -> Result<String, StoreError> {
        let answer = NewAnswer {
            id: answer_id.to_owned(),
            sources: Vec::new(),
            unanswered: false,
        };
        self.begin_turn(widget, owner, conversation, question, &answer)
            .await
    }
    /// The messages of a conversation, oldest first; `None` when it does not
    /// exist, belongs to another widget, or `owner` may not read it.
    async fn messages(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        conversation: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError>;
    /// The conversation of message `id`, when it is `widget`'s and `owner`
    /// may read it.
    async fn conversation_of_message(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Records the visitor's rating of answer `id`, replacing the one they
    /// gave before; `None` takes it back (and the comment with it).
    async fn rate_answer(
        &self,
        widget: &WidgetId,
        owner: &Owner,
        id: &str,
        rating: Option<Rating>,
        comment: Option<&str>,
    ) -> Result<Rated, StoreError>;
    /// Saves what an answer has so far, renewing its lease.
    async fn checkpoint_answer(&self, id: &str, content: &str) -> Result<(), StoreError>;
    /// Ends an answer (once: an answer already ended is left as it is) and
    /// adds its tokens to the widget's usage of the day.
    async fn finish_answer(
        &self,
        id: &str,
        content: &str,
        status: MessageStatus,
        usage: Option<Usage>,
    ) -> Result<(), StoreError>;
    /// Tokens `widget` used on `day` (YYYY-MM-DD, UTC) and in its month.
    async fn spent(&self, widget: &WidgetId, day: &str) -> Result<(u64, u64), StoreError>;
    /// Marks answers left `streaming` by a process that is gone as
    /// `interrupted`; returns how many. `None`: every streaming answer is
    /// gone (the start of the only process using the store); `Some(lease)`:
    /// those not renewed ([`Self::checkpoint_answer`]) for `lease`, which
    /// replicas sharing a store run at start and then now and then.
    async fn recover(&self, lease: Option<std::time::Duration>) -> Result<u64, StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
