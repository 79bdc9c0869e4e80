//! The loader's two scripts, made by the `loader` crate once at start:
//! `/widget.js` (the launcher, with its ETag) and `panel.js` (the rest,
//! named by its content).

use std::hash::{Hash, Hasher};

use super::widget::Asset;

/// The loader, ready to serve.
#[derive(Debug)]
pub struct LoaderScript {
    script: Asset,
    etag: String,
    panel: Asset,
}

impl LoaderScript {
    /// `widget.js`.
    pub fn script(&self) -> &Asset {
        &self.script
    }

    /// Its ETag (quoted).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// `panel.js` for a request of `path`, with whether `path` names this
    /// very content ([`loader::panel_path`]). Another release's name
    /// (`/loader/panel.<12 hex>.js`: a `widget.js` cached or hosted on a CDN
    /// before an upgrade, or served by a replica not yet upgraded) gets this
    /// release's `panel.js` too, which speaks the same stage interface
    /// (`Porthole.v`), rather than a dead launcher. Anything else is `None`.
    pub fn panel(&self, path: &str) -> Option<(&Asset, bool)> {
        loader::is_panel_path(path).then(|| (&self.panel, path == loader::panel_path()))
    }

    pub fn new() -> Self {
        // An empty origin: the loader uses its own script's origin, which is
        // this server's.
        let body = loader::script("");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        Self {
            etag: format!("\"{:016x}\"", h.finish()),
            script: Asset::new(body, "widget.js"),
            panel: Asset::new(loader::panel(), "panel.js"),
        }
    }
}

impl Default for LoaderScript {
    fn default() -> Self {
        Self::new()
    }
}
