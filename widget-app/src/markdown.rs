//! A small markdown reader for model answers: paragraphs, headings, lists,
//! emphasis, inline and fenced code, links. It produces a tree with no place
//! for raw HTML: text stays text (Yew renders it as text nodes), and the one
//! attribute that comes from model output, a link's `href`, is only ever an
//! `http`, `https` or `mailto` URL. There is no image node, so an answer can
//! never make the visitor's browser load anything.
//!
//! Hand-written rather than pulldown-cmark: that crate alone would take a
//! large share of the widget's 110 KB size budget, and chat answers use a
//! small part of CommonMark. It is forgiving by design: an answer that is
//! still streaming (an unclosed fence, a half-written `**`) renders sensibly.

/// A block of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    Heading(Vec<Inline>),
    List {
        ordered: bool,
        start: u32,
        items: Vec<Vec<Inline>>,
    },
    Code {
        lang: String,
        text: String,
    },
}

/// A span of text inside a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Strong(Vec<Inline>),
    Em(Vec<Inline>),
    Code(String),
    /// `href` has passed [`safe_href`].
    Link {
        href: String,
        children: Vec<Inline>,
    },
    Break,
}

/// The URL if it is safe to put in a link: `http:`, `https:` or `mailto:`,
/// with no white space or control characters anywhere.
pub fn safe_href(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty()
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
        || url.contains(['<', '>', '"', '\'', '`'])
    {
        return None;
    }
    let lower = url.to_ascii_lowercase();
    let scheme = ["https://", "http://", "mailto:"]
        .into_iter()
        .find(|s| lower.starts_with(s))?;
    // Something must follow the scheme.
    (url.len() > scheme.len()).then(|| url.to_owned())
}

/// Parses an answer.
pub fn parse(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().peekable();
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
        if !para.is_empty() {
            blocks.push(Block::Paragraph(inline_lines(para)));
            para.clear();
        }
    };
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(fence) = trimmed.strip_prefix("```") {
            flush(&mut para, &mut blocks);
            let lang: String = fence
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '+')
                .collect();
            let mut code = Vec::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                code.push(l);
            }
            blocks.push(Block::Code {
                lang,
                text: code.join("\n"),
            });
        } else if trimmed.is_empty() {
            flush(&mut para, &mut blocks);
        } else if let Some(rest) = heading(trimmed) {
            flush(&mut para, &mut blocks);
            blocks.push(Block::Heading(inline(rest)));
        } else if let Some((ordered, start, first)) = list_item(trimmed) {
            flush(&mut para, &mut blocks);
            let mut items = vec![vec![first.to_owned()]];
            while let Some(next) = lines.peek() {
                let t = next.trim_start();
                match list_item(t) {
                    Some((o, _, item)) if o == ordered => {
                        items.push(vec![item.to_owned()]);
                        lines.next();
                    }
                    // An indented line continues the item.
                    None if !t.is_empty() && next.starts_with([' ', '\t']) => {
                        if let Some(last) = items.last_mut() {
                            last.push(t.to_owned());
                        }
                        lines.next();
                    }
                    _ => break,
                }
            }
            let items = items
                .iter()
                .map(|lines| inline_lines(&lines.iter().map(String::as_str).collect::<Vec<_>>()))
                .collect();
            blocks.push(Block::List {
                ordered,
                start,
                items,
            });
        } else {
            para.push(line.trim());
        }
    }
    flush(&mut para, &mut blocks);
    blocks
}

fn heading(line: &str) -> Option<&str> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    (1..=6)
        .contains(&hashes)
        .then(|| &line[hashes..])
        .and_then(|rest| rest.strip_prefix(' '))
        .map(str::trim)
}

/// `- item`, `* item`, `+ item` or `12. item`.
fn list_item(line: &str) -> Option<(bool, u32, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(bullet) {
            return Some((false, 1, rest.trim()));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let rest = &line[digits..];
        if let Some(item) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some((true, line[..digits].parse().unwrap_or(1), item.trim()));
        }
    }
    None
}

/// Lines of one paragraph, with line breaks kept (chat answers mean them).
fn inline_lines(lines: &[&str]) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(Inline::Break);
        }
        out.extend(inline(line));
    }
    out
}

/// Parses the spans of one line.
pub fn inline(text: &str) -> Vec<Inline> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    parse_spans(&chars, &mut out);
    merge_text(out)
}

fn push_text(out: &mut Vec<Inline>, s: &str) {
    if let Some(Inline::Text(t)) = out.last_mut() {
        t.push_str(s);
    } else if !s.is_empty() {
        out.push(Inline::Text(s.to_owned()));
    }
}

fn merge_text(spans: Vec<Inline>) -> Vec<Inline> {
    let mut out = Vec::new();
    for s in spans {
        match s {
            Inline::Text(t) => push_text(&mut out, &t),
            other => out.push(other),
        }
    }
    out
}

fn find(chars: &[char], from: usize, pat: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(pat.len() - 1)).find(|&i| chars[i..].starts_with(pat))
}

