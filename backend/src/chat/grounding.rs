//! What a turn is grounded in: the widget's chunks that cover the question
//! (full-text search through the store, judged by how much of the question
//! they cover), numbered for the prompt and listed for the visitor as the
//! `sources` event. When the widget has knowledge but none of it is
//! relevant, the turn gets the widget's "I don't know" instead of a guess;
//! when a FAQ's question matches closely, its answer verbatim.

use std::collections::HashMap;

use protocol::SourceRef;
use salvo::oapi::ToSchema;
use serde::Serialize;

use crate::knowledge::embed::{Embedder, fuse};
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
/// logged and treated as no knowledge, an embeddings endpoint that fails
/// as none configured: neither ever fails the chat.
pub async fn ground(
    store: &dyn KnowledgeStore,
    embedder: Option<&Embedder>,
    widget: &Widget,
    question: &str,
) -> Grounding {
    let Some((judged, total)) = judge(store, embedder, widget, question, CANDIDATES).await else {
        return Grounding::default();
    };
    if total == 0 {
        return Grounding::default();
    }
    let judged: Vec<Judged> = judged
        .into_iter()
        .filter(|j| j.relevant(widget, embedder))
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
        .filter(|j| j.chunk.source_kind == SourceKind::Faq && j.coverage >= FAQ_COVERAGE)
        .map(|j| j.chunk.text.clone());
    let mut grounding = Grounding {
        faq_answer,
        ..Grounding::default()
    };
    for Judged { chunk: hit, .. } in &judged {
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

/// A candidate chunk and how well it fits the question.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub chunk: FoundChunk,
    /// The share of the question's information its words cover.
    pub coverage: f64,
    /// Its vector's cosine similarity to the question's, when both exist.
    pub similarity: Option<f32>,
}

impl Judged {
    /// Relevant enough to answer from: it covers enough of the question's
    /// words (the widget's threshold), or means nearly the same.
    pub fn relevant(&self, widget: &Widget, embedder: Option<&Embedder>) -> bool {
        self.coverage >= widget.min_relevance
            || match (self.similarity, embedder) {
                (Some(s), Some(e)) => s >= e.settings().min_similarity,
                _ => false,
            }
    }
}

/// The best `limit` chunks for `question`, judged, and how many chunks the
/// widget has; `None` when the store failed (logged). With an embedder,
/// the full-text ranking and the nearest vectors are fused (reciprocal
/// rank fusion); a failed or slow question embedding leaves full text
/// alone.
pub async fn judge(
    store: &dyn KnowledgeStore,
    embedder: Option<&Embedder>,
    widget: &Widget,
    question: &str,
    limit: u32,
) -> Option<(Vec<Judged>, u64)> {
    let terms = question_terms(question);
    let widget_id = widget.id.as_str();
    let embedded = async {
        let embedder = embedder?;
        match embedder.embed_query(question).await {
            Ok(v) => Some((embedder, v)),
            Err(e) => {
                tracing::warn!(widget = %widget.id, error = %e, "embedding the question failed; searching full text alone");
                None
            }
        }
    };
    let (search, embedded) = tokio::join!(store.search(widget_id, &terms, limit), embedded);
    let search = match search {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(widget = %widget.id, error = %e, "knowledge search failed; answering without it");
            return None;
        }
    };
    let total = search.total_chunks;
    let doc_freq = search.doc_freq;
    let judge = |chunk: FoundChunk, similarity: Option<f32>| Judged {
        coverage: coverage(&terms, &chunk.terms, &doc_freq, total),
        chunk,
        similarity,
    };
    let near = match embedded {
        Some((embedder, vector)) => {
            match store
                .nearest(widget_id, embedder.model(), &vector, limit)
                .await
            {
                Ok(near) => near,
                Err(e) => {
                    tracing::warn!(widget = %widget.id, error = %e, "vector search failed; searching full text alone");
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    if near.is_empty() {
        let judged = search
            .hits
            .into_iter()
            .map(|hit| judge(hit, None))
            .collect();
        return Some((judged, total));
    }
    let fused = fuse(&[
        search.hits.iter().map(|h| h.id).collect(),
        near.iter().map(|h| h.id).collect(),
    ]);
    let mut by_id: HashMap<i64, (FoundChunk, Option<f32>)> = HashMap::new();
    for hit in search.hits {
        by_id.insert(hit.id, (hit, None));
    }
    for hit in near {
        let sim = hit.score as f32;
        by_id
            .entry(hit.id)
            .and_modify(|(_, s)| *s = Some(sim))
            .or_insert((hit, Some(sim)));
    }
    let judged = fused
        .into_iter()
        .take(limit as usize)
        .filter_map(|(id, _)| by_id.remove(&id))
        .map(|(hit, sim)| judge(hit, sim))
        .collect();
    Some((judged, total))
}

/// What a question would be answered from, for the console's "try a
/// question": every candidate with its scores, whether it counts as
/// relevant, and which of them the prompt would get.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RetrievalPreview {
    /// Chunks the widget has.
    pub total_chunks: u64,
    /// The widget has knowledge and none of it covers the question: the
    /// visitor would get the "I don't know" reply.
    pub unanswered: bool,
    /// A FAQ matches closely: its answer would be given verbatim.
    pub faq_verbatim: bool,
    /// The widget's coverage threshold.
    pub min_relevance: f64,
    /// The embeddings' similarity threshold, when embeddings are on.
    pub min_similarity: Option<f32>,
    /// The candidates, best first.
    pub candidates: Vec<RetrievalCandidate>,
}

/// One candidate chunk as the console shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetrievalCandidate {
    /// Its number in the prompt (and in the visitor's source list), when
    /// it would be used.
    pub n: Option<u32>,
    pub title: String,
    /// The link the visitor would get, for web pages.
    pub url: Option<String>,
    /// Where it came from: the page's URL or the file's name.
    pub origin: String,
    pub kind: SourceKind,
    pub snippet: String,
    /// The share of the question's information its words cover (0–1).
    pub coverage: f64,
    /// Cosine similarity to the question, with embeddings.
    pub similarity: Option<f32>,
    pub relevant: bool,
}

/// Judges `question` as a turn would, without answering it.
pub async fn preview(
    store: &dyn KnowledgeStore,
    embedder: Option<&Embedder>,
    widget: &Widget,
    question: &str,
) -> Option<RetrievalPreview> {
    let (judged, total) = judge(store, embedder, widget, question, CANDIDATES).await?;
    let mut preview = RetrievalPreview {
        total_chunks: total,
        min_relevance: widget.min_relevance,
        min_similarity: embedder.map(|e| e.settings().min_similarity),
        ..RetrievalPreview::default()
    };
    let mut used = 0u32;
    for j in judged {
        let relevant = j.relevant(widget, embedder);
        let n = (relevant && (used as usize) < PASSAGES).then(|| {
            used += 1;
            used
        });
        if n == Some(1) {
            preview.faq_verbatim =
                j.chunk.source_kind == SourceKind::Faq && j.coverage >= FAQ_COVERAGE;
        }
        preview.candidates.push(RetrievalCandidate {
            n,
            title: title_of(&j.chunk),
            url: link_of(&j.chunk),
            origin: j.chunk.url.clone(),
            kind: j.chunk.source_kind,
            snippet: snippet(&j.chunk.text),
            coverage: j.coverage,
            similarity: j.similarity,
            relevant,
        });
    }
    preview.unanswered = total > 0 && used == 0;
    Some(preview)
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
