//! Porthole's chat panel: a Yew app that runs inside the widget's iframe.
//!
//! The pure parts (markdown, state) are tested natively with `cargo test`;
//! the rest is driven in a real Chromium by the end-to-end tests.

pub mod api;
pub mod app;
pub mod composer;
pub mod fetch;
pub mod header;
pub mod host;
pub mod markdown;
pub mod messages;
pub mod render;
pub mod session;
pub mod state;
pub mod theme;
pub mod wire;

use std::rc::Rc;

use protocol::widget::WidgetConfig;

/// Parses JSON with the browser's parser.
pub fn parse_json(text: &str) -> Option<wasm_bindgen::JsValue> {
    js_sys::JSON::parse(text).ok()
}

/// Reads the settings the server put into the page.
pub fn page_config() -> Option<WidgetConfig> {
    let text = web_sys::window()?
        .document()?
        .get_element_by_id("porthole-config")?
        .text_content()?;
    wire::config(&parse_json(&text)?)
}

/// Mounts the panel on `<body>`.
pub fn start() {
    match page_config() {
        Some(config) => {
            session::init(&config);
            yew::Renderer::<app::App>::with_props(app::AppProps {
                config: Rc::new(config),
            })
            .render();
        }
        None => {
            if let Some(body) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.body())
            {
                body.set_text_content(Some("This chat could not start: its settings are missing."));
            }
        }
    }
}
