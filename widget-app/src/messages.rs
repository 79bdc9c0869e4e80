//! The conversation: greeting, starter prompts, messages and the typing
//! indicator, in a `role="log"` region that follows the answer unless the
//! visitor scrolled up. The log is not live: a screen reader hears each
//! finished answer once, from the panel's announcer, not every token.

use std::cell::Cell;
use std::rc::Rc;

use protocol::i18n::Text;
use protocol::widget::{Rating, Role, WidgetConfig};
use stylist::yew::use_style;
use yew::prelude::*;

use crate::state::{Chat, Message, Shown};
use crate::{markdown, render};

#[derive(Properties, PartialEq, Debug)]
pub struct MessagesProps {
    pub chat: Rc<Chat>,
    pub config: Rc<WidgetConfig>,
    pub on_starter: Callback<String>,
    pub on_rate: Callback<Rate>,
}

/// A visitor's rating of the answer shown with `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub key: u64,
    pub rating: Option<Rating>,
    pub comment: Option<String>,
}

/// Where the visitor is with rating one answer: its comment box open, or
/// thanked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feedback {
    Commenting(u64),
    Thanked(u64),
}

/// A thumb, pointing up; turned over for "not helpful".
const THUMB: &str = "M2 10h4v11H2zM8 21h9.2a2 2 0 0 0 2-1.6l1.3-6.6A2 2 0 0 0 18.5 10H14l.7-3.9A2 2 0 0 0 12.8 4L8 10z";

/// Within this many pixels of the bottom counts as "at the bottom".
const STICK_PX: i32 = 48;

