//! The built-in answerer, used when no model is configured: it streams the
//! passage of the widget's knowledge that best answers the question (the
//! chat found and numbered it) word by word, citing it, or says plainly
//! that it cannot help.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream;

#[cfg(test)]
use super::Passage;
use super::{ChatProvider, Delta, DeltaStream, PromptRequest, ProviderError};
use crate::tenants::Widget;

#[derive(Debug, Clone)]
pub struct OfflineProvider {
    word_delay: Duration,
}

impl OfflineProvider {
    pub fn new(word_delay: Duration) -> Self {
        Self { word_delay }
    }
}

/// The answer's text: the best passage, cited, or a plain "I don't
/// know" when there is none (the chat only asks without knowledge when the
/// widget has none at all).
pub fn compose_answer(request: &PromptRequest) -> String {
    match request.knowledge.first() {
        Some(best) => format!("{} [{}]", best.text.trim_end(), best.n),
        None => {
            "I couldn't find anything about that in the documents I have, so I'd rather not guess."
                .into()
        }
    }
}

/// Splits text into words that keep their trailing white space, so the
/// pieces concatenate back to the original exactly.
pub(super) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(std::mem::take(&mut current));
            in_space = false;
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[async_trait]
impl ChatProvider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn start(
        &self,
        _widget: &Widget,
        request: PromptRequest,
    ) -> Result<DeltaStream, ProviderError> {
        let pieces = words(&compose_answer(&request));
        let delay = self.word_delay;
        let deltas = pieces
            .into_iter()
            .map(Delta::Text)
            .chain([Delta::Finish("stop".into())])
            .enumerate();
        Ok(Box::pin(stream::unfold(
            deltas,
            move |mut deltas| async move {
                let (i, delta) = deltas.next()?;
                if i > 0 && matches!(delta, Delta::Text(_)) && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok(delta), deltas))
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_concatenate_back_to_the_text() {
        let text = "Hello  world,\n\n- item `code`\n";
        let w = words(text);
        assert_eq!(w.concat(), text);
        assert_eq!(w[0], "Hello  ");
        assert_eq!(w.len(), 5);
    }

    #[test]
    fn the_best_passage_is_the_answer_with_its_citation() {
        let passage = |n: u32, text: &str| Passage {
            n,
            title: "t".into(),
            text: text.into(),
        };
        let request = PromptRequest {
            history: vec![],
            question: "q".into(),
            knowledge: vec![passage(1, "Use Ollama.\n"), passage(2, "Other.")],
        };
        assert_eq!(compose_answer(&request), "Use Ollama. [1]");
        let none = PromptRequest {
            knowledge: vec![],
            ..request
        };
        assert!(compose_answer(&none).starts_with("I couldn't find anything"));
    }
}
