//! The console's inbox: `GET /api/v1/admin/conversations` (conversations
//! across widgets, filtered, a page at a time) and
//! `GET /api/v1/admin/conversations/export` (the filtered set's messages
//! as CSV or JSON).

use protocol::ApiError;
use salvo::http::StatusCode;
use salvo::oapi::ToSchema;
use salvo::prelude::*;
use serde::Serialize;

use super::admin::{respond, state};
use crate::admin::AdminError;
use crate::admin::fix::{FixGroup, group};
use crate::error::AppError;
use crate::store::conversations::{MessageStatus, Rating};
use crate::store::inbox::{ExportRow, InboxFilter, InboxItem, to_csv};

/// A page of the inbox, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The most conversations one export holds; `X-Export-Truncated: true`
/// says the filter kept more.
pub const EXPORT_MAX: u32 = 5_000;

/// The filter the query names; a value that is not understood is a 422
/// naming the parameter, never ignored.
fn filter(req: &Request) -> Result<InboxFilter, AppError> {
    let text = |name: &str| {
        req.query::<String>(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let time = |name: &str| -> Result<Option<i64>, AppError> {
        text(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    AdminError::invalid(name, "milliseconds since the Unix epoch").into()
                })
            })
            .transpose()
    };
    let status = match text("status").as_deref() {
        None => None,
        Some("complete") => Some(MessageStatus::Complete),
        Some("interrupted") => Some(MessageStatus::Interrupted),
        Some("error") => Some(MessageStatus::Error),
        Some("streaming") => Some(MessageStatus::Streaming),
        Some(_) => {
            return Err(
                AdminError::invalid("status", "complete, interrupted, error or streaming").into(),
            );
        }
    };
    let rating = match text("rating").as_deref() {
        None => None,
        Some("up") => Some(Rating::Up),
        Some("down") => Some(Rating::Down),
        Some(_) => return Err(AdminError::invalid("rating", "up or down").into()),
    };
    let unanswered = match text("unanswered").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(AdminError::invalid("unanswered", "true or false").into()),
    };
    let search = text("q");
    if search.as_ref().is_some_and(|q| q.chars().count() > 200) {
        return Err(AdminError::invalid("q", "at most 200 characters").into());
    }
    Ok(InboxFilter {
        widget: text("widget"),
        from_ms: time("from")?,
        to_ms: time("to")?,
        text: search,
        status,
        rating,
        unanswered,
        user: text("user"),
    })
}

/// Conversations across widgets (or one), newest first: full-text search
/// over their messages, and filters by time, status, rating, unanswered
/// questions and identified user.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("widget" = Option<String>, Query, description = "One widget's only"),
        ("q" = Option<String>, Query, description = "Text a message contains (case-insensitive), at most 200 characters"),
        ("from" = Option<i64>, Query, description = "Started at or after (ms since the epoch)"),
        ("to" = Option<i64>, Query, description = "Started before (ms since the epoch)"),
        ("status" = Option<String>, Query, description = "An answer ended `complete`, `interrupted`, `error` or is `streaming`"),
        ("rating" = Option<String>, Query, description = "An answer was rated `up` or `down`"),
        ("unanswered" = Option<bool>, Query, description = "A question found nothing in the knowledge"),
        ("user" = Option<String>, Query, description = "The identified user's id"),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status_code = 200, body = InboxPage),
        (status_code = 401, body = ApiError),
        (status_code = 422, description = "A filter's value is not understood; the message names it", body = ApiError),
    )
)]
pub async fn list(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let filter = filter(req)?;
        let limit = req.query::<u32>("limit").unwrap_or(50).clamp(1, 200);
        let cursor = req.query::<String>("cursor");
        let (items, next_cursor) = state
            .tenants
            .inbox(&filter, limit, cursor.as_deref())
            .await
            .map_err(AdminError::from)?;
        Ok(InboxPage { items, next_cursor })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// The messages of the conversations the filter keeps (as for the inbox),
/// newest conversation first, as CSV (`format=csv`, the default) or JSON
/// (`format=json`), at most 5000 conversations.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("format" = Option<String>, Query, description = "`csv` (default) or `json`"),
        ("widget" = Option<String>, Query),
        ("q" = Option<String>, Query),
        ("from" = Option<i64>, Query),
        ("to" = Option<i64>, Query),
        ("status" = Option<String>, Query),
        ("rating" = Option<String>, Query),
        ("unanswered" = Option<bool>, Query),
        ("user" = Option<String>, Query),
    ),
    responses(
        (status_code = 200, description = "The rows: CSV with a header line, or a JSON array", body = Vec<ExportRow>, content_type = ["application/json", "text/csv"]),
        (status_code = 401, body = ApiError),
        (status_code = 422, description = "A filter's value or the format is not understood", body = ApiError),
    )
)]
pub async fn export(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let filter = filter(req)?;
        let csv = match req.query::<String>("format").as_deref() {
            None | Some("csv") => true,
            Some("json") => false,
            Some(_) => return Err(AdminError::invalid("format", "csv or json").into()),
        };
        let rows = state
            .tenants
            .export(&filter, EXPORT_MAX)
            .await
            .map_err(AdminError::from)?;
        let mut conversations: Vec<&str> =
            rows.iter().map(|r| r.conversation_id.as_str()).collect();
        conversations.dedup();
        let truncated = conversations.len() >= EXPORT_MAX as usize;
        let (body, kind, ext) = if csv {
            let body = to_csv(&rows).map_err(|e| {
                tracing::error!(error = %e, "writing the export's CSV failed");
                AppError::internal()
            })?;
            (body, "text/csv; charset=utf-8", "csv")
        } else {
            let body = serde_json::to_vec(&rows).map_err(|e| {
                tracing::error!(error = %e, "writing the export's JSON failed");
                AppError::internal()
            })?;
            (body, "application/json", "json")
        };
        for (name, value) in [
            ("content-type", kind.to_owned()),
            (
                "content-disposition",
                format!("attachment; filename=\"porthole-conversations.{ext}\""),
            ),
            ("cache-control", "no-store".to_owned()),
            ("x-export-truncated", truncated.to_string()),
        ] {
            let _ = res.add_header(name, value, true);
        }
        res.status_code(StatusCode::OK);
        res.body(body);
        Ok(())
    }
    .await;
    if let Err(e) = r {
        e.render(res);
    }
}

/// Questions to fix: answers that found nothing in the knowledge or were
/// rated down, grouped by similar question (the biggest groups first),
/// each with its conversations; from the newest 2000 such answers, at
/// most 100 groups.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("widget" = Option<String>, Query, description = "One widget's only"),
        ("from" = Option<i64>, Query, description = "Conversations started at or after (ms since the epoch)"),
        ("to" = Option<i64>, Query, description = "Conversations started before (ms since the epoch)"),
    ),
    responses(
        (status_code = 200, body = Vec<FixGroup>),
        (status_code = 401, body = ApiError),
        (status_code = 422, description = "A filter's value is not understood", body = ApiError),
    )
)]
pub async fn to_fix(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let filter = filter(req)?;
        let cases = state
            .tenants
            .to_fix(&filter, 2_000)
            .await
            .map_err(AdminError::from)?;
        let mut groups = group(cases);
        groups.truncate(100);
        Ok(groups)
    }
    .await;
    respond(res, StatusCode::OK, r);
}