/// The `)` that closes a link target starting at `from`, allowing balanced
/// parentheses inside it (`https://en.wikipedia.org/wiki/Rust_(language)`).
fn closing_paren(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in chars.iter().enumerate().skip(from) {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn parse_spans(chars: &[char], out: &mut Vec<Inline>) {
    let mut i = 0;
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<Inline>| {
        if !text.is_empty() {
            push_text(out, text);
            text.clear();
        }
    };
    while i < chars.len() {
        let c = chars[i];
        // `code`
        if c == '`'
            && let Some(end) = find(chars, i + 1, &['`'])
        {
            flush(&mut text, out);
            out.push(Inline::Code(chars[i + 1..end].iter().collect()));
            i = end + 1;
            continue;
        }
        // **strong** or __strong__
        if (c == '*' || c == '_') && chars.get(i + 1) == Some(&c) {
            let marker = [c, c];
            if let Some(end) = find(chars, i + 2, &marker).filter(|&e| e > i + 2) {
                flush(&mut text, out);
                let mut inner = Vec::new();
                parse_spans(&chars[i + 2..end], &mut inner);
                out.push(Inline::Strong(merge_text(inner)));
                i = end + 2;
                continue;
            }
        }
        // *em* or _em_ (an underscore only at a word's start)
        if (c == '*' || (c == '_' && (i == 0 || !chars[i - 1].is_ascii_alphanumeric())))
            && chars.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace())
            && let Some(end) = find(chars, i + 1, &[c])
                .filter(|&e| e > i + 1 && !chars[e - 1].is_ascii_whitespace())
        {
            flush(&mut text, out);
            let mut inner = Vec::new();
            parse_spans(&chars[i + 1..end], &mut inner);
            out.push(Inline::Em(merge_text(inner)));
            i = end + 1;
            continue;
        }
        // [text](url) and ![alt](url): images become links, never <img>.
        let bang = c == '!' && chars.get(i + 1) == Some(&'[');
        if (c == '[' || bang)
            && let Some(close) = find(chars, i + 1 + usize::from(bang), &[']'])
            && chars.get(close + 1) == Some(&'(')
            && let Some(end) = closing_paren(chars, close + 2)
        {
            flush(&mut text, out);
            let label = &chars[i + 1 + usize::from(bang)..close];
            let url: String = chars[close + 2..end].iter().collect();
            let mut children = Vec::new();
            parse_spans(label, &mut children);
            let mut children = merge_text(children);
            if children.is_empty() {
                children.push(Inline::Text(url.clone()));
            }
            match safe_href(&url) {
                Some(href) => out.push(Inline::Link { href, children }),
                // An unsafe target keeps its words and loses its link.
                None => out.extend(children),
            }
            i = end + 1;
            continue;
        }
        // Bare https:// and http:// URLs.
        if (c == 'h' || c == 'H') && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let rest: String = chars[i..chars.len().min(i + 8)]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            if rest.starts_with("https://") || rest.starts_with("http://") {
                let end = (i..chars.len())
                    .find(|&j| chars[j].is_ascii_whitespace() || "<>\"'`".contains(chars[j]))
                    .unwrap_or(chars.len());
                // Trailing punctuation belongs to the sentence.
                let mut end2 = end;
                while end2 > i && ".,;:!?)".contains(chars[end2 - 1]) {
                    end2 -= 1;
                }
                let url: String = chars[i..end2].iter().collect();
                if let Some(href) = safe_href(&url) {
                    flush(&mut text, out);
                    out.push(Inline::Link {
                        href,
                        children: vec![Inline::Text(url)],
                    });
                    i = end2;
                    continue;
                }
            }
        }
        text.push(c);
        i += 1;
    }
    flush(&mut text, out);
}

