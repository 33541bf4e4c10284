//! The DataFusion `TableProvider` of one table: the rows in memory and the
//! rows in Parquet parts, as one table.
//!
//! Queries see the table's top-level string columns as `Utf8View`: the
//! Parquet reader then builds each value's view straight from the column's
//! dictionary page (strings of up to 12 bytes, such as `kind`, `cohort` or
//! `status_code`, live inside the view itself) instead of copying every
//! value's bytes into a new buffer, and filters, joins and `GROUP BY` on
//! them compare views. The rows are stored as `Utf8`, in memory and in
//! Parquet; batches still in memory are cast when scanned, which reuses
//! their bytes.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::config::TableParquetOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use object_store::ObjectMeta;

use crate::table::TableData;

/// Scans one table. A scan reads a snapshot taken when the query's plan is
/// built: every batch acknowledged before, each row exactly once whether
/// it is still in memory, being flushed, or in a part. Parts and in-memory
/// batches outside the query's `time` range are skipped, and the query's
/// filters prune Parquet row groups by their statistics (and, if the
/// session turns on `datafusion.execution.parquet.pushdown_filters`, are
/// evaluated while decoding; grayscope leaves it off: at the selectivity of
/// typical queries it costs more than it saves).
#[derive(Debug)]
pub struct StoreTableProvider {
    table: Arc<TableData>,
    /// The schema queries see: the stored one with `Utf8` as `Utf8View`.
    schema: SchemaRef,
}

impl StoreTableProvider {
    /// The provider of `table`.
    pub fn new(table: Arc<TableData>) -> StoreTableProvider {
        let schema = view_schema(&table.table().schema());
        StoreTableProvider { table, schema }
    }
}

/// `schema` with its top-level `Utf8` columns as `Utf8View` (nested
/// strings, such as attribute maps, are left as they are).
pub fn view_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// A stored batch in the queried schema (`Utf8` columns cast to views).
fn as_viewed(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // With no column projected (`count(*)`), the row count says it all.
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

#[async_trait]
impl TableProvider for StoreTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Used for pruning only; DataFusion still applies every filter.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.table.snapshot();
        let (from, to) = time_bounds(filters);
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();

        // In-memory batches: only the projected columns, cast to views.
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let memory: Vec<_> = snapshot
            .memory
            .into_iter()
            .filter(|b| b.overlaps(from, to))
            .map(|b| {
                let batch = match projection {
                    Some(p) => b.batch.project(p)?,
                    None => b.batch,
                };
                as_viewed(&batch, &projected)
            })
            .collect::<Result<_>>()?;
        if !memory.is_empty() {
            // One partition per core: the batches are scanned in parallel.
            let groups = state.config().target_partitions().clamp(1, memory.len());
            let mut partitions = vec![Vec::new(); groups];
            for (i, batch) in memory.into_iter().enumerate() {
                partitions[i % groups].push(batch);
            }
            inputs.push(MemorySourceConfig::try_new_exec(
                &partitions,
                projected.clone(),
                None,
            )?);
        }

        let parts: Vec<_> = snapshot
            .parts
            .into_iter()
            .filter(|p| p.overlaps(from, to))
            .collect();
        if !parts.is_empty() {
            // The session's Parquet options (filter pushdown among them), and
            // footers read once per part: parts never change once written.
            let options = TableParquetOptions {
                global: state.config_options().execution.parquet.clone(),
                ..TableParquetOptions::default()
            };
            let runtime = state.runtime_env();
            let reader = CachedParquetFileReaderFactory::new(
                runtime.object_store(ObjectStoreUrl::local_filesystem())?,
                runtime.cache_manager.get_file_metadata_cache(),
            );
            let mut source = ParquetSource::new(self.schema.clone())
                .with_table_parquet_options(options)
                .with_parquet_file_reader_factory(Arc::new(reader));
            if let Some(predicate) = conjunction(filters.iter().cloned()) {
                let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
                source = source.with_predicate(state.create_physical_expr(predicate, &df_schema)?);
            }
            let groups = state.config().target_partitions().max(1);
            let mut files: Vec<Vec<PartitionedFile>> = vec![Vec::new(); groups.min(parts.len())];
            for (i, part) in parts.iter().enumerate() {
                let location = object_store::path::Path::from_filesystem_path(part.path())
                    .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
                let meta = ObjectMeta {
                    location,
                    last_modified: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    size: part.size(),
                    e_tag: None,
                    version: None,
                };
                let slot = i % files.len();
                files[slot].push(PartitionedFile::new_from_meta(meta));
            }
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                    .with_file_groups(files.into_iter().map(FileGroup::new).collect())
                    .with_projection_indices(projection.cloned())?
                    .with_limit(limit)
                    .build();
            inputs.push(DataSourceExec::from_data_source(config));
        }

        match inputs.len() {
            0 => Ok(Arc::new(EmptyExec::new(projected))),
            _ => UnionExec::try_new(inputs),
        }
    }
}

/// The `[from, to]` range of `time` that `filters` allow, in nanoseconds;
/// unbounded sides are `i64::MIN` / `i64::MAX`.
pub fn time_bounds(filters: &[Expr]) -> (i64, i64) {
    let mut range = (i64::MIN, i64::MAX);
    for filter in filters {
        narrow(filter, &mut range);
    }
    range
}

fn narrow(expr: &Expr, range: &mut (i64, i64)) {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if *op == Operator::And {
                narrow(left, range);
                narrow(right, range);
                return;
            }
            let (op, value) = match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) if c.name == "time" => (*op, v),
                (Expr::Literal(v, _), Expr::Column(c)) if c.name == "time" => match op.swap() {
                    Some(op) => (op, v),
                    None => return,
                },
                _ => return,
            };
            let Some(nanos) = timestamp_nanos(value) else {
                return;
            };
            match op {
                Operator::Gt | Operator::GtEq => range.0 = range.0.max(nanos),
                Operator::Lt | Operator::LtEq => range.1 = range.1.min(nanos),
                Operator::Eq => {
                    range.0 = range.0.max(nanos);
                    range.1 = range.1.min(nanos);
                }
                _ => {}
            }
        }
        Expr::Between(between) if !between.negated => {
            if let (Expr::Column(c), Expr::Literal(low, _), Expr::Literal(high, _)) = (
                between.expr.as_ref(),
                between.low.as_ref(),
                between.high.as_ref(),
            ) && c.name == "time"
            {
                if let Some(low) = timestamp_nanos(low) {
                    range.0 = range.0.max(low);
                }
                if let Some(high) = timestamp_nanos(high) {
                    range.1 = range.1.min(high);
                }
            }
        }
        _ => {}
    }
}

/// A timestamp literal in nanoseconds; rounding keeps the bound inclusive.
fn timestamp_nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}
