//! Grafana annotations: every change of a canary's verdict (not its stage
//! or status alone) becomes an organisation annotation, through Grafana's
//! HTTP API (`POST {url}/api/annotations`, `Authorization: Bearer {token}`):
//!
//! ```json
//! { "time": 1764175205120,
//!   "tags": ["grayscope", "checkout-v2", "canary", "rollback"],
//!   "text": "checkout-v2/canary: rollback (action rollback) at stage read_split, score 50 — …" }
//! ```
//!
//! A dashboard shows them with an annotation query on the tag `grayscope`
//! (the dashboards in `dashboards/` have one). Like a webhook, Grafana is
//! an outbox destination with its own cursor and retries: a Grafana that is
//! down delays only the annotations. Grafana has no idempotency key, so a
//! crash between its answer and the cursor's write can annotate twice.

use std::collections::HashMap;
use std::time::Duration;

use grayscope_core::config::GrafanaConfig;
use grayscope_core::signal::Signal;
use grayscope_core::verdict::Verdict;
use serde_json::json;

use crate::destination::{Attempt, Destination, RetryPolicy};
use crate::error::Result;
use crate::metrics::SinkMetrics;
use crate::outbox::Entry;
use crate::webhook::{client, http_outcome};

/// The name of its cursor and deliveries.
pub const DESTINATION: &str = "grafana";

/// Grafana's annotations API.
#[derive(Debug)]
pub struct GrafanaSink {
    config: GrafanaConfig,
    endpoint: String,
    client: reqwest::Client,
    metrics: SinkMetrics,
    /// Each canary's verdict in its last signal.
    verdicts: HashMap<(String, String), Verdict>,
}

impl GrafanaSink {
    /// Annotates the Grafana of `config`, counting into `metrics`.
    pub fn new(config: GrafanaConfig, metrics: SinkMetrics) -> Result<GrafanaSink> {
        let client = client(DESTINATION, config.timeout.get(), config.ca_file.as_deref())?;
        Ok(GrafanaSink {
            endpoint: format!("{}/api/annotations", config.url.trim_end_matches('/')),
            config,
            client,
            metrics,
            verdicts: HashMap::new(),
        })
    }
}

/// The annotation for a signal.
pub fn annotation(signal: &Signal, tags: &[String]) -> serde_json::Value {
    let time_ms = chrono::DateTime::parse_from_rfc3339(&signal.time)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| crate::now_nanos() / 1_000_000);
    let mut all = tags.to_vec();
    for tag in [&signal.rollout, &signal.cohort, &signal.verdict.to_string()] {
        if !all.contains(tag) {
            all.push(tag.clone());
        }
    }
    let mut text = format!(
        "{}/{}: {} (action {}) at stage {}, score {:.0}",
        signal.rollout, signal.cohort, signal.verdict, signal.action, signal.stage, signal.score
    );
    if let Some(reason) = signal.reasons.first() {
        text.push_str(" — ");
        text.push_str(reason);
    }
    json!({ "time": time_ms, "tags": all, "text": text })
}

impl Destination for GrafanaSink {
    fn name(&self) -> &str {
        DESTINATION
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            deadline: self.config.deadline.get(),
        }
    }

    fn seen(&mut self, signal: &Signal) {
        self.wanted(signal);
    }

    /// Only a change of verdict. A canary starts holding, so its first
    /// signal is a change unless it holds; a canary whose earlier signals
    /// are no longer in the outbox counts as changed (one annotation too
    /// many rather than one missed).
    fn wanted(&mut self, signal: &Signal) -> bool {
        let key = (signal.rollout.clone(), signal.cohort.clone());
        let before = self.verdicts.insert(key, signal.verdict);
        match before {
            Some(before) => before != signal.verdict,
            None if signal.sequence == 1 => signal.verdict != Verdict::Hold,
            None => true,
        }
    }

    async fn attempt(&self, entry: &Entry, _body: &[u8], _attempt: u32) -> Attempt {
        let mut request = self
            .client
            .post(&self.endpoint)
            .json(&annotation(&entry.signal, &self.config.tags));
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        http_outcome(request.send().await)
    }

    fn settled(&self, delivered: bool) {
        self.metrics.annotation(delivered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signal;

    fn sink() -> GrafanaSink {
        let config: GrafanaConfig = toml_like(r#"{"url": "http://127.0.0.1:1/", "token": "t"}"#);
        GrafanaSink::new(config, SinkMetrics::detached()).unwrap()
    }

    fn toml_like(json: &str) -> GrafanaConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_verdict_changes_are_annotated() {
        let mut grafana = sink();
        assert_eq!(grafana.endpoint, "http://127.0.0.1:1/api/annotations");
        let mut hold = test_signal("a", 1);
        hold.verdict = Verdict::Hold;
        assert!(!grafana.wanted(&hold), "a canary starts holding");
        let mut paused = test_signal("a", 2);
        paused.verdict = Verdict::Hold;
        assert!(!grafana.wanted(&paused), "same verdict, other status");
        assert!(grafana.wanted(&test_signal("a", 3)), "hold → rollback");
        assert!(!grafana.wanted(&test_signal("a", 4)));
        assert!(
            grafana.wanted(&test_signal("b", 1)),
            "first signal, rollback"
        );
        assert!(grafana.wanted(&test_signal("c", 9)), "history unknown");
    }

    #[test]
    fn an_annotation_carries_the_time_tags_and_reason() {
        let mut signal = test_signal("checkout-v2", 7);
        signal.time = "2026-11-26T16:40:05.120Z".into();
        let body = annotation(&signal, &["grayscope".into()]);
        assert_eq!(body["time"], 1_795_711_205_120_i64);
        assert_eq!(
            body["tags"],
            json!(["grayscope", "checkout-v2", "canary", "rollback"])
        );
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("checkout-v2/canary: rollback"), "{text}");
        assert!(text.contains("the canary is worse"), "{text}");
    }
}
