//! `POST /api/v1/chat`: reads and checks the request, applies the rate
//! limits, and streams what [`crate::chat`] produces.

use std::net::IpAddr;
use std::sync::Arc;

use protocol::{ApiError, ChatRequest, ErrorCode};
use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::chat::{accepting, shared_log, start};
use crate::error::AppError;
use crate::limits::{Limits, Refusal, Scope};
use crate::metrics::Outcome;
use crate::state::AppState;
use crate::store::Owner;
use crate::tenants::Widget;

/// One server-sent event of the answer stream, as the OpenAPI document
/// describes each event of `text/event-stream`.
#[derive(Debug, salvo::oapi::ToSchema)]
#[allow(dead_code)] // describes the wire format; never built
pub struct SseEvent {
    /// The event's sequence number in the stream, from 0.
    pub id: String,
    /// `meta`, `sources`, `done` or `error`; absent for answer chunks.
    pub event: Option<String>,
    /// JSON: a MetaEvent, a list of SourceRef, a ChunkEvent, a DoneEvent or
    /// an ApiError, as `event` says.
    pub data: String,
}

/// Streams the model's answer to a visitor's message as server-sent events.
///
/// The answer is a `meta` event (ids), a `sources` event (`[SourceRef]`, the
/// knowledge the answer uses, when it uses some), chunks as the default event with
/// `{"chunk": "…"}` data, then exactly one `done` (`DoneEvent`) or `error`
/// (`ApiError`) event. Every event has an `id:` (its sequence number); a
/// `: ping` comment is sent every 15 s. Failures before the stream starts are
/// HTTP errors with an `ApiError` body.
#[endpoint(
    tags("chat"),
    request_body(content = ChatRequest, content_type = "application/json", description = "The visitor's message"),
    parameters(
        ("X-API-Key" = String, Header, description = "The widget's public key, `pk_…`"),
        ("Authorization" = String, Header, description = "`Bearer <session token>` minted into the widget page"),
    ),
    responses(
        (status_code = 200, description = "An SSE stream: `event: meta` (MetaEvent), `event: sources` ([SourceRef]), chunks (ChunkEvent), then `event: done` (DoneEvent) or `event: error` (ApiError); the schema is of one event", content_type = "text/event-stream", body = SseEvent),
        (status_code = 400, description = "Malformed JSON or wrong field types", body = ApiError),
        (status_code = 401, description = "Unknown key (`invalid_api_key`); missing, forged or another widget's session token (`invalid_session`); expired token (`session_expired`)", body = ApiError),
        (status_code = 404, description = "No such conversation for this visitor", body = ApiError),
        (status_code = 413, description = "Body too large", body = ApiError),
        (status_code = 415, description = "Body is not JSON", body = ApiError),
        (status_code = 422, description = "Empty or too long message", body = ApiError),
        (status_code = 429, description = "Rate limited per key, session or IP, too many streams for the session (`rate_limited`; `Retry-After` and `RateLimit-*` headers), or the widget's token budget is used up (`budget_exceeded`)", body = ApiError),
        (status_code = 502, description = "The model provider failed; `X-Conversation-Id` names the conversation the question was stored in", body = ApiError),
        (status_code = 503, description = "The model provider is unavailable (`X-Conversation-Id` as for 502), or the server is shutting down, or the budgets are shared through Redis and it is unreachable (`budget_unavailable`; `Retry-After`)", body = ApiError),
        (status_code = 504, description = "The model provider did not answer in time (`X-Conversation-Id` as for 502)", body = ApiError),
    )
)]
pub async fn chat(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((state, widget, owner)) = super::auth::visitor(depot) else {
        AppError::internal().render(res);
        return;
    };
    // Limits first: a refused request costs nothing, its body is not read.
    let limits = Limits::of(&state.settings.limits, &widget.limits);
    let ip = client_ip(req, state.settings.limits.trust_forwarded_for);
    let permit = match state
        .limiter
        .admit(widget.id.as_str(), limits, &owner.visitor, ip)
        .await
    {
        Ok(permit) => permit,
        Err(refusal) => {
            state
                .metrics
                .chat(Outcome::Refused, Some(ErrorCode::RateLimited.as_str()));
            return rate_limited(res, refusal);
        }
    };
    let started = match accepting(&state) {
        Ok(()) => match read_request(&state, req).await {
            Ok(request) => start(&state, &widget, &owner, limits, permit, request).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match started {
        Ok(body) => {
            res.status_code(StatusCode::OK);
            sse_headers(res);
            res.stream(body);
        }
        Err(e) => {
            let outcome = if e.status().is_client_error() {
                Outcome::Refused
            } else {
                Outcome::Failed
            };
            state.metrics.chat(outcome, Some(e.code().as_str()));
            e.render(res)
        }
    }
}

/// The answer's log, when this visitor may read it; otherwise the error:
/// 410 `stream_expired` for their answer whose log is gone (its
/// conversation in `X-Conversation-Id`), 404 for anything else.
async fn answer_log(
    state: &AppState,
    widget: &Widget,
    owner: &Owner,
    message_id: &str,
) -> Result<Found, AppError> {
    let not_found = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "There is no such answer for this visitor.",
        )
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "looking up an answer failed");
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            "The answer cannot be read right now. Please try again.",
        )
        .with_retry_after(2)
    };
    if let Some(log) = state.answers.get(message_id) {
        if log.widget == widget.id.as_str()
            && owner.may_read(Some(&log.owner.visitor), log.owner.user.as_deref())
        {
            return Ok(Found::Here(log));
        }
        return Err(not_found());
    }
    // Running, or run, on another replica?
    if let Some(redis) = state.limiter.shared() {
        match shared_log::find(redis, widget.id.as_str(), owner, message_id).await {
            Ok(Some(Ok(log))) => return Ok(Found::Elsewhere(Box::new(log))),
            Ok(Some(Err(()))) => return Err(not_found()),
            Ok(None) => {}
            Err(e) => return Err(unavailable(&e)),
        }
    }
    match state
        .store
        .conversation_of_message(&widget.id, owner, message_id)
        .await
    {
        Ok(Some(conversation)) => Err(AppError::new(
            StatusCode::GONE,
            ErrorCode::StreamExpired,
            "This answer can no longer be resumed; the conversation has what was written.",
        )
        .in_conversation(conversation)),
        Ok(None) => Err(not_found()),
        Err(e) => Err(unavailable(&e)),
    }
}

