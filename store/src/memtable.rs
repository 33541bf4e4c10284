//! The in-memory part of a table: the batches accepted and not yet flushed.

use std::sync::RwLock;

use arrow::record_batch::RecordBatch;
use grayscope_core::Table;

/// Batches of one table held in memory, in the order they were accepted.
///
/// Readers take a snapshot (a cheap clone of `Arc`-backed batches) and never
/// block writers for longer than that copy.
#[derive(Debug)]
pub struct MemTable {
    table: Table,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

/// Size figures of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Number of batches.
    pub batches: usize,
    /// Number of rows.
    pub rows: usize,
    /// Memory held by the batches' buffers, in bytes.
    pub bytes: usize,
}

impl MemTable {
    /// An empty memtable for `table`.
    pub fn new(table: Table) -> MemTable {
        MemTable {
            table,
            state: RwLock::new(State::default()),
        }
    }

    /// The table this memtable belongs to.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Appends a batch; it is visible to snapshots taken afterwards.
    pub fn push(&self, batch: RecordBatch) {
        if batch.num_rows() == 0 {
            return;
        }
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        state.rows += batch.num_rows();
        state.bytes += batch.get_array_memory_size();
        state.batches.push(batch);
    }

    /// The batches held now.
    pub fn snapshot(&self) -> Vec<RecordBatch> {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        state.batches.clone()
    }

    /// Current size figures.
    pub fn stats(&self) -> TableStats {
        let state = self
            .state
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        TableStats {
            batches: state.batches.len(),
            rows: state.rows,
            bytes: state.bytes,
        }
    }
}
