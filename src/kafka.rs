//! The Kafka source in the server: started when `[kafka]` is configured,
//! its lag and counters read by the `system.kafka*` SQL tables (the
//! adapter between ingest and queries, which may not depend on each other).

use std::sync::Arc;

use grayscope_core::Config;
use grayscope_ingest::Pipeline;
use grayscope_ingest::kafka::{KafkaMonitor, KafkaSource};
use grayscope_queries::{KafkaPartitionRow, KafkaSourceRow, KafkaSourceStatus, QueryEngine};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Starts consuming Kafka when the configuration has `[kafka]`, as a task
/// of `tasks` that ends once `shutdown` fired and the consumer left its
/// group; returns `engine` reading the source's figures.
pub fn start(
    config: &Config,
    pipeline: &Pipeline,
    engine: QueryEngine,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<QueryEngine> {
    let Some(kafka) = &config.kafka else {
        return Ok(engine);
    };
    let source = KafkaSource::start(kafka, pipeline.clone(), shutdown.clone())?;
    let engine = engine.with_kafka(Arc::new(KafkaStatus(source.monitor())))?;
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
