//! Compaction: small parts (one per flush) are merged into parts of about
//! `compact_below`, so scans open fewer files. A row is rewritten about
//! once: a small part is merged into a big one, and a big one is never
//! merged again. In the hour being written this happens as soon as the small parts
//! add up to `compact_below` (or number [`MAX_MERGE_INPUTS`]), so the hour
//! never gathers thousands of them; what is left is merged once the hour
//! is over. Parts are sorted by time, so a merge streams them
//! ([`SortedMerge`]) in bounded memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::parquet_part::{Part, PartMeta, PartWriterOptions, write_part};
use crate::partition::Partition;
use crate::sorted_merge::SortedMerge;
use crate::table::TableData;

/// Rows read at a time from each part being merged.
const READ_ROWS: usize = 1024;

/// The most parts one merge reads at once. With [`READ_ROWS`], a merge
/// holds at most this many batches of 1024 rows (tens of MB), however big
/// the parts are.
const MAX_MERGE_INPUTS: usize = 64;

/// A part is small, and will be merged, below this fraction of the target
/// size. Small parts that add up to the target merge into a part of at
/// least three quarters of it, which is not small, so it is not merged
/// again. (64 tiny parts, or the leftovers of a finished hour, can make a
/// part that is still small; it is merged once more, and it is tiny.)
const SMALL_FRACTION: u64 = 4;

/// When merges are due.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// The size merges aim at (`compact_below`); parts under a quarter of
    /// it are small.
    pub(crate) target: u64,
    /// Also merge whatever small parts are left in hours that are over.
    pub(crate) finished_hours: bool,
}

/// The merges due in `table` now, at most one per partition, each of the
/// oldest small parts of a partition, as many as fit together under
/// `rules.target` (at least two, at most [`MAX_MERGE_INPUTS`]):
/// - in any partition, once its small parts add up to the target or number
///   [`MAX_MERGE_INPUTS`];
/// - with `rules.finished_hours`, in a partition whose hour is over,
///   whatever small parts it has.
pub(crate) fn plan(table: &TableData, now_nanos: i64, rules: &Rules) -> Vec<Vec<Arc<Part>>> {
    let small = rules.target / SMALL_FRACTION;
    let mut by_partition: BTreeMap<Partition, Vec<Arc<Part>>> = BTreeMap::new();
    for part in table.parts() {
        if part.size() < small {
            by_partition.entry(part.partition()).or_default().push(part);
        }
    }
    let mut merges = Vec::new();
    for (partition, mut parts) in by_partition {
        let enough = parts.iter().map(|p| p.size()).sum::<u64>() >= rules.target
            || parts.len() >= MAX_MERGE_INPUTS;
        let over = rules.finished_hours && partition.end_nanos() <= now_nanos;
        if !(enough || over) {
            continue;
        }
        // Oldest first: consecutive flushes cover neighbouring times, so
        // the merged part keeps a narrow time range for pruning.
        parts.sort_by_key(|p| p.meta().id);
        let group = fill(parts, rules.target);
        if group.len() >= 2 {
            merges.push(group);
        }
    }
    merges
}

/// `parts` in their order, while they fit together under `target` (but at
/// least two), at most [`MAX_MERGE_INPUTS`].
fn fill(parts: Vec<Arc<Part>>, target: u64) -> Vec<Arc<Part>> {
    let mut group = Vec::new();
    let mut total = 0;
    for part in parts {
        if (total + part.size() > target && group.len() >= 2) || group.len() == MAX_MERGE_INPUTS {
            break;
        }
        total += part.size();
        group.push(part);
    }
    group
}

/// Runs `job` (a merge) on a thread of its own at the lowest CPU priority,
/// so that merges take the CPU ingest and queries leave idle. Under
/// sustained full load they fall behind, which costs only more parts for
/// a while; a flush, which memory waits on, is never slowed this way.
pub(crate) async fn at_low_priority<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("grayscope-compact".to_owned())
        .spawn(move || {
            // On Linux a nice value belongs to the calling thread alone;
            // elsewhere it would be the whole process's, so leave it.
            #[cfg(target_os = "linux")]
            let _ = rustix::process::setpriority_process(None, 19);
            let _ = done.send(job());
        })
        .map_err(|source| Error::SpawnThread { source })?;
    result.await.map_err(|_| Error::Closed)
}

/// Merges `parts` (all of one partition) into one new part, and swaps it in.
/// Blocking: run it off the async runtime. Returns whether the swap
/// happened (it does not if one of the parts expired meanwhile).
///
/// Every part is already sorted by time, so the merge streams: it holds one
/// batch of [`READ_ROWS`] rows per input and one output chunk, however big
/// the parts are.
pub(crate) fn merge(
    table: &TableData,
    parts: &[Arc<Part>],
    next_id: &AtomicU64,
    options: &PartWriterOptions,
) -> Result<bool> {
    let Some(partition) = parts.first().map(|p| p.partition()) else {
        return Ok(false);
    };
    // Oldest part first, so rows with equal times keep their order of
    // arrival.
    let mut oldest_first: Vec<&Arc<Part>> = parts.iter().collect();
    oldest_first.sort_by_key(|p| p.meta().id);
    let mut inputs = Vec::with_capacity(parts.len());
    let mut rows = 0;
    for part in oldest_first {
        let read_error = |reason: String| Error::ReadPart {
            path: part.path().to_owned(),
            reason,
        };
        let file = File::open(part.path()).map_err(|e| read_error(e.to_string()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| read_error(e.to_string()))?;
        rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
        let reader = builder
            .with_batch_size(READ_ROWS)
            .build()
            .map_err(|e| read_error(e.to_string()))?;
        inputs.push(reader);
    }
    let merged_rows = SortedMerge::new(inputs);
    let id = next_id.fetch_add(1, Ordering::Relaxed);
    let meta = PartMeta {
        table: table.table().name().to_owned(),
        id,
        flush_id: id,
        flush_lsn: parts.iter().map(|p| p.meta().flush_lsn).max().unwrap_or(0),
        replaces: parts.iter().map(|p| p.meta().id).collect(),
        rows,
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
        merged_rows,
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
