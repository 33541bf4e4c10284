//! Flushing: a frozen memtable becomes Parquet parts, one per hour
//! partition its rows fall in, in the order the rows arrived.
//!
//! A flush does not sort by time. The memtable's batches are written as they
//! are (a batch that straddles an hour is split by a filter), so the rows
//! are encoded straight from memory without being gathered again. Each row
//! group still carries its time range for pruning. Sorting paid twice: on
//! the `part_write` bench, with the times several exporters' batches
//! arrive with, the sort's gathering was a tenth of the server's CPU and a
//! part sorted by start time took a third more bytes than one in arrival
//! order (38.7 against 29.0 per span), because sorting scatters the spans
//! of a trace, which arrive together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array as _, BooleanArray, TimestampNanosecondArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::memtable::MemTable;
use crate::parquet_part::{Part, PartMeta, PartWriterOptions, write_part};
use crate::partition::Partition;
use crate::table::TableData;

/// The rows of one hour partition, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct PartitionRows {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) rows: usize,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
}

impl PartitionRows {
    fn push(&mut self, batch: RecordBatch, min_time: i64, max_time: i64) {
        if self.batches.is_empty() {
            (self.min_time, self.max_time) = (min_time, max_time);
        } else {
            self.min_time = self.min_time.min(min_time);
            self.max_time = self.max_time.max(max_time);
        }
        self.rows += batch.num_rows();
        self.batches.push(batch);
    }
}

/// The rows of `batches` (all of `table`'s schema) by hour partition, each
/// partition's in arrival order.
pub(crate) fn by_partition(
    table: &TableData,
    batches: &[RecordBatch],
) -> Result<BTreeMap<Partition, PartitionRows>> {
    let mut partitions: BTreeMap<Partition, PartitionRows> = BTreeMap::new();
    for batch in batches {
        let times = batch
            .column_by_name("time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampNanosecondArray>())
            .ok_or(Error::SchemaMismatch {
                table: table.table(),
            })?;
        // `time` is never null in our schemas (the field is not nullable).
        let values = times.values();
        let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
            continue;
        };
        let first = Partition::of_nanos(min);
        if first == Partition::of_nanos(max) {
            partitions
                .entry(first)
                .or_default()
                .push(batch.clone(), min, max);
            continue;
        }
        // Straddles an hour: one filtered copy per partition it touches
        // (only those: a bad clock may put rows years apart).
        let hours: Vec<Partition> = values.iter().map(|&t| Partition::of_nanos(t)).collect();
        for hour in hours.iter().copied().collect::<BTreeSet<_>>() {
            let mask: BooleanArray = hours.iter().map(|&h| Some(h == hour)).collect();
            let rows = filter_record_batch(batch, &mask).map_err(|source| Error::WritePart {
                path: hour.dir_in(table.dir()),
                source: source.into(),
            })?;
            let in_hour = values.iter().zip(&hours).filter(|&(_, &h)| h == hour);
            let (lo, hi) = in_hour.fold((i64::MAX, i64::MIN), |(lo, hi), (&t, _)| {
                (lo.min(t), hi.max(t))
            });
            partitions.entry(hour).or_default().push(rows, lo, hi);
        }
    }
    Ok(partitions)
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
    let partitions = by_partition(table, &batches)?;
    let first_id = next_id.fetch_add(partitions.len() as u64, Ordering::Relaxed);
    let mut parts = Vec::with_capacity(partitions.len());
    for (i, (partition, rows)) in partitions.into_iter().enumerate() {
        let meta = PartMeta {
            table: table.table().name().to_owned(),
            id: first_id + i as u64,
            flush_id: first_id,
            flush_lsn,
            replaces: Vec::new(),
            rows: rows.rows as u64,
            min_time: rows.min_time,
            max_time: rows.max_time,
        };
        parts.push(write_part(
            table.dir(),
            partition,
            table.table().schema(),
            rows.batches.into_iter().map(Ok),
            meta,
            options,
            // Arrival order: no sorting column declared.
            false,
        )?);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::HOUR_NS;
    use arrow::array::{ArrayRef, Int64Array};
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

    fn column(batches: &[RecordBatch], name: &str) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|batch| {
                let c = batch.column_by_name(name).unwrap().to_data();
                c.buffers()[0].typed_data::<i64>()[c.offset()..c.offset() + c.len()].to_vec()
            })
            .collect()
    }

    #[test]
    fn rows_of_one_hour_stay_in_arrival_order_and_are_not_copied() {
        let h = 1_764_000_000_000_000_000 / HOUR_NS * HOUR_NS;
        let batches = [
            batch(&[h + 30, h + 10, h + 20], 0),
            batch(&[h + 15, h + 40], 3),
        ];
        let partitions = by_partition(&table(), &batches).unwrap();
        assert_eq!(partitions.len(), 1);
        let rows = &partitions[&Partition::of_nanos(h)];
        assert_eq!(column(&rows.batches, "n"), vec![0, 1, 2, 3, 4]);
        assert_eq!(
            (rows.rows, rows.min_time, rows.max_time),
            (5, h + 10, h + 40)
        );
        // The memtable's own buffers, not copies.
        let time =
            |b: &RecordBatch| b.column_by_name("time").unwrap().to_data().buffers()[0].clone();
        assert!(time(&rows.batches[0]).ptr_eq(&time(&batches[0])));
    }

    #[test]
    fn a_batch_straddling_hours_is_split_each_part_in_arrival_order() {
        let h = 1_764_000_000_000_000_000 / HOUR_NS * HOUR_NS;
        let batches = [
            batch(&[h + 3 * HOUR_NS + 7, h + HOUR_NS - 1, h], 0),
            batch(&[h + HOUR_NS, h + 5], 3),
        ];
        let partitions = by_partition(&table(), &batches).unwrap();
        let hours: Vec<Partition> = partitions.keys().copied().collect();
        assert_eq!(
            hours,
            vec![
                Partition::of_nanos(h),
                Partition::of_nanos(h + HOUR_NS),
                Partition::of_nanos(h + 3 * HOUR_NS)
            ]
        );
        let first = &partitions[&hours[0]];
        assert_eq!(column(&first.batches, "n"), vec![1, 2, 4]);
        assert_eq!(
            (first.rows, first.min_time, first.max_time),
            (3, h, h + HOUR_NS - 1)
        );
        assert_eq!(column(&partitions[&hours[1]].batches, "n"), vec![3]);
        assert_eq!(column(&partitions[&hours[2]].batches, "n"), vec![0]);
        let total: usize = partitions.values().map(|p| p.rows).sum();
        assert_eq!(total, 5, "every row once");
    }

    #[test]
    fn rows_years_apart_cost_one_part_each_not_one_per_hour_between() {
        let h = 1_764_000_000_000_000_000 / HOUR_NS * HOUR_NS;
        let batches = [batch(&[h, 0, h + 1, i64::MAX, i64::MIN], 0)];
        let partitions = by_partition(&table(), &batches).unwrap();
        assert_eq!(partitions.len(), 4);
        assert_eq!(
            column(&partitions[&Partition::of_nanos(h)].batches, "n"),
            vec![0, 2]
        );
        let total: usize = partitions.values().map(|p| p.rows).sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn no_rows_have_no_partitions() {
        let batches = [batch(&[], 0)];
        assert!(by_partition(&table(), &batches).unwrap().is_empty());
    }
}
