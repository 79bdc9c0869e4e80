//! What a turn is grounded in: the widget's chunks that cover the question
//! (full-text search through the store, judged by how much of the question
//! they cover), numbered for the prompt and listed for the visitor as the
//! `sources` event. When the widget has knowledge but none of it is
//! relevant, the turn gets the widget's "I don't know" instead of a guess;
//! when a FAQ's question matches closely, its answer verbatim.

use protocol::SourceRef;

use crate::knowledge::{coverage, question_terms};
use crate::provider::Passage;
use crate::store::knowledge::{FoundChunk, KnowledgeStore, SourceKind};
use crate::tenants::Widget;

/// Candidates fetched from the index before judging them.
const CANDIDATES: u32 = 12;
/// Passages that go into the prompt.
const PASSAGES: usize = 4;
/// How closely a FAQ's question must match to be answered verbatim.
const FAQ_COVERAGE: f64 = 0.8;
/// Characters of a passage shown as its snippet.
const SNIPPET_CHARS: usize = 200;

/// The reply when nothing relevant is found and the widget sets none.
pub const DEFAULT_UNKNOWN_REPLY: &str =
    "I couldn't find anything about that in the documents I have, so I'd rather not guess.";

/// What the answer will rest on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grounding {
    /// Numbered passages for the prompt, best first.
    pub passages: Vec<Passage>,
    /// The same, as the visitor sees them.
    pub sources: Vec<SourceRef>,
    /// The widget has knowledge and none of it covers the question.
    pub unanswered: bool,
    /// A FAQ whose question matches: the answer, verbatim.
    pub faq_answer: Option<String>,
}

/// Finds what `question` can be answered from. A store that fails is
/// logged and treated as no knowledge: it never fails the chat.
pub async fn ground(store: &dyn KnowledgeStore, widget: &Widget, question: &str) -> Grounding {
    let Some((judged, total)) = judge(store, widget, question, CANDIDATES).await else {
        return Grounding::default();
    };
    if total == 0 {
        return Grounding::default();
    }
    let judged: Vec<(FoundChunk, f64)> = judged
        .into_iter()
        .filter(|(_, c)| *c >= widget.min_relevance)
        .take(PASSAGES)
        .collect();
    if judged.is_empty() {
        return Grounding {
            unanswered: true,
            ..Grounding::default()
        };
    }
    let faq_answer = judged
        .first()
        .filter(|(hit, c)| hit.source_kind == SourceKind::Faq && *c >= FAQ_COVERAGE)
        .map(|(hit, _)| hit.text.clone());
    let mut grounding = Grounding {
        faq_answer,
        ..Grounding::default()
    };
    for (hit, _) in &judged {
        let n = grounding.passages.len() as u32 + 1;
        let title = title_of(hit);
        grounding.passages.push(Passage {
            n,
            title: title.clone(),
            text: hit.text.clone(),
        });
        grounding.sources.push(SourceRef {
            n,
            title,
            url: link_of(hit),
            snippet: snippet(&hit.text),
        });
    }
    grounding
}

/// The best `limit` chunks for `question` with how much of it each covers,
/// in the index's (BM25) order, and how many chunks the widget has; `None`
/// when the store failed (logged).
pub async fn judge(
    store: &dyn KnowledgeStore,
    widget: &Widget,
    question: &str,
    limit: u32,
) -> Option<(Vec<(FoundChunk, f64)>, u64)> {
    let terms = question_terms(question);
    let search = match store.search(widget.id.as_str(), &terms, limit).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(widget = %widget.id, error = %e, "knowledge search failed; answering without it");
            return None;
        }
    };
    let total = search.total_chunks;
    let doc_freq = search.doc_freq;
    let judged = search
        .hits
        .into_iter()
        .map(|hit| {
            let c = coverage(&terms, &hit.terms, &doc_freq, total);
            (hit, c)
        })
        .collect();
    Some((judged, total))
}

/// Topics the built-in reply offers instead.
const TOPICS: u32 = 4;

