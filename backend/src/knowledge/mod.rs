//! Knowledge: what a widget's documents become before the store indexes
//! them, and how a question is matched against them. Pure functions, no
//! I/O: [`chunk`] cuts markdown into heading-aware chunks; [`extract`]
//! turns HTML, PDF, CSV and plain text into markdown; [`tokenize`] is the
//! one analyser both the index and the questions go through, so the store's
//! BM25 ranks the same terms whatever the store; [`coverage`] says how much
//! of a question a chunk covers, which decides between an answer and the
//! widget's "I don't know".
//!
//! May use nothing else in the crate.

use std::collections::{HashMap, HashSet};

pub mod chunk;
pub mod crawl;
pub mod docx;
pub mod embed;
pub mod extract;

/// `[knowledge]`: how sources are read and how large they may grow.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeSettings {
    /// Fetch from loopback, private, link-local and metadata addresses.
    /// Off: a source cannot make the server read its own network.
    pub allow_private_addresses: bool,
    /// Follow links to other hosts than the source's own.
    pub allow_other_hosts: bool,
    /// Pages one site source may have.
    pub max_pages: u32,
    /// Bytes of one page or file, after decompression.
    pub max_page_bytes: u64,
    /// Bytes one sync may download in all.
    pub max_total_bytes: u64,
    /// Sources one widget may have.
    pub max_sources: u32,
    /// Chunks one widget may have.
    pub max_chunks: u64,
    /// Pause between two requests to one host, in milliseconds (a site's
    /// robots.txt `Crawl-delay` can make it longer). A sync sends one
    /// request at a time.
    pub crawl_delay_ms: u64,
    /// Timeout of one request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Redirects followed per request.
    pub max_redirects: u32,
    /// Chunk size and overlap, in tokens.
    pub chunk_tokens: u32,
    pub chunk_overlap_tokens: u32,
    /// The crawler's User-Agent (robots.txt rules for it apply).
    pub user_agent: String,
    /// How long a sync holds its source after its last page (seconds): a
    /// process that died mid-sync lets go when it passes, and the next one
    /// resumes. Keep it above `request_timeout_ms`.
    pub claim_lease_secs: u64,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            allow_other_hosts: false,
            max_pages: 1_000,
            max_page_bytes: 5 * 1024 * 1024,
            max_total_bytes: 200 * 1024 * 1024,
            max_sources: 50,
            max_chunks: 50_000,
            crawl_delay_ms: 250,
            request_timeout_ms: 15_000,
            max_redirects: 5,
            chunk_tokens: 350,
            chunk_overlap_tokens: 60,
            user_agent: "PortholeBot/0.1 (+https://github.com/porthole)".into(),
            claim_lease_secs: 60,
        }
    }
}

impl KnowledgeSettings {
    /// The claim's lease, never shorter than one request.
    pub fn claim_lease_ms(&self) -> u64 {
        (self.claim_lease_secs.max(1) * 1000).max(self.request_timeout_ms.min(3_600_000))
    }

    /// The chunk budget.
    pub fn budget(&self) -> chunk::Budget {
        chunk::Budget {
            tokens: self.chunk_tokens.clamp(50, 4_000) as usize,
            overlap_tokens: self.chunk_overlap_tokens.min(self.chunk_tokens / 2) as usize,
        }
    }
}

/// The character an XML entity or character reference stands for (`&amp;`,
/// `&#233;`), which quick-xml hands over apart from the text around it;
/// `None` for an entity XML does not predefine.
pub fn xml_char(r: &quick_xml::events::BytesRef<'_>) -> Result<Option<char>, String> {
    let name = r.decode().map_err(|e| e.to_string())?;
    Ok(match name.as_ref() {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => r.resolve_char_ref().ok().flatten(),
    })
}

/// A chunk must cover at least this share of the question to answer it,
/// unless the widget sets its own threshold.
pub const MIN_COVERAGE: f64 = 0.5;

