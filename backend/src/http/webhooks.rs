//! A widget's webhooks under `/api/v1/admin/widgets/{id}/webhooks`: list,
//! make (the answer holds the secret, once), change, remove, a new
//! secret, the delivery log and a manual redelivery. Changes are for
//! owners (and admin keys): a webhook sends visitors' words elsewhere.

use protocol::ApiError;
use salvo::http::StatusCode;
use salvo::prelude::*;

use super::admin::{json_body, respond, state, widget_id};
use crate::admin::AdminError;
use crate::admin::webhooks::{
    WebhookInput, WebhookWithSecret, create_webhook, rotate_secret, update_webhook, webhook_of,
};
use crate::error::AppError;
use crate::store::webhooks::{Delivery, Webhook};

fn hook_id(req: &Request) -> String {
    req.param::<String>("hook").unwrap_or_default()
}

/// The widget's webhooks, oldest first (never their secrets).
#[endpoint(tags("admin"), security(("admin_key" = [])), parameters(("id" = String, Path)),
    responses((status_code = 200, body = Vec<Webhook>), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError)))]
async fn list_webhooks(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let id = widget_id(req);
        if state
            .tenants
            .widget(&id)
            .await
            .map_err(AdminError::from)?
            .is_none()
        {
            return Err(AdminError::NotFound(id).into());
        }
        Ok(state
            .webhooks
            .store()
            .webhooks(&id)
            .await
            .map_err(AdminError::from)?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Makes a webhook: `{"url": "https://…", "events": ["message.completed"]}`;
/// the answer holds its `whsec_` secret, shown only here.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(("id" = String, Path)),
    request_body(content = WebhookInput, content_type = "application/json"),
    responses(
        (status_code = 201, body = WebhookWithSecret),
        (status_code = 400, body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 403, description = "Not an owner", body = ApiError),
        (status_code = 404, body = ApiError),
        (status_code = 422, description = "A private target, an unknown event, too many webhooks", body = ApiError),
    )
)]
async fn post_webhook(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let input: WebhookInput = json_body(req).await?;
        Ok(create_webhook(
            &*state.tenants,
            state.webhooks.store(),
            state.webhooks.settings(),
            &widget_id(req),
            input,
        )
        .await?)
    }
    .await;
    respond(res, StatusCode::CREATED, r);
}

/// Changes a webhook's `url`, `events` or `disabled`.
#[endpoint(
    tags("admin"),
    security(("admin_key" = [])),
    parameters(("id" = String, Path), ("hook" = String, Path)),
    request_body(content = WebhookInput, content_type = "application/json"),
    responses(
        (status_code = 200, body = Webhook),
        (status_code = 400, description = "The body is not valid JSON for these fields", body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 403, body = ApiError),
        (status_code = 404, body = ApiError),
        (status_code = 422, body = ApiError),
    )
)]
async fn patch_webhook(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let input: WebhookInput = json_body(req).await?;
        Ok(update_webhook(
            state.webhooks.store(),
            state.webhooks.settings(),
            &widget_id(req),
            &hook_id(req),
            input,
        )
        .await?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Removes a webhook and its delivery log.
#[endpoint(tags("admin"), security(("admin_key" = [])), parameters(("id" = String, Path), ("hook" = String, Path)),
    responses((status_code = 204), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError), (status_code = 404, body = ApiError)))]
async fn delete_webhook(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let (widget, hook) = (widget_id(req), hook_id(req));
        if !state
            .webhooks
            .store()
            .delete_webhook(&widget, &hook)
            .await
            .map_err(AdminError::from)?
        {
            return Err(AdminError::NotFound(format!("{widget}/webhooks/{hook}")).into());
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

/// A new secret; the old one stops signing at once.
#[endpoint(tags("admin"), security(("admin_key" = [])), parameters(("id" = String, Path), ("hook" = String, Path)),
    responses((status_code = 200, body = WebhookWithSecret), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError), (status_code = 404, body = ApiError)))]
async fn post_rotate_secret(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        Ok(rotate_secret(state.webhooks.store(), &widget_id(req), &hook_id(req)).await?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// The webhook's deliveries, newest first: each event's body, status,
/// attempts, the receiver's last answer and when the next try is due.
#[endpoint(tags("admin"), security(("admin_key" = [])),
    parameters(("id" = String, Path), ("hook" = String, Path), ("limit" = Option<u32>, Query, description = "1 to 200; 50 when absent")),
    responses((status_code = 200, body = Vec<Delivery>), (status_code = 401, body = ApiError), (status_code = 404, body = ApiError), (status_code = 422, body = ApiError)))]
async fn list_deliveries(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let limit = match req.query::<String>("limit") {
            None => 50,
            Some(l) => l
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| AdminError::invalid("limit", "a whole number from 1 to 200"))?,
        };
        let store = state.webhooks.store();
        let hook = webhook_of(store, &widget_id(req), &hook_id(req)).await?;
        Ok(store
            .deliveries(&hook.id, limit)
            .await
            .map_err(AdminError::from)?)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Sends a delivered or failed delivery again, now, with a fresh retry
/// schedule and the same `webhook-id` (202; one already pending is 409).
#[endpoint(tags("admin"), security(("admin_key" = [])),
    parameters(("id" = String, Path), ("hook" = String, Path), ("delivery" = String, Path)),
    responses((status_code = 202), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError), (status_code = 404, body = ApiError), (status_code = 409, description = "It is still pending", body = ApiError)))]
async fn post_redeliver(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let store = state.webhooks.store();
        let hook = webhook_of(store, &widget_id(req), &hook_id(req)).await?;
        let delivery = req.param::<String>("delivery").unwrap_or_default();
        if !store
            .redeliver(&hook.id, &delivery)
            .await
            .map_err(AdminError::from)?
        {
            let known = store
                .deliveries(&hook.id, 200)
                .await
                .map_err(AdminError::from)?
                .iter()
                .any(|d| d.id == delivery);
            return Err(if known {
                AppError::new(
                    StatusCode::CONFLICT,
                    protocol::ErrorCode::Conflict,
                    "That delivery is still pending: it is sent again at its next attempt.",
                )
            } else {
                AdminError::NotFound(format!("delivery {delivery}")).into()
            });
        }
        state.webhooks.wake();
        Ok(())
    }
    .await;
    match r {
        Ok(()) => {
            res.status_code(StatusCode::ACCEPTED);
        }
        Err(e) => e.render(res),
    }
}

/// `webhooks/…`, relative to a widget.
pub fn router() -> Router {
    Router::with_path("webhooks")
        .get(list_webhooks)
        .post(post_webhook)
        .push(
            Router::with_path("{hook}")
                .patch(patch_webhook)
                .delete(delete_webhook)
                .push(Router::with_path("rotate-secret").post(post_rotate_secret))
                .push(
                    Router::with_path("deliveries")
                        .get(list_deliveries)
                        .push(Router::with_path("{delivery}/redeliver").post(post_redeliver)),
                ),
        )
}
