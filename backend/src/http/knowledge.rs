//! The admin API for a widget's knowledge, under
//! `/api/v1/admin/widgets/{id}/sources`: list, add, read (with progress and
//! per-page errors), re-sync and remove sources. The rules are in
//! [`crate::admin::knowledge`], shared with the CLI.

use protocol::{ApiError, ErrorCode};
use salvo::http::StatusCode;
use salvo::prelude::*;

use super::admin::{require_widget, respond, state, widget_id};
use crate::admin::AdminError;
use crate::admin::knowledge::{SourceDetail, SourceInput, add_source, source_detail};
use crate::chat::grounding::{RetrievalPreview, preview};
use crate::error::AppError;
use crate::store::knowledge::SourceInfo;
use crate::tenants::Widget;

/// Reads a source to add: JSON, up to the page-size limit in base64 (a
/// larger upload is a 413, not a 400).
async fn source_input(req: &mut Request, max_bytes: u64) -> Result<SourceInput, AppError> {
    let limit = (max_bytes.saturating_mul(4) / 3 + 64 * 1024) as usize;
    let too_large = || {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("A source may be at most {max_bytes} bytes."),
        )
    };
    if req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    let body = req
        .payload_with_max_size(limit)
        .await
        .map_err(|e| match e {
            salvo::http::ParseError::PayloadTooLarge => too_large(),
            _ => AppError::bad_request("The body could not be read."),
        })?;
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("The body is not a valid source: {e}.")))
}

fn source_id(req: &Request) -> String {
    req.param::<String>("source").unwrap_or_default()
}

/// A widget's knowledge sources, oldest first, with each sync's progress.
#[endpoint(tags("knowledge"), security(("admin_key" = [])), parameters(("id" = String, Path)), responses((status_code = 200, body = Vec<SourceInfo>), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn list_sources(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        require_widget(&state, &id).await?;
        Ok(state
            .knowledge
            .sources(&id)
            .await
            .map_err(AdminError::from)?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Adds a source: a site (`url` of a sitemap or site root), a page (`url`),
/// a file (`name` + `content_base64`: Markdown, HTML, text or PDF), text
/// (`text`, markdown) or FAQs (`text` or a CSV file of question,answer).
/// It syncs in the background; poll it for progress.
#[endpoint(
    tags("knowledge"),
    security(("admin_key" = [])),
    parameters(("id" = String, Path)),
    request_body(content = SourceInput, content_type = "application/json"),
    responses(
        (status_code = 201, body = SourceInfo),
        (status_code = 400, body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 404, body = ApiError),
        (status_code = 413, body = ApiError),
        (status_code = 422, description = "A field is wrong (a private address, a file that is not what it says, a CSV without pairs, too many sources)", body = ApiError),
    )
)]
async fn post_source(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        require_widget(&state, &id).await?;
        let input = source_input(req, state.settings.knowledge.max_page_bytes).await?;
        let source = add_source(
            &*state.tenants,
            &*state.knowledge,
            &state.settings.knowledge,
            &id,
            input,
        )
        .await?;
        state.ingest.nudge();
        Ok(source)
    }
    .await;
    respond(res, StatusCode::CREATED, r);
}

/// One source, with its progress and the errors of its pages.
#[endpoint(tags("knowledge"), security(("admin_key" = [])), parameters(("id" = String, Path), ("source" = String, Path)), responses((status_code = 200, body = SourceDetail), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn get_source(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        Ok(source_detail(&*state.knowledge, &widget_id(req), &source_id(req)).await?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Syncs a source again (unchanged pages are kept, as a 304 or by hash).
#[endpoint(tags("knowledge"), security(("admin_key" = [])), parameters(("id" = String, Path), ("source" = String, Path)), responses((status_code = 202, body = SourceInfo), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn post_sync(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let (widget, source) = (widget_id(req), source_id(req));
        if !state
            .knowledge
            .request_sync(&widget, &source)
            .await
            .map_err(AdminError::from)?
        {
            return Err(AdminError::NotFound(source).into());
        }
        state.ingest.nudge();
        Ok(source_detail(&*state.knowledge, &widget, &source)
            .await?
            .source)
    }
    .await;
    respond(res, StatusCode::ACCEPTED, r);
}

/// Removes a source with its pages and chunks.
#[endpoint(tags("knowledge"), security(("admin_key" = [])), parameters(("id" = String, Path), ("source" = String, Path)), responses((status_code = 204), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn delete_source(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let (widget, source) = (widget_id(req), source_id(req));
        if !state
            .knowledge
            .remove_source(&widget, &source)
            .await
            .map_err(AdminError::from)?
        {
            return Err(AdminError::NotFound(source).into());
        }
        Ok(())
    }
    .await;
    match r {
        Ok(()) => {
            res.status_code(StatusCode::NO_CONTENT);
        }
        Err(e) => e.render(res),
    }
}

/// The longest question the preview takes, in characters.
const MAX_QUESTION_CHARS: usize = 2000;

/// "Try a question": which chunks a visitor's question would be answered
/// from, with their scores and links, without asking the model.
#[endpoint(
    tags("knowledge"),
    security(("admin_key" = [])),
    parameters(("id" = String, Path), ("q" = String, Query, description = "The question")),
    responses(
        (status_code = 200, body = RetrievalPreview),
        (status_code = 400, description = "No question, or a longer one than 2000 characters", body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 404, body = ApiError),
        (status_code = 503, description = "The knowledge store failed", body = ApiError),
    )
)]
async fn get_retrieval(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        let question = req.query::<String>("q").unwrap_or_default();
        let question = question.trim();
        if question.is_empty() {
            return Err(AppError::bad_request("Give a question as `q`."));
        }
        if question.chars().count() > MAX_QUESTION_CHARS {
            return Err(AppError::bad_request(format!(
                "A question may be at most {MAX_QUESTION_CHARS} characters."
            )));
        }
        let def = state
            .tenants
            .widget(&id)
            .await
            .map_err(AdminError::from)?
            .ok_or_else(|| AdminError::NotFound(id.clone()))?;
        let widget = Widget::from_def(&def).map_err(|e| {
            tracing::error!(widget = %id, error = %e, "a stored widget does not resolve");
            AppError::internal()
        })?;
        preview(
            &*state.knowledge,
            state.embedder.as_deref(),
            &widget,
            question,
        )
        .await
        .ok_or_else(|| {
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "The knowledge could not be searched just now; try again.",
            )
        })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// The routes under `widgets/{id}`.
pub fn router() -> Router {
    Router::new()
        .push(Router::with_path("retrieval").get(get_retrieval))
        .push(sources())
}

fn sources() -> Router {
    Router::with_path("sources")
        .get(list_sources)
        .post(post_source)
        .push(
            Router::with_path("{source}")
                .get(get_source)
                .delete(delete_source)
                .push(Router::with_path("sync").post(post_sync)),
        )
}
