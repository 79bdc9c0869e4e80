//! The panel's words. The server holds a catalogue per language (keyed by
//! the names in [`KEYS`]); for each page it picks the visitor's language,
//! applies the site owner's overrides and sends that one language's strings
//! in [`crate::widget::WidgetConfig::strings`], in the order of [`Text`].
//! So the wasm carries no catalogue and no key names: it indexes a list.

/// One visitor-facing string. The discriminant is its index in
/// [`crate::widget::WidgetConfig::strings`] and in [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Text {
    Placeholder,
    MessageLabel,
    Send,
    SendLabel,
    Stop,
    StopLabel,
    NewConversation,
    Close,
    Open,
    FrameTitle,
    Conversation,
    Suggested,
    Sources,
    Typing,
    You,
    Assistant,
    Stopped,
    NotFinished,
    Reconnecting,
    Retry,
    Loading,
    RateUp,
    RateDown,
    FeedbackPlaceholder,
    FeedbackSend,
    FeedbackThanks,
    ErrorNetwork,
    ErrorRateLimited,
    ErrorLimitReached,
    ErrorTooLong,
    ErrorUnavailable,
    ErrorSession,
    ErrorInterrupted,
    ErrorConversationEnded,
    ErrorGeneric,
}

/// The catalogue key of each [`Text`], in discriminant order.
pub const KEYS: [&str; 35] = [
    "placeholder",
    "message_label",
    "send",
    "send_label",
    "stop",
    "stop_label",
    "new_conversation",
    "close",
    "open",
    "frame_title",
    "conversation",
    "suggested",
    "sources",
    "typing",
    "you",
    "assistant",
    "stopped",
    "not_finished",
    "reconnecting",
    "retry",
    "loading",
    "rate_up",
    "rate_down",
    "feedback_placeholder",
    "feedback_send",
    "feedback_thanks",
    "error_network",
    "error_rate_limited",
    "error_limit_reached",
    "error_too_long",
    "error_unavailable",
    "error_session",
    "error_interrupted",
    "error_conversation_ended",
    "error_generic",
];

impl Text {
    /// The text a refusal or a failed answer shows, by its error code.
    pub fn for_error(code: crate::ErrorCode) -> Self {
        use crate::ErrorCode as E;
        match code {
            E::RateLimited => Text::ErrorRateLimited,
            E::BudgetExceeded | E::BudgetUnavailable => Text::ErrorLimitReached,
            E::MessageTooLong | E::PayloadTooLarge => Text::ErrorTooLong,
            E::UpstreamError
            | E::UpstreamUnavailable
            | E::UpstreamTimeout
            | E::ShuttingDown
            | E::Unknown => Text::ErrorUnavailable,
            E::InvalidApiKey | E::InvalidSession | E::SessionExpired | E::Unauthorized => {
                Text::ErrorSession
            }
            E::Interrupted | E::StreamExpired => Text::ErrorInterrupted,
            E::ConversationNotFound => Text::ErrorConversationEnded,
            _ => Text::ErrorGeneric,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_enum() {
        assert_eq!(KEYS[Text::Placeholder as usize], "placeholder");
        assert_eq!(KEYS[Text::Open as usize], "open");
        assert_eq!(KEYS[Text::Retry as usize], "retry");
        assert_eq!(KEYS[Text::ErrorGeneric as usize], "error_generic");
        assert_eq!(Text::ErrorGeneric as usize, KEYS.len() - 1);
        let mut sorted = KEYS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), KEYS.len(), "a key is named twice");
    }
}
