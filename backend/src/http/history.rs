//! `GET /api/v1/conversations/{id}`: the messages of a conversation, so the
//! widget can show the history after a reload.

use protocol::ErrorCode;
use protocol::widget::ConversationView;
use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::error::AppError;

/// The messages of one of this visitor's (or verified user's) conversations, oldest first.
#[endpoint(
    tags("chat"),
    parameters(
        ("id" = String, Path, description = "The `conversation_id` from the `meta` event"),
        ("X-API-Key" = String, Header, description = "The widget's public key, `pk_…`"),
        ("Authorization" = String, Header, description = "`Bearer <session token>` minted into the widget page"),
    ),
    responses(
        (status_code = 200, body = ConversationView),
        (status_code = 401, description = "Unknown key, or a missing, forged, foreign or expired session token", body = protocol::ApiError),
        (status_code = 404, description = "No such conversation for this visitor", body = protocol::ApiError),
    )
)]
pub async fn conversation(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((state, widget, owner)) = super::auth::visitor(depot) else {
        AppError::internal().render(res);
        return;
    };
    let id = req.param::<String>("id").unwrap_or_default();
    let not_found = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ConversationNotFound,
            "There is no such conversation.",
        )
    };
    match state.store.messages(&widget.id, &owner, &id).await {
        Ok(Some(messages)) => {
            let _ = res.add_header("cache-control", "no-store", true);
            res.render(Json(ConversationView {
                conversation_id: id,
                messages: messages.iter().map(|m| m.view()).collect(),
            }));
        }
        Ok(None) => not_found().render(res),
        Err(e) => {
            tracing::error!(error = %e, "reading a conversation failed");
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "The conversation cannot be read right now.",
            )
            .render(res);
        }
    }
}
