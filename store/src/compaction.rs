//! Compaction: small parts (one per flush) are merged into parts of about
//! `compact_below`, so scans open fewer files. A row is rewritten about
//! once: a small part is merged into a big one, and a big one is never
//! merged again. In the hour being written this happens as soon as the small parts
//! add up to `compact_below` (or number [`MAX_MERGE_INPUTS`]), so the hour
//! never gathers thousands of them; what is left is merged once the hour
//! is over. The parts of busy flushes are merged by copying their row
//! groups as they are encoded; smaller ones are merged row by row
//! ([`SortedMerge`]), streaming, in bounded memory (see [`merge`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::PageIndexPolicy;

use crate::error::{Error, Result};
use crate::parquet_part::{OpenPart, Part, PartMeta, PartWriterOptions, concat_parts, write_part};
use crate::partition::Partition;
use crate::sorted_merge::SortedMerge;
use crate::table::TableData;

/// Rows read at a time from each row group being merged in time order...
const READ_ROWS: usize = 1024;

/// ...or fewer, down to this, so that a merge holds at most
/// [`BUFFERED_ROWS`] rows of its inputs (tens of MB), however many row
/// groups they have and however big the parts are.
const MIN_READ_ROWS: usize = 64;

/// See [`MIN_READ_ROWS`].
const BUFFERED_ROWS: usize = MAX_MERGE_INPUTS * READ_ROWS;

/// The most parts one merge reads at once.
const MAX_MERGE_INPUTS: usize = 64;

/// Parts whose row groups all hold at least this fraction of
/// `row_group_rows` are merged by copying their row groups (see [`merge`]).
const CONCAT_FRACTION: usize = 4;

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
    /// Parts of at least this many rows have row groups big enough to be
    /// copied (see [`copyable_rows`]).
    pub(crate) copy_rows: u64,
}

/// The fewest rows a row group may hold and still be copied as it is by a
/// merge: a [`CONCAT_FRACTION`]th of `row_group_rows`. Parts are written
/// with balanced row groups, so a part of at least this many rows has only
/// row groups of at least this many.
pub(crate) fn copyable_rows(row_group_rows: usize) -> u64 {
    (row_group_rows / CONCAT_FRACTION).max(1) as u64
}

/// The merges due in `table` now, at most two per partition: small parts
/// of at least `rules.copy_rows` rows, whose row groups a merge copies, are
/// merged with each other, and smaller ones with each other, so that one
/// tiny part (the last flush before a shutdown) does not make a merge
/// re-encode a dozen big ones. Each merge takes the oldest small parts of
/// its kind in a partition, as many as fit together under `rules.target`
/// (at least two, at most [`MAX_MERGE_INPUTS`]):
/// - in any partition, once they add up to the target or number
///   [`MAX_MERGE_INPUTS`];
/// - with `rules.finished_hours`, in a partition whose hour is over,
///   whatever small parts it has.
pub(crate) fn plan(table: &TableData, now_nanos: i64, rules: &Rules) -> Vec<Vec<Arc<Part>>> {
    let small = rules.target / SMALL_FRACTION;
    let mut by_kind: BTreeMap<(Partition, bool), Vec<Arc<Part>>> = BTreeMap::new();
    for part in table.parts() {
        if part.size() < small {
            let copyable = part.meta().rows >= rules.copy_rows;
            by_kind
                .entry((part.partition(), copyable))
                .or_default()
                .push(part);
        }
    }
    let mut merges = Vec::new();
    for ((partition, _), mut parts) in by_kind {
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

/// Whether the opened parts can be merged by copying their row groups: all
/// of one Parquet schema, every row group at least a [`CONCAT_FRACTION`]th
/// of `row_group_rows`.
fn can_concat(
    opened: &[(&Arc<Part>, File, ArrowReaderMetadata)],
    options: &PartWriterOptions,
) -> bool {
    let min_rows = i64::try_from(copyable_rows(options.row_group_rows)).unwrap_or(i64::MAX);
    let Some((_, _, first)) = opened.first() else {
        return false;
    };
    let schema = first
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema();
    opened.iter().all(|(_, _, metadata)| {
        let metadata = metadata.metadata();
        metadata.file_metadata().schema_descr().root_schema() == schema
            && metadata
                .row_groups()
                .iter()
                .all(|row_group| row_group.num_rows() >= min_rows)
    })
}

/// For `map_err`: `part` could not be opened or read.
fn unreadable<E: ToString>(part: &Part) -> impl FnOnce(E) -> Error + use<E> {
    let path = part.path().to_owned();
    move |error| Error::ReadPart {
        path,
        reason: error.to_string(),
    }
}

/// Merges `parts` (all of one partition) into one new part, and swaps it in.
/// Blocking: run it off the async runtime. Returns whether the swap
/// happened (it does not if one of the parts expired meanwhile).
///
/// When every row group of the parts holds at least a
/// [`CONCAT_FRACTION`]th of `options.row_group_rows` (parts of busy
/// flushes), the row groups are copied as they are encoded
/// ([`concat_parts`]), oldest part first: row groups of consecutive flushes
/// cover neighbouring times, so each stays a narrow range for pruning, and
/// no row is decoded. Otherwise the rows are merged into new row groups
/// ([`SortedMerge`]), one input per row group, each read in order: it holds
/// one batch per input and one output chunk, however big the parts are.
/// Flushes write rows in arrival order, so this interleaves them by time
/// without sorting them; only when every input row group is declared sorted
/// (parts written before flushes stopped sorting, and merges of those) is
/// the result sorted, and declared so.
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
    let mut opened = Vec::with_capacity(parts.len());
    let mut rows = 0;
    for part in oldest_first {
        let file = File::open(part.path()).map_err(unreadable(part))?;
        let metadata = ArrowReaderMetadata::load(
            &file,
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional),
        )
        .map_err(unreadable(part))?;
        rows += metadata.metadata().file_metadata().num_rows().max(0) as u64;
        opened.push((part, file, metadata));
    }
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
    let merged = if can_concat(&opened, options) {
        let inputs: Vec<OpenPart<'_>> = opened
            .iter()
            .map(|(part, file, metadata)| OpenPart {
                part,
                file,
                metadata: metadata.metadata(),
            })
            .collect();
        concat_parts(table.dir(), partition, &inputs, meta, options)?
    } else {
        let row_groups: usize = opened
            .iter()
            .map(|(_, _, m)| m.metadata().num_row_groups())
            .sum();
        let batch_rows = (BUFFERED_ROWS / row_groups.max(1)).clamp(MIN_READ_ROWS, READ_ROWS);
        let mut inputs = Vec::with_capacity(row_groups);
        for (part, file, metadata) in &opened {
            for row_group in 0..metadata.metadata().num_row_groups() {
                let file = file.try_clone().map_err(unreadable(part))?;
                let reader =
                    ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
                        .with_row_groups(vec![row_group])
                        .with_batch_size(batch_rows)
                        .build()
                        .map_err(unreadable(part))?;
                inputs.push(reader);
            }
        }
        let sorted = opened.iter().all(|(_, _, metadata)| {
            metadata.metadata().row_groups().iter().all(|group| {
                group
                    .sorting_columns()
                    .is_some_and(|columns| !columns.is_empty())
            })
        });
        write_part(
            table.dir(),
            partition,
            table.table().schema(),
            SortedMerge::new(inputs),
            meta,
            options,
            sorted,
        )?
    };
    if table.replace_parts(parts, merged.clone()) {
        Ok(true)
    } else {
        // Retention took one of the inputs: the merged part is not needed.
        let _ = std::fs::remove_file(merged.path());
        Ok(false)
    }
}
