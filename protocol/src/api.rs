//! Request and response bodies of the public HTTP API.

use serde::{Deserialize, Serialize};

/// Response header of a chat turn refused after its question was stored
/// (the model failed before its first token): the conversation it is in,
/// which a retry continues.
pub const CONVERSATION_HEADER: &str = "x-conversation-id";

/// Body of `POST /api/v1/chat`. Unknown fields are refused, so a typo
/// (`conversationId`) is an error rather than a silently new conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// What the visitor typed.
    pub message: String,
    /// The conversation this message continues; omitted for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Body of `POST /api/v1/session`: renews the session the request's bearer
/// token names, optionally taking back an earlier visitor or proving a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct SessionRequest {
    /// An earlier session token of this widget (kept by the widget across
    /// reloads): the new session continues its visitor, so its
    /// conversations stay readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// The site's signed user, from the host page's `identify` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Start over as a new anonymous visitor (the host page's `reset`, e.g.
    /// on logout): nothing of the current visitor or user is carried over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
}

/// A user id signed by the site's backend: `user_hash` is the lowercase hex
/// HMAC-SHA256 of `user_id` under the widget's verification secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct Identity {
    pub user_id: String,
    pub user_hash: String,
}

/// A new session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct SessionGrant {
    /// Send as `Authorization: Bearer …` to the chat and history APIs.
    pub session: String,
    /// Unix seconds.
    pub expires_at: u64,
    /// The verified user this session speaks for; `null` when anonymous
    /// (no identity sent, or its hash was wrong).
    #[serde(default)]
    pub user_id: Option<String>,
}

