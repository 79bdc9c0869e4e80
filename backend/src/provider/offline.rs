//! The built-in answerer, used when no model is configured: it finds the
//! section of the widget's knowledge that best answers the question and
//! streams it word by word, or says plainly that it cannot help.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream;

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

/// The answer's text for `question`.
pub fn compose_answer(widget: &Widget, question: &str) -> String {
    if let Some(section) = widget.knowledge.answer(question) {
        return section.body.clone();
    }
    let topics: Vec<&str> = widget
        .knowledge
        .sections()
        .iter()
        .map(|s| s.title.as_str())
        .filter(|t| !t.is_empty())
        .take(4)
        .collect();
    let mut text = String::from(
        "I couldn't find anything about that in the documents I have, so I'd rather not guess.",
    );
    if !topics.is_empty() {
        text.push_str(" I can help with: ");
        text.push_str(&topics.join(", "));
        text.push('.');
    }
    text
}

/// Splits text into words that keep their trailing white space, so the
/// pieces concatenate back to the original exactly.
fn words(text: &str) -> Vec<String> {
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
        widget: &Widget,
        request: PromptRequest,
    ) -> Result<DeltaStream, ProviderError> {
        let pieces = words(&compose_answer(widget, &request.question));
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
    fn the_demo_widget_answers_from_its_knowledge_and_declines_the_rest() {
        let demo = Widget::demo();
        let answer = compose_answer(&demo, "Does it work with Ollama?");
        assert!(answer.contains("Ollama"), "{answer}");
        let answer = compose_answer(&demo, "How much does it cost?");
        assert!(answer.contains("free"), "{answer}");
        let declined = compose_answer(&demo, "What is the boiling point of mercury?");
        assert!(
            declined.starts_with("I couldn't find anything"),
            "{declined}"
        );
        assert!(declined.contains("Installing the widget"), "{declined}");
    }
}
