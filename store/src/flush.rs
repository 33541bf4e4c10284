//! Flushing: a frozen memtable becomes Parquet parts, one per hour
//! partition its rows fall in, sorted by time.
//!
//! The rows are not copied into one sorted batch first: [`TimeOrder`]
//! sorts `(time, batch, row)` keys, and each row group's rows are gathered
//! from the memtable's batches as the part is written. One copy instead of
//! two (concatenate, then take), and the memory a flush needs beyond the
//! memtable is one chunk of rows, not the memtable again.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array as _, TimestampNanosecondArray};
use arrow::compute::interleave_record_batch;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::memtable::MemTable;
use crate::parquet_part::{Part, PartMeta, PartWriterOptions, write_part};
use crate::partition::Partition;
use crate::table::TableData;

/// Rows gathered per call when writing a part: small enough to stay in
/// cache, large enough for the column encoders.
pub(crate) const CHUNK_ROWS: usize = 16 * 1024;

/// The rows of some batches in time order, as `(batch, row)` positions.
/// Rows with equal times keep their order of arrival.
pub(crate) struct TimeOrder<'a> {
    batches: Vec<&'a RecordBatch>,
    /// Sorted times, and where each row is.
    keys: Vec<(i64, (usize, usize))>,
}

impl<'a> TimeOrder<'a> {
    /// Sorts the rows of `batches` (all of `table`'s schema) by `time`.
    pub(crate) fn new(table: &TableData, batches: &'a [RecordBatch]) -> Result<TimeOrder<'a>> {
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut keys = Vec::with_capacity(rows);
        for (b, batch) in batches.iter().enumerate() {
            let times = batch
                .column_by_name("time")
                .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
                .ok_or(Error::SchemaMismatch {
                    table: table.table(),
                })?;
            // `time` is never null in our schemas; a null would sort first.
            keys.extend(
                times
                    .values()
                    .iter()
                    .enumerate()
                    .map(|(r, &t)| (if times.is_null(r) { i64::MIN } else { t }, (b, r))),
            );
        }
        // Stable, and fast on the long already-sorted runs telemetry
        // arrives in.
        keys.sort_by_key(|&(time, _)| time);
        Ok(TimeOrder {
            batches: batches.iter().collect(),
            keys,
        })
    }

    /// The ranges of sorted rows that share an hour partition.
    pub(crate) fn partitions(&self) -> Vec<(Partition, Range<usize>)> {
        let mut runs = Vec::new();
        let mut start = 0;
        while start < self.keys.len() {
            let partition = Partition::of_nanos(self.keys[start].0);
            let end_nanos = partition.end_nanos();
            let end = start + self.keys[start..].partition_point(|&(t, _)| t < end_nanos);
            runs.push((partition, start..end));
            start = end;
        }
        runs
    }

    /// The smallest and largest time in `rows`.
    pub(crate) fn time_range(&self, rows: &Range<usize>) -> (i64, i64) {
        if rows.is_empty() {
            return (i64::MIN, i64::MAX);
        }
        (self.keys[rows.start].0, self.keys[rows.end - 1].0)
    }

    /// The sorted rows `rows`, gathered in batches of at most
    /// [`CHUNK_ROWS`].
    pub(crate) fn chunks(
        &self,
        rows: Range<usize>,
    ) -> impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> + '_ {
        let starts = rows.clone().step_by(CHUNK_ROWS);
        starts.map(move |start| {
            let end = (start + CHUNK_ROWS).min(rows.end);
            let positions: Vec<(usize, usize)> =
                self.keys[start..end].iter().map(|&(_, at)| at).collect();
            interleave_record_batch(&self.batches, &positions)
        })
    }
}

