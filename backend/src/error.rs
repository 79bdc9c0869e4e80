//! How failures reach the client: an HTTP status with a JSON [`ApiError`]
//! body. The cause is logged by whoever builds the error; the client only
//! sees the stable code and a message written for people.

use protocol::{ApiError, ErrorCode};
use salvo::http::StatusCode;
use salvo::prelude::*;

/// A failure before the response started.
#[derive(Debug, Clone)]
pub struct AppError {
    pub status: StatusCode,
    pub body: ApiError,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// The conversation a refused chat turn was nevertheless stored in (the
    /// model failed before its first token): `X-Conversation-Id`, so a retry
    /// continues it instead of leaving it behind.
    pub conversation_id: Option<String>,
}

impl AppError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError::new(code, message),
            retry_after: None,
            conversation_id: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn in_conversation(mut self, id: String) -> Self {
        self.conversation_id = Some(id);
        self
    }

    /// The stable code it carries.
    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    /// The HTTP status it is sent with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Something went wrong on our side. Please try again.",
        )
    }

    /// Writes the error into `res`.
    pub fn render(&self, res: &mut Response) {
        res.status_code(self.status);
        if let Some(secs) = self.retry_after {
            let _ = res.add_header("retry-after", secs.to_string(), true);
        }
        if let Some(id) = &self.conversation_id {
            let _ = res.add_header(protocol::api::CONVERSATION_HEADER, id, true);
        }
        let _ = res.add_header("cache-control", "no-store", true);
        res.render(Json(&self.body));
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl std::error::Error for AppError {}

/// Turns salvo's own error pages (unknown route, wrong method, a panic)
/// into JSON `ApiError`s, so every non-2xx body has the same shape.
#[handler]
pub async fn json_catcher(res: &mut Response, ctrl: &mut FlowCtrl) {
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    // A handler that wrote its own body (an ApiError, the widget's 404 page)
    // has said what it means.
    let has_body = res.headers().contains_key("content-type");
    if has_body || !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    let error = match status {
        StatusCode::NOT_FOUND => AppError::new(
            status,
            ErrorCode::NotFound,
            "There is nothing at this address.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => AppError::new(
            status,
            ErrorCode::InvalidRequest,
            "This method is not allowed here.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            status,
            ErrorCode::PayloadTooLarge,
            "The request body is too large.",
        ),
        s if s.is_server_error() => AppError {
            status: s,
            ..AppError::internal()
        },
        s => AppError::new(
            s,
            ErrorCode::InvalidRequest,
            "The request was not accepted.",
        ),
    };
    error.render(res);
    ctrl.skip_rest();
}
