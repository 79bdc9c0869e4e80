//! Widgets: the sites a Porthole server answers for, found by public key.

use std::collections::HashMap;
use std::sync::Arc;

use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

use super::session::hash_key;

/// The demo widget's knowledge: a short guide to Porthole itself.
pub const DEMO_KNOWLEDGE: &str = include_str!("../../knowledge/porthole.md");

/// A widget id: 1 to 64 ASCII letters, digits, `-` or `_`. It appears in
/// URLs (`/widget/{id}`) and storage keys, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WidgetId(String);

impl WidgetId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{s:?} may only hold ASCII letters, digits, '-' and '_'"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WidgetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything stored about a widget; what the admin API and CLI show and
/// edit. The public key is not here: it is stored hashed (see
/// [`hash_key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[salvo(schema(name = "Widget"))]
pub struct WidgetDef {
    pub id: String,
    pub title: String,
    /// The assistant's first message.
    pub greeting: String,
    /// Suggested first questions (at most 6).
    pub starters: Vec<String>,
    pub theme: protocol::widget::Theme,
    /// The language the panel speaks, per-language greetings and starters,
    /// and strings worded otherwise.
    #[serde(default)]
    pub language: super::i18n::WidgetLanguage,
    pub system_prompt: String,
    /// The model to ask; `null` for the server's default.
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Markdown the widget answers from (kept as its first knowledge
    /// source, "Widget knowledge"; more sources through the knowledge API).
    pub knowledge: String,
    /// What the widget says when its knowledge has nothing relevant to a
    /// question; empty for the built-in reply.
    #[serde(default)]
    pub unknown_reply: String,
    /// How much of a question (0 to 1, IDF-weighted) a passage must cover
    /// to be used; `null` for the server's default (0.5); 0 answers always.
    #[serde(default)]
    pub min_relevance: Option<f32>,
    /// Origins that may embed the widget (`https://example.com`,
    /// `https://*.example.com`); empty for any site.
    pub allowed_sites: Vec<String>,
    /// The secret a site's backend signs user ids with (identity
    /// verification); `null` when the widget does not verify identities.
    pub verification_secret: Option<String>,
    /// A disabled widget answers like one that does not exist.
    pub disabled: bool,
    /// Rate limits, stream cap, history budget and token budgets; absent
    /// ones take the server's defaults.
    pub limits: crate::limits::WidgetLimits,
    /// `config` (re-applied from the config file at each start), `demo` or `admin`.
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
}

impl WidgetDef {
    /// A widget with default settings.
    pub fn new(id: WidgetId, title: &str, source: &str) -> Self {
        Self {
            id: id.to_string(),
            title: title.to_owned(),
            greeting: String::new(),
            starters: Vec::new(),
            theme: protocol::widget::Theme::default(),
            language: super::i18n::WidgetLanguage::default(),
            system_prompt: String::new(),
            model: None,
            temperature: None,
            max_tokens: None,
            knowledge: String::new(),
            unknown_reply: String::new(),
            min_relevance: None,
            allowed_sites: Vec::new(),
            verification_secret: None,
            disabled: false,
            limits: crate::limits::WidgetLimits::default(),
            source: source.to_owned(),
            created_at: 0,
            updated_at: 0,
        }
    }

