//! Where conversations live. [`ConversationStore`] is the seam the SQL
//! stores will implement; [`MemoryStore`] keeps them in this process.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use protocol::Usage;

use crate::widget::WidgetId;

pub use protocol::widget::{MessageStatus, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub id: String,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub usage: Option<Usage>,
    pub created_at: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conversation {0} does not exist")]
    NoSuchConversation(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ConversationStore: Send + Sync + std::fmt::Debug {
    /// Creates an empty conversation for `widget` and returns its id.
    async fn create_conversation(&self, widget: &WidgetId) -> Result<String, StoreError>;
    /// The messages of a conversation, oldest first; `None` when it does not
    /// exist or belongs to another widget.
    async fn messages(
        &self,
        widget: &WidgetId,
        conversation: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError>;
    /// Appends a message; it is stored when this returns.
    async fn append(&self, conversation: &str, message: StoredMessage) -> Result<(), StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

#[derive(Debug)]
struct Conversation {
    widget: WidgetId,
    messages: Vec<StoredMessage>,
}

#[derive(Debug, Default)]
struct Inner {
    conversations: HashMap<String, Conversation>,
    /// Creation order, for evicting the oldest when full.
    order: VecDeque<String>,
}

/// Conversations in memory, bounded: past `capacity` the oldest is dropped.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A fresh id with a readable prefix: `conv_…`, `msg_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn create_conversation(&self, widget: &WidgetId) -> Result<String, StoreError> {
        let id = new_id("conv");
        let mut inner = self.lock();
        while inner.order.len() >= self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.conversations.remove(&old);
            }
        }
        inner.order.push_back(id.clone());
        inner.conversations.insert(
            id.clone(),
            Conversation {
                widget: widget.clone(),
                messages: Vec::new(),
            },
        );
        Ok(id)
    }

    async fn messages(
        &self,
        widget: &WidgetId,
        conversation: &str,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        Ok(self
            .lock()
            .conversations
            .get(conversation)
            .filter(|c| &c.widget == widget)
            .map(|c| c.messages.clone()))
    }

    async fn append(&self, conversation: &str, message: StoredMessage) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let conv = inner
            .conversations
            .get_mut(conversation)
            .ok_or_else(|| StoreError::NoSuchConversation(conversation.to_owned()))?;
        conv.messages.push(message);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl StoredMessage {
    /// The message as the history API shows it.
    pub fn view(&self) -> protocol::widget::MessageView {
        protocol::widget::MessageView {
            id: self.id.clone(),
            role: self.role,
            content: self.content.clone(),
            status: self.status,
            created_at: self
                .created_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(content: &str) -> StoredMessage {
        StoredMessage {
            id: new_id("msg"),
            role: Role::User,
            content: content.into(),
            status: MessageStatus::Complete,
            usage: None,
            created_at: SystemTime::now(),
        }
    }

    #[tokio::test]
    async fn conversations_belong_to_their_widget() {
        let store = MemoryStore::new(10);
        let a = WidgetId::parse("a").unwrap();
        let b = WidgetId::parse("b").unwrap();
        let conv = store.create_conversation(&a).await.unwrap();
        store.append(&conv, msg("hello")).await.unwrap();
        assert_eq!(store.messages(&a, &conv).await.unwrap().unwrap().len(), 1);
        assert!(store.messages(&b, &conv).await.unwrap().is_none());
        assert!(store.messages(&a, "conv_nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_oldest_conversation_is_evicted_when_full() {
        let store = MemoryStore::new(2);
        let w = WidgetId::parse("w").unwrap();
        let first = store.create_conversation(&w).await.unwrap();
        let second = store.create_conversation(&w).await.unwrap();
        let third = store.create_conversation(&w).await.unwrap();
        assert!(store.messages(&w, &first).await.unwrap().is_none());
        assert!(store.messages(&w, &second).await.unwrap().is_some());
        assert!(store.messages(&w, &third).await.unwrap().is_some());
        assert!(store.append(&first, msg("late")).await.is_err());
    }
}
