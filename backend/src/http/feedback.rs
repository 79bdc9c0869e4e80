//! `POST /api/v1/chat/{message_id}/feedback`: a visitor rates an answer
//! thumbs up or down, with an optional comment, and may change their mind.

use protocol::widget::{FeedbackRequest, MAX_FEEDBACK_COMMENT};
use protocol::{ApiError, ErrorCode};
use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::error::AppError;
use crate::limits::{FEEDBACK_PER_MINUTE, Limits};
use crate::store::conversations::Rated;

/// A rating's body is small: a word and a comment.
const MAX_BODY: u64 = 8 * 1024;

/// Rates an answer: `{"rating": "up"|"down", "comment": …}`, replacing the
/// visitor's earlier rating of it; `{"rating": null}` takes it back.
#[endpoint(
    tags("chat"),
    request_body(content = FeedbackRequest, content_type = "application/json", description = "The rating"),
    parameters(
        ("X-API-Key" = String, Header, description = "The widget's public key, `pk_…`"),
        ("Authorization" = String, Header, description = "`Bearer <session token>` minted into the widget page"),
        ("message_id" = String, Path, description = "The answer's id (`meta` event's `message_id`)"),
    ),
    responses(
        (status_code = 204, description = "Saved"),
        (status_code = 400, description = "Malformed JSON, or a question or an answer still being written (`invalid_request`)", body = ApiError),
        (status_code = 401, description = "Unknown key, or a missing, forged, foreign or expired session token", body = ApiError),
        (status_code = 404, description = "No such answer for this visitor", body = ApiError),
        (status_code = 413, description = "Body larger than 8 KiB", body = ApiError),
        (status_code = 415, description = "Body is not JSON", body = ApiError),
        (status_code = 422, description = "The comment is too long (`invalid_field`)", body = ApiError),
        (status_code = 429, description = "Too many ratings from this session (`rate_limited`; `Retry-After`)", body = ApiError),
    )
)]
pub async fn feedback(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((state, widget, owner)) = super::auth::visitor(depot) else {
        AppError::internal().render(res);
        return;
    };
    let id = req.param::<String>("message_id").unwrap_or_default();
    let body = match super::chat::json_payload(req, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => return e.render(res),
    };
    let rating: FeedbackRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return AppError::bad_request(format!(
                "The body is not a rating: {e}. Send {{\"rating\": \"up\"}}, \"down\" or null."
            ))
            .render(res);
        }
    };
    let comment = rating
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_FEEDBACK_COMMENT || c.contains('\0')) {
        return AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidField,
            format!("comment: at most {MAX_FEEDBACK_COMMENT} characters, without NUL."),
        )
        .render(res);
    }
    let limits = Limits::of(&state.settings.limits, &widget.limits);
    if let Err(wait) = state
        .limiter
        .admit_feedback(widget.id.as_str(), limits, &owner.visitor)
    {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        return AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "At most {FEEDBACK_PER_MINUTE} ratings a minute. Please wait {secs} s and try again."
            ),
        )
        .with_retry_after(secs)
        .render(res);
    }
    match state
        .store
        .rate_answer(&widget.id, &owner, &id, rating.rating, comment)
        .await
    {
        Ok(Rated::Saved { first }) => {
            tracing::info!(
                widget = %widget.id,
                message = %id,
                rating = rating.rating.map_or("none", |r| r.as_str()),
                first,
                "an answer was rated"
            );
            if let Some(r) = rating.rating {
                state.webhooks.emit(
                    widget.id.as_str(),
                    "feedback.created",
                    serde_json::json!({
                        "widget_id": widget.id.as_str(),
                        "message_id": id,
                        "rating": r.as_str(),
                        "comment": comment,
                        "user_id": owner.user,
                        "changed": !first,
                    }),
                );
            }
            res.status_code(StatusCode::NO_CONTENT);
        }
        Ok(Rated::NotFound) => AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "There is no such answer for this visitor.",
        )
        .render(res),
        Ok(Rated::NotAnswer) => AppError::bad_request(
            "Only a finished answer can be rated: not a question, nor an answer still being written.",
        )
        .render(res),
        Err(e) => {
            tracing::error!(error = %e, "saving a rating failed");
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "The rating could not be saved right now. Please try again.",
            )
            .with_retry_after(2)
            .render(res)
        }
    }
}
