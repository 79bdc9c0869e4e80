//! Questions to fix: the answers that found nothing in the knowledge or
//! were rated down, grouped by similar question, so a site owner sees
//! what visitors keep asking that the assistant cannot answer well.
//!
//! Two questions are similar when their terms (the knowledge index's own
//! analysis: lower-cased, stop words out, lightly stemmed) overlap by at
//! least half (Jaccard): "How do I get a refund?" and "refunds, how?"
//! meet, "refund" and "shipping" do not.

use std::collections::HashSet;

use salvo::oapi::ToSchema;
use serde::Serialize;

use crate::knowledge::question_terms;
use crate::store::inbox::FixCase;

/// Similar questions and their cases, newest case first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FixGroup {
    /// The newest wording of the question.
    pub question: String,
    /// How many answers are in the group.
    pub cases: u32,
    pub unanswered: u32,
    pub thumbs_down: u32,
    pub last_at: u64,
    /// The widgets it was asked on.
    pub widgets: Vec<String>,
    pub items: Vec<FixCase>,
}

/// The least term overlap for two questions to be one.
const SIMILAR: f64 = 0.5;

fn similar(a: &HashSet<String>, b: &HashSet<String>) -> bool {
    let union = a.union(b).count();
    union > 0 && a.intersection(b).count() as f64 / union as f64 >= SIMILAR
}

/// Groups `cases` (newest first) by similar question: the biggest groups
/// first, then the most recent.
pub fn group(cases: Vec<FixCase>) -> Vec<FixGroup> {
    let mut groups: Vec<(HashSet<String>, String, FixGroup)> = Vec::new();
    for case in cases {
        let terms: HashSet<String> = question_terms(&case.question).into_iter().collect();
        // A question of stop words only is matched by its text.
        let text = case.question.trim().to_lowercase();
        let found = groups.iter_mut().find(|(t, raw, _)| {
            if terms.is_empty() || t.is_empty() {
                *raw == text
            } else {
                similar(t, &terms)
            }
        });
        let g = match found {
            Some((_, _, g)) => g,
            None => {
                groups.push((
                    terms,
                    text,
                    FixGroup {
                        question: case.question.clone(),
                        cases: 0,
                        unanswered: 0,
                        thumbs_down: 0,
                        last_at: case.at,
                        widgets: Vec::new(),
                        items: Vec::new(),
                    },
                ));
                &mut groups.last_mut().expect("just pushed").2
            }
        };
        g.cases += 1;
        g.unanswered += u32::from(case.unanswered);
        g.thumbs_down += u32::from(case.thumbs_down);
        g.last_at = g.last_at.max(case.at);
        if !g.widgets.contains(&case.widget_id) {
            g.widgets.push(case.widget_id.clone());
        }
        g.items.push(case);
    }
    let mut out: Vec<FixGroup> = groups.into_iter().map(|(_, _, g)| g).collect();
    out.sort_by(|a, b| b.cases.cmp(&a.cases).then(b.last_at.cmp(&a.last_at)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(question: &str, at: u64, unanswered: bool) -> FixCase {
        FixCase {
            conversation_id: format!("conv_{at}"),
            widget_id: if at.is_multiple_of(2) { "a" } else { "b" }.into(),
            answer_id: format!("msg_{at}"),
            question: question.into(),
            unanswered,
            thumbs_down: !unanswered,
            comment: None,
            at,
        }
    }

    #[test]
    fn similar_questions_meet_and_the_biggest_group_comes_first() {
        let groups = group(vec![
            case("Do you ship to Canada?", 9, true),
            case("How do I get a refund?", 8, true),
            case("refunds, how?", 7, false),
            case("Can I get my refund back?", 6, true),
            case("what?", 5, true),
            case("What?", 4, false),
        ]);
        let shown: Vec<(&str, u32)> = groups
            .iter()
            .map(|g| (g.question.as_str(), g.cases))
            .collect();
        assert_eq!(
            shown,
            [
                ("How do I get a refund?", 3),
                ("what?", 2),
                ("Do you ship to Canada?", 1)
            ]
        );
        let refunds = &groups[0];
        assert_eq!((refunds.unanswered, refunds.thumbs_down), (2, 1));
        assert_eq!(refunds.last_at, 8);
        assert_eq!(refunds.widgets, ["a", "b"]);
        assert_eq!(refunds.items[0].answer_id, "msg_8", "newest first");
    }
}
