//! Heading-aware chunks of a markdown document.
//!
//! pulldown-cmark finds the document's blocks (headings, paragraphs, lists,
//! tables, code blocks) and their source ranges, so a chunk is the author's
//! own markdown, cut only between blocks. Chunks follow the heading
//! structure: each carries its heading path ("Install > Docker") and the
//! anchor of its nearest heading, and never mixes two sections. A block
//! larger than the budget is cut by kind: a table between rows, with its
//! header row repeated on every piece; a code block between lines, each
//! piece fenced again; prose by text-splitter at sentence and word
//! boundaries. Consecutive chunks of one section overlap by their last
//! small block, so a sentence that needs its neighbour still finds it.

use std::collections::HashMap;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use text_splitter::{ChunkConfig, TextSplitter};

/// One piece of a document, ready to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The headings above it, outermost first, joined by " > ".
    pub heading: String,
    /// The anchor of its nearest heading (`{#id}` or the heading's slug),
    /// without `#`.
    pub anchor: Option<String>,
    /// The markdown text.
    pub text: String,
}

/// How large chunks are, in estimated tokens (4 characters each).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub tokens: usize,
    pub overlap_tokens: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            tokens: 350,
            overlap_tokens: 60,
        }
    }
}

impl Budget {
    fn chars(&self) -> usize {
        self.tokens.max(16) * 4
    }

    fn overlap_chars(&self) -> usize {
        self.overlap_tokens * 4
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prose,
    Table,
    Code,
}

/// A top-level block of the document.
#[derive(Debug)]
struct Block {
    kind: Kind,
    text: String,
}

/// One heading's worth of blocks.
#[derive(Debug, Default)]
struct Section {
    heading: String,
    anchor: Option<String>,
    blocks: Vec<Block>,
}

/// Splits `markdown` into chunks within `budget`.
pub fn chunk_markdown(markdown: &str, budget: Budget) -> Vec<Chunk> {
    chunk_markdown_with(markdown, budget, &HashMap::new())
}

/// [`chunk_markdown`], with the anchors the page gave its headings (text ->
/// id) taking the place of slugs.
pub fn chunk_markdown_with(
    markdown: &str,
    budget: Budget,
    anchors: &HashMap<String, String>,
) -> Vec<Chunk> {
    let mut out = Vec::new();
    for section in sections(markdown, anchors) {
        pack(&section, budget, &mut out);
    }
    out
}

/// The document's sections: blocks grouped under their heading path.
fn sections(markdown: &str, anchors: &HashMap<String, String>) -> Vec<Section> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut sections = vec![Section::default()];
    // (level, text) of the headings above the current block.
    let mut path: Vec<(HeadingLevel, String)> = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    let mut kind = Kind::Prose;
    // The heading being read: its level, id and text so far.
    let mut heading: Option<(HeadingLevel, Option<String>, String)> = None;
    for (event, range) in Parser::new_ext(markdown, options).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    start = range.start;
                    kind = match &tag {
                        Tag::Table(_) => Kind::Table,
                        Tag::CodeBlock(_) => Kind::Code,
                        _ => Kind::Prose,
                    };
                    if let Tag::Heading { level, id, .. } = &tag {
                        heading = Some((*level, id.as_ref().map(|i| i.to_string()), String::new()));
                    }
                }
                depth += 1;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                if depth > 0 {
                    continue;
                }
                if let (TagEnd::Heading(_), Some((level, id, text))) = (end, heading.take()) {
                    let text = text.trim().to_owned();
                    while path.last().is_some_and(|(l, _)| *l >= level) {
                        path.pop();
                    }
                    let anchor = id
                        .or_else(|| anchors.get(&text).cloned())
                        .or_else(|| Some(slug(&text)).filter(|s| !s.is_empty()));
                    path.push((level, text));
                    sections.push(Section {
                        heading: path
                            .iter()
                            .map(|(_, t)| t.as_str())
                            .filter(|t| !t.is_empty())
                            .collect::<Vec<_>>()
                            .join(" > "),
                        anchor,
                        blocks: Vec::new(),
                    });
                    continue;
                }
                let text = markdown.get(start..range.end).unwrap_or("").trim();
                if !text.is_empty()
                    && let Some(section) = sections.last_mut()
                {
                    section.blocks.push(Block {
                        kind,
                        text: text.to_owned(),
                    });
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, _, text)) = heading.as_mut() {
                    text.push_str(&t);
                }
                if depth == 0 {
                    // Text outside any block (rare): keep it as prose.
                    push_loose(&mut sections, &t);
                }
            }
            Event::Html(h) if depth == 0 => push_loose(&mut sections, &h),
            Event::Rule if depth == 0 => {}
            _ => {}
        }
    }
    sections.retain(|s| !s.blocks.is_empty());
    sections
}

