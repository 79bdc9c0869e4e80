//! Widgets: the sites a Porthole server answers for, found by public key.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{ConfigError, WidgetSettings};
use crate::knowledge::KnowledgeIndex;

/// The demo widget's knowledge: a short guide to Porthole itself.
pub const DEMO_KNOWLEDGE: &str = include_str!("../knowledge/porthole.md");

/// A widget id: 1 to 64 ASCII letters, digits, `-` or `_`. It appears in
/// URLs (`/widget/{id}`) and storage keys, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WidgetId(String);

impl WidgetId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{s:?} may only hold ASCII letters, digits, '-' and '_'"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WidgetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A widget as the server uses it.
#[derive(Debug)]
pub struct Widget {
    pub id: WidgetId,
    pub public_key: String,
    pub title: String,
    pub system_prompt: String,
    pub knowledge: KnowledgeIndex,
    pub greeting: String,
    pub starters: Vec<String>,
    pub theme: protocol::widget::Theme,
    /// Origins that may embed the widget; empty for any.
    pub allowed_sites: Vec<String>,
}

impl Widget {
    /// The `frame-ancestors` directive for the widget's page.
    pub fn frame_ancestors(&self) -> String {
        if self.allowed_sites.is_empty() {
            "frame-ancestors *".to_owned()
        } else {
            format!("frame-ancestors {}", self.allowed_sites.join(" "))
        }
    }

    /// The public settings embedded in the widget's page.
    pub fn config(&self) -> protocol::widget::WidgetConfig {
        protocol::widget::WidgetConfig {
            widget_id: self.id.to_string(),
            public_key: self.public_key.clone(),
            api_base: String::new(),
            title: self.title.clone(),
            greeting: self.greeting.clone(),
            starters: self.starters.clone(),
            theme: self.theme.clone(),
        }
    }

    /// Builds a widget from its settings, reading its knowledge file.
    pub fn from_settings(s: &WidgetSettings) -> Result<Self, ConfigError> {
        let id = WidgetId::parse(&s.id).map_err(|message| ConfigError::Invalid {
            field: format!("widget {:?} id", s.id),
            message,
        })?;
        let text = match &s.knowledge {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?,
            None => String::new(),
        };
        Ok(Self {
            id,
            public_key: s.public_key.clone(),
            title: s.title.clone(),
            system_prompt: s.system_prompt.clone(),
            knowledge: KnowledgeIndex::from_markdown(&text),
            greeting: s.greeting.clone(),
            starters: s.starters.clone(),
            theme: s.theme.clone(),
            allowed_sites: s.allowed_sites.clone(),
        })
    }

    /// The demo widget (`demo`, `pk_demo`) that answers questions about Porthole.
    pub fn demo() -> Self {
        Self {
            id: WidgetId("demo".into()),
            public_key: "pk_demo".into(),
            title: "Porthole demo".into(),
            system_prompt:
                "You are Porthole's friendly assistant. Answer questions about Porthole \
                            briefly, using the knowledge provided. If the knowledge does not cover \
                            a question, say so."
                    .into(),
            knowledge: KnowledgeIndex::from_markdown(DEMO_KNOWLEDGE),
            greeting: "Hi! I'm Porthole's demo assistant. Ask me how Porthole works.".into(),
            starters: vec![
                "How do I install the widget?".into(),
                "Which models are supported?".into(),
                "What does it cost?".into(),
            ],
            theme: protocol::widget::Theme::default(),
            allowed_sites: Vec::new(),
        }
    }
}

/// All widgets, found by public key or by id.
#[derive(Debug, Default)]
pub struct WidgetRegistry {
    by_key: HashMap<String, Arc<Widget>>,
    by_id: HashMap<String, Arc<Widget>>,
}

impl WidgetRegistry {
    pub fn new(widgets: impl IntoIterator<Item = Widget>) -> Self {
        let widgets: Vec<Arc<Widget>> = widgets.into_iter().map(Arc::new).collect();
        Self {
            by_key: widgets
                .iter()
                .map(|w| (w.public_key.clone(), w.clone()))
                .collect(),
            by_id: widgets
                .iter()
                .map(|w| (w.id.to_string(), w.clone()))
                .collect(),
        }
    }

    pub fn by_key(&self, key: &str) -> Option<Arc<Widget>> {
        self.by_key.get(key).cloned()
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<Widget>> {
        self.by_id.get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widget_ids_are_url_safe() {
        assert!(WidgetId::parse("demo").is_ok());
        assert!(WidgetId::parse("acme_docs-2").is_ok());
        for bad in ["", "a b", "a/b", "é", "../x", &"x".repeat(65)] {
            assert!(WidgetId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn registry_finds_widgets_by_public_key_only() {
        let reg = WidgetRegistry::new([Widget::demo()]);
        assert_eq!(
            reg.by_key("pk_demo").map(|w| w.id.to_string()),
            Some("demo".into())
        );
        assert!(reg.by_key("demo").is_none());
        assert!(reg.by_key("pk_other").is_none());
    }
}
