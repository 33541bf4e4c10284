//! Prometheus exposition (`GET /metrics`): per rollout and canary the
//! verdict, stage, status, score and every check's figures; the signals'
//! deliveries; and the health of ingest, the store and SQL.
//!
//! Names follow Prometheus conventions (`grayscope_` prefix, base units,
//! `_total` for counters). Label values are bounded: rollouts, cohorts,
//! checks and destinations come from the configuration; enumerations
//! (verdict, stage, status, outcome) are one series per value set to 1 for
//! the current one and 0 for the others, so a dashboard can graph them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grayscope_core::signal::Signal;
use grayscope_core::verdict::{Judgement, Outcome, Verdict};
use prometheus::{
    Encoder as _, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::{Error, Result};

/// One canary as `/metrics` shows it.
#[derive(Debug, Clone)]
pub struct CanaryView<'a> {
    /// The rollout.
    pub rollout: &'a str,
    /// The canary cohort.
    pub cohort: &'a str,
    /// Every stage of the rollout, in order.
    pub stages: Vec<&'a str>,
    /// Index of the current stage.
    pub stage: usize,
    /// `running`, `paused`, `frozen`, `completed` or `rolled_back`.
    pub status: &'a str,
    /// The current verdict.
    pub verdict: Verdict,
    /// The canary's signal sequence.
    pub sequence: u64,
    /// The last judgement, once there is one.
    pub last: Option<&'a Judgement>,
}

/// Figures of ingest, the store and SQL, read at each scrape.
#[derive(Debug, Clone, Default)]
pub struct HealthFigures {
    /// Per table: (name, rows in memory, rows in Parquet, bytes in memory,
    /// bytes in Parquet).
    pub tables: Vec<(&'static str, u64, u64, u64, u64)>,
    /// Memtable bytes and their limit.
    pub memory_bytes: u64,
    /// The configured cap on memtable bytes.
    pub memory_limit: u64,
    /// Appends refused with back-pressure since start.
    pub rejected_appends: u64,
    /// Flushes since start.
    pub flushes: u64,
    /// Failed flushes since start.
    pub flush_errors: u64,
    /// Age of the oldest unflushed batch.
    pub flush_lag: Duration,
    /// Write-ahead log bytes on disk.
    pub wal_bytes: u64,
    /// Records appended to the write-ahead log since start.
    pub wal_records: u64,
    /// Fsyncs of the write-ahead log since start.
    pub wal_fsyncs: u64,
}

const STATUSES: [&str; 5] = ["running", "paused", "frozen", "completed", "rolled_back"];
const VERDICTS: [Verdict; 3] = [Verdict::Promote, Verdict::Hold, Verdict::Rollback];
const OUTCOMES: [Outcome; 4] = [Outcome::Pass, Outcome::High, Outcome::Low, Outcome::NoData];

/// Every metric grayscope exposes. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Scrapes rebuild the rollout series; one at a time.
    scrape: Arc<Mutex<()>>,
    sinks: SinkMetrics,
    rollout: RolloutMetrics,
    health: HealthMetrics,
    /// SQL requests, by outcome (`ok`, `user_error`, `error`).
    pub queries: IntCounterVec,
    /// SQL request durations.
    pub query_seconds: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct RolloutMetrics {
    verdict: IntGaugeVec,
    stage: IntGaugeVec,
    stage_index: IntGaugeVec,
    status: IntGaugeVec,
    score: GaugeVec,
    sequence: IntGaugeVec,
    check_value: GaugeVec,
    check_samples: GaugeVec,
    check_statistic: GaugeVec,
    check_p_value: GaugeVec,
    check_effect: GaugeVec,
    check_outcome: IntGaugeVec,
    window_end: GaugeVec,
}

#[derive(Clone)]
struct HealthMetrics {
    rows: IntGaugeVec,
    bytes: IntGaugeVec,
    memory_bytes: Gauge,
    memory_limit: Gauge,
    rejected: IntCounter,
    flushes: IntCounter,
    flush_errors: IntCounter,
    flush_lag: Gauge,
    wal_bytes: Gauge,
    wal_records: IntCounter,
    wal_fsyncs: IntCounter,
    outbox_backlog: IntGaugeVec,
}

/// The signal-delivery metrics the sinks update as they work. Cheap to clone.
#[derive(Clone)]
pub struct SinkMetrics {
    signals: IntCounterVec,
    deliveries: IntCounterVec,
    attempts: IntCounterVec,
    latency: HistogramVec,
    watchers: IntGaugeVec,
    annotations: IntCounterVec,
}

impl std::fmt::Debug for SinkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkMetrics").finish_non_exhaustive()
    }
}