    /// Checks every setting; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let fail = |field: &'static str, msg: &str| Err((field, msg.to_owned()));
        if let Err(why) = WidgetId::parse(&self.id) {
            return Err(("id", why));
        }
        if self.title.trim().is_empty() || self.title.chars().count() > 100 {
            return fail("title", "must be 1 to 100 characters");
        }
        if self.greeting.chars().count() > 1_000 {
            return fail("greeting", "must be at most 1000 characters");
        }
        if self.starters.len() > 6
            || self
                .starters
                .iter()
                .any(|s| s.trim().is_empty() || s.chars().count() > 120)
        {
            return fail(
                "starters",
                "at most 6 non-empty prompts of up to 120 characters",
            );
        }
        if !self.theme.primary_is_valid() {
            return fail("theme.primary", "must be a colour like \"#4f46e5\"");
        }
        if !self.theme.avatar_is_valid() {
            return fail(
                "theme.avatar",
                "must be empty or an https:// image address without spaces or quotes",
            );
        }
        if !self.theme.font_is_valid() {
            return fail(
                "theme.font",
                "must be a font list of letters, digits, spaces, commas, quotes and dashes",
            );
        }
        if self.system_prompt.len() > 20_000 {
            return fail("system_prompt", "must be at most 20000 bytes");
        }
        if self
            .model
            .as_ref()
            .is_some_and(|m| m.trim().is_empty() || m.len() > 200)
        {
            return fail("model", "must be 1 to 200 characters, or null");
        }
        if self.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
            return fail("temperature", "must be between 0 and 2");
        }
        if self.max_tokens.is_some_and(|n| n == 0 || n > 100_000) {
            return fail("max_tokens", "must be between 1 and 100000");
        }
        if self.knowledge.len() > 2 * 1024 * 1024 {
            return fail("knowledge", "must be at most 2 MiB of markdown");
        }
        if self.unknown_reply.len() > 2_000 {
            return fail("unknown_reply", "must be at most 2000 bytes");
        }
        if self
            .min_relevance
            .is_some_and(|r| !(0.0..=1.0).contains(&r))
        {
            return fail("min_relevance", "must be between 0 and 1, or null");
        }
        if self.allowed_sites.len() > 100 {
            return fail("allowed_sites", "at most 100 sites");
        }
        if let Some(bad) = self.allowed_sites.iter().find(|s| !valid_site(s)) {
            return Err((
                "allowed_sites",
                format!(
                    "{bad:?} is not an origin like \"https://example.com\" or \"https://*.example.com\""
                ),
            ));
        }
        self.language.validate()?;
        self.limits.validate()?;
        if self
            .verification_secret
            .as_ref()
            .is_some_and(|s| s.len() < 16 || s.len() > 256)
        {
            return fail(
                "verification_secret",
                "must be 16 to 256 characters, or null",
            );
        }
        Ok(())
    }

    /// What the site owner should know about the theme: an accent colour
    /// that fails WCAG AA contrast, and the colour visitors see instead.
    pub fn theme_notice(&self) -> Option<String> {
        let readable = self.theme.readable_primary()?;
        let ratio = |c: &str| protocol::widget::Theme::contrast_on_white(c).unwrap_or(0.0);
        Some(format!(
            "theme.primary {} has a contrast of {:.1}:1 with white text, below the 4.5:1 WCAG AA asks; \
             visitors see {readable} ({:.1}:1) instead. Choose a darker colour to decide it yourself.",
            self.theme.primary,
            ratio(&self.theme.primary),
            ratio(&readable),
        ))
    }

    /// The demo widget (`demo`, key `pk_demo`) that answers questions about Porthole.
    pub fn demo() -> Self {
        let mut def = Self::new(WidgetId("demo".into()), "Porthole demo", "demo");
        def.system_prompt =
            "You are Porthole's friendly assistant. Answer questions about Porthole \
             briefly, using the knowledge provided. If the knowledge does not cover \
             a question, say so."
                .into();
        def.knowledge = DEMO_KNOWLEDGE.into();
        def.greeting = "Hi! I'm Porthole's demo assistant. Ask me how Porthole works.".into();
        def.starters = vec![
            "How do I install the widget?".into(),
            "Which models are supported?".into(),
            "What does it cost?".into(),
        ];
        def
    }
}

/// The demo widget's public key. It is public by design: the demo page shows it.
pub const DEMO_KEY: &str = "pk_demo";

/// A widget as the server uses it.
#[derive(Debug)]
pub struct Widget {
    pub id: WidgetId,
    pub title: String,
    pub system_prompt: String,
    pub unknown_reply: String,
    pub min_relevance: f64,
    pub greeting: String,
    pub starters: Vec<String>,
    pub theme: protocol::widget::Theme,
    pub language: super::i18n::WidgetLanguage,
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Origins that may embed the widget; empty for any.
    pub allowed_sites: Vec<String>,
    pub verification_secret: Option<String>,
    pub limits: crate::limits::WidgetLimits,
}

impl Widget {
    /// The `frame-ancestors` directive for the widget's page.
    pub fn frame_ancestors(&self) -> String {
        if self.allowed_sites.is_empty() {
            "frame-ancestors *".to_owned()
        } else {
            format!("frame-ancestors {}", self.allowed_sites.join(" "))
        }
    }

    /// The public settings embedded in the widget's page, with its key and
    /// session, in the language chosen for a visitor whose browser prefers
    /// `wanted` (most preferred first).
    pub fn config(
        &self,
        public_key: &str,
        session: String,
        wanted: &[String],
    ) -> protocol::widget::WidgetConfig {
        let (catalogue, lang) = self.language.choose(wanted);
        let own = self.language.translation(catalogue.tag);
        protocol::widget::WidgetConfig {
            widget_id: self.id.to_string(),
            public_key: public_key.to_owned(),
            session,
            api_base: String::new(),
            title: self.title.clone(),
            greeting: own
                .and_then(|t| t.greeting.clone())
                .unwrap_or_else(|| self.greeting.clone()),
            starters: own
                .and_then(|t| t.starters.clone())
                .unwrap_or_else(|| self.starters.clone()),
            theme: self.visible_theme(),
            lang,
            rtl: catalogue.rtl,
            strings: self.language.strings(catalogue),
        }
    }

    /// The theme visitors see: an accent colour too light for white text
    /// is darkened to pass WCAG AA ([`WidgetDef::theme_notice`] tells the
    /// site owner).
    pub fn visible_theme(&self) -> protocol::widget::Theme {
        let mut theme = self.theme.clone();
        if let Some(readable) = theme.readable_primary() {
            theme.primary = readable;
        }
        theme
    }

