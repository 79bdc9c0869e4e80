//! The panel's languages: the catalogues shipped in `backend/locales/`
//! (one TOML file per language, keyed as [`protocol::i18n::KEYS`] names
//! them), a widget's language settings and the site owner's overrides, and
//! the choice of a language for a visitor.
//!
//! Only the chosen language's strings reach the visitor, inlined in the
//! widget's page; the wasm carries none.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use protocol::i18n::KEYS;
use salvo::oapi::ToSchema;
use serde::{Deserialize, Serialize};

/// The catalogue files, by language tag. English is the reference: every
/// other file has its keys (a test checks).
const FILES: [(&str, &str); 15] = [
    ("en", include_str!("../../locales/en.toml")),
    ("ar", include_str!("../../locales/ar.toml")),
    ("de", include_str!("../../locales/de.toml")),
    ("es", include_str!("../../locales/es.toml")),
    ("fr", include_str!("../../locales/fr.toml")),
    ("he", include_str!("../../locales/he.toml")),
    ("it", include_str!("../../locales/it.toml")),
    ("ja", include_str!("../../locales/ja.toml")),
    ("ko", include_str!("../../locales/ko.toml")),
    ("nl", include_str!("../../locales/nl.toml")),
    ("pl", include_str!("../../locales/pl.toml")),
    ("pt", include_str!("../../locales/pt.toml")),
    ("ru", include_str!("../../locales/ru.toml")),
    ("tr", include_str!("../../locales/tr.toml")),
    ("zh", include_str!("../../locales/zh.toml")),
];

/// The language the server falls back to when nothing else matches.
pub const DEFAULT_LANGUAGE: &str = "en";

/// A catalogue file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The language's own name for itself.
    name: String,
    /// `ltr` or `rtl`.
    dir: String,
    strings: BTreeMap<String, String>,
}

/// One shipped language.
#[derive(Debug)]
pub struct Catalogue {
    pub tag: &'static str,
    /// Its own name ("Deutsch"), for pickers.
    pub name: String,
    pub rtl: bool,
    /// In the order of [`protocol::i18n::Text`].
    pub strings: Vec<String>,
}

/// The catalogues, parsed once. A file that does not parse, or lacks a
/// key, is reported and its gaps are filled from English (the tests keep
/// that from shipping); an English gap is its key.
static CATALOGUES: LazyLock<Vec<Catalogue>> = LazyLock::new(|| {
    let parsed: Vec<(&'static str, Option<File>)> = FILES
        .iter()
        .map(|(tag, text)| {
            let file = toml::from_str::<File>(text)
                .inspect_err(|e| tracing::error!("catalogue {tag} does not parse: {e}"))
                .ok();
            (*tag, file)
        })
        .collect();
    let english = parsed
        .iter()
        .find_map(|(t, f)| (*t == "en").then_some(f.as_ref()).flatten());
    parsed
        .iter()
        .map(|(tag, file)| {
            let strings = KEYS
                .iter()
                .map(|key| {
                    file.as_ref()
                        .and_then(|f| f.strings.get(*key))
                        .or_else(|| english.and_then(|e| e.strings.get(*key)))
                        .cloned()
                        .unwrap_or_else(|| (*key).to_owned())
                })
                .collect();
            Catalogue {
                tag,
                name: file
                    .as_ref()
                    .map_or_else(|| (*tag).to_owned(), |f| f.name.clone()),
                rtl: file.as_ref().is_some_and(|f| f.dir == "rtl"),
                strings,
            }
        })
        .collect()
});

/// Every shipped language.
pub fn catalogues() -> &'static [Catalogue] {
    &CATALOGUES
}

/// The catalogue of a shipped language tag (`de`; not `de-AT`).
pub fn catalogue(tag: &str) -> Option<&'static Catalogue> {
    catalogues()
        .iter()
        .find(|c| c.tag.eq_ignore_ascii_case(tag))
}

/// English, which always exists.
fn english() -> &'static Catalogue {
    &catalogues()[0]
}

/// A widget's language settings (the `language` of a widget).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WidgetLanguage {
    /// `auto` to follow the visitor's browser languages, or a shipped
    /// language tag (`de`) to always speak that one.
    pub locale: String,
    /// What `auto` speaks when none of the visitor's languages is shipped.
    pub fallback: String,
    /// Per language tag: the greeting and starter prompts in that
    /// language, and strings of the panel the site owner words otherwise
    /// (by catalogue key, such as `placeholder`).
    pub translations: BTreeMap<String, Translation>,
}

impl Default for WidgetLanguage {
    fn default() -> Self {
        Self {
            locale: "auto".into(),
            fallback: DEFAULT_LANGUAGE.into(),
            translations: BTreeMap::new(),
        }
    }
}

/// What a site owner sets for one language.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Translation {
    /// The greeting in this language; `null` for the widget's own.
    pub greeting: Option<String>,
    /// The starter prompts in this language; `null` for the widget's own.
    pub starters: Option<Vec<String>>,
    /// Catalogue strings worded otherwise, by key.
    pub strings: BTreeMap<String, String>,
}