#[function_component(Messages)]
pub fn messages(props: &MessagesProps) -> Html {
    let style = use_style!(
        r#"
        flex: 1; overflow-y: auto; padding: 14px 12px 6px;
        display: flex; flex-direction: column; gap: 10px;
        overscroll-behavior: contain;
        .msg { max-width: 88%; padding: 8px 12px; border-radius: var(--ph-radius); word-wrap: break-word; overflow-wrap: anywhere; }
        .msg.user { align-self: flex-end; background: var(--ph-primary); color: #fff; white-space: pre-wrap; border-end-end-radius: 4px; }
        .msg.assistant { align-self: flex-start; background: var(--ph-bubble); border-end-start-radius: 4px; }
        .msg p { margin: 0 0 .5em; } .msg p:last-child { margin-bottom: 0; }
        .msg .h { font-weight: 700; }
        .msg ul, .msg ol { margin: .25em 0 .5em; padding-inline-start: 1.3em; }
        .msg code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; background: var(--ph-code); padding: 1px 4px; border-radius: 4px; }
        .msg pre { background: var(--ph-code); padding: 8px 10px; border-radius: 8px; overflow-x: auto; margin: .4em 0; }
        .msg pre code { background: none; padding: 0; }
        .msg a { color: var(--ph-link); text-decoration: underline; }
        .msg.user a { color: #fff; }
        .msg .sources { margin: 6px 0 0; padding: 6px 0 0; border-top: 1px solid var(--ph-code); list-style: none; font-size: 12px; display: flex; flex-direction: column; gap: 2px; }
        .msg .sources a, .msg .sources span { color: var(--ph-muted); }
        .msg .sources a:hover { color: var(--ph-link); }
        .rate { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; margin-top: 6px; }
        .rate button { display: inline-flex; padding: 4px; border: 0; border-radius: 6px; background: transparent; color: var(--ph-muted); cursor: pointer; }
        .rate button:hover, .rate button[aria-pressed=true] { color: var(--ph-link); background: var(--ph-code); }
        .rate svg { width: 16px; height: 16px; fill: currentColor; }
        .rate .down svg { transform: rotate(180deg); }
        .rate form { display: flex; gap: 6px; flex-basis: 100%; margin-top: 4px; }
        .rate input { flex: 1; min-width: 0; font: inherit; font-size: 13px; padding: 5px 8px; border: 1px solid var(--ph-muted); border-radius: 8px; background: transparent; color: inherit; }
        .rate form button { font-size: 13px; font-weight: 600; padding: 4px 10px; color: var(--ph-link); border: 1px solid currentColor; }
        .rate .thanks { font-size: 12px; color: var(--ph-muted); }
        .note { display: block; margin-top: 4px; font-size: 12px; color: var(--ph-muted); }
        .starters { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 2px; }
        .starters button {
            font: inherit; font-size: 14px; padding: 6px 12px; border-radius: 999px; cursor: pointer;
            border: 1px solid var(--ph-link); color: var(--ph-link); background: transparent;
        }
        .starters button:hover { background: var(--ph-bubble); }
        .typing { display: inline-flex; gap: 4px; padding: 4px 0; }
        .typing span { width: 7px; height: 7px; border-radius: 50%; background: var(--ph-muted); animation: ph-blink 1.2s infinite ease-in-out; }
        .typing span:nth-child(2) { animation-delay: .2s; } .typing span:nth-child(3) { animation-delay: .4s; }
        @keyframes ph-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
        "#
    );
    let list = use_node_ref();
    // Follow the answer while the visitor is at the bottom.
    let stick = use_mut_ref(|| Cell::new(true));
    let onscroll = {
        let (list, stick) = (list.clone(), stick.clone());
        Callback::from(move |_: Event| {
            if let Some(el) = list.cast::<web_sys::Element>() {
                stick
                    .borrow()
                    .set(el.scroll_height() - el.scroll_top() - el.client_height() < STICK_PX);
            }
        })
    };
    {
        let (list, stick) = (list.clone(), stick.clone());
        use_effect_with(props.chat.clone(), move |_| {
            if stick.borrow().get()
                && let Some(el) = list.cast::<web_sys::Element>()
            {
                el.set_scroll_top(el.scroll_height());
            }
        });
    }
    let feedback = use_state(|| None::<Feedback>);
    let comment = use_node_ref();
    let (chat, c) = (&props.chat, &props.config);
    let show_starters = chat.messages.is_empty() && !c.starters.is_empty();
    html! {
        <div class={style} ref={list} {onscroll} role="log" aria-live="off"
             aria-label={c.text(Text::Conversation).to_owned()}>
            if !c.greeting.is_empty() {
                <div class="msg assistant" dir="auto">{ c.greeting.clone() }</div>
            }
            if show_starters {
                <div class="starters" role="group" aria-label={c.text(Text::Suggested).to_owned()}>
                    { for c.starters.iter().map(|s| {
                        let on_starter = props.on_starter.clone();
                        let text = s.clone();
                        html! { <button type="button" dir="auto" onclick={move |_| on_starter.emit(text.clone())}>{ s.clone() }</button> }
                    }) }
                </div>
            }
            { for chat.messages.iter().map(|m| message(m, c, rating(m, c, &props.on_rate, &feedback, &comment))) }
        </div>
    }
}

/// An answer's sources as numbered links. Titles and URLs come from the
/// site's documents: they are text, never HTML, and only an http(s) URL
/// becomes a link (in a new tab, with no opener and no referrer).
fn sources(m: &Message, c: &WidgetConfig) -> Html {
    if m.sources.is_empty() || m.role != Role::Assistant {
        return html! {};
    }
    html! {
        <ol class="sources" aria-label={c.text(Text::Sources).to_owned()}>
            { for m.sources.iter().map(|s| {
                // The number in the visitor's own digits (Intl, through the browser).
                let n = String::from(js_sys::Number::from(s.n).to_locale_string(&c.lang));
                let label = ["[", &n, "] ", &s.title].concat();
                let web = s
                    .url
                    .as_deref()
                    .and_then(markdown::safe_href)
                    .filter(|u| !u.to_ascii_lowercase().starts_with("mailto:"));
                match web {
                    Some(url) => html! {
                        <li dir="auto"><a href={url} target="_blank" rel="noopener noreferrer nofollow"
                               title={s.snippet.clone()}>{ label }</a></li>
                    },
                    None => html! { <li dir="auto"><span title={s.snippet.clone()}>{ label }</span></li> },
                }
            }) }
        </ol>
    }
}

/// Thumbs up and down under a finished answer, the comment box after a
/// thumbs-down, and thanks once it is sent.
fn rating(
    m: &Message,
    c: &WidgetConfig,
    on_rate: &Callback<Rate>,
    feedback: &UseStateHandle<Option<Feedback>>,
    comment: &NodeRef,
) -> Html {
    if m.role != Role::Assistant || m.id.is_none() || m.shown == Shown::Streaming {
        return html! {};
    }
    let key = m.key;
    let thumb = |r: Rating, class: &'static str, label: Text| {
        let pressed = m.rating == Some(r);
        let (on_rate, feedback) = (on_rate.clone(), feedback.clone());
        let onclick = Callback::from(move |_: MouseEvent| {
            let rating = (!pressed).then_some(r);
            on_rate.emit(Rate {
                key,
                rating,
                comment: None,
            });
            feedback.set(match rating {
                Some(Rating::Down) => Some(Feedback::Commenting(key)),
                Some(Rating::Up) => Some(Feedback::Thanked(key)),
                None => None,
            });
        });
        html! {
            <button type="button" class={class} aria-pressed={if pressed { "true" } else { "false" }}
                    aria-label={c.text(label).to_owned()} title={c.text(label).to_owned()} {onclick}>
                <svg viewBox="0 0 24 24" aria-hidden="true"><path d={THUMB} /></svg>
            </button>
        }
    };
    let onsubmit = {
        let (on_rate, feedback, comment) = (on_rate.clone(), feedback.clone(), comment.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let text = comment
                .cast::<web_sys::HtmlInputElement>()
                .map(|i| i.value())
                .unwrap_or_default();
            on_rate.emit(Rate {
                key,
                rating: Some(Rating::Down),
                comment: Some(text),
            });
            feedback.set(Some(Feedback::Thanked(key)));
        })
    };
    html! {
        <div class="rate">
            { thumb(Rating::Up, "up", Text::RateUp) }
            { thumb(Rating::Down, "down", Text::RateDown) }
            if **feedback == Some(Feedback::Commenting(key)) && m.rating == Some(Rating::Down) {
                <form {onsubmit}>
                    <input ref={comment.clone()} maxlength="1000" dir="auto"
                           placeholder={c.text(Text::FeedbackPlaceholder).to_owned()}
                           aria-label={c.text(Text::FeedbackPlaceholder).to_owned()} />
                    <button type="submit">{ c.text(Text::FeedbackSend).to_owned() }</button>
                </form>
            }
            if **feedback == Some(Feedback::Thanked(key)) && m.rating.is_some() {
                <span class="thanks" role="status">{ c.text(Text::FeedbackThanks).to_owned() }</span>
            }
        </div>
    }
}

