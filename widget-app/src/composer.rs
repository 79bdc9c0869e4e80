//! Where the visitor types: an auto-growing textarea (Enter sends,
//! Shift+Enter makes a new line) with Send, or Stop while an answer streams.

use std::rc::Rc;

use protocol::i18n::Text;
use protocol::widget::WidgetConfig;
use stylist::yew::use_style;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

#[derive(Properties, PartialEq, Debug)]
pub struct ComposerProps {
    pub config: Rc<WidgetConfig>,
    pub streaming: bool,
    pub on_send: Callback<String>,
    pub on_stop: Callback<()>,
    /// Longest message the server accepts.
    pub max_chars: usize,
}

/// The textarea grows up to this height, then scrolls.
const MAX_HEIGHT_PX: i32 = 140;

fn grow(el: &HtmlTextAreaElement) {
    let style = el.style();
    let _ = style.set_property("height", "auto");
    let h = el.scroll_height().min(MAX_HEIGHT_PX);
    let _ = style.set_property("height", &format!("{h}px"));
}

#[function_component(Composer)]
pub fn composer(props: &ComposerProps) -> Html {
    let style = use_style!(
        r#"
        display: flex; align-items: flex-end; gap: 8px;
        padding: 10px 12px calc(10px + env(safe-area-inset-bottom));
        border-top: 1px solid var(--ph-border);
        textarea {
            flex: 1; resize: none; font: inherit; font-size: 16px; line-height: 1.35;
            color: var(--ph-fg); background: var(--ph-bg);
            border: 1px solid var(--ph-border); border-radius: var(--ph-radius);
            padding: 9px 12px; min-height: 42px; max-height: 140px;
        }
        textarea:focus-visible { outline-offset: 0; border-color: var(--ph-primary); }
        button {
            flex: none; height: 42px; min-width: 64px; padding: 0 14px; border: 0; cursor: pointer;
            border-radius: var(--ph-radius); font: inherit; font-weight: 600;
            background: var(--ph-primary); color: #fff;
        }
        button.stop { background: var(--ph-bubble); color: var(--ph-fg); border: 1px solid var(--ph-border); }
        button:disabled { opacity: .5; cursor: default; }
        "#
    );
    let input = use_node_ref();
    let empty = use_state(|| true);

    let send = {
        let (input, on_send, empty) = (input.clone(), props.on_send.clone(), empty.clone());
        Callback::from(move |_: ()| {
            let Some(el) = input.cast::<HtmlTextAreaElement>() else {
                return;
            };
            let text = el.value();
            if text.trim().is_empty() {
                return;
            }
            el.set_value("");
            grow(&el);
            empty.set(true);
            on_send.emit(text.trim().to_owned());
            let _ = el.focus();
        })
    };
    let oninput = {
        let empty = empty.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(el) = e.target_dyn_into::<HtmlTextAreaElement>() {
                grow(&el);
                empty.set(el.value().trim().is_empty());
            }
        })
    };
    let onkeydown = {
        let (send, streaming) = (send.clone(), props.streaming);
        Callback::from(move |e: KeyboardEvent| {
            // Enter sends; Shift+Enter (and Enter while an IME composes) is a new line.
            if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
                e.prevent_default();
                if !streaming {
                    send.emit(());
                }
            }
        })
    };
    let c = &props.config;
    let button = if props.streaming {
        let on_stop = props.on_stop.reform(|_: MouseEvent| ());
        html! { <button type="button" class="stop" onclick={on_stop}
        aria-label={c.text(Text::StopLabel).to_owned()}>{ c.text(Text::Stop).to_owned() }</button> }
    } else {
        let onclick = send.reform(|_: MouseEvent| ());
        html! { <button type="button" {onclick} disabled={*empty}
        aria-label={c.text(Text::SendLabel).to_owned()}>{ c.text(Text::Send).to_owned() }</button> }
    };
    html! {
        <div class={style}>
            <textarea ref={input} rows="1" dir="auto" placeholder={c.text(Text::Placeholder).to_owned()}
                      aria-label={c.text(Text::MessageLabel).to_owned()}
                      maxlength={props.max_chars.to_string()} {oninput} {onkeydown} />
            { button }
        </div>
    }
}
