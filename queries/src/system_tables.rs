//! The `system` schema: the store's own health, as SQL tables.
//!
//! - `system.tables`: per table, rows and bytes in memory and in Parquet,
//!   and how far the table is flushed.
//! - `system.parts`: every live Parquet part.
//! - `system.store`: memory use against its limit, back-pressure refusals,
//!   flushes and their lag, compactions, retention, and the write-ahead log
//!   (bytes, segments, sequence numbers, fsyncs, recovery damage).
//!
//! Each scan reads the figures of that moment.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, TimestampMillisecondArray, TimestampNanosecondArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::error::Result;
use grayscope_core::Table;
use grayscope_store::Store;

use crate::live_table::{LiveTable, int, text};

/// The `system` schema over `store`.
pub fn schema(store: &Store) -> Result<Arc<dyn SchemaProvider>> {
    let schema = MemorySchemaProvider::new();
    for kind in [SystemTable::Tables, SystemTable::Parts, SystemTable::Store] {
        let store = store.clone();
        schema.register_table(
            kind.name().to_owned(),
            LiveTable::new(move || build(kind, &store))?,
        )?;
    }
    Ok(Arc::new(schema))
}

#[derive(Debug, Clone, Copy)]
enum SystemTable {
    Tables,
    Parts,
    Store,
}

impl SystemTable {
    fn name(self) -> &'static str {
        match self {
            SystemTable::Tables => "tables",
            SystemTable::Parts => "parts",
            SystemTable::Store => "store",
        }
    }
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, array)| array).collect(),
    )?)
}

fn build(kind: SystemTable, store: &Store) -> Result<RecordBatch> {
    match kind {
        SystemTable::Tables => {
            let stats: Vec<_> = Table::ALL.iter().map(|t| (t, store.stats(*t))).collect();
            batch(vec![
                ("table_name", text(stats.iter().map(|(t, _)| t.name()))),
                (
                    "memory_rows",
                    int(stats.iter().map(|(_, s)| s.memory_rows as u64)),
                ),
                (
                    "memory_bytes",
                    int(stats.iter().map(|(_, s)| s.memory_bytes as u64)),
                ),
                (
                    "flushing_memtables",
                    int(stats.iter().map(|(_, s)| s.flushing as u64)),
                ),
                ("parts", int(stats.iter().map(|(_, s)| s.parts as u64))),
                ("part_rows", int(stats.iter().map(|(_, s)| s.part_rows))),
                ("part_bytes", int(stats.iter().map(|(_, s)| s.part_bytes))),
                ("flushed_lsn", int(stats.iter().map(|(_, s)| s.flushed_lsn))),
            ])
        }
        SystemTable::Parts => {
            let parts: Vec<_> = Table::ALL
                .iter()
                .flat_map(|t| store.parts(*t).into_iter().map(move |p| (*t, p)))
                .collect();
            let times = |f: fn(&grayscope_store::PartMeta) -> i64| -> ArrayRef {
                Arc::new(
                    TimestampNanosecondArray::from_iter_values(
                        parts.iter().map(|(_, p)| f(p.meta())),
                    )
                    .with_timezone("UTC"),
                )
            };
            batch(vec![
                ("table_name", text(parts.iter().map(|(t, _)| t.name()))),
                (
                    "partition",
                    text(parts.iter().map(|(_, p)| p.partition().to_string())),
                ),
                (
                    "path",
                    text(parts.iter().map(|(_, p)| p.path().display().to_string())),
                ),
                ("rows", int(parts.iter().map(|(_, p)| p.meta().rows))),
                ("bytes", int(parts.iter().map(|(_, p)| p.size()))),
                ("min_time", times(|m| m.min_time)),
                ("max_time", times(|m| m.max_time)),
                (
                    "flush_lsn",
                    int(parts.iter().map(|(_, p)| p.meta().flush_lsn)),
                ),
            ])
        }
        SystemTable::Store => {
            let s = store.store_stats();
            let last_flush: ArrayRef = Arc::new(
                TimestampMillisecondArray::from(vec![
                    Some(s.last_flush_unix_millis as i64).filter(|m| *m > 0),
                ])
                .with_timezone("UTC"),
            );
            batch(vec![
                ("memory_bytes", int([s.memory_bytes as u64])),
                ("memory_limit", int([s.memory_limit as u64])),
                ("rejected_appends", int([s.rejected_appends])),
                ("stalled_appends", int([s.stalled_appends])),
                ("flushes", int([s.flushes])),
                ("flush_errors", int([s.flush_errors])),
                ("flush_lag_ms", int([s.flush_lag.as_millis() as u64])),
                ("last_flush", last_flush),
                ("compactions", int([s.compactions])),
                ("expired_parts", int([s.expired_parts])),
                ("wal_bytes", int([s.wal.bytes_on_disk])),
                ("wal_segments", int([s.wal.segments as u64])),
                ("wal_free_segments", int([s.wal.free_segments as u64])),
                ("wal_recycled_segments", int([s.wal.recycled_segments])),
                ("wal_last_lsn", int([s.wal.last_lsn])),
                ("wal_durable_lsn", int([s.wal.durable_lsn])),
                ("wal_commit_groups", int([s.wal.commit_groups])),
                ("wal_fsyncs", int([s.wal.fsyncs])),
                ("wal_appended_records", int([s.wal.appended_records])),
                ("wal_appended_bytes", int([s.wal.appended_bytes])),
                ("wal_recovered_records", int([s.wal.recovered_records])),
                ("wal_damaged_ranges", int([s.wal.damaged_ranges])),
                (
                    "wal_poisoned",
                    Arc::new(BooleanArray::from(vec![s.wal.poisoned])),
                ),
            ])
        }
    }
}

/// Makes the `system.<name>` table of a component that is not the store
/// (the sinks' `deliveries`): each scan reads `source()` at that moment.
pub type SnapshotSource = Arc<dyn Fn() -> std::result::Result<RecordBatch, String> + Send + Sync>;
