//! The console's screens.

pub mod analytics;
pub mod audit;
pub mod editor;
pub mod fix;
pub mod inbox;
pub mod knowledge;
pub mod shell;
pub mod sign_in;
pub mod transcript;
pub mod users;
pub mod webhooks;
pub mod widgets;

use web_sys::HtmlInputElement;
use yew::prelude::*;

/// The current text of an input, by its node.
pub fn value(node: &NodeRef) -> String {
    node.cast::<HtmlInputElement>()
        .map(|i| i.value())
        .unwrap_or_default()
}

/// A time in milliseconds since the epoch, in the user's locale (the
/// browser's `Intl`, with the browser's own language).
pub fn when(ms: u64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let lang = web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_else(|| "en".into());
    date.to_locale_string(&lang, &wasm_bindgen::JsValue::UNDEFINED)
        .as_string()
        .unwrap_or_default()
}

/// Waits `ms` milliseconds (the browser's timer).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `text` as one URL path segment or query value.
pub fn encode(text: &str) -> String {
    js_sys::encode_uri_component(text)
        .as_string()
        .unwrap_or_default()
}

/// The widgets as `(id, title)`, for the sections that pick one, and the
/// one picked (the first, until the user chooses).
/// The widgets as `(id, title)`.
pub type WidgetList = UseStateHandle<Vec<(String, String)>>;
/// The widget picked.
pub type Picked = UseStateHandle<Option<String>>;

#[hook]
pub fn use_widgets(on_failure: Callback<crate::api::Failure>) -> (WidgetList, Picked) {
    let widgets = use_state(Vec::<(String, String)>::new);
    let widget = use_state(|| None::<String>);
    {
        let (widgets, widget) = (widgets.clone(), widget.clone());
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let all = crate::api::json::<Vec<serde_json::Value>>(
                    "GET",
                    "/api/v1/admin/widgets",
                    crate::api::NONE,
                    None,
                )
                .await;
                match all {
                    Ok(all) => {
                        let pairs: Vec<(String, String)> = all
                            .iter()
                            .map(|w| {
                                (
                                    w["id"].as_str().unwrap_or_default().to_owned(),
                                    w["title"].as_str().unwrap_or_default().to_owned(),
                                )
                            })
                            .collect();
                        widget.set(pairs.first().map(|p| p.0.clone()));
                        widgets.set(pairs);
                    }
                    Err(f) => on_failure.emit(f),
                }
            });
        });
    }
    (widgets, widget)
}

/// The widget picker `use_widgets` feeds.
pub fn widget_picker(
    id: &str,
    widgets: &[(String, String)],
    widget: &UseStateHandle<Option<String>>,
) -> Html {
    let choose = {
        let widget = widget.clone();
        Callback::from(move |e: Event| {
            if let Some(s) = e
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlSelectElement>(t).ok())
            {
                widget.set(Some(s.value()));
            }
        })
    };
    html! {
        <>
            <label for={id.to_owned()}>{ "Widget" }</label>
            <select id={id.to_owned()} onchange={choose}>
                { for widgets.iter().map(|(w, title)| html! {
                    <option value={w.clone()} selected={widget.as_deref() == Some(w.as_str())}>{ format!("{title} ({w})") }</option>
                }) }
            </select>
        </>
    }
}
