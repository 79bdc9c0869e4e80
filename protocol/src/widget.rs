//! What the widget needs to know about itself, embedded by the server in the
//! iframe document, and the conversation history it shows after a reload.

use serde::{Deserialize, Serialize};

/// Public settings of a widget. Everything here is visible to visitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct WidgetConfig {
    pub widget_id: String,
    /// The key the widget sends as `X-API-Key`.
    pub public_key: String,
    /// A short-lived session token minted with the page, sent as
    /// `Authorization: Bearer …` with the key. Only pages the widget's
    /// allowed sites can frame carry one.
    pub session: String,
    /// Where the API lives; empty for the iframe's own origin.
    #[serde(default)]
    pub api_base: String,
    pub title: String,
    /// Shown as the assistant's first message.
    #[serde(default)]
    pub greeting: String,
    /// Suggested first questions, shown as chips.
    #[serde(default)]
    pub starters: Vec<String>,
    #[serde(default)]
    pub theme: Theme,
    /// The language the panel speaks (a BCP 47 tag such as `de` or
    /// `pt-BR`): the page's `lang`, and the locale of dates and numbers.
    #[serde(default)]
    pub lang: String,
    /// Whether that language is written right to left.
    #[serde(default)]
    pub rtl: bool,
    /// The panel's strings in that language, in the order of
    /// [`crate::i18n::Text`] (the site owner's overrides applied).
    #[serde(default)]
    pub strings: Vec<String>,
}

impl WidgetConfig {
    /// One of the panel's strings; empty if the server sent too few.
    pub fn text(&self, key: crate::i18n::Text) -> &str {
        self.strings.get(key as usize).map_or("", String::as_str)
    }
}

/// Colours and shapes of the panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(default)]
pub struct Theme {
    /// Accent colour, `#rrggbb`.
    pub primary: String,
    pub mode: ThemeMode,
    /// Corner radius in pixels.
    pub radius: u8,
    /// A CSS font stack (system fonts only: nothing is downloaded).
    pub font: String,
    /// The header's picture: an `https://` image URL (the site's logo, a
    /// face); empty for the title's first letter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub avatar: String,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            primary: "#4f46e5".into(),
            mode: ThemeMode::Auto,
            radius: 12,
            font: "system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif".into(),
            avatar: String::new(),
        }
    }
}

impl Theme {
    /// Whether `primary` is a `#rrggbb` colour.
    pub fn primary_is_valid(&self) -> bool {
        is_hex_colour(&self.primary)
    }

