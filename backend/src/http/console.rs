//! The console's API under `/api/v1/console/`: signing in and out, the
//! first-run setup, users and the audit log; and [`authenticate`], which the
//! admin API shares, so the console drives widgets and knowledge through
//! the same routes an admin key does.
//!
//! A console request carries the session cookie (`HttpOnly; Secure;
//! SameSite=Strict`) and, on every change, the session's CSRF token in
//! `X-CSRF-Token`. The rules (hashing, roles, limits) are in
//! [`crate::accounts`]; this file reads requests and writes responses.

use std::net::IpAddr;

use protocol::{ApiError, ErrorCode};
use salvo::http::{Method, StatusCode};
use salvo::oapi::ToSchema;
use salvo::prelude::*;
use serde::{Deserialize, Serialize};

use super::admin::{json_body, respond, state};
use crate::accounts::{self, AccountError, COOKIE, SESSION_TTL};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::accounts::{AuditEntry, ConsoleRole, ConsoleUser};
use crate::tenants::session::{hash_key, key_prefix};

/// Who made a request to the admin or console API.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An admin key (shown by its prefix).
    Key(String),
    /// A signed-in console user.
    User(ConsoleUser),
}

impl Principal {
    /// How the audit log names them.
    pub fn actor(&self) -> String {
        match self {
            Self::Key(prefix) => format!("key:{prefix}"),
            Self::User(u) => format!("user:{}", u.email),
        }
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(m) => {
                AppError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, m)
            }
            AccountError::Exists(_) => {
                AppError::new(StatusCode::CONFLICT, ErrorCode::Conflict, e.to_string())
            }
            AccountError::WrongCredentials => AppError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "The email or password is wrong.",
            ),
            AccountError::Throttled(secs) => AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!("Too many sign-in attempts. Try again in {secs} s."),
            )
            .with_retry_after(secs),
            AccountError::Store(e) => store_error(e),
        }
    }
}

fn store_error(e: crate::store::StoreError) -> AppError {
    tracing::error!(error = %e, "console store operation failed");
    AppError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal,
        "The store is unavailable. Please try again.",
    )
}

fn unauthorized(message: &str) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
}

fn forbidden(message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
}

/// The session cookie's token, if the request has one.
fn cookie_token(req: &Request) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.trim().to_owned())
        })
}

fn set_cookie(res: &mut Response, token: &str, max_age_secs: u64) {
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_secs}"
    );
    let _ = res.add_header("set-cookie", cookie, false);
}

fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Who is asking, and whether they may: an admin key (when `keys` allows
/// one) may do anything; a console user needs a live session, the CSRF
/// token on a change, and the role the route requires.
pub(super) async fn authenticate(
    req: &Request,
    state: &AppState,
    keys: bool,
) -> Result<Principal, AppError> {
    if keys && let Some(key) = super::auth::bearer(req).filter(|k| !k.is_empty()) {
        return match state.tenants.is_admin_key(&hash_key(key)).await {
            Ok(true) => Ok(Principal::Key(key_prefix(key))),
            Ok(false) => Err(unauthorized(
                "Send an admin key as Authorization: Bearer ak_…, or sign in to the console.",
            )),
            Err(e) => Err(store_error(e)),
        };
    }
    let Some(token) = cookie_token(req) else {
        return Err(unauthorized(if keys {
            "Send an admin key as Authorization: Bearer ak_…, or sign in to the console."
        } else {
            "Sign in to the console first."
        }));
    };
    let session = accounts::session(&*state.accounts, &token)
        .await
        .map_err(store_error)?
        .ok_or_else(|| unauthorized("The console session has ended. Sign in again."))?;
    if is_change(req.method()) {
        let sent = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !accounts::same_secret(sent, &session.csrf) {
            return Err(forbidden(
                "A change from the console needs the session's X-CSRF-Token header.",
            ));
        }
    }
    let needed = accounts::required_role(req.method().as_str(), req.uri().path());
    if session.user.role < needed {
        return Err(forbidden(format!(
            "This needs the {} role; {} is {}.",
            needed.as_str(),
            session.user.email,
            session.user.role.as_str()
        )));
    }
    Ok(Principal::User(session.user))
}

/// Runs the rest of the request, then writes a change to the audit log.
pub(super) async fn call_and_audit(
    principal: Principal,
    state: &AppState,
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let change = is_change(req.method());
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let actor = principal.actor();
    depot.insert_typed(principal);
    ctrl.call_next(req, depot, res).await;
    if change {
        let status = res.status_code.unwrap_or(StatusCode::OK).as_u16();
        if let Err(e) = state.accounts.audit(&actor, &method, &path, status).await {
            tracing::error!(error = %e, %actor, %method, %path, "writing the audit log failed");
        }
    }
}

/// The console routes' hoop: a signed-in user (no admin keys here: the
/// console's own routes are for people).
#[handler]
async fn require_user(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let state = match state(depot) {
        Ok(s) => s,
        Err(e) => return stop(e, res, ctrl),
    };
    match authenticate(req, &state, false).await {
        Ok(p) => call_and_audit(p, &state, req, depot, res, ctrl).await,
        Err(e) => stop(e, res, ctrl),
    }
}

pub(super) fn stop(e: AppError, res: &mut Response, ctrl: &mut FlowCtrl) {
    e.render(res);
    ctrl.skip_rest();
}

fn user(depot: &Depot) -> Result<ConsoleUser, AppError> {
    match depot.get_typed::<Principal>() {
        Ok(Principal::User(u)) => Ok(u.clone()),
        _ => Err(unauthorized("Sign in to the console first.")),
    }
}

/// An email and password.
#[derive(Deserialize, ToSchema)]
struct Credentials {
    email: String,
    password: String,
}

/// Never prints the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The signed-in user and the token to send back on changes.
#[derive(Debug, Serialize, ToSchema)]
struct SessionInfo {
    user: ConsoleUser,
    /// Send as `X-CSRF-Token` with every change.
    csrf: String,
    /// Milliseconds since the Unix epoch.
    expires_at: i64,
}

fn peer_ip(req: &Request, state: &AppState) -> IpAddr {
    super::chat::client_ip(req, state.settings.limits.trust_forwarded_for)
}

/// Signs in with an email and password; sets the session cookie.
#[endpoint(
    tags("console"),
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status_code = 200, body = SessionInfo),
        (status_code = 400, body = ApiError),
        (status_code = 401, description = "The email or password is wrong", body = ApiError),
        (status_code = 429, description = "Too many attempts; see Retry-After", body = ApiError),
    )
)]
async fn sign_in(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let c: Credentials = json_body(req).await?;
        let ip = peer_ip(req, &state);
        let done = accounts::sign_in(
            &*state.accounts,
            &state.sign_in_limits,
            Some(ip),
            &c.email,
            &c.password,
        )
        .await;
        match &done {
            Ok(s) => tracing::info!(user = %s.user.email, "console sign-in"),
            Err(AccountError::WrongCredentials) => {
                tracing::warn!(email = %c.email.trim(), %ip, "console sign-in refused")
            }
            Err(_) => {}
        }
        let s = done?;
        set_cookie(res, &s.token, SESSION_TTL.as_secs());
        Ok(SessionInfo {
            user: s.user,
            csrf: s.csrf,
            expires_at: s.expires_at,
        })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// The signed-in user, with the CSRF token for changes.
#[endpoint(tags("console"), security(("console_session" = [])), responses((status_code = 200, body = SessionInfo), (status_code = 401, body = ApiError)))]
async fn who_am_i(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let token = cookie_token(req).unwrap_or_default();
        let s = accounts::session(&*state.accounts, &token)
            .await
            .map_err(store_error)?
            .ok_or_else(|| unauthorized("The console session has ended. Sign in again."))?;
        Ok(SessionInfo {
            user: s.user,
            csrf: s.csrf,
            expires_at: s.expires_at,
        })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Signs out this browser.
#[endpoint(tags("console"), security(("console_session" = [])), responses((status_code = 204), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError)))]
async fn sign_out(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let token = cookie_token(req).unwrap_or_default();
        accounts::sign_out(&*state.accounts, &token)
            .await
            .map_err(store_error)?;
        set_cookie(res, "", 0);
        Ok(())
    }
    .await;
    no_content(res, r);
}

/// Signs the user out on every browser, this one too.
#[endpoint(tags("console"), security(("console_session" = [])), responses((status_code = 204), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError)))]
async fn sign_out_everywhere(depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let user = user(depot)?;
        let ended = state
            .accounts
            .delete_sessions_of(&user.id)
            .await
            .map_err(store_error)?;
        tracing::info!(user = %user.email, sessions = ended, "console sign-out everywhere");
        set_cookie(res, "", 0);
        Ok(())
    }
    .await;
    no_content(res, r);
}

