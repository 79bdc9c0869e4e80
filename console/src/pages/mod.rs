//! The console's screens.

pub mod audit;
pub mod editor;
pub mod inbox;
pub mod shell;
pub mod sign_in;
pub mod users;
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
