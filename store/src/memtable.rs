//! Memtables: accepted batches held in memory until they become a part.
//!
//! A table has one *active* memtable that appends go to. A flush freezes
//! it (a new active one starts empty), writes it as Parquet parts, and then
//! drops it. Batches enter in write-ahead-log order, so a memtable always
//! holds a contiguous run of the table's records.

use std::time::Instant;

use arrow::array::{Array as _, TimestampNanosecondArray};
use arrow::compute::kernels::aggregate::{max, min};
use arrow::record_batch::RecordBatch;

use crate::wal::Lsn;

/// A batch in memory, with what pruning needs to know about it.
#[derive(Debug, Clone)]
pub struct MemBatch {
    /// The rows.
    pub batch: RecordBatch,
    /// The write-ahead-log sequence number of the batch.
    pub lsn: Lsn,
    /// Smallest `time` in the batch (nanoseconds).
    pub min_time: i64,
    /// Largest `time` in the batch.
    pub max_time: i64,
}

impl MemBatch {
    /// Wraps a batch, reading its time range from the `time` column.
    pub fn new(lsn: Lsn, batch: RecordBatch) -> MemBatch {
        let times = batch
            .column_by_name("time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
        let (min_time, max_time) = match times {
            Some(times) if times.null_count() < times.len() => (
                min(times).unwrap_or(i64::MIN),
                max(times).unwrap_or(i64::MAX),
            ),
            // No usable time column: never prune this batch.
            _ => (i64::MIN, i64::MAX),
        };
        MemBatch {
            batch,
            lsn,
            min_time,
            max_time,
        }
    }

    /// Whether rows with times in `[from, to]` may be in this batch.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.min_time <= to && self.max_time >= from
    }
}

/// A run of batches of one table, in sequence order.
#[derive(Debug, Default)]
pub struct MemTable {
    batches: Vec<MemBatch>,
    rows: usize,
    bytes: usize,
    created: Option<Instant>,
}

impl MemTable {
    /// Appends a batch; returns the memory it holds.
    pub fn push(&mut self, batch: MemBatch) -> usize {
        let bytes = batch.batch.get_array_memory_size();
        self.rows += batch.batch.num_rows();
        self.bytes += bytes;
        self.created.get_or_insert_with(Instant::now);
        self.batches.push(batch);
        bytes
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The batches, in sequence order.
    pub fn batches(&self) -> &[MemBatch] {
        &self.batches
    }

    /// Sequence number of the first batch.
    pub fn first_lsn(&self) -> Option<Lsn> {
        self.batches.first().map(|b| b.lsn)
    }

    /// Sequence number of the last batch.
    pub fn last_lsn(&self) -> Option<Lsn> {
        self.batches.last().map(|b| b.lsn)
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Memory held by the batches' buffers.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the first batch arrived.
    pub fn created(&self) -> Option<Instant> {
        self.created
    }
}