fn no_content(res: &mut Response, r: Result<(), AppError>) {
    match r {
        Ok(()) => {
            res.status_code(StatusCode::NO_CONTENT);
        }
        Err(e) => e.render(res),
    }
}

/// Whether the first-run setup is open to this request.
#[derive(Debug, Serialize, ToSchema)]
struct SetupState {
    /// No console user exists yet.
    needed: bool,
    /// This request may create the first owner: it comes from this machine
    /// (loopback, not through a proxy).
    allowed: bool,
}

/// The first-run setup is only for someone on the server's own machine:
/// a loopback peer with no proxy headers (a proxy on the same machine
/// would make every visitor look local).
fn local_request(req: &Request) -> bool {
    let proxied = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    !proxied && req.remote_addr().ip().is_some_and(|ip| ip.is_loopback())
}

#[endpoint(tags("console"), responses((status_code = 200, body = SetupState)))]
async fn setup_state(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let needed = state.accounts.count_users().await.map_err(store_error)? == 0;
        Ok(SetupState {
            needed,
            allowed: needed && local_request(req),
        })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// Creates the first owner and signs them in. Only while no user exists,
/// and only from the server's own machine.
#[endpoint(
    tags("console"),
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status_code = 201, body = SessionInfo),
        (status_code = 400, body = ApiError),
        (status_code = 403, description = "Not from this machine, or a user exists already", body = ApiError),
        (status_code = 409, body = ApiError),
        (status_code = 422, body = ApiError),
    )
)]
async fn setup(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let r = async {
        let state = state(depot)?;
        if !local_request(req) {
            return Err(forbidden(
                "The first owner can only be created from the server's own machine (or with `porthole user create`).",
            ));
        }
        let c: Credentials = json_body(req).await?;
        let _turn = ONE_AT_A_TIME.lock().await;
        if state.accounts.count_users().await.map_err(store_error)? > 0 {
            return Err(forbidden("The console is set up already: sign in."));
        }
        let user = accounts::create_user(&*state.accounts, &c.email, &c.password, ConsoleRole::Owner).await?;
        tracing::info!(user = %user.email, "console set up: first owner created");
        let _ = state
            .accounts
            .audit(&format!("user:{}", user.email), "POST", req.uri().path(), 201)
            .await;
        let s = accounts::sign_in(&*state.accounts, &state.sign_in_limits, None, &c.email, &c.password).await?;
        set_cookie(res, &s.token, SESSION_TTL.as_secs());
        Ok(SessionInfo {
            user: s.user,
            csrf: s.csrf,
            expires_at: s.expires_at,
        })
    }
    .await;
    respond(res, StatusCode::CREATED, r);
}

/// Every console user (owners only).
#[endpoint(tags("console"), security(("console_session" = [])), responses((status_code = 200, body = Vec<ConsoleUser>), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError)))]
async fn list_users(depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        state.accounts.users().await.map_err(store_error)
    }
    .await;
    respond(res, StatusCode::OK, r);
}

/// A new user's email, first password and role.
#[derive(Deserialize, ToSchema)]
struct NewUser {
    email: String,
    password: String,
    role: ConsoleRole,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Adds a console user (owners only).
#[endpoint(
    tags("console"), security(("console_session" = [])),
    request_body(content = NewUser, content_type = "application/json"),
    responses(
        (status_code = 201, body = ConsoleUser),
        (status_code = 400, body = ApiError),
        (status_code = 401, body = ApiError),
        (status_code = 403, body = ApiError),
        (status_code = 409, body = ApiError),
        (status_code = 422, body = ApiError),
    )
)]
async fn post_user(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let u: NewUser = json_body(req).await?;
        Ok(accounts::create_user(&*state.accounts, &u.email, &u.password, u.role).await?)
    }
    .await;
    respond(res, StatusCode::CREATED, r);
}

/// A role change.
#[derive(Debug, Deserialize, ToSchema)]
struct RoleChange {
    role: ConsoleRole,
}