    /// The accent colour a visitor should see. White text sits on it (the
    /// header, the visitor's bubbles, Send) and it is the colour of links
    /// and starter chips on the light bubble, so it needs a contrast of
    /// 4.5:1 (WCAG AA) against both. A colour too light for that comes
    /// back darkened, its hue and saturation kept, just enough to pass;
    /// `None` when it passes as it is (or is not a valid colour).
    pub fn readable_primary(&self) -> Option<String> {
        let (r, g, b) = hex_rgb(&self.primary)?;
        if luminance(r, g, b) <= MAX_ACCENT_LUMINANCE {
            return None;
        }
        // The largest scale of the channels that passes (luminance grows
        // with the scale, so bisect).
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..30 {
            let mid = (lo + hi) / 2.0;
            let [r2, g2, b2] = [r, g, b].map(|c| (f64::from(c) * mid).floor() as u8);
            if luminance(r2, g2, b2) <= MAX_ACCENT_LUMINANCE {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let [r2, g2, b2] = [r, g, b].map(|c| (f64::from(c) * lo).floor() as u8);
        Some(format!("#{r2:02x}{g2:02x}{b2:02x}"))
    }

    /// Contrast of white text on the accent colour, as `n:1`.
    pub fn contrast_on_white(primary: &str) -> Option<f64> {
        let (r, g, b) = hex_rgb(primary)?;
        Some(1.05 / (luminance(r, g, b) + 0.05))
    }

    /// Whether `font` is safe to put in a CSS declaration.
    /// Whether `avatar` is empty or an `https://` URL that cannot break
    /// out of an attribute or a CSP source list.
    pub fn avatar_is_valid(&self) -> bool {
        let a = &self.avatar;
        a.is_empty()
            || (a.len() <= 500
                && a.strip_prefix("https://")
                    .is_some_and(|rest| rest.split('/').next().is_some_and(|h| !h.is_empty()))
                && a.chars()
                    .all(|c| c.is_ascii_graphic() && !"\"'<>;,\\`".contains(c)))
    }

    /// The avatar's origin (`https://host[:port]`), for the page's CSP.
    pub fn avatar_origin(&self) -> Option<&str> {
        if self.avatar.is_empty() || !self.avatar_is_valid() {
            return None;
        }
        let rest = &self.avatar["https://".len()..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        Some(&self.avatar[..("https://".len() + end)])
    }

    pub fn font_is_valid(&self) -> bool {
        !self.font.is_empty()
            && self.font.len() <= 200
            && self
                .font
                .chars()
                .all(|c| c.is_alphanumeric() || " ,-_\"'".contains(c))
    }
}

/// The highest relative luminance an accent colour may have: 4.5:1 for
/// white text on it (at most 0.183) and for it on the light bubble
/// `#f1f3f6` (at most 0.160).
const MAX_ACCENT_LUMINANCE: f64 = 0.159;

/// Whether `s` is a `#rrggbb` colour.
fn is_hex_colour(s: &str) -> bool {
    let p = s.as_bytes();
    p.len() == 7 && p[0] == b'#' && p[1..].iter().all(u8::is_ascii_hexdigit)
}

/// The channels of a `#rrggbb` colour.
fn hex_rgb(s: &str) -> Option<(u8, u8, u8)> {
    if !is_hex_colour(s) {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&s[i..i + 2], 16).ok();
    Some((channel(1)?, channel(3)?, channel(5)?))
}

/// WCAG relative luminance of an sRGB colour.
fn luminance(r: u8, g: u8, b: u8) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ThemeMode {
    Light,
    Dark,
    /// Follows the visitor's `prefers-color-scheme`.
    #[default]
    Auto,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// How a stored message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    /// Cut short: the visitor stopped it or left, or the server restarted.
    Interrupted,
    /// The answer failed; the content is what arrived before.
    Error,
    /// The answer is being written right now; the content is what has
    /// arrived so far.
    Streaming,
}

/// A visitor's rating of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    /// How the stores keep it: 1 or -1.
    pub fn score(self) -> i16 {
        match self {
            Self::Up => 1,
            Self::Down => -1,
        }
    }

    pub fn from_score(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Up),
            -1 => Some(Self::Down),
            _ => None,
        }
    }
}

/// Body of `POST /api/v1/chat/{message_id}/feedback`: the visitor's rating
/// of an answer, changed by sending another; `rating: null` takes it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub rating: Option<Rating>,
    /// What was good or wrong, at most 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The longest feedback comment, in characters.
pub const MAX_FEEDBACK_COMMENT: usize = 1000;

/// A message as `GET /api/v1/conversations/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct MessageView {
    pub id: String,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// The knowledge an answer used, as its `sources` event listed it;
    /// absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::event::SourceRef>,
    /// The visitor's rating of an answer, when they gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

/// Body of `GET /api/v1/conversations/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(salvo_oapi::ToSchema))]
pub struct ConversationView {
    pub conversation_id: String,
    /// Oldest first.
    pub messages: Vec<MessageView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_is_pinned_and_defaults_fill_gaps() {
        let cfg: WidgetConfig = serde_json::from_str(
            r#"{"widget_id":"demo","public_key":"pk_demo","session":"v1.x.y","title":"Demo"}"#,
        )
        .unwrap();
        assert_eq!(cfg.theme, Theme::default());
        assert!(cfg.starters.is_empty());
        let json = serde_json::to_string(&cfg.theme).unwrap();
        assert_eq!(
            json,
            r##"{"primary":"#4f46e5","mode":"auto","radius":12,"font":"system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif"}"##
        );
    }

