//! The Kafka source: consumes the topics the OpenTelemetry Collector's
//! Kafka exporter writes (and JSON-lines log topics), at least once.
//!
//! ```text
//! consumer thread ──chunks──► storing tasks ──► label, mine, convert ──► Store::append
//!  poll, pause,                decode each        (the OTLP export path)     (WAL fsync)
//!  commit, rebalance           message; poison                                   │
//!      ▲                       ──► dead-letter topic                             │
//!      └──────────── offsets committed once durable ◄────────────────────────────┘
//! ```
//!
//! - **At least once.** A partition's offset is committed only up to the
//!   oldest message not yet durable in the store (or in the dead-letter
//!   topic); a crash at any point redelivers, never loses.
//! - **Rebalances.** Before a partition is given up, the messages of it
//!   being stored are waited for and committed; messages polled but not
//!   handed out are forgotten. A lost assignment commits nothing.
//! - **Duplicates.** Redelivered messages are counted; spans are
//!   remembered by (trace id, span id) and not stored twice (the memory is
//!   bounded, and seeded after a restart from the spans the write-ahead
//!   log replayed).
//! - **Poison.** A message that does not decode goes to the dead-letter
//!   topic with headers saying why, where from and when; the messages
//!   after it are stored meanwhile.
//! - **Back-pressure.** When the store refuses appends, or too many bytes
//!   are being stored, every assigned partition is paused (the consumer
//!   keeps polling, so it stays in its group) and resumed after.
//! - **Lag.** [`KafkaMonitor::partitions`] gives each partition's committed
//!   offset, high watermark and lag.

mod chunk;
mod consumer;
mod dead_letter;
mod json_lines;
mod message;
mod offsets;
mod span_dedup;
mod status;

use std::sync::Arc;

use grayscope_core::Table;
use grayscope_core::config::KafkaConfig;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use chunk::Worker;
use consumer::Shared;
use dead_letter::DeadLetters;
use span_dedup::SpanDedup;
pub use status::{KafkaStatus, PartitionStatus};

/// A running Kafka consumer feeding a [`Pipeline`].
#[derive(Debug)]
pub struct KafkaSource {
    shared: Arc<Shared>,
    thread: std::thread::JoinHandle<()>,
}

/// Reads the figures of a running [`KafkaSource`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KafkaMonitor {
    shared: Arc<Shared>,
}

impl KafkaSource {
    /// Subscribes to `config`'s topics and starts consuming into
    /// `pipeline` until `shutdown` fires. Must be called inside a tokio
    /// runtime. Fails when librdkafka refuses the configuration; a broker
    /// that cannot be reached is retried in the background.
    pub fn start(
        config: &KafkaConfig,
        pipeline: Pipeline,
        shutdown: CancellationToken,
    ) -> Result<KafkaSource> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::Internal(format!("the Kafka source needs a runtime: {e}")))?;
        let store_memory = pipeline.store().store_stats().memory_limit;
        let shared = Arc::new(Shared::new(config, store_memory));
        let dead_letters = DeadLetters::new(config)?;
        let dedup = SpanDedup::new(config.remembered_spans);
        for batch in pipeline.store().memory_batches(Table::Spans) {
            dedup.remember(&batch);
        }
        let consumer = consumer::create(config, shared.clone())?;
        let worker = Arc::new(Worker {
            pipeline,
            dead_letters,
            dedup,
            shared: shared.clone(),
            cancel: shutdown.clone(),
            max_message_size: config.max_message_size.as_usize(),
        });
        let commit_interval = config.commit_interval.get();
        let loop_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("grayscope-kafka".to_owned())
            .spawn(move || {
                consumer::run(consumer, loop_shared, commit_interval, shutdown, |chunk| {
                    runtime.spawn(worker.clone().process(chunk));
                });
            })
            .map_err(|e| Error::Internal(format!("cannot start the Kafka consumer thread: {e}")))?;
        tracing::info!(
            brokers = %config.brokers, group = %config.group_id,
            topics = ?config.topics.iter().map(|t| &t.topic).collect::<Vec<_>>(),
            "consuming Kafka"
        );
        Ok(KafkaSource { shared, thread })
    }

    /// A handle on the source's figures.
    pub fn monitor(&self) -> KafkaMonitor {
        KafkaMonitor {
            shared: self.shared.clone(),
        }
    }

    /// Waits until the source has stopped (after `shutdown` fired): what
    /// was being stored is stored and committed, and the consumer has left
    /// its group.
    pub async fn stopped(self) {
        let thread = self.thread;
        if let Ok(Err(_)) = tokio::task::spawn_blocking(move || thread.join()).await {
            tracing::error!("the Kafka consumer thread panicked");
        }
    }
}

impl KafkaMonitor {
    /// Every partition consumed since start, with its offsets and lag.
    pub fn partitions(&self) -> Vec<PartitionStatus> {
        self.shared.partitions()
    }

    /// The source's counters.
    pub fn status(&self) -> KafkaStatus {
        let mut status = self.shared.counters.read();
        status.paused = self.shared.paused();
        status.in_flight_bytes = self.shared.in_flight_bytes() as u64;
        status
    }
}
