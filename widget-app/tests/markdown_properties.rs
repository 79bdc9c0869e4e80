//! Property tests of the markdown sanitiser: whatever a model sends, the
//! panel shows no live tag, no event attribute, no `javascript:` or `data:`
//! URL and no image.

use proptest::prelude::*;
use widget_app::markdown::{Block, Inline, hrefs, parse, safe_href};

/// Model output made of markdown, HTML and URL fragments an attacker
/// would try, in any order, with any text between.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        "[a-zA-Z ]{0,8}",
        Just("<script>alert(1)</script>".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("<svg onload=alert(1)>".to_owned()),
        Just("<a href=\"javascript:alert(1)\">x</a>".to_owned()),
        Just("<iframe src=//evil>".to_owned()),
        Just("![img](https://evil.example/pixel.png)".to_owned()),
        Just("[x](javascript:alert(1))".to_owned()),
        Just("[x](JaVaScRiPt:alert(1))".to_owned()),
        Just("[x]( javascript:alert(1))".to_owned()),
        Just("[x](java\tscript:alert(1))".to_owned()),
        Just("[x](data:text/html;base64,PHNjcmlwdD4=)".to_owned()),
        Just("[x](vbscript:msgbox)".to_owned()),
        Just("[x](&#106;avascript:alert(1))".to_owned()),
        Just("[ok](https://example.com/a?b=c)".to_owned()),
        Just("[mail](mailto:a@b.c)".to_owned()),
        Just("<https://example.com>".to_owned()),
        Just("\" onmouseover=\"alert(1)".to_owned()),
        Just("**".to_owned()),
        Just("_".to_owned()),
        Just("`".to_owned()),
        Just("```".to_owned()),
        Just("```html\n<b>".to_owned()),
        Just("\n".to_owned()),
        Just("\n\n".to_owned()),
        Just("# ".to_owned()),
        Just("- ".to_owned()),
        Just("1. ".to_owned()),
        Just("[".to_owned()),
        Just("](".to_owned()),
        Just(")".to_owned()),
        Just("&lt;script&gt;".to_owned()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML the panel's DOM would hold (as `render.rs` builds it: text as
/// text nodes, attributes set as values).
fn html(blocks: &[Block]) -> String {
    fn spans(s: &[Inline], out: &mut String) {
        for i in s {
            match i {
                Inline::Text(t) => out.push_str(&escape(t)),
                Inline::Strong(c) => {
                    out.push_str("<strong>");
                    spans(c, out);
                    out.push_str("</strong>");
                }
                Inline::Em(c) => {
                    out.push_str("<em>");
                    spans(c, out);
                    out.push_str("</em>");
                }
                Inline::Code(c) => out.push_str(&format!("<code>{}</code>", escape(c))),
                Inline::Link { href, children } => {
                    out.push_str(&format!(
                        "<a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">",
                        escape(href)
                    ));
                    spans(children, out);
                    out.push_str("</a>");
                }
                Inline::Break => out.push_str("<br>"),
            }
        }
    }
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Paragraph(s) | Block::Heading(s) => {
                out.push_str("<p>");
                spans(s, &mut out);
                out.push_str("</p>");
            }
            Block::List { ordered, items, .. } => {
                out.push_str(if *ordered { "<ol>" } else { "<ul>" });
                for item in items {
                    out.push_str("<li>");
                    spans(item, &mut out);
                    out.push_str("</li>");
                }
                out.push_str(if *ordered { "</ol>" } else { "</ul>" });
            }
            Block::Code { lang, text } => out.push_str(&format!(
                "<pre data-lang=\"{}\"><code>{}</code></pre>",
                escape(lang),
                escape(text)
            )),
        }
    }
    out
}

/// The attribute names of a start tag's inside (`a href="…" rel="x y"`);
/// values are quoted, with `"` escaped inside them.
fn attribute_names(inside: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = inside.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '/');
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return names;
        }
        let end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        names.push(rest[..end].to_owned());
        rest = &rest[end..];
        if let Some(v) = rest.strip_prefix("=\"") {
            rest = v.split_once('"').map(|(_, after)| after).unwrap_or("");
        }
    }
}

const ALLOWED_TAGS: &[&str] = &[
    "p", "strong", "em", "code", "pre", "ul", "ol", "li", "a", "br",
];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_input_yields_live_html_or_a_dangerous_url(text in hostile()) {
        let blocks = parse(&text);
        for href in hrefs(&blocks) {
            let lower = href.to_ascii_lowercase();
            prop_assert!(
                lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:"),
                "href {:?} from {:?}", href, text
            );
            prop_assert_eq!(safe_href(&href), Some(href.clone()));
            prop_assert!(!href.chars().any(|c| c.is_whitespace() || c.is_control()));
        }
        let out = html(&blocks);
        // Every tag is one the renderer makes; no other element, no image.
        for tag in out.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            prop_assert!(ALLOWED_TAGS.contains(&name.as_str()), "tag {:?} in {:?}", name, out);
            // Attributes: only href, target, rel, data-lang; never an event handler.
            let inside = tag.split('>').next().unwrap_or_default();
            for key in attribute_names(inside) {
                prop_assert!(
                    ["href", "target", "rel", "data-lang"].contains(&key.as_str()),
                    "attribute {:?} in {:?}", key, out
                );
            }
        }
        // Streaming: every prefix of the answer is as safe as the whole.
        let cut = text.char_indices().map(|(i, _)| i).nth(text.chars().count() / 2).unwrap_or(0);
        for href in hrefs(&parse(&text[..cut])) {
            prop_assert_eq!(safe_href(&href), Some(href.clone()));
        }
    }
}