fn register<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> Result<T> {
    let metric = metric.map_err(|e| Error::Internal(e.to_string()))?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(metric)
}

impl Metrics {
    /// Adds metrics another component computes at each scrape (such as
    /// the Kafka source's lag), exposed beside grayscope's own.
    pub fn register_collector(
        &self,
        collector: Box<dyn prometheus::core::Collector>,
    ) -> Result<()> {
        self.registry
            .register(collector)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// A registry with every metric, all zero.
    pub fn new() -> Result<Metrics> {
        let r = Registry::new();
        let canary = &["rollout", "cohort"];
        let check = &["rollout", "cohort", "check", "level"];
        let side = &["rollout", "cohort", "check", "level", "side"];
        let g = |name: &str, help: &str, labels: &[&str]| {
            register(&r, GaugeVec::new(Opts::new(name, help), labels))
        };
        let ig = |name: &str, help: &str, labels: &[&str]| {
            register(&r, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        let ic = |name: &str, help: &str, labels: &[&str]| {
            register(&r, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let plain = |name: &str, help: &str| register(&r, Gauge::new(name, help));
        let counter = |name: &str, help: &str| register(&r, IntCounter::new(name, help));
        let seconds = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(vec![
                        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                        60.0,
                    ]),
                    labels,
                ),
            )
        };
        let rollout = RolloutMetrics {
            verdict: ig(
                "grayscope_rollout_verdict",
                "1 for the canary's current verdict, 0 for the others.",
                &["rollout", "cohort", "verdict"],
            )?,
            stage: ig(
                "grayscope_rollout_stage",
                "1 for the canary's current stage, 0 for the others.",
                &["rollout", "cohort", "stage"],
            )?,
            stage_index: ig(
                "grayscope_rollout_stage_index",
                "Index of the canary's current stage, from 0.",
                canary,
            )?,
            status: ig(
                "grayscope_rollout_status",
                "1 for the canary's current status, 0 for the others.",
                &["rollout", "cohort", "status"],
            )?,
            score: g(
                "grayscope_rollout_score",
                "Weighted share of passing checks in the last judgement, 0 to 100.",
                canary,
            )?,
            sequence: ig(
                "grayscope_rollout_signal_sequence",
                "Sequence number of the canary's last signal.",
                canary,
            )?,
            check_value: g(
                "grayscope_check_value",
                "A check's headline value per side (error ratio, median latency in ms, template rate, kernel metric rate) in the last judgement.",
                side,
            )?,
            check_samples: g(
                "grayscope_check_samples",
                "Samples a check saw per side in the last judgement.",
                side,
            )?,
            check_statistic: g(
                "grayscope_check_statistic",
                "A check's test statistic in the last judgement.",
                check,
            )?,
            check_p_value: g(
                "grayscope_check_p_value",
                "A check's corrected p-value in the last judgement.",
                check,
            )?,
            check_effect: g(
                "grayscope_check_effect",
                "A check's effect (relative shift, rate ratio) in the last judgement.",
                check,
            )?,
            check_outcome: ig(
                "grayscope_check_outcome",
                "1 for a check's outcome in the last judgement (pass, high, low, nodata), 0 for the others.",
                &["rollout", "cohort", "check", "level", "outcome"],
            )?,
            window_end: g(
                "grayscope_rollout_last_judgement_timestamp_seconds",
                "When the canary was last judged (Unix seconds).",
                canary,
            )?,
        };
        let health = HealthMetrics {
            rows: ig(
                "grayscope_store_rows",
                "Rows per table, in memory and in Parquet.",
                &["table", "tier"],
            )?,
            bytes: ig(
                "grayscope_store_bytes",
                "Bytes per table, in memory and in Parquet.",
                &["table", "tier"],
            )?,
            memory_bytes: plain("grayscope_store_memory_bytes", "Bytes held by memtables.")?,
            memory_limit: plain(
                "grayscope_store_memory_limit_bytes",
                "The cap on memtable bytes; ingest gets back-pressure above it.",
            )?,
            rejected: counter(
                "grayscope_ingest_rejected_appends_total",
                "Appends refused with back-pressure since start.",
            )?,
            flushes: counter(
                "grayscope_store_flushes_total",
                "Memtable flushes to Parquet since start.",
            )?,
            flush_errors: counter(
                "grayscope_store_flush_errors_total",
                "Failed (and retried) flushes since start.",
            )?,
            flush_lag: plain(
                "grayscope_store_flush_lag_seconds",
                "Age of the oldest batch not yet in Parquet.",
            )?,
            wal_bytes: plain("grayscope_wal_bytes", "Write-ahead log bytes on disk.")?,
            wal_records: counter(
                "grayscope_wal_records_total",
                "Records appended to the write-ahead log since start.",
            )?,
            wal_fsyncs: counter(
                "grayscope_wal_fsyncs_total",
                "Fsyncs of the write-ahead log since start.",
            )?,
            outbox_backlog: ig(
                "grayscope_signal_outbox_backlog",
                "Signals in the outbox a destination has still to deliver.",
                &["destination"],
            )?,
        };
        let sinks = SinkMetrics {
            signals: ic(
                "grayscope_signals_total",
                "Signals emitted (verdict, stage or status changes).",
                &["rollout", "cohort", "verdict"],
            )?,
            deliveries: ic(
                "grayscope_signal_deliveries_total",
                "Signal deliveries finished, by destination and outcome (delivered, failed).",
                &["destination", "outcome"],
            )?,
            attempts: ic(
                "grayscope_signal_delivery_attempts_total",
                "Delivery attempts, retries included.",
                &["destination"],
            )?,
            latency: seconds(
                "grayscope_signal_delivery_latency_seconds",
                "From the change (the signal's time) to its acceptance by the destination.",
                &["destination"],
            )?,
            watchers: ig("grayscope_signal_watchers", "gRPC Watch streams open.", &[])?,
            annotations: ic(
                "grayscope_grafana_annotations_total",
                "Annotations posted to Grafana, by outcome.",
                &["outcome"],
            )?,
        };
        // Zero, not absent, until the first router subscribes.
        sinks.watchers.with_label_values::<&str>(&[]).set(0);
        let queries = ic(
            "grayscope_sql_queries_total",
            "SQL requests over HTTP, by outcome (ok, user_error, error).",
            &["outcome"],
        )?;
        let query_seconds = seconds(
            "grayscope_sql_query_duration_seconds",
            "SQL request durations over HTTP.",
            &[],
        )?;
        Ok(Metrics {
            registry: r,
            scrape: Arc::new(Mutex::new(())),
            sinks,
            rollout,
            health,
            queries,
            query_seconds,
        })
    }

    /// The handle the sinks update.
    pub fn sinks(&self) -> SinkMetrics {
        self.sinks.clone()
    }

    /// Sets the rollout series from the canaries as they are now, dropping
    /// those of canaries that are gone, and the health figures; then
    /// renders the exposition (text format 0.0.4).
    pub fn render(
        &self,
        canaries: &[CanaryView<'_>],
        health: &HealthFigures,
        backlog: &[(String, u64)],
    ) -> Result<String> {
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.set_rollouts(canaries);
        self.set_health(health, backlog);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .map_err(|e| Error::Internal(e.to_string()))?;
        String::from_utf8(out).map_err(|e| Error::Internal(e.to_string()))
    }

    fn set_rollouts(&self, canaries: &[CanaryView<'_>]) {
        let m = &self.rollout;
        for vec in [
            &m.verdict,
            &m.stage,
            &m.stage_index,
            &m.status,
            &m.sequence,
            &m.check_outcome,
        ] {
            vec.reset();
        }
        for vec in [
            &m.score,
            &m.check_value,
            &m.check_samples,
            &m.check_statistic,
            &m.check_p_value,
            &m.check_effect,
            &m.window_end,
        ] {
            vec.reset();
        }
        for c in canaries {
            let (r, k) = (c.rollout, c.cohort);
            for v in VERDICTS {
                m.verdict
                    .with_label_values(&[r, k, &v.to_string()])
                    .set(i64::from(v == c.verdict));
            }
            for (i, stage) in c.stages.iter().enumerate() {
                m.stage
                    .with_label_values(&[r, k, stage])
                    .set(i64::from(i == c.stage));
            }
            m.stage_index.with_label_values(&[r, k]).set(c.stage as i64);
            for s in STATUSES {
                m.status
                    .with_label_values(&[r, k, s])
                    .set(i64::from(s == c.status));
            }
            m.sequence.with_label_values(&[r, k]).set(c.sequence as i64);
            let Some(j) = c.last else { continue };
            m.score.with_label_values(&[r, k]).set(j.score);
            m.window_end
                .with_label_values(&[r, k])
                .set(j.window_end as f64 / 1e9);
            for check in &j.checks {
                let level = check.level.to_string();
                let labels = [r, k, check.name.as_str(), level.as_str()];
                for (side, figures) in [("canary", &check.canary), ("baseline", &check.baseline)] {
                    let with_side = [r, k, check.name.as_str(), level.as_str(), side];
                    if let Some(value) = figures.value.filter(|v| v.is_finite()) {
                        m.check_value.with_label_values(&with_side).set(value);
                    }
                    m.check_samples
                        .with_label_values(&with_side)
                        .set(figures.samples as f64);
                }
                for (vec, value) in [
                    (&m.check_statistic, check.statistic),
                    (&m.check_p_value, check.p_value),
                    (&m.check_effect, check.effect),
                ] {
                    if let Some(value) = value.filter(|v| v.is_finite()) {
                        vec.with_label_values(&labels).set(value);
                    }
                }
                for o in OUTCOMES {
                    m.check_outcome
                        .with_label_values(&[
                            r,
                            k,
                            check.name.as_str(),
                            level.as_str(),
                            &o.to_string(),
                        ])
                        .set(i64::from(o == check.outcome));
                }
            }
        }
    }

    fn set_health(&self, h: &HealthFigures, backlog: &[(String, u64)]) {
        let m = &self.health;
        for (table, memory_rows, part_rows, memory_bytes, part_bytes) in &h.tables {
            m.rows
                .with_label_values(&[table, "memory"])
                .set(*memory_rows as i64);
            m.rows
                .with_label_values(&[table, "parquet"])
                .set(*part_rows as i64);
            m.bytes
                .with_label_values(&[table, "memory"])
                .set(*memory_bytes as i64);
            m.bytes
                .with_label_values(&[table, "parquet"])
                .set(*part_bytes as i64);
        }
        m.memory_bytes.set(h.memory_bytes as f64);
        m.memory_limit.set(h.memory_limit as f64);
        sync(&m.rejected, h.rejected_appends);
        sync(&m.flushes, h.flushes);
        sync(&m.flush_errors, h.flush_errors);
        m.flush_lag.set(h.flush_lag.as_secs_f64());
        m.wal_bytes.set(h.wal_bytes as f64);
        sync(&m.wal_records, h.wal_records);
        sync(&m.wal_fsyncs, h.wal_fsyncs);
        m.outbox_backlog.reset();
        for (destination, n) in backlog {
            m.outbox_backlog
                .with_label_values(&[destination])
                .set(*n as i64);
        }
    }
}

/// Brings a counter up to a total counted elsewhere (monotonic since start).
fn sync(counter: &IntCounter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

impl SinkMetrics {
    /// A handle on a private registry, for sinks run without `/metrics`.
    pub fn detached() -> SinkMetrics {
        // Building the same metrics again cannot fail.
        match Metrics::new() {
            Ok(metrics) => metrics.sinks,
            Err(e) => unreachable!("the metric definitions are static: {e}"),
        }
    }

    /// A signal was emitted.
    pub fn signal(&self, signal: &Signal) {
        self.signals
            .with_label_values(&[&signal.rollout, &signal.cohort, &signal.verdict.to_string()])
            .inc();
    }

    /// `destination` accepted `signal`.
    pub fn delivered_to(&self, destination: &str, signal: &Signal) {
        self.deliveries
            .with_label_values(&[destination, "delivered"])
            .inc();
        if let Some(age) = crate::age_seconds(&signal.time) {
            self.latency.with_label_values(&[destination]).observe(age);
        }
    }

    /// `destination` gave a signal up.
    pub fn failed_to(&self, destination: &str) {
        self.deliveries
            .with_label_values(&[destination, "failed"])
            .inc();
    }

    /// A gRPC watcher connected (+1) or left (-1).
    pub fn watchers(&self, delta: i64) {
        self.watchers.with_label_values::<&str>(&[]).add(delta);
    }

    /// A Grafana annotation was posted (or not).
    pub fn annotation(&self, ok: bool) {
        self.annotations
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// Counts attempts (for destinations other than webhooks).
    pub fn attempt_to(&self, destination: &str) {
        self.attempts.with_label_values(&[destination]).inc();
    }
}
