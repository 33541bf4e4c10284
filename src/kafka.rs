//! The Kafka source in the server: started when `[kafka]` is configured,
//! its lag and counters read by the `system.kafka*` SQL tables and by
//! `/metrics` (the adapter between ingest, queries and sinks, which may not
//! depend on each other).

use std::sync::Arc;

use grayscope_core::Config;
use grayscope_ingest::Pipeline;
use grayscope_ingest::kafka::{KafkaMonitor, KafkaSource};
use grayscope_queries::{KafkaPartitionRow, KafkaSourceRow, KafkaSourceStatus, QueryEngine};
use grayscope_sinks::metrics::Metrics;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Starts consuming Kafka when the configuration has `[kafka]`, as a task
/// of `tasks` that ends once `shutdown` fired and the consumer left its
/// group; returns `engine` reading the source's figures, which `metrics`
/// exposes too.
pub fn start(
    config: &Config,
    pipeline: &Pipeline,
    engine: QueryEngine,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<QueryEngine> {
    let Some(kafka) = &config.kafka else {
        return Ok(engine);
    };
    let source = KafkaSource::start(kafka, pipeline.clone(), shutdown.clone())?;
    let engine = engine.with_kafka(Arc::new(KafkaStatus(source.monitor())))?;
    metrics.register_collector(Box::new(KafkaCollector::new(source.monitor())?))?;
    let stopped = shutdown.clone();
    tasks.spawn(async move {
        stopped.cancelled().await;
        source.stopped().await;
        Ok(())
    });
    Ok(engine)
}

/// A running source's figures as the SQL tables' rows.
#[derive(Debug)]
struct KafkaStatus(KafkaMonitor);

impl KafkaSourceStatus for KafkaStatus {
    fn partitions(&self) -> Vec<KafkaPartitionRow> {
        self.0
            .partitions()
            .into_iter()
            .map(|p| KafkaPartitionRow {
                topic: p.topic,
                partition: p.partition,
                signal: p.signal.to_owned(),
                encoding: p.encoding.to_owned(),
                assigned: p.assigned,
                paused: p.paused,
                committed_offset: p.committed_offset,
                position: p.position,
                high_watermark: p.high_watermark,
                lag: p.lag,
                in_flight: p.in_flight,
                messages: p.messages,
                dead_letters: p.dead_letters,
                redelivered: p.redelivered,
            })
            .collect()
    }

    fn counters(&self) -> KafkaSourceRow {
        let s = self.0.status();
        KafkaSourceRow {
            messages: s.messages,
            records: s.records,
            rejected_records: s.rejected_records,
            duplicate_spans: s.duplicate_spans,
            dead_letters: s.dead_letters,
            dead_letters_refused: s.dead_letters_refused,
            redelivered_messages: s.redelivered_messages,
            pauses: s.pauses,
            backpressure_retries: s.backpressure_retries,
            paused: s.paused,
            in_flight_bytes: s.in_flight_bytes,
        }
    }
}

/// The source's lag and counters in `/metrics`, read at each scrape. Label
/// values are the configured topics' partitions: bounded.
struct KafkaCollector {
    monitor: KafkaMonitor,
    lag: IntGaugeVec,
    committed: IntGaugeVec,
    high_watermark: IntGaugeVec,
    paused: IntGaugeVec,
    messages: IntCounterVec,
    dead_letters: IntCounterVec,
    redelivered: IntCounterVec,
    source: IntCounterVec,
}

const PARTITION: &[&str] = &["topic", "partition"];

impl KafkaCollector {
    fn new(monitor: KafkaMonitor) -> prometheus::Result<KafkaCollector> {
        let gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), PARTITION);
        let counter = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), PARTITION);
        Ok(KafkaCollector {
            monitor,
            lag: gauge(
                "grayscope_kafka_consumer_lag_messages",
                "Messages of an assigned partition not yet committed: high watermark minus committed offset.",
            )?,
            committed: gauge(
                "grayscope_kafka_committed_offset",
                "The partition's committed offset: every message before it is durable in the store.",
            )?,
            high_watermark: gauge(
                "grayscope_kafka_high_watermark",
                "The offset the partition's next produced message gets.",
            )?,
            paused: gauge(
                "grayscope_kafka_partition_paused",
                "1 while consumption of the partition is paused for store back-pressure.",
            )?,
            messages: counter(
                "grayscope_kafka_messages_total",
                "Messages consumed from the partition since start.",
            )?,
            dead_letters: counter(
                "grayscope_kafka_dead_letters_total",
                "Messages of the partition sent to the dead-letter topic since start.",
            )?,
            redelivered: counter(
                "grayscope_kafka_redelivered_messages_total",
                "Messages of the partition consumed again (after a restart or rebalance) since start.",
            )?,
            source: IntCounterVec::new(
                Opts::new(
                    "grayscope_kafka_events_total",
                    "The Kafka source's events since start, by kind: records stored, records \
                     rejected, duplicate spans not stored twice, pauses, back-pressure retries.",
                ),
                &["event"],
            )?,
        })
    }

    fn vecs(&self) -> [&dyn Collector; 8] {
        [
            &self.lag,
            &self.committed,
            &self.high_watermark,
            &self.paused,
            &self.messages,
            &self.dead_letters,
            &self.redelivered,
            &self.source,
        ]
    }
}

impl Collector for KafkaCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.vecs().into_iter().flat_map(Collector::desc).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Rebuilt from the monitor's totals at each scrape, so partitions
        // this instance no longer owns drop out of the gauges.
        for gauge in [
            &self.lag,
            &self.committed,
            &self.high_watermark,
            &self.paused,
        ] {
            gauge.reset();
        }
        for counter in [
            &self.messages,
            &self.dead_letters,
            &self.redelivered,
            &self.source,
        ] {
            counter.reset();
        }
        for p in self.monitor.partitions() {
            let partition = p.partition.to_string();
            let labels = [p.topic.as_str(), partition.as_str()];
            self.messages.with_label_values(&labels).inc_by(p.messages);
            self.dead_letters
                .with_label_values(&labels)
                .inc_by(p.dead_letters);
            self.redelivered
                .with_label_values(&labels)
                .inc_by(p.redelivered);
            if !p.assigned {
                continue;
            }
            self.paused
                .with_label_values(&labels)
                .set(i64::from(p.paused));
            for (gauge, value) in [
                (&self.lag, p.lag),
                (&self.committed, p.committed_offset),
                (&self.high_watermark, p.high_watermark),
            ] {
                if let Some(value) = value {
                    gauge.with_label_values(&labels).set(value);
                }
            }
        }
        let s = self.monitor.status();
        for (event, total) in [
            ("records_stored", s.records),
            ("records_rejected", s.rejected_records),
            ("duplicate_spans", s.duplicate_spans),
            ("pauses", s.pauses),
            ("backpressure_retries", s.backpressure_retries),
        ] {
            self.source.with_label_values(&[event]).inc_by(total);
        }
        self.vecs()
            .into_iter()
            .flat_map(Collector::collect)
            .collect()
    }
}
