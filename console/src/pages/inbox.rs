//! Conversations: the inbox across widgets, with search and filters
//! (widget, dates, status, rating, unanswered, identified user), the
//! filtered set's export as CSV or JSON, and a transcript with each
//! answer's sources, status, rating and token usage.

use serde::Deserialize;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::shell::SectionProps;
use super::transcript::Transcript;
use super::{encode, use_widgets, when};
use crate::api::{self, NONE};

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Item {
    id: String,
    widget_id: String,
    user_id: Option<String>,
    first_question: Option<String>,
    messages: u32,
    prompt_tokens: u64,
    completion_tokens: u64,
    thumbs_up: u32,
    thumbs_down: u32,
    unanswered: u32,
    failed: u32,
    created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Page {
    items: Vec<Item>,
    next_cursor: Option<String>,
}

/// The filters as the form holds them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    pub widget: String,
    pub q: String,
    /// `YYYY-MM-DD`, the user's own day.
    pub from: String,
    pub to: String,
    pub status: String,
    pub rating: String,
    pub unanswered: bool,
    pub user: String,
}

/// Midnight of `day` (`YYYY-MM-DD`) in the browser's time zone, in ms;
/// `next`: of the day after (so "to" includes its day).
fn day_start(day: &str, next: bool) -> Option<i64> {
    let mut parts = day.split('-').map(|p| p.parse::<i32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let date = js_sys::Date::new_with_year_month_day(y as u32, m - 1, d + i32::from(next));
    let ms = date.get_time();
    ms.is_finite().then_some(ms as i64)
}

impl Filters {
    /// The query string the inbox and the export share.
    pub fn query(&self) -> String {
        let mut q: Vec<String> = Vec::new();
        let mut add = |k: &str, v: &str| {
            if !v.trim().is_empty() {
                q.push(format!("{k}={}", encode(v.trim())));
            }
        };
        add("widget", &self.widget);
        add("q", &self.q);
        add("status", &self.status);
        add("rating", &self.rating);
        add("user", &self.user);
        if let Some(ms) = day_start(&self.from, false) {
            add("from", &ms.to_string());
        }
        if let Some(ms) = day_start(&self.to, true) {
            add("to", &ms.to_string());
        }
        if self.unanswered {
            add("unanswered", "true");
        }
        q.join("&")
    }
}

fn field(e: &Event) -> Option<(String, String, bool)> {
    let target = e.target()?;
    if let Some(i) = target.dyn_ref::<HtmlInputElement>() {
        return Some((i.name(), i.value(), i.checked()));
    }
    let s = target.dyn_ref::<HtmlSelectElement>()?;
    Some((s.name(), s.value(), false))
}

#[derive(Properties, PartialEq, Debug)]
pub struct InboxProps {
    pub section: SectionProps,
    /// Filters to start with (from another screen's link).
    #[prop_or_default]
    pub start: Option<Filters>,
}

#[function_component(Inbox)]
pub fn inbox(props: &InboxProps) -> Html {
    let on_failure = props.section.on_failure.clone();
    let (widgets, _) = use_widgets(on_failure.clone());
    let filters = use_state(|| props.start.clone().unwrap_or_default());
    let list = use_state(|| None::<Result<Page, String>>);
    let more = use_state(|| None::<String>);
    let open = use_state(|| None::<Item>);
    {
        let (list, more, open, on_failure) =
            (list.clone(), more.clone(), open.clone(), on_failure.clone());
        use_effect_with((*filters).clone(), move |f| {
            list.set(None);
            open.set(None);
            let path = format!("/api/v1/admin/conversations?limit=50&{}", f.query());
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Page>("GET", &path, NONE, None).await {
                    Ok(page) => {
                        more.set(page.next_cursor.clone());
                        list.set(Some(Ok(page)));
                    }
                    Err(f) => {
                        list.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        });
    }
    let onchange = {
        let filters = filters.clone();
        Callback::from(move |e: Event| {
            let Some((name, value, checked)) = field(&e) else {
                return;
            };
            let mut f = (*filters).clone();
            match name.as_str() {
                "widget" => f.widget = value,
                "q" => f.q = value,
                "from" => f.from = value,
                "to" => f.to = value,
                "status" => f.status = value,
                "rating" => f.rating = value,
                "unanswered" => f.unanswered = checked,
                "user" => f.user = value,
                _ => return,
            }
            filters.set(f);
        })
    };
    let load_more = {
        let (list, more, filters, on_failure) = (
            list.clone(),
            more.clone(),
            filters.clone(),
            on_failure.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let Some(cursor) = (*more).clone() else {
                return;
            };
            let (list, more, on_failure) = (list.clone(), more.clone(), on_failure.clone());
            let path = format!(
                "/api/v1/admin/conversations?limit=50&cursor={}&{}",
                encode(&cursor),
                filters.query()
            );
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Page>("GET", &path, NONE, None).await {
                    Ok(page) => {
                        more.set(page.next_cursor.clone());
                        let mut all = match &*list {
                            Some(Ok(p)) => p.items.clone(),
                            _ => Vec::new(),
                        };
                        all.extend(page.items);
                        list.set(Some(Ok(Page {
                            items: all,
                            next_cursor: page.next_cursor,
                        })));
                    }
                    Err(f) => on_failure.emit(f),
                }
            });
        })
    };
    let show = |item: &Item| {
        let (open, item) = (open.clone(), item.clone());
        Callback::from(move |_: MouseEvent| open.set(Some(item.clone())))
    };
    let title_of = |id: &str| {
        widgets
            .iter()
            .find(|(w, _)| w == id)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let f = &*filters;
    let query = f.query();
    let export =
        |format: &str| format!("/api/v1/admin/conversations/export?format={format}&{query}");
    let form = html! {
        <form class="card filters" aria-label="Filters" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
            <div>
                <label for="f-q">{ "Search" }</label>
                <input id="f-q" name="q" type="search" value={f.q.clone()} placeholder="Words in any message" onchange={onchange.clone()} />
            </div>
            <div>
                <label for="f-widget">{ "Widget" }</label>
                <select id="f-widget" name="widget" onchange={onchange.clone()}>
                    <option value="" selected={f.widget.is_empty()}>{ "All widgets" }</option>
                    { for widgets.iter().map(|(id, title)| html! {
                        <option value={id.clone()} selected={f.widget == *id}>{ title.clone() }</option>
                    }) }
                </select>
            </div>
            <div>
                <label for="f-from">{ "From" }</label>
                <input id="f-from" name="from" type="date" value={f.from.clone()} onchange={onchange.clone()} />
            </div>
            <div>
                <label for="f-to">{ "To" }</label>
                <input id="f-to" name="to" type="date" value={f.to.clone()} onchange={onchange.clone()} />
            </div>
            <div>
                <label for="f-status">{ "Answers" }</label>
                <select id="f-status" name="status" onchange={onchange.clone()}>
                    <option value="" selected={f.status.is_empty()}>{ "Any status" }</option>
                    <option value="complete" selected={f.status == "complete"}>{ "Complete" }</option>
                    <option value="interrupted" selected={f.status == "interrupted"}>{ "Interrupted" }</option>
                    <option value="error" selected={f.status == "error"}>{ "Error" }</option>
                </select>
            </div>
            <div>
                <label for="f-rating">{ "Rating" }</label>
                <select id="f-rating" name="rating" onchange={onchange.clone()}>
                    <option value="" selected={f.rating.is_empty()}>{ "Any rating" }</option>
                    <option value="up" selected={f.rating == "up"}>{ "Helpful" }</option>
                    <option value="down" selected={f.rating == "down"}>{ "Not helpful" }</option>
                </select>
            </div>
            <div>
                <label for="f-user">{ "Identified user" }</label>
                <input id="f-user" name="user" value={f.user.clone()} placeholder="User id" onchange={onchange.clone()} />
            </div>
            <div class="check">
                <input id="f-unanswered" name="unanswered" type="checkbox" checked={f.unanswered} onchange={onchange.clone()} />
                <label for="f-unanswered">{ "Only with unanswered questions" }</label>
            </div>
        </form>
    };
    let rows = match &*list {
        None => html! { <p class="muted" role="status">{ "Loading conversations…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(page)) if page.items.is_empty() => {
            html! { <p class="muted" role="status">{ "No conversation matches." }</p> }
        }
        Some(Ok(page)) => html! {
            <>
            <table aria-label="Conversations">
                <thead><tr>
                    <th>{ "Started" }</th><th>{ "Widget" }</th><th>{ "First question" }</th><th>{ "Messages" }</th>
                    <th>{ "Ratings" }</th><th>{ "Flags" }</th><th>{ "Tokens" }</th><th>{ "User" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for page.items.iter().map(|c| {
                        let mut flags = Vec::new();
                        if c.unanswered > 0 { flags.push(format!("{} unanswered", c.unanswered)); }
                        if c.failed > 0 { flags.push(format!("{} failed", c.failed)); }
                        html! {
                            <tr key={c.id.clone()}>
                                <td>{ when(c.created_at) }</td>
                                <td>{ title_of(&c.widget_id) }</td>
                                <td dir="auto">{ c.first_question.clone().unwrap_or_default() }</td>
                                <td>{ c.messages }</td>
                                <td>
                                    if c.thumbs_up > 0 { <span class="rating up">{ format!("▲ {}", c.thumbs_up) }</span>{ " " } }
                                    if c.thumbs_down > 0 { <span class="rating down">{ format!("▼ {}", c.thumbs_down) }</span> }
                                </td>
                                <td>{ flags.join(", ") }</td>
                                <td>{ c.prompt_tokens + c.completion_tokens }</td>
                                <td>{ c.user_id.clone().unwrap_or_else(|| "anonymous".into()) }</td>
                                <td><button type="button" aria-label={format!("Read conversation {}", c.id)} onclick={show(c)}>{ "Read" }</button></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            if more.is_some() {
                <div class="actions"><button type="button" onclick={load_more}>{ "Show older" }</button></div>
            }
            </>
        },
    };
    let transcript = match &*open {
        None => html! {},
        Some(c) => html! {
            <Transcript key={c.id.clone()} widget={c.widget_id.clone()} widget_title={title_of(&c.widget_id)}
                conversation={c.id.clone()} on_failure={on_failure.clone()} />
        },
    };
    html! {
        <>
            <h1>{ "Conversations" }</h1>
            { form }
            <div class="actions">
                <a class="button" href={export("csv")} download="porthole-conversations.csv">{ "Export CSV" }</a>
                <a class="button" href={export("json")} download="porthole-conversations.json">{ "Export JSON" }</a>
                <span class="muted small">{ "The export holds every message of the conversations shown (up to 5000)." }</span>
            </div>
            { rows }
            { transcript }
        </>
    }
}