impl WidgetLanguage {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.locale != "auto" && catalogue(&self.locale).is_none() {
            return Err((
                "language.locale",
                format!(
                    "{:?} is not \"auto\" or a shipped language ({})",
                    self.locale,
                    tags()
                ),
            ));
        }
        if catalogue(&self.fallback).is_none() {
            return Err((
                "language.fallback",
                format!("{:?} is not a shipped language ({})", self.fallback, tags()),
            ));
        }
        for (tag, t) in &self.translations {
            if catalogue(tag).is_none() {
                return Err((
                    "language.translations",
                    format!("{tag:?} is not a shipped language ({})", tags()),
                ));
            }
            if t.greeting
                .as_ref()
                .is_some_and(|g| g.chars().count() > 1_000)
            {
                return Err((
                    "language.translations",
                    format!("the {tag} greeting must be at most 1000 characters"),
                ));
            }
            if t.starters.as_ref().is_some_and(|s| {
                s.len() > 6
                    || s.iter()
                        .any(|p| p.trim().is_empty() || p.chars().count() > 120)
            }) {
                return Err((
                    "language.translations",
                    format!(
                        "the {tag} starters: at most 6 non-empty prompts of up to 120 characters"
                    ),
                ));
            }
            for (key, value) in &t.strings {
                if !KEYS.contains(&key.as_str()) {
                    return Err((
                        "language.translations",
                        format!(
                            "{tag}: {key:?} is not a string of the panel (the keys are in backend/locales/en.toml)"
                        ),
                    ));
                }
                if value.trim().is_empty() || value.chars().count() > 300 {
                    return Err((
                        "language.translations",
                        format!("{tag}: {key} must be 1 to 300 characters"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The language to speak to a visitor whose browser prefers `wanted`
    /// (most preferred first, as `navigator.languages` or
    /// [`accept_language`] give them): the catalogue, and the tag the page
    /// declares (the visitor's own regional tag when it names the same
    /// language, so dates and numbers follow their region).
    pub fn choose(&self, wanted: &[String]) -> (&'static Catalogue, String) {
        if self.locale != "auto"
            && let Some(c) = catalogue(&self.locale)
        {
            // A fixed language; still the visitor's region if it matches.
            let tag = wanted
                .iter()
                .find(|w| primary(w).eq_ignore_ascii_case(c.tag))
                .cloned()
                .unwrap_or_else(|| c.tag.to_owned());
            return (c, tag);
        }
        for w in wanted {
            if let Some(c) = catalogue(primary(w)) {
                return (c, w.clone());
            }
        }
        let c = catalogue(&self.fallback).unwrap_or_else(english);
        (c, c.tag.to_owned())
    }

    /// The owner's settings for a language, if any.
    pub fn translation(&self, tag: &str) -> Option<&Translation> {
        self.translations
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(tag))
            .map(|(_, t)| t)
    }

    /// A catalogue's strings with this widget's overrides for it.
    pub fn strings(&self, catalogue: &Catalogue) -> Vec<String> {
        let mut strings = catalogue.strings.clone();
        if let Some(t) = self.translation(catalogue.tag) {
            for (i, key) in KEYS.iter().enumerate() {
                if let Some(own) = t.strings.get(*key) {
                    strings[i] = own.clone();
                }
            }
        }
        strings
    }
}

/// The language part of a tag: `pt` of `pt-BR`.
fn primary(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

fn tags() -> String {
    catalogues()
        .iter()
        .map(|c| c.tag)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `tag` looks like a BCP 47 tag (letters, digits and `-`, at most
/// 35 characters): what may reach the page's `lang`.
pub fn plausible_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 35
        && tag.as_bytes()[0].is_ascii_alphabetic()
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The languages of an `Accept-Language` header, most preferred first
/// (by `q`, then by order); `*` and malformed entries are skipped.
pub fn accept_language(header: &str) -> Vec<String> {
    let mut ranked: Vec<(u16, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            let mut q = 1000u16;
            for p in pieces {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = parse_q(v.trim())?;
                }
            }
            (q > 0 && tag != "*" && plausible_tag(tag)).then(|| (q, i, tag.to_owned()))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, t)| t).take(10).collect()
}

/// A `q` value (`0` to `1`, up to three decimals) in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1,
        _ => return None,
    };
    let frac: u16 = format!("{frac:0<3}").parse().ok()?;
    let q = whole * 1000 + frac;
    (q <= 1000).then_some(q)
}

/// The languages a loader passed (`?lang=`: `navigator.languages`, comma
/// separated), plausible tags only.
pub fn from_query(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|t| plausible_tag(t))
        .take(10)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every catalogue parses on its own, has every key and nothing else,
    /// and no value is empty.
    #[test]
    fn every_catalogue_is_complete() {
        assert!(FILES.len() >= 12);
        for (tag, text) in FILES {
            let file: File = toml::from_str(text).unwrap_or_else(|e| panic!("{tag}: {e}"));
            for key in KEYS {
                let v = file
                    .strings
                    .get(key)
                    .unwrap_or_else(|| panic!("{tag} lacks {key}"));
                assert!(!v.trim().is_empty(), "{tag}.{key} is empty");
            }
            for key in file.strings.keys() {
                assert!(KEYS.contains(&key.as_str()), "{tag} has a stray key {key}");
            }
            assert!(
                file.dir == "ltr" || file.dir == "rtl",
                "{tag}: dir {}",
                file.dir
            );
        }
        assert_eq!(catalogues().len(), FILES.len());
        assert_eq!(catalogues()[0].tag, "en");
    }

    /// No English left in another catalogue: a value equal to the English
    /// one is allowed only where the word is the same in that language
    /// (listed here, each checked by a speaker's eye).
    #[test]
    fn no_english_left_in_other_catalogues() {
        let same_word = [
            ("de", "frame_title"), // "Chat"
            ("es", "frame_title"),
            ("pt", "frame_title"),
            ("it", "frame_title"),
            ("nl", "frame_title"),
            ("fr", "message_label"), // "Message"
            ("fr", "conversation"),  // "Conversation"
            ("fr", "sources"),       // "Sources"
            ("fr", "assistant"),     // "Assistant"
        ];
        let en = catalogue("en").unwrap();
        let mut english = Vec::new();
        for c in catalogues().iter().filter(|c| c.tag != "en") {
            for (i, key) in KEYS.iter().enumerate() {
                if c.strings[i] == en.strings[i] && !same_word.contains(&(c.tag, key)) {
                    english.push(format!("{}.{key}", c.tag));
                }
            }
        }
        assert!(english.is_empty(), "still English: {english:?}");
    }

    #[test]
    fn arabic_and_hebrew_are_right_to_left() {
        let rtl: Vec<_> = catalogues()
            .iter()
            .filter(|c| c.rtl)
            .map(|c| c.tag)
            .collect();
        assert_eq!(rtl, ["ar", "he"]);
    }

    #[test]
    fn accept_language_is_ranked_by_q_then_order() {
        assert_eq!(
            accept_language("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"),
            ["fr-CH", "fr", "en", "de"]
        );
        assert_eq!(accept_language("en;q=0.2, ja"), ["ja", "en"]);
        assert_eq!(accept_language("de;q=0, es"), ["es"]);
        assert!(accept_language("<script>, en;q=2, ;;").is_empty());
        assert!(accept_language("").is_empty());
    }

    #[test]
    fn auto_follows_the_visitor_then_the_fallback() {
        let lang = WidgetLanguage::default();
        let pick = |wanted: &[&str]| {
            let w: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
            let (c, tag) = lang.choose(&w);
            (c.tag, tag)
        };
        assert_eq!(pick(&["pt-BR", "en"]), ("pt", "pt-BR".into()));
        assert_eq!(pick(&["xx", "de-AT"]), ("de", "de-AT".into()));
        assert_eq!(pick(&["zh-TW"]), ("zh", "zh-TW".into()));
        assert_eq!(pick(&["xx"]), ("en", "en".into()));
        assert_eq!(pick(&[]), ("en", "en".into()));
        let fixed = WidgetLanguage {
            locale: "ja".into(),
            ..WidgetLanguage::default()
        };
        assert_eq!(fixed.choose(&["de".into()]).0.tag, "ja");
        let french_fallback = WidgetLanguage {
            fallback: "fr".into(),
            ..WidgetLanguage::default()
        };
        assert_eq!(french_fallback.choose(&["xx".into()]).0.tag, "fr");
    }

    #[test]
    fn an_owner_override_wins_for_its_language_only() {
        let mut lang = WidgetLanguage::default();
        lang.translations.insert(
            "de".into(),
            Translation {
                strings: [("send".to_owned(), "Abschicken".to_owned())].into(),
                ..Translation::default()
            },
        );
        assert!(lang.validate().is_ok());
        let send = protocol::i18n::Text::Send as usize;
        assert_eq!(lang.strings(catalogue("de").unwrap())[send], "Abschicken");
        assert_eq!(lang.strings(catalogue("fr").unwrap())[send], "Envoyer");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |f: fn(&mut WidgetLanguage)| {
            let mut l = WidgetLanguage::default();
            f(&mut l);
            l.validate().unwrap_err()
        };
        assert_eq!(bad(|l| l.locale = "xx".into()).0, "language.locale");
        assert_eq!(bad(|l| l.fallback = "auto".into()).0, "language.fallback");
        let e = bad(|l| {
            l.translations.insert(
                "de".into(),
                Translation {
                    strings: [("sned".to_owned(), "x".to_owned())].into(),
                    ..Translation::default()
                },
            );
        });
        assert!(e.1.contains("sned"), "{}", e.1);
        assert_eq!(
            bad(|l| {
                l.translations
                    .insert("klingon".into(), Translation::default());
            })
            .0,
            "language.translations"
        );
    }
}
