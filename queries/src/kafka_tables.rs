//! `system.kafka_partitions` and `system.kafka`: the Kafka source's
//! consumer lag and counters, computed at scan time.
//!
//! `system.kafka_partitions`, one row per partition consumed since start:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `topic`, `partition` | text, int32 | the partition |
//! | `signal`, `encoding` | text | what its topic is configured to carry |
//! | `assigned` | boolean | owned by this instance now |
//! | `paused` | boolean | consumption paused for back-pressure |
//! | `committed_offset` | int64, null before the first commit | every message before it is durable |
//! | `position` | int64, null when not assigned | one past the last offset handed out for storing |
//! | `high_watermark` | int64, null until fetched | the offset the next produced message gets |
//! | `lag` | int64, null when unknown | `high_watermark - committed_offset` |
//! | `in_flight` | int64 | messages being decoded and stored |
//! | `messages`, `dead_letters`, `redelivered` | int64 | since start: consumed, sent to the dead-letter topic, consumed again |
//!
//! `system.kafka`, one row (none without Kafka): `messages`, `records`,
//! `rejected_records`, `duplicate_spans`, `dead_letters`,
//! `dead_letters_refused`, `redelivered_messages`, `pauses`,
//! `backpressure_retries` (since start), `paused`, `in_flight_bytes` (now).
//!
//! The consumer lives in ingest, which this crate may not depend on, so the
//! tables read a [`KafkaSourceStatus`] the binary implements.
//!
//! ```sql
//! SELECT topic, partition, lag FROM system.kafka_partitions WHERE assigned ORDER BY lag DESC
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::TableProvider;
use datafusion::error::Result;

use crate::live_table::{LiveTable, int, text};

/// One partition, as a [`KafkaSourceStatus`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaPartitionRow {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// `traces`, `metrics` or `logs`.
    pub signal: String,
    /// `otlp_proto`, `otlp_json` or `json_lines`.
    pub encoding: String,
    /// Owned by this instance now.
    pub assigned: bool,
    /// Paused for back-pressure.
    pub paused: bool,
    /// The last committed offset.
    pub committed_offset: Option<i64>,
    /// One past the last offset handed out.
    pub position: Option<i64>,
    /// The partition's high watermark.
    pub high_watermark: Option<i64>,
    /// High watermark minus committed offset.
    pub lag: Option<i64>,
    /// Messages being stored.
    pub in_flight: u64,
    /// Messages consumed since start.
    pub messages: u64,
    /// Messages dead-lettered since start.
    pub dead_letters: u64,
    /// Messages consumed again since start.
    pub redelivered: u64,
}

/// The source's counters, as a [`KafkaSourceStatus`] reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaSourceRow {
    /// Messages consumed.
    pub messages: u64,
    /// Records stored.
    pub records: u64,
    /// Records rejected one by one.
    pub rejected_records: u64,
    /// Spans delivered again and not stored twice.
    pub duplicate_spans: u64,
    /// Messages sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Dead letters the topic refused for good.
    pub dead_letters_refused: u64,
    /// Messages consumed again.
    pub redelivered_messages: u64,
    /// Times consumption was paused.
    pub pauses: u64,
    /// Appends retried after back-pressure.
    pub backpressure_retries: u64,
    /// Paused now.
    pub paused: bool,
    /// Message bytes being stored now.
    pub in_flight_bytes: u64,
}

/// Where the Kafka tables read their rows: the server's Kafka source.
pub trait KafkaSourceStatus: Send + Sync + std::fmt::Debug {
    /// Every partition consumed since start.
    fn partitions(&self) -> Vec<KafkaPartitionRow>;
    /// The source's counters.
    fn counters(&self) -> KafkaSourceRow;
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Partitions,
    Source,
}

/// The two tables over `source` (none: empty tables), by name.
pub(crate) fn providers(
    source: Option<Arc<dyn KafkaSourceStatus>>,
) -> Result<[(&'static str, Arc<dyn TableProvider>); 2]> {
    let make = |kind| -> Result<Arc<dyn TableProvider>> {
        let source = source.clone();
        Ok(LiveTable::new(move || build(kind, source.as_deref()))?)
    };
    Ok([
        ("kafka_partitions", make(Kind::Partitions)?),
        ("kafka", make(Kind::Source)?),
    ])
}

fn optional(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(values))
}

