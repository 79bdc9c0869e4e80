//! Tenants: the widgets a server answers for ([`widget`]: ids, settings,
//! the live registry found by public key), and who may use them
//! ([`session`]: session tokens, hashed keys, identity verification), and
//! the languages the panel speaks ([`i18n`]).
//!
//! These are the domain types the store keeps; they know nothing of how.
//! May use: `knowledge`, `limits`, `ids`. Never `store`, `http`, `chat` or
//! `state`.

pub mod i18n;
pub mod session;
pub mod widget;

pub use widget::{DEMO_KEY, Widget, WidgetDef, WidgetId, WidgetRegistry, Widgets, valid_site};