/// The terms a chunk is indexed by: its heading's counted twice (a heading
/// says what the text is about), then its text's, space-separated.
pub fn index_terms(heading: &str, text: &str) -> String {
    let heading = tokenize(heading);
    let mut out = String::with_capacity(text.len());
    for t in heading.iter().chain(&heading).chain(&tokenize(text)) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// The distinct terms of a question, in order.
pub fn question_terms(question: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    tokenize(question)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// How much of a question's information (IDF-weighted over the widget's
/// `total` chunks, `doc_freq` holding how many contain each term) a chunk
/// whose terms are `chunk_terms` covers, from 0 to 1. A word the knowledge
/// never uses weighs as much as its rarest word: enough to show the
/// question is about something else, not more.
pub fn coverage(
    question: &[String],
    chunk_terms: &str,
    doc_freq: &HashMap<String, u64>,
    total: u64,
) -> f64 {
    if question.is_empty() || total == 0 {
        return 0.0;
    }
    let n = total as f64;
    let idf = |df: f64| (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
    let rarest = idf(1.0);
    let present: HashSet<&str> = chunk_terms.split(' ').collect();
    let (mut covered, mut all) = (0.0, 0.0);
    for term in question {
        let weight = match doc_freq.get(term).copied().unwrap_or(0) {
            0 => rarest,
            df => idf(df as f64),
        };
        all += weight;
        if present.contains(term.as_str()) {
            covered += weight;
        }
    }
    if all > 0.0 { covered / all } else { 0.0 }
}

const STOPWORDS: &[&str] = &[
    "a", "about", "also", "an", "and", "any", "are", "as", "at", "be", "but", "by", "can", "could",
    "do", "does", "for", "from", "get", "had", "has", "have", "how", "i", "if", "in", "into", "is",
    "it", "its", "just", "know", "like", "me", "much", "my", "need", "of", "on", "or", "our",
    "please", "should", "so", "some", "tell", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "to", "us", "use", "want", "was", "way", "we", "were",
    "what", "when", "where", "which", "who", "why", "will", "with", "work", "works", "would",
    "you", "your",
];

/// Lower-cased words without stop words, lightly stemmed so that
/// "installing", "installs" and "install" meet.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

fn stem(word: &str) -> String {
    let n = word.chars().count();
    for (suffix, replacement, min_len) in [
        ("ies", "y", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ] {
        if n >= min_len
            && let Some(stem) = word.strip_suffix(suffix)
            && !stem.ends_with('s')
        {
            return format!("{stem}{replacement}");
        }
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stemming_joins_word_forms() {
        assert_eq!(
            tokenize("Installing installs installed"),
            ["install", "install", "install"]
        );
        assert_eq!(tokenize("Countries country"), ["country", "country"]);
        assert_eq!(tokenize("the a of"), Vec::<String>::new());
    }

    #[test]
    fn headings_weigh_twice_in_the_index() {
        assert_eq!(
            index_terms("Returns", "Free returns"),
            "return return free return"
        );
    }

    #[test]
    fn coverage_weighs_rare_words_and_counts_unknown_ones_as_rarest() {
        let df: HashMap<String, u64> = [("ship".to_owned(), 1), ("day".to_owned(), 3)].into();
        let q = question_terms("Do you ship within days?");
        assert_eq!(q, ["ship", "within", "day"]);
        let full = coverage(&q, "ship within day", &df, 4);
        assert!((full - 1.0).abs() < 1e-9);
        let rare_only = coverage(&q, "ship", &df, 4);
        let common_only = coverage(&q, "day", &df, 4);
        assert!(rare_only > common_only, "{rare_only} {common_only}");
        // "within" appears nowhere: it weighs like the rarest word.
        assert!(coverage(&q, "ship day", &df, 4) < 0.7);
        assert_eq!(coverage(&[], "ship", &df, 4), 0.0);
        assert_eq!(coverage(&q, "ship", &df, 0), 0.0);
    }
}