    #[test]
    fn theme_values_that_could_break_out_of_css_are_invalid() {
        let mut t = Theme::default();
        assert!(t.primary_is_valid() && t.font_is_valid());
        t.primary = "red;}body{".into();
        assert!(!t.primary_is_valid());
        t.font = "x;}</style><script>".into();
        assert!(!t.font_is_valid());
        for bad in [
            "http://example.com/a.png",
            "https://",
            "https://x.com/a.png\" onerror=\"x",
            "https://x.com/a.png; script-src *",
            "https://x.com/a b.png",
            "javascript:alert(1)",
        ] {
            t.avatar = bad.into();
            assert!(!t.avatar_is_valid(), "{bad}");
            assert_eq!(t.avatar_origin(), None);
        }
        t.avatar = "https://cdn.acme.example:8443/logo.png?v=2".into();
        assert!(t.avatar_is_valid());
        assert_eq!(t.avatar_origin(), Some("https://cdn.acme.example:8443"));
    }

    #[test]
    fn an_unreadable_accent_is_darkened_just_enough_and_a_readable_one_kept() {
        let theme = |p: &str| Theme {
            primary: p.into(),
            ..Theme::default()
        };
        // The default indigo and a dark navy pass as they are.
        assert_eq!(theme("#4f46e5").readable_primary(), None);
        assert_eq!(theme("#1e3a8a").readable_primary(), None);
        // Yellow, light green and white fail and are corrected.
        for light in ["#ffcc00", "#7ee787", "#ffffff", "#00bcd4"] {
            let before = Theme::contrast_on_white(light).unwrap();
            assert!(before < 4.5, "{light} {before}");
            let fixed = theme(light).readable_primary().unwrap();
            let after = Theme::contrast_on_white(&fixed).unwrap();
            // Just enough: white on it passes, and not by much more than the
            // bubble rule needs (5.02:1 on white).
            assert!((4.5..5.1).contains(&after), "{light} -> {fixed}: {after}");
            assert!(theme(&fixed).readable_primary().is_none(), "{fixed}");
        }
        // The hue stays: yellow stays yellowish (red and green ahead of blue).
        let y = theme("#ffcc00").readable_primary().unwrap();
        assert!(y[1..3] > y[5..7] && y[3..5] > y[5..7], "{y}");
        assert_eq!(theme("red;}").readable_primary(), None);
    }

    #[test]
    fn message_view_json_is_pinned() {
        let m = MessageView {
            id: "msg_1".into(),
            role: Role::Assistant,
            content: "Hi".into(),
            status: MessageStatus::Interrupted,
            created_at: 5,
            sources: Vec::new(),
            rating: None,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"id":"msg_1","role":"assistant","content":"Hi","status":"interrupted","created_at":5}"#
        );
        let rated = MessageView {
            rating: Some(Rating::Down),
            ..m
        };
        assert!(
            serde_json::to_string(&rated)
                .unwrap()
                .ends_with(r#""created_at":5,"rating":"down"}"#)
        );
    }

    #[test]
    fn feedback_json_is_pinned() {
        let f: FeedbackRequest =
            serde_json::from_str(r#"{"rating":"up","comment":"Clear."}"#).unwrap();
        assert_eq!(f.rating, Some(Rating::Up));
        assert_eq!(f.comment.as_deref(), Some("Clear."));
        let back: FeedbackRequest = serde_json::from_str(r#"{"rating":null}"#).unwrap();
        assert_eq!(back.rating, None);
        assert!(serde_json::from_str::<FeedbackRequest>(r#"{"rating":"meh"}"#).is_err());
        assert!(serde_json::from_str::<FeedbackRequest>(r#"{"rating":"up","x":1}"#).is_err());
        assert_eq!(
            Rating::from_score(i64::from(Rating::Down.score())),
            Some(Rating::Down)
        );
        assert_eq!(Rating::from_score(0), None);
    }
}
