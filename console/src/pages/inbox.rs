//! Conversations: a widget's conversations, newest first, and a transcript
//! with each answer's status and token usage.

use serde::Deserialize;
use yew::prelude::*;

use super::shell::SectionProps;
use super::{encode, use_widgets, when, widget_picker};
use crate::api::{self, NONE};

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Summary {
    id: String,
    user_id: Option<String>,
    messages: u32,
    prompt_tokens: u64,
    completion_tokens: u64,
    created_at: u64,
    last_message_at: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ConversationPage {
    items: Vec<Summary>,
    next_cursor: Option<String>,
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
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct MessagePage {
    items: Vec<Message>,
}

#[function_component(Inbox)]
pub fn inbox(props: &SectionProps) -> Html {
    let (widgets, widget) = use_widgets(props.on_failure.clone());
    let list = use_state(|| None::<Result<ConversationPage, String>>);
    let open = use_state(|| None::<(String, Result<Vec<Message>, String>)>);
    {
        let (list, open, on_failure) = (list.clone(), open.clone(), props.on_failure.clone());
        use_effect_with((*widget).clone(), move |id| {
            list.set(None);
            open.set(None);
            if let Some(id) = id.clone() {
                wasm_bindgen_futures::spawn_local(async move {
                    let path = format!(
                        "/api/v1/admin/widgets/{}/conversations?limit=50",
                        encode(&id)
                    );
                    match api::json::<ConversationPage>("GET", &path, NONE, None).await {
                        Ok(page) => list.set(Some(Ok(page))),
                        Err(f) => {
                            list.set(Some(Err(f.message.clone())));
                            on_failure.emit(f);
                        }
                    }
                });
            }
        });
    }
    let show = |conversation: String| {
        let (open, widget, on_failure) = (open.clone(), widget.clone(), props.on_failure.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(id) = (*widget).clone() else { return };
            let (open, on_failure, conversation) =
                (open.clone(), on_failure.clone(), conversation.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let path = format!(
                    "/api/v1/admin/widgets/{}/conversations/{}/messages?limit=200",
                    encode(&id),
                    encode(&conversation)
                );
                match api::json::<MessagePage>("GET", &path, NONE, None).await {
                    Ok(page) => open.set(Some((conversation, Ok(page.items)))),
                    Err(f) => {
                        open.set(Some((conversation, Err(f.message.clone()))));
                        on_failure.emit(f);
                    }
                }
            });
        })
    };
    let rows = match &*list {
        None => html! { <p class="muted" role="status">{ "Loading conversations…" }</p> },
        Some(Err(e)) => html! { <p class="error" role="alert">{ e.clone() }</p> },
        Some(Ok(page)) if page.items.is_empty() => {
            html! { <p class="muted">{ "No conversations yet." }</p> }
        }
        Some(Ok(page)) => html! {
            <>
            <table>
                <thead><tr><th>{ "Started" }</th><th>{ "Last message" }</th><th>{ "Messages" }</th><th>{ "Tokens" }</th><th>{ "User" }</th><th></th></tr></thead>
                <tbody>
                    { for page.items.iter().map(|c| html! {
                        <tr key={c.id.clone()}>
                            <td>{ when(c.created_at) }</td>
                            <td>{ when(c.last_message_at) }</td>
                            <td>{ c.messages }</td>
                            <td>{ c.prompt_tokens + c.completion_tokens }</td>
                            <td>{ c.user_id.clone().unwrap_or_else(|| "anonymous".into()) }</td>
                            <td><button type="button" aria-label={format!("Read conversation {}", c.id)} onclick={show(c.id.clone())}>{ "Read" }</button></td>
                        </tr>
                    }) }
                </tbody>
            </table>
            if page.next_cursor.is_some() {
                <p class="muted">{ "Showing the newest 50." }</p>
            }
            </>
        },
    };
    let transcript = match &*open {
        None => html! {},
        Some((id, Err(e))) => html! { <p class="error" role="alert">{ format!("{id}: {e}") }</p> },
        Some((id, Ok(messages))) => html! {
            <section aria-label="Transcript">
                <h2>{ "Transcript " }<code>{ id.clone() }</code></h2>
                <ol class="transcript">
                    { for messages.iter().map(|m| {
                        let tokens = match (m.prompt_tokens, m.completion_tokens) {
                            (Some(p), Some(c)) => format!(" · {p} + {c} tokens"),
                            _ => String::new(),
                        };
                        html! {
                            <li key={m.id.clone()} class={classes!("turn", m.role.clone())}>
                                <p class="muted">{ format!("{} · {} · {}{}", m.role, when(m.created_at), m.status, tokens) }</p>
                                <p class="content" dir="auto">{ m.content.clone() }</p>
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
                    }) }
                </ol>
            </section>
        },
    };
    html! {
        <>
            <h1>{ "Conversations" }</h1>
            { widget_picker("inbox-widget", &widgets, &widget) }
            <h2>{ "Newest first" }</h2>
            { rows }
            { transcript }
        </>
    }
}
