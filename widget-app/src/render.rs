//! Markdown blocks as Yew nodes. Text is always a text node; the only
//! attribute taken from model output is a link's `href`, already checked by
//! [`crate::markdown::safe_href`].

use yew::prelude::*;

use crate::markdown::{Block, Inline};

pub fn blocks(blocks: &[Block]) -> Html {
    blocks.iter().map(block).collect()
}

fn block(b: &Block) -> Html {
    match b {
        Block::Paragraph(spans) => html! { <p>{ inlines(spans) }</p> },
        Block::Heading(spans) => html! { <p class="h">{ inlines(spans) }</p> },
        Block::List {
            ordered: false,
            items,
            ..
        } => html! {
            <ul>{ for items.iter().map(|i| html! { <li>{ inlines(i) }</li> }) }</ul>
        },
        Block::List {
            ordered: true,
            start,
            items,
        } => html! {
            <ol start={start.to_string()}>{ for items.iter().map(|i| html! { <li>{ inlines(i) }</li> }) }</ol>
        },
        Block::Code { lang, text } => html! {
            <pre data-lang={lang.clone()}><code>{ text.clone() }</code></pre>
        },
    }
}

fn inlines(spans: &[Inline]) -> Html {
    spans.iter().map(inline).collect()
}

fn inline(s: &Inline) -> Html {
    match s {
        Inline::Text(t) => html! { { t.clone() } },
        Inline::Strong(c) => html! { <strong>{ inlines(c) }</strong> },
        Inline::Em(c) => html! { <em>{ inlines(c) }</em> },
        Inline::Code(c) => html! { <code>{ c.clone() }</code> },
        Inline::Link { href, children } => html! {
            <a href={href.clone()} target="_blank" rel="noopener noreferrer">{ inlines(children) }</a>
        },
        Inline::Break => html! { <br/> },
    }
}
