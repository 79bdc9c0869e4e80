//! Managing a widget's webhooks: the rules the admin API keeps (a target
//! that may be sent to, known events, a bounded number per widget) and
//! the secret, shown once when made or replaced.

use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

use super::AdminError;
use crate::ids::new_id;
use crate::store::webhooks::Webhook;
use crate::store::{TenantStore, WebhookStore};
use crate::webhooks::{EVENTS, WebhookSettings, check_target, new_secret};

/// A webhook to make, or the fields to change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where to POST: an http(s) URL, not on loopback or a private network
    /// unless the server allows it.
    pub url: Option<String>,
    /// `conversation.created`, `message.completed`, `feedback.created`;
    /// all of them when absent on creation.
    pub events: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// A webhook just made, or its new secret: the only answers that carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    pub webhook: Webhook,
    /// `whsec_…`: verify the `webhook-signature` header with it.
    pub secret: String,
}

fn events(given: Vec<String>) -> Result<Vec<String>, AdminError> {
    let mut out: Vec<String> = Vec::new();
    for e in given {
        let e = e.trim().to_owned();
        if !EVENTS.contains(&e.as_str()) {
            return Err(AdminError::invalid(
                "events",
                format!("{e:?} is not an event; choose from {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        return Err(AdminError::invalid("events", "name at least one event"));
    }
    Ok(out)
}

fn url(given: &str, settings: &WebhookSettings) -> Result<String, AdminError> {
    if given.len() > 2_000 {
        return Err(AdminError::invalid("url", "at most 2000 characters"));
    }
    check_target(given, settings.allow_private_addresses)
        .map(|u| u.to_string())
        .map_err(|why| AdminError::invalid("url", why))
}

async fn widget_exists(tenants: &dyn TenantStore, widget: &str) -> Result<(), AdminError> {
    match tenants.widget(widget).await? {
        Some(_) => Ok(()),
        None => Err(AdminError::NotFound(widget.into())),
    }
}

/// Makes a webhook with a new secret.
pub async fn create_webhook(
    tenants: &dyn TenantStore,
    store: &dyn WebhookStore,
    settings: &WebhookSettings,
    widget: &str,
    input: WebhookInput,
) -> Result<WebhookWithSecret, AdminError> {
    widget_exists(tenants, widget).await?;
    let target = url(
        input
            .url
            .as_deref()
            .ok_or_else(|| AdminError::invalid("url", "is required"))?,
        settings,
    )?;
    let events = events(
        input
            .events
            .unwrap_or_else(|| EVENTS.iter().map(|e| e.to_string()).collect()),
    )?;
    if store.webhooks(widget).await?.len() >= settings.max_per_widget as usize {
        return Err(AdminError::invalid(
            "url",
            format!("a widget has at most {} webhooks", settings.max_per_widget),
        ));
    }
    let hook = Webhook {
        id: new_id("wh"),
        widget_id: widget.to_owned(),
        url: target,
        secret: new_secret(),
        events,
        disabled: input.disabled.unwrap_or(false),
        created_at: crate::store::rows::now_ms() as u64,
    };
    store.create_webhook(&hook).await?;
    Ok(WebhookWithSecret {
        secret: hook.secret.clone(),
        webhook: hook,
    })
}

async fn existing(store: &dyn WebhookStore, widget: &str, id: &str) -> Result<Webhook, AdminError> {
    store
        .webhook(widget, id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("{widget}/webhooks/{id}")))
}

/// Changes the fields given.
pub async fn update_webhook(
    store: &dyn WebhookStore,
    settings: &WebhookSettings,
    widget: &str,
    id: &str,
    input: WebhookInput,
) -> Result<Webhook, AdminError> {
    let mut hook = existing(store, widget, id).await?;
    if let Some(u) = input.url {
        hook.url = url(&u, settings)?;
    }
    if let Some(e) = input.events {
        hook.events = events(e)?;
    }
    if let Some(d) = input.disabled {
        hook.disabled = d;
    }
    if !store.update_webhook(&hook).await? {
        return Err(AdminError::NotFound(format!("{widget}/webhooks/{id}")));
    }
    Ok(hook)
}

/// Gives a webhook a new secret; the old one stops signing at once.
pub async fn rotate_secret(
    store: &dyn WebhookStore,
    widget: &str,
    id: &str,
) -> Result<WebhookWithSecret, AdminError> {
    let mut hook = existing(store, widget, id).await?;
    hook.secret = new_secret();
    if !store.update_webhook(&hook).await? {
        return Err(AdminError::NotFound(format!("{widget}/webhooks/{id}")));
    }
    Ok(WebhookWithSecret {
        secret: hook.secret.clone(),
        webhook: hook,
    })
}

/// The webhook, checked to be the widget's.
pub async fn webhook_of(
    store: &dyn WebhookStore,
    widget: &str,
    id: &str,
) -> Result<Webhook, AdminError> {
    existing(store, widget, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_known_and_unique() {
        assert_eq!(
            events(vec![
                "message.completed".into(),
                " message.completed ".into()
            ])
            .unwrap(),
            ["message.completed"]
        );
        assert!(events(vec!["message.deleted".into()]).is_err());
        assert!(events(vec![]).is_err());
    }
}