    /// The runtime form of a stored widget.
    pub fn from_def(def: &WidgetDef) -> Result<Self, String> {
        Ok(Self {
            id: WidgetId::parse(&def.id)?,
            title: def.title.clone(),
            system_prompt: def.system_prompt.clone(),
            unknown_reply: def.unknown_reply.clone(),
            min_relevance: def
                .min_relevance
                .map_or(crate::knowledge::MIN_COVERAGE, f64::from),
            greeting: def.greeting.clone(),
            starters: def.starters.clone(),
            theme: def.theme.clone(),
            language: def.language.clone(),
            model: def.model.clone(),
            temperature: def.temperature,
            max_tokens: def.max_tokens,
            allowed_sites: def.allowed_sites.clone(),
            verification_secret: def.verification_secret.clone(),
            limits: def.limits.clone(),
        })
    }

    /// The demo widget, for unit tests of providers.
    pub fn demo() -> Self {
        Self::from_def(&WidgetDef::demo()).unwrap_or_else(|_| unreachable!())
    }
}

/// Whether `site` is an origin that may go into `frame-ancestors`:
/// `http(s)://host[:port]`, the host optionally starting with `*.`.
pub fn valid_site(site: &str) -> bool {
    let Some((scheme, rest)) = site.split_once("://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host = host.strip_prefix("*.").unwrap_or(host);
    (scheme == "https" || scheme == "http")
        && !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The current registry, swapped whole when the store's widgets change.
#[derive(Debug, Default)]
pub struct Widgets {
    current: std::sync::RwLock<Arc<WidgetRegistry>>,
}

impl Widgets {
    /// The registry as it is now.
    pub fn get(&self) -> Arc<WidgetRegistry> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `registry` in place of the current one (the store's
    /// `reload_widgets` reads it).
    pub fn replace(&self, registry: Arc<WidgetRegistry>) {
        match self.current.write() {
            Ok(mut g) => *g = registry,
            Err(poisoned) => *poisoned.into_inner() = registry,
        }
    }
}

/// The enabled widgets, found by id or by the hash of a public key.
#[derive(Debug, Default)]
pub struct WidgetRegistry {
    by_id: HashMap<String, Arc<Widget>>,
    /// Key hash -> widget id, live keys only.
    by_key_hash: HashMap<String, String>,
    /// The store's widget revision this was read at.
    pub revision: i64,
}

impl WidgetRegistry {
    pub fn new(
        widgets: impl IntoIterator<Item = Widget>,
        keys: impl IntoIterator<Item = (String, String)>,
        revision: i64,
    ) -> Self {
        Self {
            by_id: widgets
                .into_iter()
                .map(|w| (w.id.to_string(), Arc::new(w)))
                .collect(),
            by_key_hash: keys.into_iter().collect(),
            revision,
        }
    }

    /// The widget whose live public key `key` is.
    pub fn by_key(&self, key: &str) -> Option<Arc<Widget>> {
        let id = self.by_key_hash.get(&hash_key(key))?;
        self.by_id(id)
    }

    /// The widget `id`, when `key` is its live public key.
    pub fn by_id_and_key(&self, id: &str, key: &str) -> Option<Arc<Widget>> {
        self.by_key(key).filter(|w| w.id.as_str() == id)
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<Widget>> {
        self.by_id.get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widget_ids_are_url_safe() {
        assert!(WidgetId::parse("demo").is_ok());
        assert!(WidgetId::parse("acme_docs-2").is_ok());
        for bad in ["", "a b", "a/b", "é", "../x", &"x".repeat(65)] {
            assert!(WidgetId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn registry_finds_widgets_by_id_and_live_key() {
        let reg = WidgetRegistry::new(
            [Widget::demo()],
            [(hash_key(DEMO_KEY), "demo".to_owned())],
            1,
        );
        assert!(reg.by_id_and_key("demo", DEMO_KEY).is_some());
        assert!(reg.by_id_and_key("demo", "pk_other").is_none());
        assert!(reg.by_id_and_key("other", DEMO_KEY).is_none());
    }

    #[test]
    fn widget_settings_are_checked_field_by_field() {
        assert_eq!(WidgetDef::demo().validate(), Ok(()));
        let bad = |f: &dyn Fn(&mut WidgetDef)| {
            let mut d = WidgetDef::demo();
            f(&mut d);
            d.validate().expect_err("should be refused").0
        };
        assert_eq!(bad(&|d| d.title = " ".into()), "title");
        assert_eq!(bad(&|d| d.starters = vec!["".into()]), "starters");
        assert_eq!(bad(&|d| d.temperature = Some(3.0)), "temperature");
        assert_eq!(bad(&|d| d.max_tokens = Some(0)), "max_tokens");
        assert_eq!(
            bad(&|d| d.allowed_sites = vec!["https://x.com; script-src *".into()]),
            "allowed_sites"
        );
        assert_eq!(
            bad(&|d| d.verification_secret = Some("short".into())),
            "verification_secret"
        );
        assert_eq!(bad(&|d| d.theme.primary = "red".into()), "theme.primary");
    }
}
