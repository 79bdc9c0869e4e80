//! The panel's header: avatar, title, "new conversation" and close.

use std::rc::Rc;

use protocol::i18n::Text;
use protocol::widget::WidgetConfig;
use stylist::yew::use_style;
use yew::prelude::*;

#[derive(Properties, PartialEq, Debug)]
pub struct HeaderProps {
    pub config: Rc<WidgetConfig>,
    pub on_new: Callback<()>,
    pub on_close: Callback<()>,
    /// Whether there is a conversation to leave.
    pub can_restart: bool,
}

#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let style = use_style!(
        r#"
        display: flex; align-items: center; gap: 10px;
        padding: 10px 12px;
        background: var(--ph-primary); color: #fff;
        .avatar {
            width: 32px; height: 32px; border-radius: 50%;
            display: grid; place-items: center; flex: none;
            background: rgba(255,255,255,.22); font-weight: 700; object-fit: cover;
        }
        h1 { font-size: 16px; margin: 0; flex: 1; min-width: 0;
             overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
        button {
            flex: none; width: 36px; height: 36px; border-radius: 8px;
            border: 0; background: transparent; color: inherit; cursor: pointer;
            display: grid; place-items: center;
        }
        button:hover { background: rgba(255,255,255,.16); }
        button:disabled { opacity: .45; cursor: default; background: transparent; }
        button:focus-visible { outline-color: #fff; }
        svg { width: 20px; height: 20px; stroke: currentColor; fill: none; stroke-width: 2; stroke-linecap: round; }
        "#
    );
    let c = &props.config;
    let initial = c
        .title
        .chars()
        .next()
        .map(|c| c.to_ascii_uppercase().to_string())
        .unwrap_or_default();
    let on_new = props.on_new.reform(|_: MouseEvent| ());
    let on_close = props.on_close.reform(|_: MouseEvent| ());
    html! {
        <header class={style}>
            if c.theme.avatar_is_valid() && !c.theme.avatar.is_empty() {
                <img class="avatar" src={c.theme.avatar.clone()} alt="" referrerpolicy="no-referrer" />
            } else {
                <span class="avatar" aria-hidden="true">{ initial }</span>
            }
            <h1 dir="auto">{ c.title.clone() }</h1>
            <button type="button" aria-label={c.text(Text::NewConversation).to_owned()}
                    title={c.text(Text::NewConversation).to_owned()}
                    onclick={on_new} disabled={!props.can_restart}>
                <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 5v14M5 12h14"/></svg>
            </button>
            <button type="button" aria-label={c.text(Text::Close).to_owned()}
                    title={c.text(Text::Close).to_owned()} onclick={on_close}>
                <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18"/></svg>
            </button>
        </header>
    }
}
