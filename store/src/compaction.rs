//! Compaction: once an hour partition is over, its small parts (one per
//! flush) are merged into one, so scans open fewer files.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::flush::TimeOrder;
use crate::parquet_part::{Part, PartMeta, PartWriterOptions, write_part};
use crate::partition::Partition;
use crate::table::TableData;

/// The merges worth doing in `table` now: in each finished partition, the
/// smallest parts, as many as fit together under `target` bytes (at least
/// two).
pub(crate) fn plan(table: &TableData, now_nanos: i64, target: u64) -> Vec<Vec<Arc<Part>>> {
    let mut by_partition: BTreeMap<Partition, Vec<Arc<Part>>> = BTreeMap::new();
    for part in table.parts() {
        if part.partition().end_nanos() <= now_nanos {
            by_partition.entry(part.partition()).or_default().push(part);
        }
    }
    let mut merges = Vec::new();
    for (_, mut parts) in by_partition {
        parts.sort_by_key(|p| p.size());
        let mut group = Vec::new();
        let mut total = 0;
        for part in parts {
            if total + part.size() > target && group.len() >= 2 {
                break;
            }
            total += part.size();
            group.push(part);
        }
        if group.len() >= 2 {
            merges.push(group);
        }
    }
    merges
}

/// Merges `parts` (all of one partition) into one new part, and swaps it in.
/// Blocking: run it off the async runtime. Returns whether the swap
/// happened (it does not if one of the parts expired meanwhile).
pub(crate) fn merge(
    table: &TableData,
    parts: &[Arc<Part>],
    next_id: &AtomicU64,
    options: &PartWriterOptions,
) -> Result<bool> {
    let Some(partition) = parts.first().map(|p| p.partition()) else {
        return Ok(false);
    };
    let mut batches: Vec<RecordBatch> = Vec::new();
    for part in parts {
        let read_error = |reason: String| Error::ReadPart {
            path: part.path().to_owned(),
            reason,
        };
        let file = File::open(part.path()).map_err(|e| read_error(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(64 * 1024).build())
            .map_err(|e| read_error(e.to_string()))?;
        for batch in reader {
            batches.push(batch.map_err(|e| read_error(e.to_string()))?);
        }
    }
    let order = TimeOrder::new(table, &batches)?;
    let id = next_id.fetch_add(1, Ordering::Relaxed);
    let meta = PartMeta {
        table: table.table().name().to_owned(),
        id,
        flush_id: id,
        flush_lsn: parts.iter().map(|p| p.meta().flush_lsn).max().unwrap_or(0),
        replaces: parts.iter().map(|p| p.meta().id).collect(),
        rows: order.len() as u64,
        min_time: parts
            .iter()
            .map(|p| p.meta().min_time)
            .min()
            .unwrap_or(i64::MIN),
        max_time: parts
            .iter()
            .map(|p| p.meta().max_time)
            .max()
            .unwrap_or(i64::MAX),
    };
    let merged = write_part(
        table.dir(),
        partition,
        table.table().schema(),
        order.chunks(0..order.len()),
        meta,
        options,
    )?;
    if table.replace_parts(parts, merged.clone()) {
        Ok(true)
    } else {
        // Retention took one of the inputs: the merged part is not needed.
        let _ = std::fs::remove_file(merged.path());
        Ok(false)
    }
}