fn push_loose(sections: &mut [Section], text: &str) {
    let text = text.trim();
    if !text.is_empty()
        && let Some(section) = sections.last_mut()
    {
        section.blocks.push(Block {
            kind: Kind::Prose,
            text: text.to_owned(),
        });
    }
}

/// Packs a section's blocks into chunks of at most the budget.
fn pack(section: &Section, budget: Budget, out: &mut Vec<Chunk>) {
    let max = budget.chars();
    let mut current: Vec<String> = Vec::new();
    let mut size = 0usize;
    // The last small prose block of the previous chunk, repeated at the
    // start of the next one.
    let mut carry: Option<String> = None;
    let emit = |parts: &mut Vec<String>, size: &mut usize, out: &mut Vec<Chunk>| {
        if parts.is_empty() {
            return;
        }
        out.push(Chunk {
            heading: section.heading.clone(),
            anchor: section.anchor.clone(),
            text: parts.join("\n\n"),
        });
        parts.clear();
        *size = 0;
    };
    for block in &section.blocks {
        let pieces = if block.text.len() > max {
            split_block(block, budget)
        } else {
            vec![block.text.clone()]
        };
        for piece in pieces {
            if size > 0 && size + piece.len() + 2 > max {
                emit(&mut current, &mut size, out);
                if let Some(c) = carry.take()
                    && c.len() + piece.len() + 2 <= max
                {
                    size = c.len();
                    current.push(c);
                }
            }
            size += piece.len() + 2;
            carry = (block.kind == Kind::Prose && piece.len() <= budget.overlap_chars())
                .then(|| piece.clone());
            current.push(piece);
        }
    }
    emit(&mut current, &mut size, out);
}

/// Cuts a block larger than the budget, by its kind.
fn split_block(block: &Block, budget: Budget) -> Vec<String> {
    let max = budget.chars();
    match block.kind {
        Kind::Table => split_table(&block.text, max),
        Kind::Code => split_code(&block.text, max),
        Kind::Prose => {
            let config = ChunkConfig::new(max)
                .with_overlap(budget.overlap_chars().min(max / 2))
                .unwrap_or_else(|_| ChunkConfig::new(max));
            TextSplitter::new(config)
                .chunks(&block.text)
                .map(str::to_owned)
                .collect()
        }
    }
}

/// A table's rows in pieces of at most `max` characters, each starting with
/// the header row and its delimiter row. A single row longer than `max`
/// stays whole: a row is never cut.
fn split_table(table: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = table.lines().collect();
    if lines.len() < 3 {
        return vec![table.to_owned()];
    }
    let header = format!("{}\n{}", lines[0], lines[1]);
    let mut pieces = Vec::new();
    let mut current = header.clone();
    let mut rows = 0;
    for row in &lines[2..] {
        if rows > 0 && current.len() + row.len() + 1 > max {
            pieces.push(std::mem::replace(&mut current, header.clone()));
            rows = 0;
        }
        current.push('\n');
        current.push_str(row);
        rows += 1;
    }
    if rows > 0 {
        pieces.push(current);
    }
    pieces
}

/// A fenced code block cut between lines, each piece fenced again with the
/// same opening line (so it keeps its language). Lines are never cut.
fn split_code(code: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = code.lines().collect();
    let fenced = lines
        .first()
        .is_some_and(|l| l.trim_start().starts_with("```") || l.trim_start().starts_with("~~~"));
    if !fenced || lines.len() < 3 {
        return vec![code.to_owned()];
    }
    let open = lines[0];
    let close = lines[lines.len() - 1];
    let body = &lines[1..lines.len() - 1];
    let mut pieces = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut size = open.len() + close.len() + 2;
    for line in body {
        if !current.is_empty() && size + line.len() + 1 > max {
            pieces.push(format!("{open}\n{}\n{close}", current.join("\n")));
            current.clear();
            size = open.len() + close.len() + 2;
        }
        size += line.len() + 1;
        current.push(line);
    }
    if !current.is_empty() {
        pieces.push(format!("{open}\n{}\n{close}", current.join("\n")));
    }
    pieces
}

