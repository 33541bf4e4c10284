//! What the Kafka source reports: per partition, offsets and lag; for the
//! whole source, counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// One partition the source consumed, now or earlier in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The signal the topic carries (`traces`, `metrics`, `logs`).
    pub signal: &'static str,
    /// Its encoding (`otlp_proto`, `otlp_json`, `json_lines`).
    pub encoding: &'static str,
    /// Whether this instance owns the partition now.
    pub assigned: bool,
    /// Whether consumption is paused (back-pressure).
    pub paused: bool,
    /// The last offset committed: every message before it is durable.
    pub committed_offset: Option<i64>,
    /// One past the last offset handed out for storing.
    pub position: Option<i64>,
    /// The partition's high watermark (offset of the next message to be
    /// produced), as last fetched.
    pub high_watermark: Option<i64>,
    /// `high_watermark - committed_offset`: messages not yet durably
    /// consumed.
    pub lag: Option<i64>,
    /// Messages being decoded and stored now.
    pub in_flight: u64,
    /// Messages consumed since start.
    pub messages: u64,
    /// Messages sent to the dead-letter topic since start.
    pub dead_letters: u64,
    /// Messages consumed again (offsets already handed out before, after a
    /// rebalance or a reconnection) since start.
    pub redelivered: u64,
}

/// Counters of the whole source.
#[derive(Debug, Default)]
pub(crate) struct SourceCounters {
    pub(crate) messages: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) rejected_records: AtomicU64,
    pub(crate) duplicate_spans: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) dead_letters_refused: AtomicU64,
    pub(crate) redelivered_messages: AtomicU64,
    pub(crate) pauses: AtomicU64,
    pub(crate) backpressure_retries: AtomicU64,
}

/// The whole source's figures since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaStatus {
    /// Messages consumed.
    pub messages: u64,
    /// Records (spans, log records, data points) stored.
    pub records: u64,
    /// Records of decodable messages rejected one by one (an invalid trace
    /// id, a data point without a value); the rest of the message is
    /// stored.
    pub rejected_records: u64,
    /// Spans delivered again and not stored twice.
    pub duplicate_spans: u64,
    /// Messages sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Dead letters the topic refused for good (logged, dropped).
    pub dead_letters_refused: u64,
    /// Messages consumed again after a rebalance or reconnection.
    pub redelivered_messages: u64,
    /// Times consumption was paused for back-pressure.
    pub pauses: u64,
    /// Appends retried after the store's back-pressure.
    pub backpressure_retries: u64,
    /// Whether consumption is paused now.
    pub paused: bool,
    /// Message bytes being decoded and stored now.
    pub in_flight_bytes: u64,
}

impl SourceCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> KafkaStatus {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        KafkaStatus {
            messages: get(&self.messages),
            records: get(&self.records),
            rejected_records: get(&self.rejected_records),
            duplicate_spans: get(&self.duplicate_spans),
            dead_letters: get(&self.dead_letters),
            dead_letters_refused: get(&self.dead_letters_refused),
            redelivered_messages: get(&self.redelivered_messages),
            pauses: get(&self.pauses),
            backpressure_retries: get(&self.backpressure_retries),
            paused: false,
            in_flight_bytes: 0,
        }
    }
}
