//! Adding and managing a widget's knowledge sources: the checks the admin
//! API and the CLI (`porthole knowledge …`) share. A source is checked when
//! it is added (a URL that is not http(s) or names a private address, a
//! "PDF" that is not one, a CSV without question and answer rows, a file
//! over the size limit) so the owner hears about it at once; the sync
//! itself runs in the background.

use base64::Engine;
use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

use super::AdminError;
use crate::ids::new_id;
use crate::knowledge::KnowledgeSettings;
use crate::knowledge::crawl::check_url;
use crate::knowledge::extract::{self, FileKind};
use crate::store::TenantStore;
use crate::store::knowledge::{KnowledgeStore, NewSource, PageError, SourceInfo, SourceKind};

/// A source to add. `url` for `url` and `site`; `text` for `text` (markdown)
/// or `faq` (CSV text); `content_base64` and `name` for a `file` (or a
/// `faq` CSV file).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    pub kind: Option<SourceKind>,
    /// What to call it; the URL or file name when absent.
    pub name: Option<String>,
    /// A page (`url`), or a sitemap or site root (`site`).
    pub url: Option<String>,
    pub text: Option<String>,
    pub content_base64: Option<String>,
    /// Re-sync this often, in seconds (at least 300); absent: only when asked.
    pub sync_every_secs: Option<u64>,
}

/// A source with the errors of its pages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceDetail {
    #[serde(flatten)]
    pub source: SourceInfo,
    pub page_errors: Vec<PageError>,
}

/// Checks and adds a source to `widget`; it syncs in the background.
pub async fn add_source(
    tenants: &dyn TenantStore,
    knowledge: &dyn KnowledgeStore,
    settings: &KnowledgeSettings,
    widget: &str,
    input: SourceInput,
) -> Result<SourceInfo, AdminError> {
    if tenants.widget(widget).await?.is_none() {
        return Err(AdminError::NotFound(widget.into()));
    }
    if knowledge.sources(widget).await?.len() as u64 >= u64::from(settings.max_sources) {
        return Err(AdminError::invalid(
            "kind",
            format!("a widget may have at most {} sources", settings.max_sources),
        ));
    }
    let kind = input
        .kind
        .ok_or_else(|| AdminError::invalid("kind", "is required: site, url, file, text or faq"))?;
    if input.sync_every_secs.is_some_and(|s| s < 300) {
        return Err(AdminError::invalid(
            "sync_every_secs",
            "must be at least 300",
        ));
    }
    let max = settings.max_page_bytes;
    let too_big = |field: &str| AdminError::invalid(field, format!("must be at most {max} bytes"));
    let (name, url, body) = match kind {
        SourceKind::Url | SourceKind::Site => {
            let raw = input.url.as_deref().map(str::trim).unwrap_or_default();
            let url = reqwest::Url::parse(raw)
                .map_err(|_| AdminError::invalid("url", "must be an http(s) URL"))?;
            check_url(&url, settings.allow_private_addresses)
                .map_err(|e| AdminError::invalid("url", e.to_string()))?;
            (
                input.name.unwrap_or_else(|| url.to_string()),
                Some(url.to_string()),
                None,
            )
        }
        SourceKind::Text | SourceKind::Faq if input.text.is_some() => {
            let text = input.text.unwrap_or_default();
            if text.trim().is_empty() {
                return Err(AdminError::invalid("text", "is empty"));
            }
            if text.len() as u64 > max {
                return Err(too_big("text"));
            }
            if kind == SourceKind::Faq {
                extract::faq_csv(text.as_bytes())
                    .map_err(|e| AdminError::invalid("text", e.to_string()))?;
            }
            let default = if kind == SourceKind::Faq {
                "FAQ"
            } else {
                "Text"
            };
            (
                input.name.unwrap_or_else(|| default.into()),
                None,
                Some(text.into_bytes()),
            )
        }
        SourceKind::Text => {
            return Err(AdminError::invalid("text", "is required for a text source"));
        }
        SourceKind::File | SourceKind::Faq => {
            let name = input.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                AdminError::invalid("name", "is required: the file's name, with its extension")
            })?;
            let encoded = input
                .content_base64
                .ok_or_else(|| AdminError::invalid("content_base64", "is required for a file"))?;
            if encoded.len() as u64 > max.saturating_mul(4) / 3 + 4 {
                return Err(too_big("content_base64"));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| AdminError::invalid("content_base64", "is not valid base64"))?;
            if bytes.len() as u64 > max {
                return Err(too_big("content_base64"));
            }
            if kind == SourceKind::Faq {
                extract::faq_csv(&bytes)
                    .map_err(|e| AdminError::invalid("content_base64", e.to_string()))?;
            } else {
                FileKind::detect(&name, &bytes)
                    .map_err(|e| AdminError::invalid("content_base64", e.to_string()))?;
            }
            (name, None, Some(bytes))
        }
    };
    if name.len() > 500 {
        return Err(AdminError::invalid("name", "must be at most 500 bytes"));
    }
    let source = NewSource {
        id: new_id("src"),
        widget_id: widget.to_owned(),
        kind,
        name,
        url,
        body,
        sync_every_secs: input.sync_every_secs,
    };
    knowledge.add_source(&source).await?;
    knowledge
        .source(&source.id)
        .await?
        .ok_or_else(|| AdminError::NotFound(source.id.clone()))
}

/// A source of `widget`, with its pages' errors.
pub async fn source_detail(
    knowledge: &dyn KnowledgeStore,
    widget: &str,
    id: &str,
) -> Result<SourceDetail, AdminError> {
    let source = knowledge
        .source(id)
        .await?
        .filter(|s| s.widget_id == widget)
        .ok_or_else(|| AdminError::NotFound(id.into()))?;
    let page_errors = knowledge.page_errors(id).await?;
    Ok(SourceDetail {
        source,
        page_errors,
    })
}