/// A heading's anchor as GitHub and most generators make it: lower case,
/// spaces to `-`, punctuation dropped.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else if c.is_whitespace() {
            out.push('-');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Budget {
        Budget {
            tokens: 40,
            overlap_tokens: 10,
        }
    }

    #[test]
    fn chunks_carry_their_heading_path_and_anchor() {
        let doc = "Intro.\n\n# Install\nGet it.\n\n## Docker {#docker-setup}\nRun the image.\n\n## From source\nBuild it.\n\n# Use\nAsk.\n";
        let chunks = chunk_markdown(doc, Budget::default());
        let got: Vec<(&str, Option<&str>, &str)> = chunks
            .iter()
            .map(|c| (c.heading.as_str(), c.anchor.as_deref(), c.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("", None, "Intro."),
                ("Install", Some("install"), "Get it."),
                ("Install > Docker", Some("docker-setup"), "Run the image."),
                ("Install > From source", Some("from-source"), "Build it."),
                ("Use", Some("use"), "Ask."),
            ]
        );
    }

    #[test]
    fn a_long_table_is_cut_between_rows_with_its_header_on_every_piece() {
        let mut doc = String::from("# Prices\n\n| Plan | Price |\n|---|---|\n");
        for i in 0..40 {
            doc.push_str(&format!("| plan number {i} | {i}0 euros a month |\n"));
        }
        let chunks = chunk_markdown(&doc, small());
        assert!(chunks.len() > 3, "{}", chunks.len());
        let mut rows = 0;
        for c in &chunks {
            assert!(
                c.text.starts_with("| Plan | Price |\n|---|---|\n"),
                "{}",
                c.text
            );
            for line in c.text.lines().skip(2) {
                assert!(
                    line.starts_with("| plan number ") && line.ends_with(" euros a month |"),
                    "{line}"
                );
                rows += 1;
            }
        }
        assert_eq!(rows, 40, "every row once, none cut");
    }

    #[test]
    fn a_long_code_block_is_cut_between_lines_and_fenced_again() {
        let mut doc = String::from("# Script\n\n```sh\n");
        for i in 0..60 {
            doc.push_str(&format!("echo line {i}\n"));
        }
        doc.push_str("```\n");
        let chunks = chunk_markdown(&doc, small());
        assert!(chunks.len() > 2);
        let mut lines = 0;
        for c in &chunks {
            assert!(
                c.text.starts_with("```sh\n") && c.text.ends_with("\n```"),
                "{}",
                c.text
            );
            lines += c
                .text
                .lines()
                .filter(|l| l.starts_with("echo line "))
                .count();
        }
        assert_eq!(lines, 60);
    }

    #[test]
    fn a_code_block_that_fits_is_never_split_even_with_blank_lines_and_hashes() {
        let doc = "# A\n\n```\n# not a heading\n\nstill code\n```\n\nAfter.";
        let chunks = chunk_markdown(doc, Budget::default());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].text.contains("# not a heading\n\nstill code"));
        assert_eq!(chunks[0].heading, "A");
    }

    #[test]
    fn long_prose_fits_the_budget_and_neighbouring_chunks_overlap() {
        let para = |n: usize| format!("Paragraph {n} says something short.");
        let doc = format!(
            "# Long\n\n{}",
            (0..30).map(para).collect::<Vec<_>>().join("\n\n")
        );
        let budget = small();
        let chunks = chunk_markdown(&doc, budget);
        assert!(chunks.len() > 3);
        for c in &chunks {
            assert!(c.text.len() <= budget.chars(), "{}", c.text.len());
        }
        // The last paragraph of one chunk opens the next.
        for pair in chunks.windows(2) {
            let last = pair[0].text.rsplit("\n\n").next().unwrap_or("");
            assert!(
                pair[1].text.starts_with(last),
                "{:?} / {:?}",
                pair[0].text,
                pair[1].text
            );
        }
        let one_huge = "word ".repeat(2000);
        for c in chunk_markdown(&one_huge, budget) {
            assert!(c.text.len() <= budget.chars());
        }
    }

    #[test]
    fn slugs_are_what_generators_make() {
        assert_eq!(slug("Install > Docker!"), "install--docker");
        assert_eq!(slug("Ünïcode Title"), "ünïcode-title");
    }
}
