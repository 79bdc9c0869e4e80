//! The loader script (`/widget.js`), made by the `loader` crate once at
//! start, with its ETag.

use std::hash::{Hash, Hasher};

/// The loader, ready to serve.
#[derive(Debug)]
pub struct LoaderScript {
    /// `Bytes`, so each response shares the script instead of copying it.
    body: bytes::Bytes,
    etag: String,
}

impl LoaderScript {
    /// The script.
    pub fn body(&self) -> bytes::Bytes {
        self.body.clone()
    }

    /// Its ETag (quoted).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    pub fn new() -> Self {
        // An empty origin: the loader uses its own script's origin, which is
        // this server's.
        let body = loader::script("");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        Self {
            etag: format!("\"{:016x}\"", h.finish()),
            body: body.into(),
        }
    }
}

impl Default for LoaderScript {
    fn default() -> Self {
        Self::new()
    }
}
