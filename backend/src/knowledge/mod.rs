//! A widget's knowledge: its markdown split into sections at headings and
//! ranked against a question with BM25. The offline answerer streams the
//! best section; the OpenAI provider puts the best few into the prompt.

use std::collections::{HashMap, HashSet};

/// One heading and the text under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub body: String,
}

/// A ranked section.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub section: &'a Section,
    pub score: f64,
    /// How much of the question's information (IDF-weighted) the section
    /// covers, from 0 to 1. Low coverage means the question is about
    /// something the knowledge does not mention.
    pub coverage: f64,
}

/// Sections indexed for BM25.
#[derive(Debug, Default)]
pub struct KnowledgeIndex {
    sections: Vec<Section>,
    /// Term frequencies per section (title terms counted twice).
    terms: Vec<HashMap<String, u32>>,
    lengths: Vec<f64>,
    avg_len: f64,
    doc_freq: HashMap<String, u32>,
}

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// A section must cover at least this share of the question to answer it.
pub const MIN_COVERAGE: f64 = 0.5;

impl KnowledgeIndex {
    pub fn from_markdown(text: &str) -> Self {
        let sections = split_sections(text);
        let terms: Vec<HashMap<String, u32>> = sections
            .iter()
            .map(|s| {
                let mut tf = HashMap::new();
                for t in tokenize(&s.title)
                    .into_iter()
                    .chain(tokenize(&s.title))
                    .chain(tokenize(&s.body))
                {
                    *tf.entry(t).or_insert(0) += 1;
                }
                tf
            })
            .collect();
        let lengths: Vec<f64> = terms
            .iter()
            .map(|tf| tf.values().sum::<u32>() as f64)
            .collect();
        let avg_len = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        };
        let mut doc_freq = HashMap::new();
        for tf in &terms {
            for t in tf.keys() {
                *doc_freq.entry(t.clone()).or_insert(0) += 1;
            }
        }
        Self {
            sections,
            terms,
            lengths,
            avg_len,
            doc_freq,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    fn idf(&self, term: &str) -> f64 {
        self.idf_of_df(self.doc_freq.get(term).copied().unwrap_or(0) as f64)
    }

    fn idf_of_df(&self, df: f64) -> f64 {
        let n = self.sections.len() as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The sections that share terms with `question`, best first.
    pub fn search(&self, question: &str, limit: usize) -> Vec<Hit<'_>> {
        let query: HashSet<String> = tokenize(question).into_iter().collect();
        if query.is_empty() || self.sections.is_empty() {
            return Vec::new();
        }
        // A word the knowledge never uses weighs as much as its rarest word:
        // enough to show the question is about something else, not more.
        let rarest = self.idf_of_df(1.0);
        let total_idf: f64 = query
            .iter()
            .map(|t| {
                if self.doc_freq.contains_key(t) {
                    self.idf(t)
                } else {
                    rarest
                }
            })
            .sum();
        let mut hits: Vec<Hit<'_>> = self
            .terms
            .iter()
            .enumerate()
            .filter_map(|(i, tf)| {
                let mut score = 0.0;
                let mut covered = 0.0;
                for term in &query {
                    let Some(&f) = tf.get(term) else { continue };
                    let f = f as f64;
                    let idf = self.idf(term);
                    let norm = K1 * (1.0 - B + B * self.lengths[i] / self.avg_len.max(1.0));
                    score += idf * f * (K1 + 1.0) / (f + norm);
                    covered += idf;
                }
                (score > 0.0).then(|| Hit {
                    section: &self.sections[i],
                    score,
                    coverage: if total_idf > 0.0 {
                        covered / total_idf
                    } else {
                        0.0
                    },
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit);
        hits
    }

    /// The section that answers `question`, if one covers enough of it.
    pub fn answer(&self, question: &str) -> Option<&Section> {
        self.search(question, 1)
            .into_iter()
            .find(|hit| hit.coverage >= MIN_COVERAGE)
            .map(|hit| hit.section)
    }
}

/// Splits markdown at ATX headings (`#` to `######`), outside code fences.
/// Text before the first heading becomes a section titled by the document.
fn split_sections(text: &str) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut title = String::new();
    let mut body = String::new();
    let mut in_fence = false;
    let flush = |title: &str, body: &mut String, sections: &mut Vec<Section>| {
        let trimmed = body.trim();
        if !trimmed.is_empty() {
            sections.push(Section {
                title: title.to_owned(),
                body: trimmed.to_owned(),
            });
        }
        body.clear();
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let heading = (!in_fence)
            .then(|| line.strip_prefix('#'))
            .flatten()
            .map(|rest| rest.trim_start_matches('#'))
            .filter(|rest| rest.is_empty() || rest.starts_with(' '));
        match heading {
            Some(rest) => {
                flush(&title, &mut body, &mut sections);
                title = rest.trim().to_owned();
            }
            None => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    flush(&title, &mut body, &mut sections);
    sections
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

    const DOC: &str = "Intro text about Acme.\n\n# Shipping\nWe ship to 40 countries within 3 days.\n\n\
        ## Returns\nReturns are free for 30 days. Print the label from your account.\n\n\
        ```sh\n# not a heading\n```\n\n# Opening hours\nThe shop is open Monday to Friday, 9 to 5.\n";

    #[test]
    fn markdown_is_split_at_headings_but_not_inside_code() {
        let index = KnowledgeIndex::from_markdown(DOC);
        let titles: Vec<_> = index.sections().iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["", "Shipping", "Returns", "Opening hours"]);
        assert!(index.sections()[2].body.contains("# not a heading"));
    }

    #[test]
    fn the_matching_section_ranks_first() {
        let index = KnowledgeIndex::from_markdown(DOC);
        assert_eq!(
            index
                .answer("How do I return an item?")
                .map(|s| s.title.as_str()),
            Some("Returns")
        );
        assert_eq!(
            index.answer("When are you open?").map(|s| s.title.as_str()),
            Some("Opening hours")
        );
        assert_eq!(
            index
                .answer("Which countries do you ship to")
                .map(|s| s.title.as_str()),
            Some("Shipping")
        );
        assert_eq!(
            index
                .answer("Does it work with Acme shipping?")
                .map(|s| s.title.as_str()),
            Some("Shipping")
        );
    }

    #[test]
    fn questions_the_knowledge_does_not_cover_find_nothing() {
        let index = KnowledgeIndex::from_markdown(DOC);
        assert!(index.answer("What is the capital of France?").is_none());
        assert!(index.answer("Do you sell bicycles for kids?").is_none());
        assert!(index.answer("").is_none());
        assert!(
            KnowledgeIndex::from_markdown("")
                .answer("shipping")
                .is_none()
        );
    }

    #[test]
    fn stemming_joins_word_forms() {
        assert_eq!(
            tokenize("Installing installs installed"),
            ["install", "install", "install"]
        );
        assert_eq!(tokenize("Countries country"), ["country", "country"]);
        assert_eq!(tokenize("the a of"), Vec::<String>::new());
    }
}
