//! Analytics: per widget (or all together) and day, conversations,
//! answers and how many found nothing, ratings, tokens and their estimated
//! cost, drawn as SVG bar charts made here (no chart script), with the
//! table of the numbers behind them. Numbers, money and dates are
//! formatted by the browser's `Intl` in the user's language.

use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use super::encode;
use super::shell::SectionProps;
use super::use_widgets;
use crate::api::{self, NONE};

#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
struct Counts {
    conversations: u64,
    messages: u64,
    answers: u64,
    unanswered: u64,
    thumbs_up: u64,
    thumbs_down: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.conversations += o.conversations;
        self.messages += o.messages;
        self.answers += o.answers;
        self.unanswered += o.unanswered;
        self.thumbs_up += o.thumbs_up;
        self.thumbs_down += o.thumbs_down;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Day {
    date: String,
    #[serde(flatten)]
    counts: Counts,
    estimated_cost: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct WidgetReport {
    widget_id: String,
    title: String,
    model: String,
    days: Vec<Day>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Report {
    currency: String,
    widgets: Vec<WidgetReport>,
}

/// The days of all the report's widgets added up, and the widgets whose
/// tokens have no price (so the cost leaves them out).
fn combined(r: &Report) -> (Vec<Day>, Vec<String>) {
    let mut days: Vec<Day> = Vec::new();
    let mut unpriced = Vec::new();
    for w in &r.widgets {
        for (at, d) in w.days.iter().enumerate() {
            if days.len() <= at {
                days.push(Day {
                    date: d.date.clone(),
                    counts: Counts::default(),
                    estimated_cost: None,
                });
            }
            let sum = &mut days[at];
            sum.counts.add(&d.counts);
            if let Some(c) = d.estimated_cost {
                sum.estimated_cost = Some(sum.estimated_cost.unwrap_or(0.0) + c);
            }
        }
        let spent = w
            .days
            .iter()
            .any(|d| d.counts.prompt_tokens + d.counts.completion_tokens > 0);
        if spent && w.days.iter().all(|d| d.estimated_cost.is_none()) {
            unpriced.push(format!("{} ({})", w.title, w.model));
        }
    }
    (days, unpriced)
}

/// What a number is, for `Intl.NumberFormat`.
#[derive(Clone, Copy)]
enum Style {
    Count,
    Percent,
    Money,
}

fn language() -> String {
    web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_else(|| "en".into())
}

/// `value` as the user's language writes it.
fn format(value: f64, style: Style, currency: &str) -> String {
    let options = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = js_sys::Reflect::set(&options, &k.into(), &v);
    };
    match style {
        Style::Count => set("maximumFractionDigits", 0.into()),
        Style::Percent => {
            set("style", "percent".into());
            set("maximumFractionDigits", 1.into());
        }
        Style::Money => {
            set("style", "currency".into());
            set("currency", currency.into());
            set("minimumFractionDigits", 2.into());
            set("maximumFractionDigits", 4.into());
        }
    }
    let locales = js_sys::Array::of1(&language().into());
    let f = js_sys::Intl::NumberFormat::new(&locales, &options).format();
    f.call1(&JsValue::NULL, &value.into())
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

/// A UTC day (`YYYY-MM-DD`) as the user's language writes it, short.
fn short_date(date: &str) -> String {
    let d = js_sys::Date::new(&format!("{date}T00:00:00Z").into());
    let options = js_sys::Object::new();
    for (k, v) in [("timeZone", "UTC"), ("month", "short"), ("day", "numeric")] {
        let _ = js_sys::Reflect::set(&options, &k.into(), &v.into());
    }
    d.to_locale_date_string(&language(), &options)
        .as_string()
        .unwrap_or_else(|| date.to_owned())
}

/// One series of a stacked bar chart: its colour class, name and values.
struct Series<'a> {
    class: &'static str,
    name: &'a str,
    values: Vec<f64>,
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 180;
const LEFT: i64 = 72;
const TOP: i64 = 10;
const PLOT: i64 = 140;

/// A stacked bar chart of `series` over `dates`; each bar says its
/// numbers on hover, and the table below the charts has them all.
fn bar_chart(
    title: &str,
    dates: &[String],
    series: &[Series<'_>],
    fmt: &dyn Fn(f64) -> String,
) -> Html {
    let n = dates.len().max(1) as i64;
    let totals: Vec<f64> = (0..dates.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max);
    let slot = (WIDTH - LEFT - 8) * 100 / n;
    let bar = (slot * 7 / 10).max(100) / 100;
    let height = |v: f64| -> i64 {
        if max <= 0.0 {
            0
        } else {
            (v / max * PLOT as f64).round() as i64
        }
    };
    let bottom = TOP + PLOT;
    let labels: Vec<usize> = if dates.len() <= 1 {
        vec![0]
    } else {
        let mut l = vec![0, dates.len() / 2, dates.len() - 1];
        l.dedup();
        l
    };
    let bars = (0..dates.len()).map(|i| {
        let x = LEFT + (i as i64 * slot + (slot - bar * 100) / 2) / 100;
        let mut y = bottom;
        let tip = std::iter::once(short_date(&dates[i]))
            .chain(series.iter().map(|s| {
                format!("{}: {}", s.name, fmt(s.values.get(i).copied().unwrap_or(0.0)))
            }))
            .collect::<Vec<_>>()
            .join("\n");
        let parts = series.iter().map(|s| {
            let h = height(s.values.get(i).copied().unwrap_or(0.0));
            y -= h;
            if h == 0 {
                html! {}
            } else {
                html! { <rect class={s.class} x={x.to_string()} y={y.to_string()} width={bar.to_string()} height={h.to_string()} /> }
            }
        });
        html! {
            <g>
                <title>{ tip }</title>
                // The whole column answers hover, even a day of zeros.
                <rect class="hit" x={(LEFT + i as i64 * slot / 100).to_string()} y={TOP.to_string()}
                    width={(slot / 100).max(1).to_string()} height={PLOT.to_string()} />
                { for parts }
            </g>
        }
    });
    let last = dates.len().saturating_sub(1);
    let x_labels = labels.into_iter().map(|i| {
        // The first starts at its bar, the last ends at its bar: inside the chart.
        let (x, anchor) = if i == 0 && last > 0 {
            (LEFT, "start")
        } else if i == last && last > 0 {
            (LEFT + (i as i64 + 1) * slot / 100, "end")
        } else {
            (LEFT + (i as i64 * slot + slot / 2) / 100, "middle")
        };
        html! { <text class="axis" x={x.to_string()} y={(bottom + 24).to_string()} text-anchor={anchor}>{ short_date(&dates[i]) }</text> }
    });
    html! {
        <figure class="chart">
            <figcaption>{ title.to_owned() }</figcaption>
            <svg viewBox={format!("0 0 {WIDTH} {HEIGHT}")} role="img"
                aria-label={format!("{title}, per day; the numbers are in the table below")}>
                <line class="grid" x1={LEFT.to_string()} x2={(WIDTH - 8).to_string()} y1={TOP.to_string()} y2={TOP.to_string()} />
                <line class="base" x1={LEFT.to_string()} x2={(WIDTH - 8).to_string()} y1={bottom.to_string()} y2={bottom.to_string()} />
                <text class="axis" x={(LEFT - 6).to_string()} y={(TOP + 6).to_string()} text-anchor="end">{ fmt(max) }</text>
                <text class="axis" x={(LEFT - 6).to_string()} y={(bottom + 6).to_string()} text-anchor="end">{ fmt(0.0) }</text>
                { for bars }
                { for x_labels }
            </svg>
            <ul class="legend">
                { for series.iter().map(|s| html! { <li><span class={classes!("swatch", s.class)}></span>{ s.name.to_owned() }</li> }) }
            </ul>
        </figure>
    }
}

#[function_component(Analytics)]
pub fn analytics(props: &SectionProps) -> Html {
    let on_failure = props.on_failure.clone();
    let (widgets, _) = use_widgets(on_failure.clone());
    let widget = use_state(String::new);
    let days = use_state(|| 30_u32);
    let report = use_state(|| None::<Result<Report, String>>);
    {
        let report = report.clone();
        use_effect_with(((*widget).clone(), *days), move |(w, days)| {
            report.set(None);
            let mut path = format!("/api/v1/admin/analytics?days={days}");
            if !w.is_empty() {
                path.push_str(&format!("&widget={}", encode(w)));
            }
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Report>("GET", &path, NONE, None).await {
                    Ok(r) => report.set(Some(Ok(r))),
                    Err(f) => {
                        report.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        });
    }
    let select = |apply: Callback<String>| {
        Callback::from(move |e: Event| {
            if let Some(s) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlSelectElement>().ok())
            {
                apply.emit(s.value());
            }
        })
    };
    let choose_widget = {
        let widget = widget.clone();
        select(Callback::from(move |v: String| widget.set(v)))
    };
    let choose_days = {
        let days = days.clone();
        select(Callback::from(move |v: String| {
            days.set(v.parse().unwrap_or(30))
        }))
    };
    let body = match &*report {
        None => html! { <p class="muted" role="status">{ "Loading the numbers…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(r)) => {
            let (all, unpriced) = combined(r);
            let currency = r.currency.clone();
            let mut sum = Counts::default();
            for d in &all {
                sum.add(&d.counts);
            }
            let cost: Option<f64> = all
                .iter()
                .filter_map(|d| d.estimated_cost)
                .fold(None, |acc, c| Some(acc.unwrap_or(0.0) + c));
            let count = |v: f64| format(v, Style::Count, "");
            let money = {
                let currency = currency.clone();
                move |v: f64| format(v, Style::Money, &currency)
            };
            let ratio = |part: u64, whole: u64| {
                if whole == 0 {
                    "–".to_owned()
                } else {
                    format(part as f64 / whole as f64, Style::Percent, "")
                }
            };
            let dates: Vec<String> = all.iter().map(|d| d.date.clone()).collect();
            let col = |f: fn(&Counts) -> u64| -> Vec<f64> {
                all.iter().map(|d| f(&d.counts) as f64).collect()
            };
            let tile = |label: &str, value: String, note: Option<String>| {
                html! {
                    <div class="tile">
                        <p class="muted small">{ label.to_owned() }</p>
                        <p class="figure">{ value }</p>
                        if let Some(note) = note { <p class="muted small">{ note }</p> }
                    </div>
                }
            };
            html! {
                <>
                    <section class="tiles" aria-label="Totals">
                        { tile("Conversations", count(sum.conversations as f64), None) }
                        { tile("Messages", count(sum.messages as f64), None) }
                        { tile("Unanswered", ratio(sum.unanswered, sum.answers),
                            Some(format!("{} of {} answers found nothing", count(sum.unanswered as f64), count(sum.answers as f64)))) }
                        { tile("Thumbs up", ratio(sum.thumbs_up, sum.thumbs_up + sum.thumbs_down),
                            Some(format!("{} up, {} down", count(sum.thumbs_up as f64), count(sum.thumbs_down as f64)))) }
                        { tile("Tokens", count((sum.prompt_tokens + sum.completion_tokens) as f64),
                            Some(format!("{} prompt, {} completion", count(sum.prompt_tokens as f64), count(sum.completion_tokens as f64)))) }
                        { tile("Estimated cost", cost.map(&money).unwrap_or_else(|| "No price set".into()), None) }
                    </section>
                    if !unpriced.is_empty() {
                        <p class="muted small">{ format!("Not in the cost: {} (no price for the model; set [prices.\"model\"] in the server's settings).", unpriced.join(", ")) }</p>
                    }
                    <div class="charts">
                        { bar_chart("Conversations", &dates, &[Series { class: "s0", name: "Conversations", values: col(|c| c.conversations) }], &count) }
                        { bar_chart("Answers", &dates, &[
                            Series { class: "s0", name: "Answered", values: col(|c| c.answers - c.unanswered.min(c.answers)) },
                            Series { class: "s1", name: "Found nothing", values: col(|c| c.unanswered) },
                        ], &count) }
                        { bar_chart("Ratings", &dates, &[
                            Series { class: "s2", name: "Thumbs up", values: col(|c| c.thumbs_up) },
                            Series { class: "s1", name: "Thumbs down", values: col(|c| c.thumbs_down) },
                        ], &count) }
                        { bar_chart("Tokens", &dates, &[
                            Series { class: "s0", name: "Prompt", values: col(|c| c.prompt_tokens) },
                            Series { class: "s3", name: "Completion", values: col(|c| c.completion_tokens) },
                        ], &count) }
                        if cost.is_some() {
                            { bar_chart("Estimated cost", &dates, &[Series { class: "s2", name: "Estimated cost",
                                values: all.iter().map(|d| d.estimated_cost.unwrap_or(0.0)).collect() }], &money) }
                        }
                    </div>
                    <h2>{ "The numbers per day" }</h2>
                    <div class="scroll">
                        <table aria-label="Analytics per day">
                            <thead><tr>
                                <th scope="col">{ "Day (UTC)" }</th><th scope="col">{ "Conversations" }</th><th scope="col">{ "Messages" }</th>
                                <th scope="col">{ "Answers" }</th><th scope="col">{ "Found nothing" }</th><th scope="col">{ "Thumbs up" }</th>
                                <th scope="col">{ "Thumbs down" }</th><th scope="col">{ "Prompt tokens" }</th><th scope="col">{ "Completion tokens" }</th>
                                <th scope="col">{ "Estimated cost" }</th>
                            </tr></thead>
                            <tbody>
                                { for all.iter().rev().map(|d| { let c = &d.counts; html! {
                                    <tr key={d.date.clone()}>
                                        <th scope="row">{ short_date(&d.date) }</th>
                                        <td class="num">{ count(c.conversations as f64) }</td>
                                        <td class="num">{ count(c.messages as f64) }</td>
                                        <td class="num">{ count(c.answers as f64) }</td>
                                        <td class="num">{ count(c.unanswered as f64) }</td>
                                        <td class="num">{ count(c.thumbs_up as f64) }</td>
                                        <td class="num">{ count(c.thumbs_down as f64) }</td>
                                        <td class="num">{ count(c.prompt_tokens as f64) }</td>
                                        <td class="num">{ count(c.completion_tokens as f64) }</td>
                                        <td class="num">{ d.estimated_cost.map(&money).unwrap_or_else(|| "–".into()) }</td>
                                    </tr>
                                } }) }
                            </tbody>
                        </table>
                    </div>
                </>
            }
        }
    };
    html! {
        <>
            <h1>{ "Analytics" }</h1>
            <p class="muted">{ "What visitors did each day, what the assistant could not answer, how they rated it, and what the tokens cost at the server's prices." }</p>
            <div class="card filters">
                <div>
                    <label for="an-widget">{ "Widget" }</label>
                    <select id="an-widget" onchange={choose_widget}>
                        <option value="" selected={widget.is_empty()}>{ "All widgets" }</option>
                        { for widgets.iter().map(|(id, title)| html! {
                            <option value={id.clone()} selected={*widget == *id}>{ title.clone() }</option>
                        }) }
                    </select>
                </div>
                <div>
                    <label for="an-days">{ "Period" }</label>
                    <select id="an-days" onchange={choose_days}>
                        { for [7_u32, 30, 90, 365].into_iter().map(|d| html! {
                            <option value={d.to_string()} selected={*days == d}>{ format!("Last {d} days") }</option>
                        }) }
                    </select>
                </div>
            </div>
            { body }
        </>
    }
}
