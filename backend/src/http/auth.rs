//! The visitor side of sessions: the hoop that guards the chat and history
//! APIs, and `POST /api/v1/session`, which renews a token, takes back an
//! earlier visitor, and verifies a site's signed user.

use std::sync::Arc;

use protocol::api::{SessionGrant, SessionRequest};
use protocol::{ApiError, ErrorCode};
use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::error::AppError;
use crate::state::AppState;
use crate::store::Owner;
use crate::tenants::Widget;
use crate::tenants::session::{Session, TokenError, new_visitor, unix_now, verify_identity};

/// The one answer for a token that is missing, forged, for another widget
/// or for a widget that is gone or disabled: they are not told apart.
fn invalid_session() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidSession,
        "The session is not valid. Reload the page to start a new one.",
    )
}

fn session_expired() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::SessionExpired,
        "The session has expired. Renew it with POST /api/v1/session.",
    )
}

/// The bearer token of a request (the scheme name in either case the
/// clients send); the admin API reads its key the same way.
pub(crate) fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Missing, unknown, revoked, or a disabled widget's: one answer.
fn invalid_key() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidApiKey,
        "The X-API-Key header is missing or does not name a widget.",
    )
}

/// The widget of the request's `X-API-Key`, and the session of its bearer
/// token, which must have been minted for that widget.
fn check(
    state: &AppState,
    req: &Request,
    grace_secs: u64,
) -> Result<(Session, Arc<Widget>), AppError> {
    let widget = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|key| state.widgets.get().by_key(key.trim()))
        .ok_or_else(invalid_key)?;
    let token = bearer(req).ok_or_else(invalid_session)?;
    let session = state
        .sessions
        .open(token)
        .map_err(|_: TokenError| invalid_session())?;
    if session.widget != widget.id.as_str() {
        return Err(invalid_session());
    }
    if !session.usable_at(unix_now(), grace_secs) {
        return Err(session_expired());
    }
    Ok((session, widget))
}

/// Requires the widget's `X-API-Key` and `Authorization: Bearer <session
/// token>` from the widget's page, checked before anything reads the body;
/// puts the widget and the visitor ([`Owner`]) in the depot.
/// What [`require_session`] put in the depot for a visitor's request: the
/// state, the widget and the visitor. `None` (logged) when a handler is
/// reached without that hoop, a wiring mistake.
pub fn visitor(depot: &Depot) -> Option<(Arc<AppState>, Arc<Widget>, Owner)> {
    match (
        depot.get_typed::<Arc<AppState>>(),
        depot.get_typed::<Arc<Widget>>(),
        depot.get_typed::<Owner>(),
    ) {
        (Ok(state), Ok(widget), Ok(owner)) => Some((state.clone(), widget.clone(), owner.clone())),
        _ => {
            tracing::error!("handler reached without state, widget or session");
            None
        }
    }
}

#[handler]
pub async fn require_session(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let Ok(state) = depot.get_typed::<Arc<AppState>>().cloned() else {
        AppError::internal().render(res);
        ctrl.skip_rest();
        return;
    };
    match check(&state, req, 0) {
        Ok((session, widget)) => {
            depot.insert_typed(widget);
            depot.insert_typed(Owner {
                visitor: session.visitor,
                user: session.user,
            });
        }
        Err(e) => {
            e.render(res);
            ctrl.skip_rest();
        }
    }
}

/// Renews a session (`Authorization: Bearer` with the current token, which
/// may have expired within the renewal grace), optionally continuing an
/// earlier visitor (`resume`) and proving the site's user (`identity`).
///
/// A user is set only when `identity.user_hash` is the HMAC-SHA256 of
/// `identity.user_id` under the widget's verification secret (compared in
/// constant time). A wrong hash, or a widget without a secret, gives an
/// anonymous session: never another user's.
#[endpoint(
    tags("chat"),
    request_body(content = SessionRequest, content_type = "application/json", description = "What to carry into the new session; may be `{}`"),
    parameters(
        ("X-API-Key" = String, Header, description = "The widget's public key, `pk_…`"),
        ("Authorization" = String, Header, description = "`Bearer <session token>` from the widget page"),
    ),
    responses(
        (status_code = 200, body = SessionGrant),
        (status_code = 400, description = "Malformed JSON", body = ApiError),
        (status_code = 401, description = "Unknown key (`invalid_api_key`); missing, forged or another widget's token (`invalid_session`); expired past the renewal grace (`session_expired`)", body = ApiError),
    )
)]
pub async fn renew(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let Ok(state) = depot.get_typed::<Arc<AppState>>().cloned() else {
        return AppError::internal().render(res);
    };
    match grant(&state, req).await {
        Ok(grant) => {
            let _ = res.add_header("cache-control", "no-store", true);
            res.render(Json(grant));
        }
        Err(e) => e.render(res),
    }
}

async fn grant(state: &AppState, req: &mut Request) -> Result<SessionGrant, AppError> {
    let settings = &state.settings.session;
    let (current, widget) = check(state, req, settings.renew_grace_secs)?;
    let body = req
        .payload_with_max_size(16 * 1024)
        .await
        .map_err(|_| AppError::bad_request("The request body could not be read."))?;
    let request: SessionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SessionRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            AppError::bad_request(format!("The body is not a valid session request: {e}."))
        })?
    };
    let now = unix_now();
    let (mut visitor, mut user) = if request.fresh {
        (new_visitor(), None)
    } else {
        (current.visitor, current.user)
    };
    if let Some(earlier) = request
        .resume
        .as_deref()
        .filter(|_| !request.fresh)
        .and_then(|t| state.sessions.open(t).ok())
        .filter(|s| s.widget == current.widget)
        .filter(|s| s.usable_at(now, settings.resume_days.saturating_mul(86_400)))
    {
        visitor = earlier.visitor;
        if user.is_none() {
            user = earlier.user;
        }
    }
    if let Some(identity) = &request.identity {
        let verified = widget.verification_secret.as_deref().is_some_and(|secret| {
            !identity.user_id.is_empty()
                && identity.user_id.len() <= 256
                && verify_identity(secret, &identity.user_id, &identity.user_hash)
        });
        if !verified {
            tracing::info!(widget = %widget.id, "identity not verified; the session is anonymous");
        }
        user = verified.then(|| identity.user_id.clone());
    }
    let session = Session::starting_now(current.widget, visitor, user, settings.ttl_secs);
    Ok(SessionGrant {
        session: state.sessions.mint(&session),
        expires_at: session.expires,
        user_id: session.user,
    })
}