/// A failure, as the client sees it: the JSON body of every non-2xx response
/// and the payload of the SSE `error` event. `code` is stable and meant for
/// programs; `message` is for people and may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// The stable error codes. New codes may be added; a client that meets one it
/// does not know reads it as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `X-API-Key` is missing or names no widget.
    InvalidApiKey,
    /// The session token is missing, forged, or for another (or no longer
    /// available) widget.
    InvalidSession,
    /// The session token is genuine but has expired: renew it with
    /// `POST /api/v1/session`.
    SessionExpired,
    /// The admin API's bearer key is missing or wrong, or the console
    /// session cookie is missing, forged or expired.
    Unauthorized,
    /// Signed in, but the request is not allowed: the user's role may not
    /// do it, or a console change came without its CSRF token.
    Forbidden,
    /// A field of the body has a value the server does not accept; the
    /// message names the field.
    InvalidField,
    /// The thing to create exists already.
    Conflict,
    /// Too many requests (per widget key, visitor session or IP), or too
    /// many answers streaming at once for one session; see `Retry-After`.
    RateLimited,
    /// The widget's daily or monthly token budget is used up.
    BudgetExceeded,
    /// The budgets are kept where replicas share them (Redis) and that is
    /// unreachable: no answer is started blind; see `Retry-After`.
    BudgetUnavailable,
    /// The body is not valid JSON of the expected shape.
    InvalidRequest,
    /// The message is empty or only white space.
    EmptyMessage,
    /// The message is longer than the server accepts.
    MessageTooLong,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// No conversation with that id belongs to this widget.
    ConversationNotFound,
    /// No such route.
    NotFound,
    /// The model provider refused or failed the request.
    UpstreamError,
    /// The model provider is overloaded or rate limited us.
    UpstreamUnavailable,
    /// The model provider went silent for too long.
    UpstreamTimeout,
    /// The server is shutting down; retry on another replica or shortly.
    ShuttingDown,
    /// The answer's event log has expired: the answer is in the history.
    StreamExpired,
    /// The answer stopped half way (the server producing it went away, or
    /// nobody was reading); what came is stored as interrupted. Ask again.
    Interrupted,
    /// Something went wrong on our side; details are in the server log.
    Internal,
    /// A code this client does not know yet.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code but `Unknown`.
    pub const KNOWN: [ErrorCode; 24] = [
        Self::InvalidApiKey,
        Self::InvalidSession,
        Self::SessionExpired,
        Self::Unauthorized,
        Self::Forbidden,
        Self::InvalidField,
        Self::Conflict,
        Self::RateLimited,
        Self::BudgetExceeded,
        Self::BudgetUnavailable,
        Self::InvalidRequest,
        Self::EmptyMessage,
        Self::MessageTooLong,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ConversationNotFound,
        Self::NotFound,
        Self::UpstreamError,
        Self::UpstreamUnavailable,
        Self::UpstreamTimeout,
        Self::ShuttingDown,
        Self::StreamExpired,
        Self::Interrupted,
        Self::Internal,
    ];

    /// The code a wire name stands for; [`ErrorCode::Unknown`] for one this
    /// version does not know (as serde reads it).
    pub fn from_name(name: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(Self::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidApiKey => "invalid_api_key",
            Self::InvalidSession => "invalid_session",
            Self::SessionExpired => "session_expired",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::InvalidField => "invalid_field",
            Self::Conflict => "conflict",
            Self::RateLimited => "rate_limited",
            Self::BudgetExceeded => "budget_exceeded",
            Self::BudgetUnavailable => "budget_unavailable",
            Self::InvalidRequest => "invalid_request",
            Self::EmptyMessage => "empty_message",
            Self::MessageTooLong => "message_too_long",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ConversationNotFound => "conversation_not_found",
            Self::NotFound => "not_found",
            Self::UpstreamError => "upstream_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::ShuttingDown => "shutting_down",
            Self::StreamExpired => "stream_expired",
            Self::Interrupted => "interrupted",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

/// Body of `GET /health` and `GET /ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct HealthStatus {
    /// `ok`, or what is wrong.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_json_is_pinned() {
        let req = ChatRequest {
            message: "hi".into(),
            conversation_id: Some("conv_1".into()),
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"message":"hi","conversation_id":"conv_1"}"#
        );
        let bare: ChatRequest = serde_json::from_str(r#"{"message":"hi"}"#).unwrap();
        assert_eq!(bare.conversation_id, None);
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"message":"hi"}"#);
    }

    #[test]
    fn chat_request_rejects_duplicate_and_mistyped_fields() {
        assert!(serde_json::from_str::<ChatRequest>(r#"{"message":"a","message":"b"}"#).is_err());
        assert!(serde_json::from_str::<ChatRequest>(r#"{"message":5}"#).is_err());
        assert!(serde_json::from_str::<ChatRequest>(r#"{}"#).is_err());
        assert!(
            serde_json::from_str::<ChatRequest>(r#"{"message":"a","conversationId":"c"}"#).is_err()
        );
    }

    #[test]
    fn api_error_json_is_pinned_and_unknown_codes_survive() {
        let e = ApiError::new(ErrorCode::InvalidApiKey, "bad key");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"invalid_api_key","message":"bad key"}"#
        );
        let later: ApiError =
            serde_json::from_str(r#"{"code":"some_future_code","message":"m"}"#).unwrap();
        assert_eq!(later.code, ErrorCode::Unknown);
        // from_name reads every code as serde does.
        for code in ErrorCode::KNOWN {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(ErrorCode::from_name(code.as_str()), code);
        }
        assert_eq!(ErrorCode::from_name("from_the_future"), ErrorCode::Unknown);
    }

    #[test]
    fn error_code_as_str_matches_serde() {
        for code in [
            ErrorCode::InvalidApiKey,
            ErrorCode::InvalidSession,
            ErrorCode::SessionExpired,
            ErrorCode::Unauthorized,
            ErrorCode::InvalidField,
            ErrorCode::Conflict,
            ErrorCode::RateLimited,
            ErrorCode::BudgetExceeded,
            ErrorCode::BudgetUnavailable,
            ErrorCode::InvalidRequest,
            ErrorCode::EmptyMessage,
            ErrorCode::MessageTooLong,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::ConversationNotFound,
            ErrorCode::StreamExpired,
            ErrorCode::Interrupted,
            ErrorCode::NotFound,
            ErrorCode::UpstreamError,
            ErrorCode::UpstreamUnavailable,
            ErrorCode::UpstreamTimeout,
            ErrorCode::ShuttingDown,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }
}
