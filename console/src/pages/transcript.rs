//! A conversation's transcript: each message with its status, time and
//! token usage, each answer's sources and the visitor's rating. Shared by
//! the inbox and the questions to fix.

use serde::Deserialize;
use yew::prelude::*;

use super::{encode, when};
use crate::api::{self, Failure, NONE};

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Source {
    n: u32,
    title: String,
    url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Message {
    id: String,
    role: String,
    content: String,
    status: String,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    created_at: u64,
    #[serde(default)]
    rating: Option<String>,
    #[serde(default)]
    rating_comment: Option<String>,
    #[serde(default)]
    sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct MessagePage {
    items: Vec<Message>,
}

#[derive(Properties, PartialEq, Debug)]
pub struct TranscriptProps {
    pub widget: String,
    pub widget_title: String,
    pub conversation: String,
    /// The answer to point at (a question to fix), if any.
    #[prop_or_default]
    pub mark: Option<String>,
    pub on_failure: Callback<Failure>,
}

fn message(m: &Message, marked: bool) -> Html {
    let tokens = match (m.prompt_tokens, m.completion_tokens) {
        (Some(p), Some(c)) => format!(" · {p} + {c} tokens"),
        _ => String::new(),
    };
    html! {
        <li key={m.id.clone()} id={format!("m-{}", m.id)} class={classes!("turn", m.role.clone(), marked.then_some("marked"))}>
            <p class="muted">{ format!("{} · {} · {}{}", m.role, when(m.created_at), m.status, tokens) }</p>
            <p class="content" dir="auto">{ m.content.clone() }</p>
            if !m.sources.is_empty() {
                <ol class="cited" aria-label="Sources">
                    { for m.sources.iter().map(|s| html! {
                        <li>
                            { format!("[{}] ", s.n) }
                            if let Some(u) = &s.url {
                                <a href={u.clone()} target="_blank" rel="noopener noreferrer">{ s.title.clone() }</a>
                            } else {
                                { s.title.clone() }
                            }
                        </li>
                    }) }
                </ol>
            }
            if let Some(r) = &m.rating {
                <p class={classes!("rating", r.clone())}>
                    { if r == "down" { "Rated not helpful" } else { "Rated helpful" } }
                    if let Some(c) = &m.rating_comment {
                        { ": " }<q dir="auto">{ c.clone() }</q>
                    }
                </p>
            }
        </li>
    }
}

#[function_component(Transcript)]
pub fn transcript(props: &TranscriptProps) -> Html {
    let messages = use_state(|| None::<Result<Vec<Message>, String>>);
    {
        let messages = messages.clone();
        let on_failure = props.on_failure.clone();
        let path = format!(
            "/api/v1/admin/widgets/{}/conversations/{}/messages?limit=200",
            encode(&props.widget),
            encode(&props.conversation)
        );
        use_effect_with(path, move |path| {
            let path = path.clone();
            messages.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match api::json::<MessagePage>("GET", &path, NONE, None).await {
                    Ok(page) => messages.set(Some(Ok(page.items))),
                    Err(f) => {
                        messages.set(Some(Err(f.message.clone())));
                        on_failure.emit(f);
                    }
                }
            });
        });
    }
    let body = match &*messages {
        None => html! { <p class="muted" role="status">{ "Loading the transcript…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(all)) => {
            let started = all.first().map(|m| when(m.created_at)).unwrap_or_default();
            html! {
                <>
                    <p class="muted">{ format!("{} · started {started}", props.widget_title) }</p>
                    <ol class="transcript">
                        { for all.iter().map(|m| message(m, props.mark.as_deref() == Some(m.id.as_str()))) }
                    </ol>
                </>
            }
        }
    };
    html! {
        <section aria-label="Transcript">
            <h2>{ "Transcript " }<code>{ props.conversation.clone() }</code></h2>
            { body }
        </section>
    }
}
