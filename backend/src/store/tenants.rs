//! Widgets as tenants in the store: their settings, hashed public keys,
//! allowed sites, the admin keys that manage them, and what admins read
//! about their conversations and token usage.
//!
//! [`TenantStore`] is what every store implements; [`reload_widgets`] and
//! [`refresh_widgets`] keep the in-memory registry in step with it.

use std::sync::Arc;

use async_trait::async_trait;
use salvo::oapi::ToSchema;
use serde::Serialize;

use super::conversations::Rating;
use super::inbox::{ExportRow, FixCase, InboxFilter, InboxItem};
use super::{MessageStatus, Role, StoreError};
use crate::tenants::session::{hash_key, key_prefix};
use crate::tenants::{Widget, WidgetDef, WidgetRegistry, Widgets};

/// A stored public or admin key: its hash and what it may be shown as.
#[derive(Debug, Clone)]
pub struct KeyHash {
    pub hash: String,
    pub prefix: String,
}

impl KeyHash {
    pub fn of(key: &str) -> Self {
        Self {
            hash: hash_key(key),
            prefix: key_prefix(key),
        }
    }
}

/// A conversation as admins list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConversationSummary {
    pub id: String,
    /// The anonymous visitor that started it; `null` for conversations from
    /// before visitors were recorded.
    pub visitor_id: Option<String>,
    /// The verified user, when the site identified one.
    pub user_id: Option<String>,
    pub messages: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    pub last_message_at: u64,
}

/// A message as admins read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AdminMessage {
    pub id: String,
    /// Position in the conversation, from 1.
    pub seq: u32,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub created_at: u64,
    /// The visitor's rating of an answer, and their comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating_comment: Option<String>,
    /// The knowledge an answer used, as the visitor's source list showed it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<protocol::SourceRef>,
}

/// Tokens used by one widget on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DailyUsage {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub answers: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

#[async_trait]
pub trait TenantStore: Send + Sync + std::fmt::Debug {
    /// Every widget, enabled or not, by id.
    async fn widgets(&self) -> Result<Vec<WidgetDef>, StoreError>;
    async fn widget(&self, id: &str) -> Result<Option<WidgetDef>, StoreError>;
    /// `(key hash, widget id)` of every live public key.
    async fn live_keys(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// A number that changes whenever a widget, key or site changes.
    async fn revision(&self) -> Result<i64, StoreError>;
    /// Creates a widget with its first key; `Conflict` if the id is taken.
    async fn create_widget(&self, def: &WidgetDef, key: &KeyHash) -> Result<(), StoreError>;
    /// Replaces a widget's settings and sites; `false` if it does not exist.
    async fn update_widget(&self, def: &WidgetDef) -> Result<bool, StoreError>;
    /// Deletes a widget with its keys, sites and conversations.
    async fn delete_widget(&self, id: &str) -> Result<bool, StoreError>;
    /// Revokes the widget's live keys and adds `key`.
    async fn rotate_key(&self, id: &str, key: &KeyHash) -> Result<bool, StoreError>;
    /// Creates or re-applies a widget declared in the config file, with
    /// `key` as its only live key.
    async fn import_widget(&self, def: &WidgetDef, key: &KeyHash) -> Result<(), StoreError>;
    /// Creates `def` only the first time this database is asked to (the
    /// demo): deleted later, it stays deleted. Returns whether it was created.
    async fn create_once(
        &self,
        marker: &str,
        def: &WidgetDef,
        key: &KeyHash,
    ) -> Result<bool, StoreError>;
    /// A server-wide value, set to `value` when absent; returns the stored one.
    async fn meta_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError>;
    async fn create_admin_key(&self, name: &str, key: &KeyHash) -> Result<(), StoreError>;
    /// Whether `hash` is the hash of an admin key.
    async fn is_admin_key(&self, hash: &str) -> Result<bool, StoreError>;
    /// A widget's conversations, newest first, `limit` at a time, after `cursor`.
    async fn conversations(
        &self,
        widget: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<ConversationSummary>, Option<String>), StoreError>;
    /// A conversation's messages from `after_seq` on, `limit` at a time;
    /// `None` if it is not `widget`'s.
    async fn conversation_messages(
        &self,
        widget: &str,
        conversation: &str,
        limit: u32,
        after_seq: u32,
    ) -> Result<Option<Vec<AdminMessage>>, StoreError>;
    /// Conversations across widgets that `filter` keeps, newest first,
    /// `limit` at a time, after `cursor`.
    async fn inbox(
        &self,
        filter: &InboxFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<InboxItem>, Option<String>), StoreError>;
    /// The newest `max` answers to fix (unanswered or rated down) in the
    /// conversations `filter` keeps.
    async fn to_fix(&self, filter: &InboxFilter, max: u32) -> Result<Vec<FixCase>, StoreError>;
    /// Each widget's (or `widget`'s) counts per UTC day for the messages
    /// sent in `[from_ms, to_ms)`, by widget then day; days without a
    /// message are left out.
    async fn analytics(
        &self,
        widget: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<crate::store::analytics::DayCounts>, StoreError>;
    /// Every message of the newest `max` conversations `filter` keeps.
    async fn export(&self, filter: &InboxFilter, max: u32) -> Result<Vec<ExportRow>, StoreError>;
    /// Tokens per day (UTC) for `widget`, from `from_day` (YYYY-MM-DD) on,
    /// as the budgets count them.
    async fn usage_by_day(
        &self,
        widget: &str,
        from_day: &str,
    ) -> Result<Vec<DailyUsage>, StoreError>;
}

/// Reads the enabled widgets and live keys from `store` into `widgets`.
pub async fn reload_widgets(widgets: &Widgets, store: &dyn TenantStore) -> Result<(), StoreError> {
    let revision = store.revision().await?;
    let defs = store.widgets().await?;
    let keys = store.live_keys().await?;
    let enabled = defs.iter().filter(|d| !d.disabled).filter_map(|d| {
        Widget::from_def(d)
            .map_err(|e| tracing::warn!(widget = %d.id, error = %e, "skipping a stored widget"))
            .ok()
    });
    widgets.replace(Arc::new(WidgetRegistry::new(enabled, keys, revision)));
    Ok(())
}

/// Reloads when another process (the CLI, another replica) changed widgets.
pub async fn refresh_widgets(widgets: &Widgets, store: &dyn TenantStore) -> Result<(), StoreError> {
    if store.revision().await? != widgets.get().revision {
        reload_widgets(widgets, store).await?;
    }
    Ok(())
}
