//! `[store]`: the durable store — write-ahead log, memtables, Parquet parts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ByteSize, ConfigDuration, invalid};
use crate::error::Result;
use crate::schema::Table;

/// How the store keeps data durable, in memory and on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Flush a table's memtable to Parquet once it holds this much data
    /// (Arrow bytes in memory). It is frozen the moment it gets there,
    /// even while an earlier flush is running, so no part is made of more.
    /// Default `64MiB`.
    pub flush_size: ByteSize,
    /// Flush a table's memtable once its oldest batch is this old, however
    /// small it is. Default `60s`.
    pub flush_interval: ConfigDuration,
    /// Memory all memtables together may hold (including those being
    /// flushed). Beyond it, ingest answers with back-pressure (HTTP 503 with
    /// Retry-After, gRPC UNAVAILABLE) until flushes catch up; a request is
    /// refused before it is decoded. Default `1GiB`.
    pub memory_limit: ByteSize,
    /// When this many memtables (all tables together) are frozen and wait
    /// for their flush, appends wait for one to finish (up to a second
    /// each) before going on: intake slows to the pace of flushes instead
    /// of piling up memory until the memory limit refuses requests. Memory
    /// the backlog never reaches is never faulted in, and flat out that
    /// saved much of the server's CPU per span (BENCHMARKS.md, issue 3).
    /// `0` turns it off. Default `4`.
    pub stall_memtables: usize,
    /// Keep data this long, judged by the hour partition of each record's
    /// time; older partitions are dropped whole. Default `7d`.
    pub retention: ConfigDuration,
    /// Per-table overrides, e.g. `[store.tables.logs] retention = "3d"`.
    pub tables: BTreeMap<String, TableStoreConfig>,
    /// Most rows per Parquet row group; a part's row groups are balanced
    /// under it. Default 131072.
    pub row_group_rows: usize,
    /// The size compaction merges parts up to. Parts under a quarter of it
    /// (each flush makes one) are merged, oldest first, into parts of about
    /// this size: in the hour being written as soon as they add up to it
    /// (or number 64), so queries over recent data open few files, and
    /// whatever is left once the hour is over. Parts whose row groups hold
    /// a quarter of `row_group_rows` or more (busy flushes) are merged by
    /// copying their row groups, still encoded; smaller ones are re-encoded
    /// row by row, so each row is rewritten at most about once.
    /// `"0"` turns compaction off. Default `64MiB`.
    pub compact_below: ByteSize,
    /// The write-ahead log.
    pub wal: WalConfig,
}

/// Per-table settings under `[store.tables.<table>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableStoreConfig {
    /// Retention of this table, overriding `store.retention`.
    pub retention: ConfigDuration,
}

/// When the write-ahead log forces data to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// fsync every commit group before any of its requests is answered:
    /// what was acknowledged survives a crash or power loss. Concurrent
    /// requests share one fsync.
    Commit,
    /// fsync every `sync_interval`; requests are answered once written.
    /// A power loss (not a process crash) can lose up to that interval.
    Interval,
}

/// `[store.wal]`: the write-ahead log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// `"commit"` (default, safe) or `"interval"`.
    pub sync: SyncMode,
    /// With `sync = "interval"`, how often to fsync. Default `100ms`.
    pub sync_interval: ConfigDuration,
    /// Start a new log segment once the current one exceeds this.
    /// Default `64MiB`.
    pub segment_size: ByteSize,
    /// Segments no longer needed after a flush that are kept, renamed, to be
    /// overwritten as new segments rather than deleted: deleting a large
    /// file can stall the disk, and every commit's fsync behind it. Costs up
    /// to this many times `segment_size` of disk. `0` deletes them.
    /// Default `4`.
    pub recycle_segments: usize,
    /// With `sync = "commit"`, write the log with direct I/O (`O_DIRECT`),
    /// past the page cache: every commit waits for the disk anyway, and
    /// copying each commit into the page cache cost more CPU than the rest
    /// of the log's work. A file system that refuses direct I/O gets
    /// buffered writes. Default `true`.
    pub direct_io: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            flush_size: ByteSize(64 << 20),
            flush_interval: ConfigDuration::from_secs(60),
            memory_limit: ByteSize(1 << 30),
            stall_memtables: 4,
            retention: ConfigDuration::from_secs(7 * 86_400),
            tables: BTreeMap::new(),
            row_group_rows: 128 * 1024,
            compact_below: ByteSize(64 << 20),
            wal: WalConfig::default(),
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            sync: SyncMode::Commit,
            sync_interval: ConfigDuration::from_millis(100),
            segment_size: ByteSize(64 << 20),
            recycle_segments: 4,
            direct_io: true,
        }
    }
}

impl StoreConfig {
    /// The retention of `table`.
    pub fn retention_of(&self, table: Table) -> ConfigDuration {
        self.tables
            .get(table.name())
            .map(|t| t.retention)
            .unwrap_or(self.retention)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.flush_size.0 < 1024 {
            return Err(invalid("store.flush_size", "must be at least 1 KiB"));
        }
        if self.memory_limit < self.flush_size {
            return Err(invalid(
                "store.memory_limit",
                "must be at least store.flush_size",
            ));
        }
        if self.flush_interval.get().is_zero() {
            return Err(invalid("store.flush_interval", "must not be zero"));
        }
        if self.retention.get().as_secs() < 3600 {
            return Err(invalid("store.retention", "must be at least 1h"));
        }
        for (name, table) in &self.tables {
            if name.parse::<Table>().is_err() {
                return Err(invalid(
                    &format!("store.tables.{name}"),
                    "names no table (spans, logs, metrics)",
                ));
            }
            if table.retention.get().as_secs() < 3600 {
                return Err(invalid(
                    &format!("store.tables.{name}.retention"),
                    "must be at least 1h",
                ));
            }
        }
        if self.row_group_rows < 1024 {
            return Err(invalid("store.row_group_rows", "must be at least 1024"));
        }
        if self.wal.segment_size.0 < 1 << 20 {
            return Err(invalid("store.wal.segment_size", "must be at least 1 MiB"));
        }
        if self.wal.sync == SyncMode::Interval && self.wal.sync_interval.get().is_zero() {
            return Err(invalid("store.wal.sync_interval", "must not be zero"));
        }
        Ok(())
    }
}