fn message(m: &Message, c: &WidgetConfig, rate: Html) -> Html {
    let (class, body) = match m.role {
        Role::User => ("msg user", html! { { m.text.clone() } }),
        Role::Assistant if m.text.is_empty() && m.shown == Shown::Streaming => (
            "msg assistant",
            html! { <span class="typing" role="img" aria-label={c.text(Text::Typing).to_owned()}><span/><span/><span/></span> },
        ),
        Role::Assistant => ("msg assistant", render::blocks(&markdown::parse(&m.text))),
    };
    let note = match m.shown {
        Shown::Interrupted => {
            html! { <span class="note">{ c.text(Text::Stopped).to_owned() }</span> }
        }
        Shown::Failed => {
            html! { <span class="note">{ c.text(Text::NotFinished).to_owned() }</span> }
        }
        _ => html! {},
    };
    let (who, role) = match m.role {
        Role::User => (c.text(Text::You), "user"),
        Role::Assistant => (c.text(Text::Assistant), "assistant"),
    };
    html! {
        <div key={m.key} class={class} dir="auto" data-role={role} data-state={m.shown.as_str()}>
            <span class="sr-only">{ [who, ": "].concat() }</span>
            { body }
            { sources(m, c) }
            { note }
            { rate }
        </div>
    }
}
