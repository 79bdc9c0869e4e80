//! Embeddings from any OpenAI-compatible `/embeddings` endpoint (OpenAI,
//! Ollama, vLLM, LM Studio): chunks in batches at ingest, with retries and
//! a token budget per sync, and one question per chat turn, with a short
//! timeout and no retry (a slow or failed endpoint must never hold up an
//! answer: the turn falls back to full text).
//!
//! Plain reqwest and serde rather than async-openai's embeddings types:
//! the request and response are two small JSON objects, and servers differ
//! from OpenAI's schema (Ollama omits `usage`, some send `index` out of
//! order), which our own lenient types absorb.
//!
//! The endpoint is the operator's own setting, not a visitor's or a site
//! owner's URL, so it may be on loopback (a local Ollama is the usual case).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

/// `[embeddings]`: off unless `base_url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingSettings {
    /// The API's base URL, ending before `/embeddings`
    /// (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`).
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub model: String,
    /// Asks the endpoint for vectors of this length (OpenAI's
    /// `dimensions`); unset sends none.
    pub dimensions: Option<u32>,
    /// Chunks per request.
    pub batch_size: usize,
    /// Retries of a failed ingest request (429, 5xx, timeouts), with
    /// exponential backoff and jitter.
    pub max_retries: u32,
    /// Timeout of one ingest request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Timeout of a question's embedding during a chat turn; past it the
    /// turn uses full text alone.
    pub query_timeout_ms: u64,
    /// Tokens (as the endpoint counts them, else estimated as characters
    /// / 4) one sync may embed; the rest waits for the next sync and is
    /// found by full text meanwhile.
    pub max_tokens_per_sync: u64,
    /// A chunk this similar to the question (cosine) counts as relevant
    /// even when it shares few of its words.
    pub min_similarity: f32,
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            model: "text-embedding-3-small".into(),
            dimensions: None,
            batch_size: 64,
            max_retries: 3,
            request_timeout_ms: 30_000,
            query_timeout_ms: 2_000,
            max_tokens_per_sync: 5_000_000,
            min_similarity: 0.5,
        }
    }
}

/// Why texts could not be embedded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    #[error("the embeddings endpoint answered HTTP {0}: {1}")]
    Status(u16, String),
    #[error("the embeddings endpoint timed out")]
    Timeout,
    #[error("cannot reach the embeddings endpoint: {0}")]
    Connect(String),
    #[error("the embeddings endpoint sent an unexpected answer: {0}")]
    Invalid(String),
}

impl EmbedError {
    /// Worth another try: rate limited, a server error, or the network.
    fn transient(&self) -> bool {
        match self {
            Self::Status(s, _) => *s == 429 || *s >= 500,
            Self::Timeout | Self::Connect(_) => true,
            Self::Invalid(_) => false,
        }
    }
}

/// Vectors for a batch, in input order, and the tokens they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: u64,
}

/// A client of one embeddings endpoint and model.
#[derive(Debug, Clone)]
pub struct Embedder {
    http: reqwest::Client,
    url: String,
    settings: EmbeddingSettings,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
    usage: Option<UsageCount>,
}

#[derive(Deserialize)]
struct Item {
    index: Option<usize>,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct UsageCount {
    total_tokens: Option<u64>,
    prompt_tokens: Option<u64>,
}

impl Embedder {
    /// `None` when no endpoint is configured.
    pub fn new(settings: &EmbeddingSettings) -> Result<Option<Self>, String> {
        let Some(base) = settings.base_url.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if base.is_empty() {
            return Ok(None);
        }
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| format!("[embeddings] base_url {base:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("[embeddings] base_url {base:?} is not http(s)"));
        }
        if settings.model.trim().is_empty() {
            return Err("[embeddings] model is empty".into());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("building the embeddings HTTP client: {e}"))?;
        Ok(Some(Self {
            http,
            url: format!("{}/embeddings", base.trim_end_matches('/')),
            settings: settings.clone(),
        }))
    }

    /// The model's name, stored with each vector: vectors of another model
    /// are never compared with this one's.
    pub fn model(&self) -> &str {
        &self.settings.model
    }

    pub fn settings(&self) -> &EmbeddingSettings {
        &self.settings
    }

