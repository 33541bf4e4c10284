//! The DataFusion `TableProvider` of one table.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::memtable::MemTable;

/// Scans one table. Each scan reads a snapshot taken when the query's plan
/// is built, so a query sees every batch acknowledged before it started and
/// each row exactly once.
#[derive(Debug)]
pub struct StoreTableProvider {
    memtable: Arc<MemTable>,
    schema: SchemaRef,
}

impl StoreTableProvider {
    /// The provider of the table held in `memtable`.
    pub fn new(memtable: Arc<MemTable>) -> StoreTableProvider {
        let schema = memtable.table().schema();
        StoreTableProvider { memtable, schema }
    }
}

#[async_trait]
impl TableProvider for StoreTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batches = self.memtable.snapshot();
        let exec =
            MemorySourceConfig::try_new_exec(&[batches], self.schema.clone(), projection.cloned())?;
        Ok(exec)
    }
}
