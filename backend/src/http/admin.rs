//! The admin API under `/api/v1/admin/`: widgets, their keys, their
//! conversations and their token usage. Every route needs a secret admin key
//! (`porthole admin-key create`) as `Authorization: Bearer ak_…`.
//!
//! The rules (what a valid widget is, how keys are made) are in
//! [`crate::admin`], shared with the CLI; this file reads requests and
//! writes responses.

use std::sync::Arc;

use protocol::{ApiError, ErrorCode};
use salvo::http::StatusCode;
use salvo::oapi::ToSchema;
use salvo::prelude::*;
use serde::{Deserialize, Serialize};

use crate::admin::{
    AdminError, CreatedWidget, RotatedKey, WidgetInput, create_widget, rotate_key, update_widget,
};
use crate::error::AppError;
use crate::limits::Ledger;
use crate::state::AppState;
use crate::store::tenants::reload_widgets;
use crate::store::{AdminMessage, ConversationSummary, DailyUsage};
use crate::tenants::WidgetDef;

impl From<AdminError> for AppError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid { .. } => AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                e.to_string(),
            ),
            AdminError::Conflict(_) => {
                AppError::new(StatusCode::CONFLICT, ErrorCode::Conflict, e.to_string())
            }
            AdminError::NotFound(_) => {
                AppError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, e.to_string())
            }
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin store operation failed");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Internal,
                    "The store is unavailable. Please try again.",
                )
            }
        }
    }
}

pub(super) fn state(depot: &Depot) -> Result<Arc<AppState>, AppError> {
    depot
        .get_typed::<Arc<AppState>>()
        .cloned()
        .map_err(|_| AppError::internal())
}

/// After a change: this server uses it at once (others within a second).
pub(super) async fn reload(state: &AppState) {
    if let Err(e) = reload_widgets(&state.widgets, &*state.tenants).await {
        tracing::warn!(error = %e, "reloading widgets after an admin change failed");
    }
    // A widget's own knowledge text is indexed before the change is answered.
    if let Err(e) = state.ingest.sync_local_now().await {
        tracing::warn!(error = %e, "indexing changed knowledge failed");
    }
}

pub(super) fn respond<T: Serialize + Send>(
    res: &mut Response,
    status: StatusCode,
    r: Result<T, AppError>,
) {
    match r {
        Ok(body) => {
            res.status_code(status);
            let _ = res.add_header("cache-control", "no-store", true);
            res.render(Json(body));
        }
        Err(e) => e.render(res),
    }
}

/// Where snippets point: the configured public URL, or this request's host.
fn origin(state: &AppState, req: &Request) -> String {
    if state.settings.public_url.is_some() {
        return state.settings.public_url();
    }
    crate::http::loader::request_host(req)
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| state.settings.public_url())
}

pub(super) async fn json_body<T: for<'de> Deserialize<'de>>(
    req: &mut Request,
) -> Result<T, AppError> {
    let body = req
        .payload_with_max_size(4 * 1024 * 1024)
        .await
        .map_err(|_| AppError::bad_request("The body could not be read (at most 4 MiB)."))?;
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("The body is not valid: {e}.")))
}

/// Requires `Authorization: Bearer <admin key>` (compared by hash) or a
/// console session with the role the route needs; writes each change to
/// the audit log.
#[handler]
pub(super) async fn require_admin(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let state = match state(depot) {
        Ok(s) => s,
        Err(e) => return super::console::stop(e, res, ctrl),
    };
    match super::console::authenticate(req, &state, true).await {
        Ok(principal) => {
            super::console::call_and_audit(principal, &state, req, depot, res, ctrl).await
        }
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                let _ = res.add_header("www-authenticate", "Bearer", true);
            }
            super::console::stop(e, res, ctrl)
        }
    }
}

/// A widget as the caller may read it: the identity verification secret
/// (which lets anyone vouch for any user) only for owners and admin keys.
fn for_reader(depot: &Depot, mut def: WidgetDef) -> WidgetDef {
    if let Ok(super::console::Principal::User(u)) = depot.get_typed::<super::console::Principal>()
        && u.role < crate::store::accounts::ConsoleRole::Owner
    {
        def.verification_secret = None;
    }
    def
}

/// Every widget, enabled or not.
#[endpoint(tags("admin"), security(("admin_key" = [])), responses((status_code = 200, body = Vec<WidgetDef>), (status_code = 401, body = ApiError)))]
async fn list_widgets(depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let widgets = state.tenants.widgets().await.map_err(AdminError::from)?;
        Ok(widgets
            .into_iter()
            .map(|d| for_reader(depot, d))
            .collect::<Vec<_>>())
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Creates a widget; the answer holds its public key and embed snippet.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    request_body(content = WidgetInput, content_type = "application/json"),
    responses(
        (status_code = 201, body = CreatedWidget),
        (status_code = 400, body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 409, description = "The id is taken", body = ApiError),
        (status_code = 422, description = "A field is invalid (the message names it)", body = ApiError),
    )
)]
async fn post_widget(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let input: WidgetInput = json_body(req).await?;
        let created = create_widget(&*state.tenants, input, &origin(&state, req)).await?;
        reload(&state).await;
        Ok(created)
    }
    .await;
    respond(res, StatusCode::CREATED, r);
}

pub(super) fn widget_id(req: &Request) -> String {
    req.param::<String>("id").unwrap_or_default()
}

