//! The store: one memtable per table, the single place batches are written.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use grayscope_core::Table;

use crate::error::{Error, Result};
use crate::memtable::{MemTable, TableStats};
use crate::table_provider::StoreTableProvider;

/// Every table's data. Cheap to clone; clones share the data.
#[derive(Debug, Clone)]
pub struct Store {
    tables: Arc<[Arc<MemTable>; 3]>,
}

impl Store {
    /// A store that keeps everything in memory.
    pub fn in_memory() -> Store {
        Store {
            tables: Arc::new(Table::ALL.map(|table| Arc::new(MemTable::new(table)))),
        }
    }

    fn memtable(&self, table: Table) -> &Arc<MemTable> {
        let index = Table::ALL
            .iter()
            .position(|t| *t == table)
            .unwrap_or_default();
        &self.tables[index]
    }

    /// Appends a batch to `table`. When this returns `Ok`, the rows are
    /// visible to every query that starts afterwards.
    pub async fn append(&self, table: Table, batch: RecordBatch) -> Result<()> {
        if batch.schema() != table.schema() {
            return Err(Error::SchemaMismatch { table });
        }
        self.memtable(table).push(batch);
        Ok(())
    }

    /// The DataFusion table provider of `table`.
    pub fn provider(&self, table: Table) -> Arc<StoreTableProvider> {
        Arc::new(StoreTableProvider::new(self.memtable(table).clone()))
    }

    /// Size figures of `table`.
    pub fn stats(&self, table: Table) -> TableStats {
        self.memtable(table).stats()
    }
}
