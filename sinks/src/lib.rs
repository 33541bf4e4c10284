//! Signals out: everything that leaves grayscope when a canary's verdict,
//! stage or status changes, and what Prometheus and Grafana read.
//!
//! - [`outbox`]: the durable outbox in `<data_dir>/signals/`; the judge
//!   appends each signal (and syncs it) before it saves the rollout state,
//!   and every destination delivers from it with its own cursor;
//! - [`destination`]'s worker, one per destination: reads the outbox after
//!   its cursor, retries with [`backoff`] and jitter up to a deadline, and
//!   moves the cursor once a signal is settled. The destinations:
//!   [`webhook`] (signed `POST`s, [`signature`], over http or https),
//!   [`kafka`] (a topic keyed by rollout, idempotent producer) and
//!   [`grafana`] (an annotation per verdict change);
//! - [`watch`]: the gRPC `Watch` stream routers subscribe to, replaying the
//!   outbox from their last sequences and then following it;
//! - [`deliveries`]: the state of recent deliveries (`system.deliveries`);
//! - [`metrics`]: the Prometheus exposition of `/metrics`.
//!
//! ```no_run
//! # async fn f(config: grayscope_core::config::SignalsConfig) -> grayscope_sinks::Result<()> {
//! use grayscope_sinks::{Sinks, metrics::Metrics};
//! let metrics = Metrics::new()?;
//! let sinks = Sinks::open(&config, std::path::Path::new("./data"), &metrics)?;
//! let outbox = sinks.outbox(); // give it to `Rollouts::attach_log`
//! tokio::spawn(sinks.run(tokio_util::sync::CancellationToken::new()));
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod deliveries;
mod destination;
mod error;
pub mod grafana;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod signature;
pub mod watch;
pub mod webhook;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use grayscope_core::config::SignalsConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use deliveries::{Deliveries, Delivery, DeliveryState};
pub use error::{Error, Result};
pub use outbox::{Entry, Outbox};

use crate::destination::Destination as _;
use crate::grafana::GrafanaSink;
use crate::kafka::KafkaSink;
use crate::metrics::{Metrics, SinkMetrics};
use crate::webhook::WebhookSink;

/// The outbox and every configured destination, ready to run.
#[derive(Debug)]
pub struct Sinks {
    outbox: Outbox,
    deliveries: Deliveries,
    metrics: SinkMetrics,
    webhooks: Vec<WebhookSink>,
    kafka: Option<KafkaSink>,
    grafana: Option<GrafanaSink>,
}

impl Sinks {
    /// Opens the outbox in `data_dir` and sets up the destinations of
    /// `config`, counting into `metrics`.
    pub fn open(config: &SignalsConfig, data_dir: &Path, metrics: &Metrics) -> Result<Sinks> {
        let outbox = Outbox::open(data_dir, config.retain)?;
        let deliveries = Deliveries::default();
        let sink_metrics = metrics.sinks();
        let webhooks = config
            .webhooks
            .iter()
            .map(|hook| WebhookSink::new(hook.clone()))
            .collect::<Result<Vec<_>>>()?;
        let kafka = config.kafka.clone().map(KafkaSink::new).transpose()?;
        let grafana = config
            .grafana
            .clone()
            .map(|g| GrafanaSink::new(g, sink_metrics.clone()))
            .transpose()?;
        // Register every cursor now: a destination must see every signal
        // appended from here on, even before its worker starts.
        let names = webhooks
            .iter()
            .map(|hook| hook.destination())
            .chain(kafka.as_ref().map(|k| k.name()))
            .chain(grafana.as_ref().map(|g| g.name()));
        for name in names {
            outbox.cursor(name)?;
        }
        Ok(Sinks {
            outbox,
            deliveries,
            metrics: sink_metrics,
            webhooks,
            kafka,
            grafana,
        })
    }

    /// The outbox (for the judge, the gRPC Watch service and `/metrics`).
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The delivery state (for `system.deliveries`).
    pub fn deliveries(&self) -> Deliveries {
        self.deliveries.clone()
    }

    fn worker<D: destination::Destination>(
        &self,
        destination: D,
        shutdown: &CancellationToken,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        destination::run(
            destination,
            self.outbox.clone(),
            self.deliveries.clone(),
            self.metrics.clone(),
            shutdown.clone(),
        )
    }

