//! One table's data: its active memtable, the memtables being flushed, and
//! its Parquet parts — swapped under one lock so that every query sees each
//! row exactly once, before, during and after a flush.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use arrow::record_batch::RecordBatch;
use grayscope_core::Table;

use crate::memtable::{MemBatch, MemTable};
use crate::parquet_part::Part;
use crate::wal::Lsn;

/// Everything a query of one table reads, taken atomically.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Batches still in memory (active and being flushed).
    pub memory: Vec<MemBatch>,
    /// Parquet parts.
    pub parts: Vec<Arc<Part>>,
}

/// Size figures of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Rows in memory (active and being flushed).
    pub memory_rows: usize,
    /// Bytes in memory.
    pub memory_bytes: usize,
    /// Memtables frozen and waiting to become parts.
    pub flushing: usize,
    /// Parquet parts.
    pub parts: usize,
    /// Rows in parts.
    pub part_rows: u64,
    /// Bytes of parts on disk.
    pub part_bytes: u64,
    /// Highest sequence number of this table that is in Parquet.
    pub flushed_lsn: Lsn,
}

impl TableStats {
    /// Rows in memory and in parts.
    pub fn rows(&self) -> u64 {
        self.memory_rows as u64 + self.part_rows
    }
}

#[derive(Debug, Default)]
struct State {
    active: MemTable,
    flushing: Vec<Arc<MemTable>>,
    parts: Vec<Arc<Part>>,
    flushed_lsn: Lsn,
}

/// The data of one table.
#[derive(Debug)]
pub struct TableData {
    table: Table,
    dir: PathBuf,
    state: RwLock<State>,
}

impl TableData {
    /// A table with the parts recovery found.
    pub fn new(table: Table, dir: PathBuf, parts: Vec<Arc<Part>>, flushed_lsn: Lsn) -> TableData {
        TableData {
            table,
            dir,
            state: RwLock::new(State {
                parts,
                flushed_lsn,
                ..State::default()
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Which table this is.
    pub fn table(&self) -> Table {
        self.table
    }

    /// The table's directory of parts.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a batch to the active memtable; returns the bytes it holds.
    pub fn insert(&self, lsn: Lsn, batch: RecordBatch) -> usize {
        let batch = MemBatch::new(lsn, batch);
        self.write().active.push(batch)
    }

    /// Everything a query reads, in one consistent view.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.read();
        let mut memory: Vec<MemBatch> = Vec::with_capacity(state.active.batches().len());
        for frozen in &state.flushing {
            memory.extend_from_slice(frozen.batches());
        }
        memory.extend_from_slice(state.active.batches());
        Snapshot {
            memory,
            parts: state.parts.clone(),
        }
    }

    /// Freezes the active memtable for a flush, if it holds anything.
    pub fn freeze(&self) -> Option<Arc<MemTable>> {
        let mut state = self.write();
        if state.active.is_empty() {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut state.active));
        state.flushing.push(frozen.clone());
        Some(frozen)
    }

    /// Replaces a flushed memtable by the parts written from it.
    pub fn complete_flush(&self, frozen: &Arc<MemTable>, parts: Vec<Arc<Part>>) {
        let mut state = self.write();
        state.flushing.retain(|m| !Arc::ptr_eq(m, frozen));
        state.parts.extend(parts);
        if let Some(lsn) = frozen.last_lsn() {
            state.flushed_lsn = state.flushed_lsn.max(lsn);
        }
    }

    /// The frozen memtables not yet flushed, oldest first (a failed flush
    /// leaves its memtable here to be retried).
    pub fn pending_flushes(&self) -> Vec<Arc<MemTable>> {
        self.read().flushing.clone()
    }

    /// How many memtables are frozen and wait for their flush.
    pub fn frozen_count(&self) -> usize {
        self.read().flushing.len()
    }

    /// Size and age of the active memtable.
    pub fn active_size(&self) -> (usize, Option<std::time::Instant>) {
        let state = self.read();
        (state.active.bytes(), state.active.created())
    }

    /// The oldest sequence number still only in memory (and in the WAL).
    pub fn oldest_unflushed_lsn(&self) -> Option<Lsn> {
        let state = self.read();
        state
            .flushing
            .iter()
            .filter_map(|m| m.first_lsn())
            .chain(state.active.first_lsn())
            .min()
    }

    /// Highest sequence number of this table in Parquet.
    pub fn flushed_lsn(&self) -> Lsn {
        self.read().flushed_lsn
    }

    /// The current parts.
    pub fn parts(&self) -> Vec<Arc<Part>> {
        self.read().parts.clone()
    }

    /// Replaces `old` parts by `new` (compaction). Returns false, changing
    /// nothing, if any of `old` is no longer live.
    pub fn replace_parts(&self, old: &[Arc<Part>], new: Arc<Part>) -> bool {
        let mut state = self.write();
        let live = old
            .iter()
            .all(|o| state.parts.iter().any(|p| Arc::ptr_eq(p, o)));
        if !live {
            return false;
        }
        state
            .parts
            .retain(|p| !old.iter().any(|o| Arc::ptr_eq(p, o)));
        state.parts.push(new);
        true
    }

    /// Removes every part `expired` selects (retention) and returns them.
    pub fn drop_parts(&self, expired: impl Fn(&Part) -> bool) -> Vec<Arc<Part>> {
        let mut state = self.write();
        let (gone, kept): (Vec<_>, Vec<_>) = state.parts.drain(..).partition(|part| expired(part));
        state.parts = kept;
        gone
    }

    /// Current size figures.
    pub fn stats(&self) -> TableStats {
        let state = self.read();
        let mut stats = TableStats {
            memory_rows: state.active.rows(),
            memory_bytes: state.active.bytes(),
            flushing: state.flushing.len(),
            parts: state.parts.len(),
            flushed_lsn: state.flushed_lsn,
            ..TableStats::default()
        };
        for frozen in &state.flushing {
            stats.memory_rows += frozen.rows();
            stats.memory_bytes += frozen.bytes();
        }
        for part in &state.parts {
            stats.part_rows += part.meta().rows;
            stats.part_bytes += part.size();
        }
        stats
    }
}
