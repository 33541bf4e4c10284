//! grayscope's store: where accepted telemetry lives, durably, and where
//! SQL reads it (DESIGN §4).
//!
//! ```text
//! append ─► write-ahead log ─► memtable ──flush──► Parquet parts
//!           (fsync, group      (queryable    (zstd, rows as they arrived,
//!            commit)            at once)      <table>/date=…/hour=…/)
//! ```
//!
//! - [`Store::append`] returns once a batch is in the [`wal`] (fsynced, with
//!   concurrent appends sharing one fsync) and in its table's memtable.
//!   [`Store::append_source`] logs what the batch was made from instead
//!   (ingest's OTLP span requests), for a [`wal::Rebuild`] to convert again
//!   on recovery.
//! - Memtables are flushed to Parquet parts by size or age; the log is
//!   truncated behind them. On open, the log replays whatever was not
//!   flushed, and half-written parts are cleaned up ([`RecoveryReport`]).
//! - [`StoreTableProvider`] is the DataFusion `TableProvider` of a table:
//!   memtables and parts as one table, each row exactly once, pruned by the
//!   query's time range and filters.
//! - Retention drops whole hour partitions. Compaction merges small parts
//!   into big ones, in the hour being written as they add up and what is
//!   left once an hour is over. It copies the row groups of busy flushes as
//!   they are encoded and streams small parts through a k-way merge by
//!   time, on a low-priority thread of its own. Memory is capped: over the
//!   cap, appends get [`Error::Backpressure`] instead of being buffered.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use grayscope_core::{Table, config::StoreConfig};
//! use grayscope_store::Store;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (store, _report) = Store::open(dir.path(), StoreConfig::default()).await.unwrap();
//! let empty = arrow::record_batch::RecordBatch::new_empty(Table::Spans.schema());
//! store.append(Table::Spans, empty).await.unwrap();
//! assert_eq!(store.stats(Table::Spans).rows(), 0);
//! store.close().await.unwrap();
//! # });
//! ```

mod compaction;
mod error;
mod flush;
mod memtable;
mod parquet_part;
mod partition;
mod recovery;
mod sorted_merge;
mod store;
mod table;
mod table_provider;
pub mod wal;
mod writeback;

pub use error::{Error, Result};
pub use memtable::{MemBatch, MemTable};
pub use parquet_part::{Part, PartMeta, PartWriterOptions, write_part};
pub use partition::Partition;
pub use store::{RecoveryReport, Store, StoreStats};
pub use table::{Snapshot, TableStats};
pub use table_provider::{StoreTableProvider, time_bounds};