/// The reply when nothing relevant is found: the widget's own, or the
/// built-in one followed by what the knowledge does cover.
pub async fn unknown_reply(store: &dyn KnowledgeStore, widget: &Widget) -> String {
    let own = widget.unknown_reply.trim();
    if !own.is_empty() {
        return own.to_owned();
    }
    let mut text = DEFAULT_UNKNOWN_REPLY.to_owned();
    match store.topics(widget.id.as_str(), TOPICS).await {
        Ok(topics) if !topics.is_empty() => {
            text.push_str(" I can help with: ");
            text.push_str(&topics.join(", "));
            text.push('.');
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(widget = %widget.id, error = %e, "reading the knowledge's topics failed")
        }
    }
    text
}

/// "Page title › Heading > Path", without repeating the title.
fn title_of(hit: &FoundChunk) -> String {
    let mut title = match (hit.title.trim(), hit.heading.trim()) {
        ("", "") => hit.url.clone(),
        ("", h) => h.to_owned(),
        (t, "") => t.to_owned(),
        (t, h) if h == t || h.starts_with(&format!("{t} >")) => h.to_owned(),
        (t, h) => format!("{t} › {h}"),
    };
    if let Some(page) = hit.page_no {
        title.push_str(&format!(" (p. {page})"));
    }
    title
}

/// The link to the passage: web pages with their heading's anchor; other
/// sources have none. Only http(s) URLs are ever linked.
fn link_of(hit: &FoundChunk) -> Option<String> {
    if !matches!(hit.source_kind, SourceKind::Url | SourceKind::Site) {
        return None;
    }
    let lower = hit.url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let base = hit.url.split('#').next().unwrap_or(&hit.url);
    Some(match &hit.anchor {
        Some(anchor) if !anchor.is_empty() => format!("{base}#{anchor}"),
        _ => base.to_owned(),
    })
}

/// The start of a passage as plain text: markdown's marks dropped, white
/// space folded, cut at a word.
fn snippet(text: &str) -> String {
    let plain: String = text
        .chars()
        .map(|c| match c {
            '#' | '*' | '`' | '|' | '>' => ' ',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    let folded = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= SNIPPET_CHARS {
        return folded;
    }
    let cut: String = folded.chars().take(SNIPPET_CHARS).collect();
    let cut = cut.rsplit_once(' ').map(|(head, _)| head).unwrap_or(&cut);
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(
        kind: SourceKind,
        url: &str,
        title: &str,
        heading: &str,
        anchor: Option<&str>,
    ) -> FoundChunk {
        FoundChunk {
            id: 1,
            source_kind: kind,
            url: url.into(),
            title: title.into(),
            heading: heading.into(),
            anchor: anchor.map(str::to_owned),
            page_no: None,
            text: "text".into(),
            terms: "text".into(),
            score: 1.0,
        }
    }

    #[test]
    fn links_are_web_pages_with_their_anchor_and_nothing_else() {
        let page = hit(
            SourceKind::Site,
            "https://docs.acme.test/install",
            "Install",
            "Install > Docker",
            Some("docker"),
        );
        assert_eq!(
            link_of(&page).as_deref(),
            Some("https://docs.acme.test/install#docker")
        );
        assert_eq!(title_of(&page), "Install > Docker");
        let hostile = hit(SourceKind::Url, "javascript:alert(1)", "x", "", None);
        assert_eq!(link_of(&hostile), None);
        let text = hit(SourceKind::Text, "Widget knowledge", "", "Pricing", None);
        assert_eq!(link_of(&text), None);
        assert_eq!(title_of(&text), "Pricing");
        let mut pdf = hit(SourceKind::File, "manual.pdf", "manual", "", None);
        pdf.page_no = Some(3);
        assert_eq!(title_of(&pdf), "manual (p. 3)");
    }

    #[test]
    fn snippets_are_plain_and_cut_at_a_word() {
        assert_eq!(
            snippet("## Title\n\n**Bold** `code` | cell |"),
            "Title Bold code cell"
        );
        let long = "word ".repeat(100);
        let s = snippet(&long);
        assert!(
            s.ends_with('…') && s.chars().count() <= SNIPPET_CHARS + 1,
            "{s}"
        );
    }
}
