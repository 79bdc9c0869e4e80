//! Widgets' vectors kept in memory by a store, each with the widget's
//! vector version when it was read: a query reads the version (one indexed
//! row) and the vectors only when it moved, so the database stays the truth
//! and a sync by another process (the CLI, another replica) is seen at the
//! next query. Then an exact scan: at 10,000 chunks of 256 dimensions,
//! about a millisecond.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::knowledge::embed;

/// A widget's vectors of one model: (chunk id, vector).
pub(crate) type Vectors = Arc<Vec<(i64, Vec<f32>)>>;

#[derive(Debug, Default)]
pub struct VectorCache(Mutex<HashMap<(String, String), (i64, Vectors)>>);

impl VectorCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (i64, Vectors)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The vectors kept for `widget` and `model`, if they are of `version`.
    pub(crate) fn get(&self, widget: &str, model: &str, version: i64) -> Option<Vectors> {
        let key = (widget.to_owned(), model.to_owned());
        self.lock()
            .get(&key)
            .filter(|(v, _)| *v == version)
            .map(|(_, vectors)| vectors.clone())
    }

    /// Keeps vectors read from their stored bytes; returns them.
    pub(crate) fn put(
        &self,
        widget: &str,
        model: &str,
        version: i64,
        rows: Vec<(i64, Vec<u8>)>,
    ) -> Vectors {
        let vectors: Vectors = Arc::new(
            rows.into_iter()
                .filter_map(|(id, bytes)| Some((id, embed::from_bytes(&bytes)?)))
                .collect(),
        );
        self.lock().insert(
            (widget.to_owned(), model.to_owned()),
            (version, vectors.clone()),
        );
        vectors
    }
}

/// The `limit` ids nearest `query` by cosine similarity, nearest first.
pub(crate) fn nearest(vectors: &Vectors, query: &[f32], limit: u32) -> Vec<(i64, f32)> {
    let keep = limit.max(1) as usize;
    let mut best: Vec<(i64, f32)> = Vec::with_capacity(keep + 1);
    for (id, v) in vectors.iter() {
        let sim = embed::cosine(query, v);
        if best.len() < keep || sim > best[best.len() - 1].1 {
            let at = best.partition_point(|(_, s)| *s >= sim);
            best.insert(at, (*id, sim));
            best.truncate(keep);
        }
    }
    best
}