    /// Embeds ingest texts, retrying transient failures with backoff.
    pub async fn embed(&self, texts: &[String]) -> Result<Embedded, EmbedError> {
        let timeout = Duration::from_millis(self.settings.request_timeout_ms.max(1));
        let mut attempt = 0;
        loop {
            match self.request(texts, timeout).await {
                Ok(done) => return Ok(done),
                Err(e) if e.transient() && attempt < self.settings.max_retries => {
                    let base = 250u64 << attempt.min(6);
                    let jitter = fastrand::u64(0..=base / 2);
                    tracing::warn!(error = %e, attempt, "embedding a batch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A question's vector, once, within the query timeout.
    pub async fn embed_query(&self, question: &str) -> Result<Vec<f32>, EmbedError> {
        let timeout = Duration::from_millis(self.settings.query_timeout_ms.max(1));
        let mut done = self.request(&[question.to_owned()], timeout).await?;
        done.vectors
            .pop()
            .ok_or_else(|| EmbedError::Invalid("no vector".into()))
    }

    async fn request(&self, texts: &[String], timeout: Duration) -> Result<Embedded, EmbedError> {
        let mut body = json!({"model": self.settings.model, "input": texts});
        if let Some(d) = self.settings.dimensions {
            body["dimensions"] = json!(d);
        }
        let mut request = self.http.post(&self.url).timeout(timeout).json(&body);
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(classify)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(EmbedError::Status(status.as_u16(), message));
        }
        let parsed: Response = response
            .json()
            .await
            .map_err(|e| EmbedError::Invalid(e.to_string()))?;
        if parsed.data.len() != texts.len() {
            return Err(EmbedError::Invalid(format!(
                "{} vectors for {} inputs",
                parsed.data.len(),
                texts.len()
            )));
        }
        let mut items = parsed.data;
        if items.iter().all(|i| i.index.is_some()) {
            items.sort_by_key(|i| i.index);
        }
        let vectors: Vec<Vec<f32>> = items.into_iter().map(|i| i.embedding).collect();
        let width = vectors.first().map_or(0, Vec::len);
        if width == 0
            || vectors
                .iter()
                .any(|v| v.len() != width || v.iter().any(|x| !x.is_finite()))
        {
            return Err(EmbedError::Invalid(
                "empty, ragged or non-finite vectors".into(),
            ));
        }
        let tokens = parsed
            .usage
            .and_then(|u| u.total_tokens.or(u.prompt_tokens))
            .unwrap_or_else(|| estimate_tokens(texts));
        Ok(Embedded { vectors, tokens })
    }
}

fn classify(e: reqwest::Error) -> EmbedError {
    if e.is_timeout() {
        EmbedError::Timeout
    } else {
        EmbedError::Connect(e.to_string())
    }
}

/// Tokens of texts, estimated as a quarter of their characters.
pub fn estimate_tokens(texts: &[String]) -> u64 {
    texts.iter().map(|t| t.chars().count() as u64 / 4 + 1).sum()
}

/// Cosine similarity; 0 for vectors of different lengths or no length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// A vector as stored: little-endian f32s.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector back; `None` when the bytes are not whole f32s.
pub fn from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Reciprocal rank fusion of ranked lists of ids (Cormack et al., k = 60):
/// each id scores the sum of 1 / (k + rank) over the lists it is in; best
/// first, ties in first-seen order.
pub fn fuse(lists: &[Vec<i64>]) -> Vec<(i64, f64)> {
    const K: f64 = 60.0;
    let mut scores: Vec<(i64, f64)> = Vec::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let add = 1.0 / (K + rank as f64 + 1.0);
            match scores.iter_mut().find(|(i, _)| i == id) {
                Some((_, s)) => *s += add,
                None => scores.push((*id, add)),
            }
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = vec![0.5, -1.25, f32::MIN_POSITIVE, 3.0];
        assert_eq!(from_bytes(&to_bytes(&v)), Some(v));
        assert_eq!(from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn cosine_of_same_opposite_and_mismatched() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn fusion_rewards_agreement() {
        // 7 is second in both lists; 1 and 9 are first in one each.
        let fused = fuse(&[vec![1, 7, 3], vec![9, 7, 1]]);
        let order: Vec<i64> = fused.iter().map(|(i, _)| *i).collect();
        // 1: 1/61 + 1/63; 7: 2/62; 1/61+1/63 > 2/62, so 1 leads, then 7.
        assert_eq!(order, vec![1, 7, 9, 3]);
    }

    #[test]
    fn no_base_url_is_no_embedder_and_bad_ones_are_errors() {
        assert!(
            Embedder::new(&EmbeddingSettings::default())
                .unwrap()
                .is_none()
        );
        let bad = EmbeddingSettings {
            base_url: Some("ftp://x".into()),
            ..EmbeddingSettings::default()
        };
        assert!(Embedder::new(&bad).is_err());
    }
}