/// Refuses to leave the console without an owner.
async fn keep_an_owner(state: &AppState, id: &str) -> Result<(), AppError> {
    let users = state.accounts.users().await.map_err(store_error)?;
    let owners: Vec<_> = users
        .iter()
        .filter(|u| u.role == ConsoleRole::Owner)
        .collect();
    if owners.len() == 1 && owners[0].id == id {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "This is the last owner: make another user owner first.",
        ));
    }
    Ok(())
}

fn user_id(req: &Request) -> String {
    req.param::<String>("id").unwrap_or_default()
}

/// Changes a user's role (owners only). The last owner stays an owner.
#[endpoint(
    tags("console"), security(("console_session" = [])),
    parameters(("id" = String, Path)),
    request_body(content = RoleChange, content_type = "application/json"),
    responses((status_code = 204), (status_code = 400, body = ApiError), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError), (status_code = 404, body = ApiError), (status_code = 409, body = ApiError))
)]
async fn patch_user(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let id = user_id(req);
        let change: RoleChange = json_body(req).await?;
        if change.role != ConsoleRole::Owner {
            keep_an_owner(&state, &id).await?;
        }
        if !state
            .accounts
            .set_role(&id, change.role)
            .await
            .map_err(store_error)?
        {
            return Err(AppError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("No user {id:?}."),
            ));
        }
        Ok(())
    }
    .await;
    no_content(res, r);
}

/// Removes a user and ends their sessions (owners only). The last owner
/// stays.
#[endpoint(tags("console"), security(("console_session" = [])), parameters(("id" = String, Path)), responses((status_code = 204), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError), (status_code = 404, body = ApiError), (status_code = 409, body = ApiError)))]
async fn delete_user(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r: Result<(), AppError> = async {
        let state = state(depot)?;
        let id = user_id(req);
        keep_an_owner(&state, &id).await?;
        if !state.accounts.delete_user(&id).await.map_err(store_error)? {
            return Err(AppError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("No user {id:?}."),
            ));
        }
        Ok(())
    }
    .await;
    no_content(res, r);
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    next: Option<i64>,
}

/// The audit log, newest first (owners only).
#[endpoint(
    tags("console"), security(("console_session" = [])),
    parameters(("limit" = Option<u32>, Query), ("before" = Option<i64>, Query)),
    responses((status_code = 200, body = AuditPage), (status_code = 401, body = ApiError), (status_code = 403, body = ApiError))
)]
async fn audit_log(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    let r = async {
        let state = state(depot)?;
        let limit = req.query::<u32>("limit").unwrap_or(100).clamp(1, 500);
        let before = req.query::<i64>("before");
        let entries = state
            .accounts
            .audit_log(limit, before)
            .await
            .map_err(store_error)?;
        let next = (entries.len() == limit as usize)
            .then(|| entries.last().map(|e| e.id))
            .flatten();
        Ok(AuditPage { entries, next })
    }
    .await;
    respond(res, StatusCode::OK, r);
}

pub fn router() -> Router {
    Router::with_path("console")
        .push(
            Router::with_path("session")
                .post(sign_in)
                .get(who_am_i)
                .push(
                    Router::new()
                        .hoop(require_user)
                        .delete(sign_out)
                        .push(Router::with_path("everywhere").post(sign_out_everywhere)),
                ),
        )
        .push(Router::with_path("setup").get(setup_state).post(setup))
        .push(
            Router::new()
                .hoop(require_user)
                .push(
                    Router::with_path("users")
                        .get(list_users)
                        .post(post_user)
                        .push(
                            Router::with_path("{id}")
                                .patch(patch_user)
                                .delete(delete_user),
                        ),
                )
                .push(Router::with_path("audit").get(audit_log)),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_name_the_user_or_the_key_prefix() {
        let u = ConsoleUser {
            id: "usr_1".into(),
            email: "ada@example.com".into(),
            role: ConsoleRole::Owner,
            created_at: 0,
        };
        assert_eq!(Principal::User(u).actor(), "user:ada@example.com");
        assert_eq!(
            Principal::Key("ak_1234567".into()).actor(),
            "key:ak_1234567"
        );
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials {
            email: "ada@example.com".into(),
            password: "hunter2hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
