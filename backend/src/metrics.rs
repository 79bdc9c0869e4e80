//! What `/metrics` shows, through the `metrics` crate and its Prometheus
//! exporter (no hand-written exposition text): chat requests by outcome
//! and code, first-token latency and answer duration histograms, upstream
//! errors by kind, tokens by widget and kind, resumes, store errors, and
//! gauges read at scrape time (open streams, answer logs, widgets, tasks,
//! memory).
//!
//! Each server owns its recorder (none is installed process-wide), so
//! several servers in one process, as the tests run them, never mix their
//! counts.
//!
//! May use nothing else in the crate.

use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

const META: Metadata<'static> = Metadata::new("porthole", Level::INFO, Some(module_path!()));

/// Latency buckets, in seconds: 5 ms to 60 s.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A server's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How a chat request ended, for `porthole_chat_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer streamed to its `done`.
    Answered,
    /// Refused before the model was asked (limits, budgets, bad input).
    Refused,
    /// The model or the server failed, before or during the answer.
    Failed,
    /// The visitor stopped it.
    Stopped,
    /// Nobody read it through the resume grace period.
    Abandoned,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
            Self::Abandoned => "abandoned",
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(
                KeyName::from_const_str(name),
                unit,
                SharedString::const_str(help),
            );
        };
        describe(
            "porthole_chat_requests_total",
            None,
            "Chat requests by outcome (answered, refused, failed, stopped, abandoned) and error code.",
        );
        describe(
            "porthole_upstream_errors_total",
            None,
            "Model provider failures by kind.",
        );
        describe(
            "porthole_tokens_total",
            None,
            "Tokens spent, by widget and kind (prompt, completion).",
        );
        describe(
            "porthole_resumes_total",
            None,
            "Answers resumed after a dropped connection or a reload.",
        );
        describe(
            "porthole_store_errors_total",
            None,
            "Store operations that failed on a chat's path.",
        );
        recorder.describe_histogram(
            KeyName::from_const_str("porthole_first_token_seconds"),
            Some(Unit::Seconds),
            SharedString::const_str("From the chat request to the model's first token."),
        );
        recorder.describe_histogram(
            KeyName::from_const_str("porthole_answer_duration_seconds"),
            Some(Unit::Seconds),
            SharedString::const_str("From the first token to the answer's end."),
        );
        Self { recorder, handle }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
            .increment(by);
    }

    /// A chat request ended so; `code` is the error code, when there is one.
    pub fn chat(&self, outcome: Outcome, code: Option<&str>) {
        self.counter(
            "porthole_chat_requests_total",
            vec![
                Label::new("outcome", outcome.as_str()),
                Label::new("code", code.unwrap_or("").to_owned()),
            ],
            1,
        );
    }

    pub fn upstream_error(&self, kind: &'static str) {
        self.counter(
            "porthole_upstream_errors_total",
            vec![Label::new("kind", kind)],
            1,
        );
    }

    pub fn tokens(&self, widget: &str, prompt: u64, completion: u64) {
        for (kind, n) in [("prompt", prompt), ("completion", completion)] {
            self.counter(
                "porthole_tokens_total",
                vec![
                    Label::new("widget", widget.to_owned()),
                    Label::new("kind", kind),
                ],
                n,
            );
        }
    }

    pub fn resume(&self) {
        self.counter("porthole_resumes_total", Vec::new(), 1);
    }

    pub fn store_error(&self) {
        self.counter("porthole_store_errors_total", Vec::new(), 1);
    }

    pub fn first_token(&self, seconds: f64) {
        self.recorder
            .register_histogram(
                &Key::from_static_name("porthole_first_token_seconds"),
                &META,
            )
            .record(seconds);
    }

    pub fn answer_duration(&self, seconds: f64) {
        self.recorder
            .register_histogram(
                &Key::from_static_name("porthole_answer_duration_seconds"),
                &META,
            )
            .record(seconds);
    }

    /// Sets a gauge read at scrape time.
    pub fn gauge(&self, name: &'static str, help: &'static str, value: f64) {
        self.recorder.describe_gauge(
            KeyName::from_const_str(name),
            None,
            SharedString::const_str(help),
        );
        self.recorder
            .register_gauge(&Key::from_static_name(name), &META)
            .set(value);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_render_in_the_text_format() {
        let m = Metrics::new();
        m.chat(Outcome::Answered, None);
        m.chat(Outcome::Answered, None);
        m.chat(Outcome::Refused, Some("rate_limited"));
        m.tokens("acme", 10, 32);
        m.first_token(0.2);
        m.gauge("porthole_open_streams", "Answers streaming now.", 3.0);
        let text = m.render();
        assert!(
            text.contains("porthole_chat_requests_total{outcome=\"answered\",code=\"\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "porthole_chat_requests_total{outcome=\"refused\",code=\"rate_limited\"} 1"
            )
        );
        assert!(text.contains("porthole_tokens_total{widget=\"acme\",kind=\"completion\"} 32"));
        assert!(
            text.contains("porthole_first_token_seconds_bucket{le=\"0.25\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE porthole_open_streams gauge"));
        assert!(text.contains("porthole_open_streams 3"));
        // Another server's metrics are its own.
        assert!(
            !Metrics::new()
                .render()
                .contains("porthole_chat_requests_total{")
        );
    }
}
