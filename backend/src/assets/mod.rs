//! What the binary serves as files: the built widget and its iframe
//! document ([`widget`]), the console ([`console`]) and the loader script
//! ([`loader`]). Built once at
//! start and held by the state; the routes that serve them are in `http/`.
//!
//! May use: `protocol`. Never `http` or `state`.

pub mod console;
pub mod loader;
pub mod widget;

pub use console::ConsoleAssets;
pub use loader::LoaderScript;
pub use widget::WidgetAssets;
