//! Calls to the server: same-origin `fetch` with the session cookie, the
//! CSRF token on every change, and the server's `ApiError` on a refusal.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestCredentials, RequestInit, Response};

/// Why a call failed, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status; 0 when the server could not be reached.
    pub status: u16,
    /// The `ApiError` code (`unauthorized`, `forbidden`, …).
    pub code: String,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    fn network() -> Self {
        Self {
            status: 0,
            code: "network".into(),
            message: "The server could not be reached. Check the connection and try again.".into(),
        }
    }
}

#[derive(serde::Deserialize)]
struct ApiError {
    code: String,
    message: String,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: String,
    pub created_at: u64,
}

impl User {
    pub fn can_edit(&self) -> bool {
        self.role == "editor" || self.role == "owner"
    }
    pub fn is_owner(&self) -> bool {
        self.role == "owner"
    }
}

/// A sign-in session: the user and the token changes carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Session {
    pub user: User,
    pub csrf: String,
    pub expires_at: i64,
}

/// Sends a request; the status and body of any answer.
async fn send(
    method: &str,
    path: &str,
    body: Option<String>,
    csrf: Option<&str>,
) -> Result<(u16, String), Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    let headers = Headers::new().map_err(|_| Failure::network())?;
    if let Some(body) = body {
        headers
            .set("content-type", "application/json")
            .map_err(|_| Failure::network())?;
        init.set_body(&body.into());
    }
    if let Some(csrf) = csrf {
        headers
            .set("x-csrf-token", csrf)
            .map_err(|_| Failure::network())?;
    }
    init.set_headers(&headers);
    let window = web_sys::window().ok_or_else(Failure::network)?;
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|_| Failure::network())?
        .dyn_into()
        .map_err(|_| Failure::network())?;
    let text = JsFuture::from(response.text().map_err(|_| Failure::network())?)
        .await
        .map_err(|_| Failure::network())?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}

fn refusal(status: u16, text: &str) -> Failure {
    match serde_json::from_str::<ApiError>(text) {
        Ok(e) => Failure {
            status,
            code: e.code,
            message: e.message,
        },
        Err(_) => Failure {
            status,
            code: "unknown".into(),
            message: format!("The server answered {status}."),
        },
    }
}

/// A call whose answer is JSON.
pub async fn json<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
    csrf: Option<&str>,
) -> Result<T, Failure> {
    let body = body.map(|b| serde_json::to_string(b).unwrap_or_default());
    let (status, text) = send(method, path, body, csrf).await?;
    if !(200..300).contains(&status) {
        return Err(refusal(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| Failure {
        status,
        code: "invalid_response".into(),
        message: format!("The server's answer could not be read: {e}"),
    })
}

/// A call whose answer has no body (204).
pub async fn empty(
    method: &str,
    path: &str,
    body: Option<&impl Serialize>,
    csrf: Option<&str>,
) -> Result<(), Failure> {
    let body = body.map(|b| serde_json::to_string(b).unwrap_or_default());
    let (status, text) = send(method, path, body, csrf).await?;
    if !(200..300).contains(&status) {
        return Err(refusal(status, &text));
    }
    Ok(())
}

/// No body.
pub const NONE: Option<&()> = None;
