//! Random ids with a readable prefix (`conv_…`, `msg_…`, `vis_…`), used by
//! every layer; depends on nothing in the crate.

/// A fresh id with a readable prefix: `conv_…`, `msg_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
