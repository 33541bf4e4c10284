//! Tables computed from live state at every scan: the `system` tables.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

type Rows = dyn Fn() -> Result<RecordBatch> + Send + Sync;

/// A read-only table whose one batch of rows `rows` builds afresh at each
/// scan, so every query sees the figures of its moment. The rows are built
/// on a blocking thread: copying tens of thousands of templates out of the
/// miner is CPU work under the miner's lock, and no table's rows should
/// hold up the async runtime.
pub(crate) struct LiveTable {
    schema: SchemaRef,
    rows: Arc<Rows>,
}

impl LiveTable {
    /// The table of what `rows` returns; its schema is that of the rows
    /// built now.
    pub(crate) fn new(
        rows: impl Fn() -> Result<RecordBatch> + Send + Sync + 'static,
    ) -> Result<Arc<LiveTable>> {
        let schema = rows()?.schema();
        Ok(LiveTable::with_schema(schema, rows))
    }

    /// The table of what `rows` returns, which is of `schema`.
    pub(crate) fn with_schema(
        schema: SchemaRef,
        rows: impl Fn() -> Result<RecordBatch> + Send + Sync + 'static,
    ) -> Arc<LiveTable> {
        Arc::new(LiveTable {
            schema,
            rows: Arc::new(rows),
        })
    }
}

impl std::fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTable")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let rows = self.rows.clone();
        let batch = tokio::task::spawn_blocking(move || rows())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))??;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// A column of counters; values past `i64::MAX` read as `i64::MAX`.
pub(crate) fn int(values: impl IntoIterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(
        values
            .into_iter()
            .map(|v| i64::try_from(v).unwrap_or(i64::MAX)),
    ))
}

/// A column of text.
pub(crate) fn text<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}