/// All link targets in a parsed answer (for tests and audits).
pub fn hrefs(blocks: &[Block]) -> Vec<String> {
    fn walk(spans: &[Inline], out: &mut Vec<String>) {
        for s in spans {
            match s {
                Inline::Link { href, children } => {
                    out.push(href.clone());
                    walk(children, out);
                }
                Inline::Strong(c) | Inline::Em(c) => walk(c, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for b in blocks {
        match b {
            Block::Paragraph(s) | Block::Heading(s) => walk(s, &mut out),
            Block::List { items, .. } => items.iter().for_each(|i| walk(i, &mut out)),
            Block::Code { .. } => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Inline {
        Inline::Text(s.into())
    }

    #[test]
    fn paragraphs_lists_headings_and_code() {
        let md = "# Setup\n\nFirst **bold** and *em* and `code`.\nNext line.\n\n- one\n- two\n  more\n\n3. three\n4. four\n\n```sh\nls -la\n```";
        let blocks = parse(md);
        assert_eq!(blocks[0], Block::Heading(vec![text("Setup")]));
        assert_eq!(
            blocks[1],
            Block::Paragraph(vec![
                text("First "),
                Inline::Strong(vec![text("bold")]),
                text(" and "),
                Inline::Em(vec![text("em")]),
                text(" and "),
                Inline::Code("code".into()),
                text("."),
                Inline::Break,
                text("Next line."),
            ])
        );
        assert_eq!(
            blocks[2],
            Block::List {
                ordered: false,
                start: 1,
                items: vec![
                    vec![text("one")],
                    vec![text("two"), Inline::Break, text("more")]
                ]
            }
        );
        assert_eq!(
            blocks[3],
            Block::List {
                ordered: true,
                start: 3,
                items: vec![vec![text("three")], vec![text("four")]]
            }
        );
        assert_eq!(
            blocks[4],
            Block::Code {
                lang: "sh".into(),
                text: "ls -la".into()
            }
        );
    }

    #[test]
    fn links_keep_safe_targets_only() {
        let blocks = parse(
            "[docs](https://example.com/a?b=c) and https://example.org/x. Also [mail](mailto:a@b.c)",
        );
        assert_eq!(
            hrefs(&blocks),
            [
                "https://example.com/a?b=c",
                "https://example.org/x",
                "mailto:a@b.c"
            ]
        );
    }

    #[test]
    fn hostile_link_targets_lose_their_link_but_keep_their_words() {
        for url in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "jav&#x61;script:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "DATA:image/svg+xml;base64,PHN2Zz4=",
            "vbscript:msgbox",
            "//evil.example/x",
            "file:///etc/passwd",
            "https://",
            "https://a.example/\"onmouseover=\"alert(1)",
            "http://a.example/<script>",
        ] {
            let blocks = parse(&format!("[click me]({url})"));
            assert!(
                hrefs(&blocks).is_empty(),
                "{url:?} became a link: {blocks:?}"
            );
            assert_eq!(
                blocks,
                vec![Block::Paragraph(vec![text("click me")])],
                "{url:?}"
            );
        }
    }

    /// All the text a reader sees, in order.
    fn visible(blocks: &[Block]) -> String {
        fn walk(spans: &[Inline], out: &mut String) {
            for s in spans {
                match s {
                    Inline::Text(t) | Inline::Code(t) => out.push_str(t),
                    Inline::Strong(c) | Inline::Em(c) | Inline::Link { children: c, .. } => {
                        walk(c, out)
                    }
                    Inline::Break => out.push('\n'),
                }
            }
        }
        let mut out = String::new();
        for b in blocks {
            if let Block::Paragraph(s) | Block::Heading(s) = b {
                walk(s, &mut out);
            }
        }
        out
    }

    #[test]
    fn raw_html_stays_text() {
        for html in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=https://evil.example></iframe>",
            "<style>body{display:none}</style>",
            "<svg onload=alert(1)>",
        ] {
            let blocks = parse(html);
            // Every character is shown as text; the only link possible is a
            // checked http(s) URL found in the text.
            assert_eq!(visible(&blocks), html, "{html}");
            assert!(
                hrefs(&blocks).iter().all(|h| h.starts_with("https://")),
                "{html}: {blocks:?}"
            );
        }
        assert_eq!(
            parse("<b>x</b>"),
            vec![Block::Paragraph(vec![text("<b>x</b>")])]
        );
    }

    #[test]
    fn link_targets_may_hold_balanced_parentheses() {
        let blocks = parse("[Rust](https://en.wikipedia.org/wiki/Rust_(language)) ok");
        assert_eq!(
            hrefs(&blocks),
            ["https://en.wikipedia.org/wiki/Rust_(language)"]
        );
        assert_eq!(visible(&blocks), "Rust ok");
    }

    #[test]
    fn images_never_load_they_become_links_or_text() {
        let blocks =
            parse("![tracker](https://evil.example/pixel.png) ![x](data:image/png;base64,AAAA)");
        // The tree has no image node at all; the data: one is plain text.
        assert_eq!(
            blocks,
            vec![Block::Paragraph(vec![
                Inline::Link {
                    href: "https://evil.example/pixel.png".into(),
                    children: vec![text("tracker")]
                },
                text(" x"),
            ])]
        );
    }

    #[test]
    fn streaming_fragments_render_without_panicking() {
        let full = "Here is **bold [a link](https://e.x/y) and `code` and\n\n```rust\nfn main() {}\n```\n- item *one*\n1. x";
        let chars: Vec<char> = full.chars().collect();
        for n in 0..=chars.len() {
            let prefix: String = chars[..n].iter().collect();
            let _ = parse(&prefix);
        }
        // An unclosed fence shows what arrived as code.
        assert_eq!(
            parse("```py\nprint(1)"),
            vec![Block::Code {
                lang: "py".into(),
                text: "print(1)".into()
            }]
        );
        // A half-written marker stays literal.
        assert_eq!(parse("a **b"), vec![Block::Paragraph(vec![text("a **b")])]);
    }

    #[test]
    fn emphasis_does_not_eat_snake_case_or_arithmetic() {
        assert_eq!(
            parse("snake_case_name"),
            vec![Block::Paragraph(vec![text("snake_case_name")])]
        );
        assert_eq!(
            parse("2 * 3 * 4"),
            vec![Block::Paragraph(vec![text("2 * 3 * 4")])]
        );
    }
}
