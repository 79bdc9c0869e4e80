//! The analytics report: per widget and UTC day, conversations, messages,
//! how many answers found nothing, how answers were rated, tokens and what
//! they cost at the configured price of the widget's model. Every day of
//! the range is in the report, the quiet ones as zeros, so a chart drawn
//! from it has no gaps to guess at.

use std::collections::BTreeMap;

use salvo::oapi::ToSchema;
use serde::Serialize;

use crate::config::ModelPrice;
use crate::limits::day_string;
use crate::store::analytics::{DAY_MS, DayCounts};
use crate::tenants::WidgetDef;

/// One day of one widget.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalyticsDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    #[serde(flatten)]
    pub counts: DayCounts,
    /// US dollars, when the model has a price.
    pub estimated_cost: Option<f64>,
}

/// A widget's days and their sums.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WidgetAnalytics {
    pub widget_id: String,
    pub title: String,
    /// The model its answers use.
    pub model: String,
    /// The price the estimates use; absent when the model has none.
    pub price: Option<ModelPrice>,
    pub days: Vec<AnalyticsDay>,
    pub totals: AnalyticsTotals,
}

/// The sums over a widget's days.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalyticsTotals {
    #[serde(flatten)]
    pub counts: DayCounts,
    /// Unanswered answers over all answers; absent without answers.
    pub unanswered_rate: Option<f64>,
    /// Thumbs up over all ratings; absent without ratings.
    pub thumbs_up_ratio: Option<f64>,
    pub estimated_cost: Option<f64>,
}

/// The report for a range of days.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalyticsReport {
    /// The first and last day (UTC, inclusive).
    pub from: String,
    pub to: String,
    /// What `estimated_cost` is in.
    pub currency: &'static str,
    pub widgets: Vec<WidgetAnalytics>,
}

/// The milliseconds `[from, to)` that the `days` days up to and including
/// `today` (a day number) cover.
pub fn range_ms(today: i64, days: u32) -> (i64, i64) {
    let first = today - i64::from(days.max(1)) + 1;
    (first * DAY_MS, (today + 1) * DAY_MS)
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn add(sum: &mut DayCounts, c: &DayCounts) {
    sum.conversations += c.conversations;
    sum.messages += c.messages;
    sum.answers += c.answers;
    sum.unanswered += c.unanswered;
    sum.thumbs_up += c.thumbs_up;
    sum.thumbs_down += c.thumbs_down;
    sum.prompt_tokens += c.prompt_tokens;
    sum.completion_tokens += c.completion_tokens;
}

/// Builds the report of `widgets` for the `days` days up to `today` from
/// the store's counts; a widget without its own model uses
/// `default_model`, and `prices` say what models cost.
pub fn report(
    today: i64,
    days: u32,
    widgets: &[WidgetDef],
    counts: Vec<DayCounts>,
    default_model: &str,
    prices: &BTreeMap<String, ModelPrice>,
) -> AnalyticsReport {
    let days = days.max(1);
    let first = today - i64::from(days) + 1;
    let mut by_widget: BTreeMap<String, BTreeMap<i64, DayCounts>> = BTreeMap::new();
    for c in counts {
        by_widget
            .entry(c.widget_id.clone())
            .or_default()
            .insert(c.day, c);
    }
    let widgets = widgets
        .iter()
        .map(|w| {
            let model = w.model.clone().unwrap_or_else(|| default_model.to_owned());
            let price = prices.get(&model).copied();
            let cost = |c: &DayCounts| price.map(|p| p.cost(c.prompt_tokens, c.completion_tokens));
            let mut known = by_widget.remove(&w.id).unwrap_or_default();
            let mut sum = DayCounts {
                widget_id: w.id.clone(),
                ..DayCounts::default()
            };
            let days: Vec<AnalyticsDay> = (first..=today)
                .map(|day| {
                    let counts = known.remove(&day).unwrap_or_else(|| DayCounts {
                        widget_id: w.id.clone(),
                        day,
                        ..DayCounts::default()
                    });
                    add(&mut sum, &counts);
                    AnalyticsDay {
                        date: day_string(day),
                        estimated_cost: cost(&counts),
                        counts,
                    }
                })
                .collect();
            let totals = AnalyticsTotals {
                unanswered_rate: ratio(sum.unanswered, sum.answers),
                thumbs_up_ratio: ratio(sum.thumbs_up, sum.thumbs_up + sum.thumbs_down),
                estimated_cost: cost(&sum),
                counts: sum,
            };
            WidgetAnalytics {
                widget_id: w.id.clone(),
                title: w.title.clone(),
                model,
                price,
                days,
                totals,
            }
        })
        .collect();
    AnalyticsReport {
        from: day_string(first),
        to: day_string(today),
        currency: "USD",
        widgets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(widget: &str, day: i64, prompt: u64, completion: u64) -> DayCounts {
        DayCounts {
            widget_id: widget.into(),
            day,
            conversations: 1,
            messages: 2,
            answers: 1,
            unanswered: 1,
            thumbs_up: 0,
            thumbs_down: 1,
            prompt_tokens: prompt,
            completion_tokens: completion,
        }
    }

    #[test]
    fn every_day_is_there_and_costs_follow_the_models_price() {
        let mut priced = WidgetDef::demo();
        priced.id = "priced".into();
        priced.model = Some("m1".into());
        let mut free = WidgetDef::demo();
        free.id = "free".into();
        let prices = BTreeMap::from([(
            "m1".to_owned(),
            ModelPrice {
                input_per_million: 1.0,
                output_per_million: 4.0,
            },
        )]);
        // 2024-01-10 is day 19732.
        let today = 19_732;
        let r = report(
            today,
            3,
            &[priced, free],
            vec![
                counts("priced", today - 2, 1_000_000, 500_000),
                counts("priced", today, 2_000, 0),
                counts("gone", today, 5, 5),
            ],
            "default-model",
            &prices,
        );
        assert_eq!(
            (r.from.as_str(), r.to.as_str()),
            ("2024-01-08", "2024-01-10")
        );
        let priced = &r.widgets[0];
        let dates: Vec<&str> = priced.days.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(dates, ["2024-01-08", "2024-01-09", "2024-01-10"]);
        assert_eq!(priced.days[1].counts.messages, 0);
        assert_eq!(priced.days[0].estimated_cost, Some(3.0));
        assert_eq!(priced.days[1].estimated_cost, Some(0.0));
        assert_eq!(priced.totals.counts.messages, 4);
        assert_eq!(priced.totals.estimated_cost, Some(3.002));
        assert_eq!(priced.totals.unanswered_rate, Some(1.0));
        assert_eq!(priced.totals.thumbs_up_ratio, Some(0.0));
        let free = &r.widgets[1];
        assert_eq!(free.model, "default-model");
        assert_eq!(free.price, None);
        assert_eq!(free.totals.estimated_cost, None);
        assert_eq!(free.totals.unanswered_rate, None);
        assert_eq!(range_ms(today, 3), (19_730 * DAY_MS, 19_733 * DAY_MS));
    }
}
