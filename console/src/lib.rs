//! Porthole's console: the site owner's web app at `/console`. It signs
//! people in (or sets up the first owner), and drives the server through
//! the same admin API an admin key does, within the user's role.
//!
//! Its own wasm, apart from the widget's, so the widget's size does not
//! grow with it.

pub mod api;
pub mod app;
pub mod pages;
pub mod style;

/// Mounts the console on `<body>`.
pub fn start() {
    yew::Renderer::<app::App>::new().render();
}
