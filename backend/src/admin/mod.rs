//! Managing widgets and their keys: the rules the admin API and the CLI
//! (`porthole widget …`) share, so both check widgets the same way.
//!
//! May use: `store`, `tenants`, `knowledge`, `limits`, `ids`. Never `http`
//! or `state`.

pub mod analytics;
pub mod fix;
pub mod knowledge;
pub mod webhooks;

use salvo::oapi::ToSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::store::{KeyHash, StoreError, TenantStore};
use crate::tenants::session::new_key;
use crate::tenants::{WidgetDef, WidgetId};

/// Reads `null` as `Some(None)` (clear) and an absent field as `None` (keep).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Settings to create a widget with, or to change: absent fields are left
/// as they are (or get defaults); `null` clears the nullable ones.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetInput {
    /// Only when creating: 1 to 64 letters, digits, `-`, `_`. Made from the
    /// title when absent.
    pub id: Option<String>,
    pub title: Option<String>,
    pub greeting: Option<String>,
    pub starters: Option<Vec<String>>,
    pub theme: Option<protocol::widget::Theme>,
    /// Replaces the widget's language settings.
    pub language: Option<crate::tenants::i18n::WidgetLanguage>,
    pub system_prompt: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[salvo(schema(value_type = Option<String>))]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[salvo(schema(value_type = Option<f32>))]
    pub temperature: Option<Option<f32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[salvo(schema(value_type = Option<u32>))]
    pub max_tokens: Option<Option<u32>>,
    /// Markdown the widget answers from.
    pub knowledge: Option<String>,
    /// What to say when the knowledge has nothing relevant ("" for the default).
    pub unknown_reply: Option<String>,
    /// 0 to 1: how much of a question a passage must cover; `null` for the default.
    #[serde(default, deserialize_with = "nullable")]
    #[salvo(schema(value_type = Option<f32>))]
    pub min_relevance: Option<Option<f32>>,
    pub allowed_sites: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[salvo(schema(value_type = Option<String>))]
    pub verification_secret: Option<Option<String>>,
    pub disabled: Option<bool>,
    /// Replaces the widget's limits (absent fields inside take the server's defaults).
    pub limits: Option<crate::limits::WidgetLimits>,
}

impl WidgetInput {
    /// Applies the given fields to `def`.
    pub fn apply(self, def: &mut WidgetDef) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { def.$f = v; } )* };
        }
        set!(
            title,
            greeting,
            starters,
            theme,
            language,
            system_prompt,
            model,
            temperature,
            max_tokens,
            knowledge,
            unknown_reply,
            min_relevance,
            allowed_sites,
            verification_secret,
            disabled,
            limits
        );
    }
}

/// An id made from a title: `Acme Docs!` -> `acme-docs`.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() { "widget".into() } else { out }
}

/// The `<script>` tag a site owner pastes.
pub fn embed_snippet(origin: &str, id: &str, key: &str) -> String {
    format!(
        "<script src=\"{origin}/widget.js\" data-widget-id=\"{id}\" data-key=\"{key}\" async></script>"
    )
}

/// Why an admin operation failed, for the API and the CLI alike.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0} exists already")]
    Conflict(String),
    #[error("there is no widget {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

impl AdminError {
    /// `field` is wrong, for this reason.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what),
            other => Self::Store(other),
        }
    }
}

fn check(def: &WidgetDef) -> Result<(), AdminError> {
    def.validate()
        .map_err(|(field, message)| AdminError::invalid(field, message))
}

/// A widget just made, with its public key (shown once: only its hash is kept).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWidget {
    pub widget: WidgetDef,
    pub public_key: String,
    /// The `<script>` tag to paste into the site.
    pub embed: String,
}

/// A widget's new public key; the old one stops working at once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotatedKey {
    pub public_key: String,
    pub embed: String,
}

/// Creates a widget with a new key.
pub async fn create_widget(
    store: &dyn TenantStore,
    input: WidgetInput,
    origin: &str,
) -> Result<CreatedWidget, AdminError> {
    let title = input.title.clone().unwrap_or_default();
    let explicit = input.id.clone();
    let base = explicit.clone().unwrap_or_else(|| slug(&title));
    let id = WidgetId::parse(&base).map_err(|message| AdminError::invalid("id", message))?;
    let mut def = WidgetDef::new(id, &title, "admin");
    input.apply(&mut def);
    check(&def)?;
    // A made-up id that is taken gets a number; a chosen one is a conflict.
    for n in 1.. {
        if n > 1 {
            if explicit.is_some() || n > 50 {
                break;
            }
            def.id = format!("{base}-{n}");
        }
        let key = new_key("pk");
        match store.create_widget(&def, &KeyHash::of(&key)).await {
            Ok(()) => {
                let widget = store
                    .widget(&def.id)
                    .await?
                    .ok_or_else(|| AdminError::NotFound(def.id.clone()))?;
                let embed = embed_snippet(origin, &widget.id, &key);
                return Ok(CreatedWidget {
                    widget,
                    public_key: key,
                    embed,
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AdminError::Conflict(format!("widget {base:?}")))
}

/// Changes a widget's settings.
pub async fn update_widget(
    store: &dyn TenantStore,
    id: &str,
    input: WidgetInput,
) -> Result<WidgetDef, AdminError> {
    if input.id.as_deref().is_some_and(|new| new != id) {
        return Err(AdminError::invalid("id", "cannot be changed"));
    }
    let mut def = store
        .widget(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.into()))?;
    input.apply(&mut def);
    check(&def)?;
    if !store.update_widget(&def).await? {
        return Err(AdminError::NotFound(id.into()));
    }
    store
        .widget(id)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.into()))
}

/// Gives a widget a new key, revoking the old one.
pub async fn rotate_key(
    store: &dyn TenantStore,
    id: &str,
    origin: &str,
) -> Result<RotatedKey, AdminError> {
    let key = new_key("pk");
    if !store.rotate_key(id, &KeyHash::of(&key)).await? {
        return Err(AdminError::NotFound(id.into()));
    }
    Ok(RotatedKey {
        embed: embed_snippet(origin, id, &key),
        public_key: key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_widget_ids() {
        assert_eq!(slug("Acme Docs!"), "acme-docs");
        assert_eq!(slug("  Ünïcode  "), "n-code");
        assert_eq!(slug("!!!"), "widget");
        assert!(WidgetId::parse(&slug(&"long title ".repeat(20))).is_ok());
    }

    #[test]
    fn patches_keep_absent_fields_and_clear_nulls() {
        let mut def = WidgetDef::demo();
        def.model = Some("m".into());
        let patch: WidgetInput =
            serde_json::from_str(r#"{"greeting":"Hello","model":null}"#).unwrap();
        patch.apply(&mut def);
        assert_eq!(def.greeting, "Hello");
        assert_eq!(def.model, None);
        assert_eq!(def.title, "Porthole demo");
        assert!(serde_json::from_str::<WidgetInput>(r#"{"colour":"red"}"#).is_err());
    }
}