/// Writes a frozen memtable as parts. Blocking: run it off the async runtime.
pub(crate) fn write_flush(
    table: &TableData,
    frozen: &MemTable,
    next_id: &AtomicU64,
    options: &PartWriterOptions,
) -> Result<Vec<Arc<Part>>> {
    let Some(flush_lsn) = frozen.last_lsn() else {
        return Ok(Vec::new());
    };
    let batches: Vec<RecordBatch> = frozen.batches().iter().map(|b| b.batch.clone()).collect();
    let order = TimeOrder::new(table, &batches)?;
    let runs = order.partitions();
    let first_id = next_id.fetch_add(runs.len() as u64, Ordering::Relaxed);
    let mut parts = Vec::with_capacity(runs.len());
    for (i, (partition, rows)) in runs.into_iter().enumerate() {
        let (min_time, max_time) = order.time_range(&rows);
        let meta = PartMeta {
            table: table.table().name().to_owned(),
            id: first_id + i as u64,
            flush_id: first_id,
            flush_lsn,
            replaces: Vec::new(),
            rows: rows.len() as u64,
            min_time,
            max_time,
        };
        let schema = table.table().schema();
        parts.push(write_part(
            table.dir(),
            partition,
            schema,
            order.chunks(rows),
            meta,
            options,
        )?);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::HOUR_NS;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::compute::concat_batches;
    use grayscope_core::Table;

    fn batch(times: &[i64], first_n: i64) -> RecordBatch {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(
                "time",
                arrow::datatypes::DataType::Timestamp(
                    arrow::datatypes::TimeUnit::Nanosecond,
                    Some("UTC".into()),
                ),
                false,
            ),
            arrow::datatypes::Field::new("n", arrow::datatypes::DataType::Int64, false),
        ]));
        let time: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC"));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(
            first_n..first_n + times.len() as i64,
        ));
        RecordBatch::try_new(schema, vec![time, n]).unwrap()
    }

    fn table() -> TableData {
        TableData::new(Table::Spans, "unused".into(), Vec::new(), 0)
    }

    fn column(batch: &RecordBatch, name: &str) -> Vec<i64> {
        let c = batch.column_by_name(name).unwrap().to_data();
        c.buffers()[0].typed_data::<i64>()[c.offset()..c.offset() + c.len()].to_vec()
    }

    #[test]
    fn rows_of_several_batches_come_out_in_time_order_equal_times_in_arrival_order() {
        let batches = [batch(&[30, 10, 20], 0), batch(&[15, 10, 40], 3)];
        let table = table();
        let order = TimeOrder::new(&table, &batches).unwrap();
        assert_eq!(order.keys.len(), 6);
        let chunks: Vec<RecordBatch> = order.chunks(0..6).map(|c| c.unwrap()).collect();
        let sorted = concat_batches(&batches[0].schema(), &chunks).unwrap();
        assert_eq!(column(&sorted, "time"), vec![10, 10, 15, 20, 30, 40]);
        // The row of batch 0 with time 10 (n = 1) arrived before batch 1's.
        assert_eq!(column(&sorted, "n"), vec![1, 4, 3, 2, 0, 5]);
    }

    #[test]
    fn sorted_rows_split_at_hour_boundaries() {
        let h = 1_764_000_000_000_000_000 / HOUR_NS * HOUR_NS;
        let batches = [
            batch(&[h + 3 * HOUR_NS + 7, h + HOUR_NS - 1, h], 0),
            batch(&[h + HOUR_NS, h + 5], 3),
        ];
        let table = table();
        let order = TimeOrder::new(&table, &batches).unwrap();
        let runs = order.partitions();
        let ranges: Vec<_> = runs.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(ranges, vec![0..3, 3..4, 4..5]);
        assert_eq!(runs[0].0, Partition::of_nanos(h));
        assert_eq!(runs[1].0, Partition::of_nanos(h + HOUR_NS));
        assert_eq!(runs[2].0, Partition::of_nanos(h + 3 * HOUR_NS));
        assert_eq!(order.time_range(&runs[0].1), (h, h + HOUR_NS - 1));
    }

    #[test]
    fn a_part_larger_than_a_chunk_is_gathered_in_chunks_of_bounded_size() {
        let times: Vec<i64> = (0..CHUNK_ROWS as i64 * 2 + 5).rev().collect();
        let batches = [batch(&times, 0)];
        let table = table();
        let order = TimeOrder::new(&table, &batches).unwrap();
        let sizes: Vec<usize> = order
            .chunks(0..order.keys.len())
            .map(|c| c.unwrap().num_rows())
            .collect();
        assert_eq!(sizes, vec![CHUNK_ROWS, CHUNK_ROWS, 5]);
    }

    #[test]
    fn no_rows_have_no_partitions() {
        let batches = [batch(&[], 0)];
        let table = table();
        let order = TimeOrder::new(&table, &batches).unwrap();
        assert!(order.partitions().is_empty());
        assert_eq!(order.chunks(0..0).count(), 0);
    }
}
