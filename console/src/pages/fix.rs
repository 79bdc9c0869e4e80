//! Questions to fix: what visitors asked that the knowledge could not
//! answer, and the answers they rated down, grouped by similar question,
//! the biggest group first; each case opens its conversation.

use serde::Deserialize;
use yew::prelude::*;

use super::shell::SectionProps;
use super::transcript::Transcript;
use super::{encode, use_widgets, when};
use crate::api::{self, NONE};

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Case {
    conversation_id: String,
    widget_id: String,
    answer_id: String,
    question: String,
    unanswered: bool,
    thumbs_down: bool,
    comment: Option<String>,
    at: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Group {
    question: String,
    cases: u32,
    unanswered: u32,
    thumbs_down: u32,
    last_at: u64,
    widgets: Vec<String>,
    items: Vec<Case>,
}

#[function_component(QuestionsToFix)]
pub fn questions_to_fix(props: &SectionProps) -> Html {
    let on_failure = props.on_failure.clone();
    let (widgets, _) = use_widgets(on_failure.clone());
    let widget = use_state(String::new);
    let groups = use_state(|| None::<Result<Vec<Group>, String>>);
    let expanded = use_state(|| None::<usize>);
    let open = use_state(|| None::<Case>);
    {
        let (groups, expanded, open, on_failure) = (
            groups.clone(),
            expanded.clone(),
            open.clone(),
            on_failure.clone(),
        );
        use_effect_with((*widget).clone(), move |w| {
            groups.set(None);
            expanded.set(None);
            open.set(None);
            let path = if w.is_empty() {
                "/api/v1/admin/questions-to-fix".to_owned()
            } else {
                format!("/api/v1/admin/questions-to-fix?widget={}", encode(w))
            };
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<Vec<Group>>("GET", &path, NONE, None).await {
                    Ok(all) => groups.set(Some(Ok(all))),
                    Err(f) => {
                        groups.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        });
    }
    let title_of = |id: &str| {
        widgets
            .iter()
            .find(|(w, _)| w == id)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let choose = {
        let widget = widget.clone();
        Callback::from(move |e: Event| {
            if let Some(s) = e
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlSelectElement>(t).ok())
            {
                widget.set(s.value());
            }
        })
    };
    let toggle = |at: usize| {
        let expanded = expanded.clone();
        Callback::from(move |_: MouseEvent| {
            expanded.set(if *expanded == Some(at) {
                None
            } else {
                Some(at)
            })
        })
    };
    let read = |case: &Case| {
        let (open, case) = (open.clone(), case.clone());
        Callback::from(move |_: MouseEvent| open.set(Some(case.clone())))
    };
    let why = |g: &Group| {
        let mut parts = Vec::new();
        if g.unanswered > 0 {
            parts.push(format!("{} found nothing in the knowledge", g.unanswered));
        }
        if g.thumbs_down > 0 {
            parts.push(format!("{} rated not helpful", g.thumbs_down));
        }
        parts.join(", ")
    };
    let list = match &*groups {
        None => html! { <p class="muted" role="status">{ "Loading the questions…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(all)) if all.is_empty() => html! {
            <p class="muted" role="status">{ "Nothing to fix: every question found an answer, and none was rated down." }</p>
        },
        Some(Ok(all)) => html! {
            <table aria-label="Questions to fix">
                <thead><tr>
                    <th>{ "Question" }</th><th>{ "Times" }</th><th>{ "Why" }</th>
                    <th>{ "Last asked" }</th><th>{ "Widgets" }</th><th></th>
                </tr></thead>
                <tbody>
                    { for all.iter().enumerate().map(|(at, g)| {
                        let shown = *expanded == Some(at);
                        let cases = if shown { html! {
                            <tr class="cases">
                                <td colspan="6">
                                    <ul aria-label={format!("Cases of “{}”", g.question)}>
                                        { for g.items.iter().map(|c| html! {
                                            <li key={c.answer_id.clone()}>
                                                <span dir="auto">{ format!("“{}”", c.question) }</span>
                                                <span class="muted">{ format!(" · {} · {}", title_of(&c.widget_id), when(c.at)) }</span>
                                                if c.unanswered { <span class="flag">{ " · found nothing" }</span> }
                                                if c.thumbs_down { <span class="rating down">{ " · rated not helpful" }</span> }
                                                if let Some(text) = &c.comment { { ": " }<q dir="auto">{ text.clone() }</q> }
                                                { " " }
                                                <button type="button" aria-label={format!("Read the conversation of “{}”", c.question)} onclick={read(c)}>{ "Read" }</button>
                                            </li>
                                        }) }
                                    </ul>
                                </td>
                            </tr>
                        } } else { html! {} };
                        html! {
                            <>
                                <tr>
                                    <td dir="auto">{ g.question.clone() }</td>
                                    <td>{ g.cases }</td>
                                    <td>{ why(g) }</td>
                                    <td>{ when(g.last_at) }</td>
                                    <td>{ g.widgets.iter().map(|w| title_of(w)).collect::<Vec<_>>().join(", ") }</td>
                                    <td>
                                        <button type="button" aria-expanded={if shown { "true" } else { "false" }} onclick={toggle(at)}>
                                            { if shown { "Hide cases" } else { "Show cases" } }
                                        </button>
                                    </td>
                                </tr>
                                { cases }
                            </>
                        }
                    }) }
                </tbody>
            </table>
        },
    };
    let transcript = match &*open {
        None => html! {},
        Some(c) => html! {
            <Transcript key={c.answer_id.clone()} widget={c.widget_id.clone()} widget_title={title_of(&c.widget_id)}
                conversation={c.conversation_id.clone()} mark={Some(c.answer_id.clone())} on_failure={on_failure.clone()} />
        },
    };
    html! {
        <>
            <h1>{ "Questions to fix" }</h1>
            <p class="muted">{ "Questions the knowledge had nothing for, and answers visitors rated not helpful, grouped by similar question. Add the missing page or FAQ under Knowledge, then try the question there." }</p>
            <div class="card filters">
                <div>
                    <label for="fix-widget">{ "Widget" }</label>
                    <select id="fix-widget" onchange={choose}>
                        <option value="" selected={widget.is_empty()}>{ "All widgets" }</option>
                        { for widgets.iter().map(|(id, title)| html! {
                            <option value={id.clone()} selected={*widget == *id}>{ title.clone() }</option>
                        }) }
                    </select>
                </div>
            </div>
            { list }
            { transcript }
        </>
    }
}