fn flag(values: impl IntoIterator<Item = bool>) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(values.into_iter().map(Some)))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| {
            let nullable = array.null_count() > 0 || *array.data_type() == DataType::Int64;
            Field::new(*name, array.data_type().clone(), nullable)
        })
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, array)| array).collect(),
    )?)
}

fn build(kind: Kind, source: Option<&dyn KafkaSourceStatus>) -> Result<RecordBatch> {
    match kind {
        Kind::Partitions => {
            let rows = source.map(|s| s.partitions()).unwrap_or_default();
            batch(vec![
                ("topic", text(rows.iter().map(|r| &r.topic))),
                (
                    "partition",
                    Arc::new(Int32Array::from_iter_values(
                        rows.iter().map(|r| r.partition),
                    )),
                ),
                ("signal", text(rows.iter().map(|r| &r.signal))),
                ("encoding", text(rows.iter().map(|r| &r.encoding))),
                ("assigned", flag(rows.iter().map(|r| r.assigned))),
                ("paused", flag(rows.iter().map(|r| r.paused))),
                (
                    "committed_offset",
                    optional(rows.iter().map(|r| r.committed_offset)),
                ),
                ("position", optional(rows.iter().map(|r| r.position))),
                (
                    "high_watermark",
                    optional(rows.iter().map(|r| r.high_watermark)),
                ),
                ("lag", optional(rows.iter().map(|r| r.lag))),
                ("in_flight", int(rows.iter().map(|r| r.in_flight))),
                ("messages", int(rows.iter().map(|r| r.messages))),
                ("dead_letters", int(rows.iter().map(|r| r.dead_letters))),
                ("redelivered", int(rows.iter().map(|r| r.redelivered))),
            ])
        }
        Kind::Source => {
            let rows: Vec<KafkaSourceRow> = source.map(|s| s.counters()).into_iter().collect();
            let column = |f: fn(&KafkaSourceRow) -> u64| int(rows.iter().map(f));
            batch(vec![
                ("messages", column(|r| r.messages)),
                ("records", column(|r| r.records)),
                ("rejected_records", column(|r| r.rejected_records)),
                ("duplicate_spans", column(|r| r.duplicate_spans)),
                ("dead_letters", column(|r| r.dead_letters)),
                ("dead_letters_refused", column(|r| r.dead_letters_refused)),
                ("redelivered_messages", column(|r| r.redelivered_messages)),
                ("pauses", column(|r| r.pauses)),
                ("backpressure_retries", column(|r| r.backpressure_retries)),
                ("paused", flag(rows.iter().map(|r| r.paused))),
                ("in_flight_bytes", column(|r| r.in_flight_bytes)),
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryEngine;

    #[derive(Debug)]
    struct Fixed;

    impl KafkaSourceStatus for Fixed {
        fn partitions(&self) -> Vec<KafkaPartitionRow> {
            vec![KafkaPartitionRow {
                topic: "otlp_spans".to_owned(),
                partition: 2,
                signal: "traces".to_owned(),
                encoding: "otlp_proto".to_owned(),
                assigned: true,
                committed_offset: Some(40),
                high_watermark: Some(45),
                lag: Some(5),
                messages: 40,
                ..Default::default()
            }]
        }

        fn counters(&self) -> KafkaSourceRow {
            KafkaSourceRow {
                messages: 40,
                duplicate_spans: 3,
                ..Default::default()
            }
        }
    }

    #[tokio::test]
    async fn lag_is_queryable_and_empty_without_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = grayscope_store::Store::open(dir.path(), Default::default())
            .await
            .unwrap();
        let engine = QueryEngine::new(store).unwrap();
        let sql = "SELECT topic, partition, lag FROM system.kafka_partitions";
        assert_eq!(engine.sql(sql).await.unwrap().num_rows(), 0);
        assert_eq!(
            engine
                .sql("SELECT * FROM system.kafka")
                .await
                .unwrap()
                .num_rows(),
            0
        );
        let engine = engine.with_kafka(Arc::new(Fixed)).unwrap();
        let result = engine.sql(sql).await.unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&result.batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| otlp_spans | 2         | 5   |"), "{text}");
        let result = engine
            .sql("SELECT duplicate_spans FROM system.kafka")
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&result.batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| 3 "), "{text}");
    }
}