/// Where an answer's log was found.
enum Found {
    /// On this replica.
    Here(Arc<crate::chat::log::AnswerLog>),
    /// In Redis, from another replica.
    Elsewhere(Box<shared_log::RemoteLog>),
}

/// The last event the client saw: the `Last-Event-ID` header, or the
/// `last_event_id` query parameter (a cross-origin header costs a
/// preflight). `Err` when one is given and is not a number.
fn last_event_id(req: &Request) -> Result<Option<u64>, AppError> {
    let given = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.query::<String>("last_event_id"));
    match given.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidField,
                "last_event_id must be the number of an event's id: line.",
            )
        }),
    }
}

/// Resumes an answer: its events after `Last-Event-ID`, then the live ones.
///
/// The same SSE stream as `POST /api/v1/chat` gives, from the event after
/// the one named (from the start without one), to its `done` or `error`;
/// the model is not asked again. A finished answer replays to its end
/// while its log is kept (`resume_ttl_secs`); after that `410
/// stream_expired`, and the history API has the stored answer.
#[endpoint(
    tags("chat"),
    parameters(
        ("message_id" = String, Path, description = "The answer's `message_id` from the `meta` event"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id:` of the last event received"),
        ("last_event_id" = Option<String>, Query, description = "The same, for clients that cannot send the header"),
        ("X-API-Key" = String, Header, description = "The widget's public key, `pk_…`"),
        ("Authorization" = String, Header, description = "`Bearer <session token>` minted into the widget page"),
    ),
    responses(
        (status_code = 200, description = "The rest of the answer's SSE stream", content_type = "text/event-stream", body = SseEvent),
        (status_code = 400, description = "`last_event_id` is not a number", body = ApiError),
        (status_code = 401, description = "Unknown key, or a missing, forged, foreign or expired session token", body = ApiError),
        (status_code = 404, description = "No such answer for this visitor", body = ApiError),
        (status_code = 410, description = "The answer's log has expired (`stream_expired`); `X-Conversation-Id` names its conversation", body = ApiError),
    )
)]
pub async fn resume(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((state, widget, owner)) = super::auth::visitor(depot) else {
        AppError::internal().render(res);
        return;
    };
    let id = req.param::<String>("message_id").unwrap_or_default();
    let after = match last_event_id(req) {
        Ok(after) => after,
        Err(e) => return e.render(res),
    };
    match answer_log(&state, &widget, &owner, &id).await {
        Ok(found) => {
            state.metrics.resume();
            let heartbeat =
                std::time::Duration::from_secs(state.settings.chat.heartbeat_secs.max(1));
            res.status_code(StatusCode::OK);
            sse_headers(res);
            match found {
                Found::Here(log) => res.stream(log.follow(after, heartbeat)),
                Found::Elsewhere(log) => res.stream((*log).follow(after, heartbeat)),
            }
        }
        Err(e) => e.render(res),
    }
}

/// Stops an answer at once: the model is cancelled, what was written is
/// stored as interrupted, and readers get `done` with `finish_reason`
/// `stopped`. Stopping an answer that has ended changes nothing.
#[endpoint(
    tags("chat"),
    parameters(
        ("message_id" = String, Path, description = "The answer's `message_id` from the `meta` event"),
        ("X-API-Key" = String, Header, description = "The widget's public key, `pk_…`"),
        ("Authorization" = String, Header, description = "`Bearer <session token>` minted into the widget page"),
    ),
    responses(
        (status_code = 204, description = "Stopped, or already ended"),
        (status_code = 401, description = "Unknown key, or a missing, forged, foreign or expired session token", body = ApiError),
        (status_code = 404, description = "No such answer for this visitor", body = ApiError),
    )
)]
pub async fn stop(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Some((state, widget, owner)) = super::auth::visitor(depot) else {
        AppError::internal().render(res);
        return;
    };
    let id = req.param::<String>("message_id").unwrap_or_default();
    match answer_log(&state, &widget, &owner, &id).await {
        Ok(Found::Here(log)) => {
            log.stop();
            res.status_code(StatusCode::NO_CONTENT);
        }
        Ok(Found::Elsewhere(log)) => match log.stop().await {
            Ok(()) => {
                res.status_code(StatusCode::NO_CONTENT);
            }
            Err(e) => {
                tracing::error!(error = %e, "asking another replica to stop an answer failed");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Internal,
                    "The answer could not be stopped right now. Please try again.",
                )
                .with_retry_after(2)
                .render(res)
            }
        },
        Err(e) if e.code() == ErrorCode::StreamExpired => {
            res.status_code(StatusCode::NO_CONTENT);
        }
        Err(e) => e.render(res),
    }
}

fn sse_headers(res: &mut Response) {
    for (name, value) in [
        ("content-type", "text/event-stream; charset=utf-8"),
        ("cache-control", "no-cache, no-transform"),
        ("x-accel-buffering", "no"),
    ] {
        let _ = res.add_header(name, value, true);
    }
}

/// The client's address: the TCP peer, or behind a trusted proxy the first
/// `X-Forwarded-For` entry.
pub(super) fn client_ip(req: &Request, trust_forwarded_for: bool) -> IpAddr {
    let forwarded = trust_forwarded_for
        .then(|| req.headers().get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok());
    forwarded
        .or_else(|| req.remote_addr().ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// 429 with `Retry-After` and the `RateLimit` headers.
fn rate_limited(res: &mut Response, refusal: Refusal) {
    let secs = refusal.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let message = match refusal.scope {
        Scope::Streams => format!(
            "Only {} answers can stream at once. Wait for one to finish.",
            refusal.limit
        ),
        Scope::Session | Scope::Ip | Scope::Key => {
            format!("Too many messages in a short time. Please wait {secs} s and try again.")
        }
    };
    let policy = match refusal.scope {
        Scope::Streams => format!("{};w=1", refusal.limit),
        _ => format!("{};w=60", refusal.limit),
    };
    for (name, value) in [
        ("ratelimit-limit", refusal.limit.to_string()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", secs.to_string()),
        ("ratelimit-policy", policy),
        (
            "ratelimit-scope",
            match refusal.scope {
                Scope::Key => "key",
                Scope::Session => "session",
                Scope::Ip => "ip",
                Scope::Streams => "streams",
            }
            .to_owned(),
        ),
    ] {
        let _ = res.add_header(name, value, true);
    }
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        message,
    )
    .with_retry_after(secs)
    .render(res);
}

/// Reads and checks the body.
/// The body of a JSON request, at most `limit` bytes: 413 when larger,
/// 415 when it is not declared JSON.
pub(super) async fn json_payload(req: &mut Request, limit: u64) -> Result<&[u8], AppError> {
    let too_large = || {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("The request body is larger than {limit} bytes."),
        )
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Send the body as JSON with Content-Type: application/json.",
        ));
    }
    let body = req
        .payload_with_max_size(limit as usize)
        .await
        .map_err(|e| match e {
            salvo::http::ParseError::PayloadTooLarge => too_large(),
            other => {
                tracing::debug!(error = %other, "reading a request body failed");
                AppError::bad_request("The request body could not be read.")
            }
        })?;
    Ok(body)
}

async fn read_request(state: &AppState, req: &mut Request) -> Result<ChatRequest, AppError> {
    let body = json_payload(req, state.settings.chat.max_body_bytes).await?;
    let request: ChatRequest = serde_json::from_slice(body).map_err(|e| {
        AppError::bad_request(format!("The body is not a valid chat request: {e}."))
    })?;
    if request.message.trim().is_empty() {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::EmptyMessage,
            "The message is empty.",
        ));
    }
    if request.message.contains('\0') {
        return Err(AppError::bad_request(
            "The message contains a NUL character.",
        ));
    }
    let max = state.settings.chat.max_message_chars;
    if request.message.chars().count() > max {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::MessageTooLong,
            format!("The message is longer than {max} characters."),
        ));
    }
    if let Some(id) = &request.conversation_id
        && (id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ConversationNotFound,
            "There is no such conversation.",
        ));
    }
    Ok(request)
}
