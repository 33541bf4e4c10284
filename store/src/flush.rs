//! Flushing: a frozen memtable becomes Parquet parts, one per hour
//! partition its rows fall in, sorted by time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array as _, TimestampNanosecondArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::memtable::MemTable;
use crate::parquet_part::{Part, PartMeta, PartWriterOptions, write_part};
use crate::partition::Partition;
use crate::table::TableData;

/// Sorts `batches` by `time` into one batch.
pub(crate) fn sorted_by_time(table: &TableData, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let schema = table.table().schema();
    let internal = |e: arrow::error::ArrowError| Error::WritePart {
        path: table.dir().to_owned(),
        source: e.into(),
    };
    let all = concat_batches(&schema, batches).map_err(internal)?;
    let time = all
        .column_by_name("time")
        .ok_or_else(|| Error::SchemaMismatch {
            table: table.table(),
        })?;
    let order = sort_to_indices(time, None, None).map_err(internal)?;
    take_record_batch(&all, &order).map_err(internal)
}

/// Splits a time-sorted batch into runs of rows sharing an hour partition.
pub(crate) fn split_by_partition(sorted: &RecordBatch) -> Vec<(Partition, RecordBatch)> {
    let Some(times) = sorted
        .column_by_name("time")
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
    else {
        return Vec::new();
    };
    let mut runs = Vec::new();
    let mut start = 0;
    while start < times.len() {
        let partition = Partition::of_nanos(times.value(start));
        let end_nanos = partition.end_nanos();
        // Sorted: binary search the first row of the next hour.
        let (mut lo, mut hi) = (start, times.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if times.value(mid) < end_nanos {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        runs.push((partition, sorted.slice(start, lo - start)));
        start = lo;
    }
    runs
}

fn time_range(batch: &RecordBatch) -> (i64, i64) {
    let times = batch
        .column_by_name("time")
        .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>());
    match times {
        Some(t) if !t.is_empty() => (t.value(0), t.value(t.len() - 1)),
        _ => (i64::MIN, i64::MAX),
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
    let sorted = sorted_by_time(table, &batches)?;
    let runs = split_by_partition(&sorted);
    let first_id = next_id.fetch_add(runs.len() as u64, Ordering::Relaxed);
    let mut parts = Vec::with_capacity(runs.len());
    for (i, (partition, rows)) in runs.iter().enumerate() {
        let (min_time, max_time) = time_range(rows);
        let meta = PartMeta {
            table: table.table().name().to_owned(),
            id: first_id + i as u64,
            flush_id: first_id,
            flush_lsn,
            replaces: Vec::new(),
            rows: rows.num_rows() as u64,
            min_time,
            max_time,
        };
        parts.push(write_part(table.dir(), *partition, rows, meta, options)?);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::HOUR_NS;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn batch(times: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("n", DataType::Int64, false),
        ]));
        let time: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC"));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(0..times.len() as i64));
        RecordBatch::try_new(schema, vec![time, n]).unwrap()
    }

    #[test]
    fn sorted_rows_split_at_hour_boundaries() {
        let h = 1_764_000_000_000_000_000 / HOUR_NS * HOUR_NS;
        let sorted = batch(&[h, h + 5, h + HOUR_NS - 1, h + HOUR_NS, h + 3 * HOUR_NS + 7]);
        let runs = split_by_partition(&sorted);
        let sizes: Vec<_> = runs.iter().map(|(_, b)| b.num_rows()).collect();
        assert_eq!(sizes, vec![3, 1, 1]);
        assert_eq!(runs[0].0, Partition::of_nanos(h));
        assert_eq!(runs[1].0, Partition::of_nanos(h + HOUR_NS));
        assert_eq!(runs[2].0, Partition::of_nanos(h + 3 * HOUR_NS));
        assert_eq!(time_range(&runs[0].1), (h, h + HOUR_NS - 1));
    }

    #[test]
    fn an_empty_batch_has_no_runs() {
        assert!(split_by_partition(&batch(&[])).is_empty());
    }
}