    /// Runs every destination until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let mut workers = JoinSet::new();
        for hook in std::mem::take(&mut self.webhooks) {
            workers.spawn(self.worker(hook, &shutdown));
        }
        if let Some(kafka) = self.kafka.take() {
            workers.spawn(self.worker(kafka, &shutdown));
        }
        if let Some(grafana) = self.grafana.take() {
            workers.spawn(self.worker(grafana, &shutdown));
        }
        workers.spawn(count_signals(
            self.outbox.clone(),
            self.metrics.clone(),
            shutdown.clone(),
        ));
        let mut first_error = None;
        while let Some(joined) = workers.join_next().await {
            let result = joined
                .map_err(|e| Error::Internal(e.to_string()))
                .and_then(|r| r);
            if let Err(error) = result {
                tracing::error!("a signal destination stopped: {error}");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

async fn count_signals(
    outbox: Outbox,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let mut appended = outbox.subscribe();
    let mut seen = outbox.last_index();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            changed = appended.changed() => if changed.is_err() { return Ok(()) },
        }
        for entry in outbox.read_after(seen, usize::MAX) {
            metrics.signal(&entry.signal);
            seen = entry.index;
        }
    }
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Seconds from an RFC 3339 time to now.
pub(crate) fn age_seconds(time: &str) -> Option<f64> {
    let at = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    let ns = at.timestamp_nanos_opt()?;
    Some(((now_nanos() - ns) as f64 / 1e9).max(0.0))
}

#[cfg(test)]
pub(crate) fn test_signal(rollout: &str, sequence: u64) -> grayscope_core::signal::Signal {
    use grayscope_core::verdict::{Action, Judgement, Verdict};
    let judgement = Judgement {
        rollout: rollout.into(),
        cohort: "canary".into(),
        baseline: "baseline".into(),
        stage: "shadow".into(),
        verdict: Verdict::Rollback,
        action: Action::Rollback,
        score: 40.0,
        reasons: vec!["the canary is worse".into()],
        checks: Vec::new(),
        window_start: 0,
        window_end: 0,
    };
    grayscope_core::signal::Signal::new(&judgement, "rolled_back", sequence, now_nanos())
}

#[cfg(test)]
mod schema_tests {
    use grayscope_core::verdict::{
        CheckResult, CohortFigures, Direction, Evidence, Judgement, Level, Outcome, Verdict,
    };
    use serde_json::Value;

    /// A minimal JSON Schema check of the keywords docs/signal.schema.json
    /// uses (type, required, properties, additionalProperties, enum, items):
    /// enough to keep the schema and the Rust type in step.
    fn check(schema: &Value, value: &Value, path: &str) {
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            assert!(
                options.contains(value),
                "{path}: {value} not in {options:?}"
            );
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => {
                let object = value
                    .as_object()
                    .unwrap_or_else(|| panic!("{path}: not an object"));
                let properties = schema["properties"].as_object().unwrap();
                for required in schema["required"].as_array().into_iter().flatten() {
                    let key = required.as_str().unwrap();
                    assert!(object.contains_key(key), "{path}: missing {key}");
                }
                for (key, item) in object {
                    let sub = properties
                        .get(key)
                        .unwrap_or_else(|| panic!("{path}: {key} is not in the schema"));
                    check(sub, item, &format!("{path}.{key}"));
                }
            }
            Some("array") => {
                for (i, item) in value.as_array().unwrap().iter().enumerate() {
                    check(&schema["items"], item, &format!("{path}[{i}]"));
                }
            }
            Some("string") => assert!(value.is_string(), "{path}: not a string"),
            Some("integer") => assert!(value.is_u64(), "{path}: not an integer"),
            Some("number") => assert!(value.is_number(), "{path}: not a number"),
            _ => {}
        }
    }

    #[test]
    fn signals_match_the_published_json_schema() {
        let schema: Value =
            serde_json::from_str(include_str!("../../docs/signal.schema.json")).unwrap();
        let failing = CheckResult {
            name: "latency".into(),
            level: Level::L1,
            direction: Direction::HigherIsWorse,
            critical: true,
            outcome: Outcome::High,
            test: "mann_whitney_u".into(),
            statistic: Some(1.0),
            p_value: Some(0.001),
            effect: Some(0.4),
            interval: None,
            baseline: CohortFigures::default(),
            canary: CohortFigures::default(),
            reason: "p50 412 ms against 120 ms".into(),
            sql: vec!["SELECT 1".into()],
            evidence: vec![Evidence {
                kind: "slow_request".into(),
                summary: "GET /cart 412 ms".into(),
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            }],
        };
        let mut judgement: Judgement = serde_json::from_value(serde_json::json!({
            "rollout": "checkout-v2", "cohort": "canary", "baseline": "baseline",
            "stage": "shadow", "verdict": "rollback", "action": "rollback", "score": 50.0,
            "reasons": ["worse"], "checks": [], "window_start": 0, "window_end": 1
        }))
        .unwrap();
        judgement.checks.push(failing);
        for verdict in [Verdict::Promote, Verdict::Hold, Verdict::Rollback] {
            judgement.verdict = verdict;
            let signal = grayscope_core::signal::Signal::new(&judgement, "running", 3, 5);
            check(&schema, &serde_json::to_value(&signal).unwrap(), "$");
        }
        let mut bad = serde_json::to_value(crate::test_signal("a", 1)).unwrap();
        bad["verdict"] = "maybe".into();
        let refused = std::panic::catch_unwind(|| check(&schema, &bad, "$"));
        assert!(
            refused.is_err(),
            "the checker refuses what the schema refuses"
        );
    }
}