/// One widget.
#[endpoint(tags("admin"), security(("admin_key" = [])), parameters(("id" = String, Path)), responses((status_code = 200, body = WidgetDef), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn get_widget(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        let found = state.tenants.widget(&id).await.map_err(AdminError::from)?;
        Ok(for_reader(depot, found.ok_or(AdminError::NotFound(id))?))
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Changes the given fields of a widget.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(("id" = String, Path)),
    request_body(content = WidgetInput, content_type = "application/json"),
    responses(
        (status_code = 200, body = WidgetDef),
        (status_code = 400, body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 404, body = ApiError),
        (status_code = 422, body = ApiError),
    )
)]
async fn patch_widget(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        let input: WidgetInput = json_body(req).await?;
        let def = update_widget(&*state.tenants, &id, input).await?;
        reload(&state).await;
        Ok(for_reader(depot, def))
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Deletes a widget with its keys, sites and conversations.
#[endpoint(tags("admin"), security(("admin_key" = [])), parameters(("id" = String, Path)), responses((status_code = 204), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn delete_widget(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let id = widget_id(req);
        if !state
            .tenants
            .delete_widget(&id)
            .await
            .map_err(AdminError::from)?
        {
            return Err(AdminError::NotFound(id).into());
        }
        reload(&state).await;
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

/// Gives a widget a new public key; the old key stops working at once.
#[endpoint(tags("admin"), security(("admin_key" = [])), parameters(("id" = String, Path)), responses((status_code = 200, body = RotatedKey), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn post_rotate_key(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        let rotated = rotate_key(&*state.tenants, &id, &origin(&state, req)).await?;
        reload(&state).await;
        Ok(rotated)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// A page of a widget's conversations, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A page of a conversation's messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub items: Vec<AdminMessage>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<u32>,
}

fn limit(req: &Request) -> u32 {
    req.query::<u32>("limit").unwrap_or(50).clamp(1, 200)
}

pub(super) async fn require_widget(state: &AppState, id: &str) -> Result<(), AppError> {
    match state.tenants.widget(id).await.map_err(AdminError::from)? {
        Some(_) => Ok(()),
        None => Err(AdminError::NotFound(id.into()).into()),
    }
}

/// A widget's conversations, newest first.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("id" = String, Path),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status_code = 200, body = ConversationPage), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError))
)]
async fn list_conversations(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        require_widget(&state, &id).await?;
        let cursor = req.query::<String>("cursor");
        let (items, next_cursor) = state
            .tenants
            .conversations(&id, limit(req), cursor.as_deref())
            .await
            .map_err(AdminError::from)?;
        Ok(ConversationPage { items, next_cursor })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// A conversation's messages, oldest first.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("id" = String, Path),
        ("conversation" = String, Path),
        ("limit" = Option<u32>, Query, description = "1 to 200, default 50"),
        ("after" = Option<u32>, Query, description = "`next_after` of the previous page"),
    ),
    responses((status_code = 200, body = MessagePage), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError))
)]
async fn list_messages(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        let conversation = req.param::<String>("conversation").unwrap_or_default();
        let limit = limit(req);
        let after = req.query::<u32>("after").unwrap_or(0);
        let items = state
            .tenants
            .conversation_messages(&id, &conversation, limit, after)
            .await
            .map_err(AdminError::from)?
            .ok_or_else(|| {
                AppError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::ConversationNotFound,
                    "This widget has no such conversation.",
                )
            })?;
        let next_after = (items.len() == limit as usize)
            .then(|| items.last().map(|m| m.seq))
            .flatten();
        Ok(MessagePage { items, next_after })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Tokens used per day (UTC) by a widget's answers.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(
        ("id" = String, Path),
        ("days" = Option<u32>, Query, description = "How many days back, 1 to 366, default 30"),
    ),
    responses((status_code = 200, body = Vec<DailyUsage>), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError))
)]
async fn usage(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        require_widget(&state, &id).await?;
        let days = req.query::<u32>("days").unwrap_or(30).clamp(1, 366);
        // The calendar days the last `days` x 24 hours touch.
        let from = crate::limits::day_string(Ledger::today().0 - i64::from(days));
        Ok(state
            .tenants
            .usage_by_day(&id, &from)
            .await
            .map_err(AdminError::from)?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// `/api/v1/admin/…`, relative to `/api/v1`.
pub fn router() -> Router {
    Router::with_path("admin")
        .hoop(require_admin)
        .push(
            Router::with_path("conversations")
                .get(super::inbox::list)
                .push(Router::with_path("export").get(super::inbox::export)),
        )
        .push(Router::with_path("questions-to-fix").get(super::inbox::to_fix))
        .push(Router::with_path("analytics").get(super::analytics::analytics))
        .push(
            Router::with_path("widgets")
                .get(list_widgets)
                .post(post_widget)
                .push(
                    Router::with_path("{id}")
                        .get(get_widget)
                        .patch(patch_widget)
                        .delete(delete_widget)
                        .push(Router::with_path("rotate-key").post(post_rotate_key))
                        .push(Router::with_path("usage").get(usage))
                        .push(super::knowledge::router())
                        .push(super::webhooks::router())
                        .push(
                            Router::with_path("conversations")
                                .get(list_conversations)
                                .push(
                                    Router::with_path("{conversation}/messages").get(list_messages),
                                ),
                        ),
                ),
        )
}
