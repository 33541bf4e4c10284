//! The DataFusion session over the store.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use grayscope_core::Table;
use grayscope_store::Store;

use crate::error::{Error, Result};
use crate::kafka_tables::{self, KafkaSourceStatus};
use crate::system_tables;
use crate::templates_table::{self, NoTemplates, TemplateSource, TemplatesTableProvider};
use crate::{cohort_rule, trace_cohorts};

/// Runs read-only SQL over every table of a store. Cheap to clone.
#[derive(Clone)]
pub struct QueryEngine {
    context: SessionContext,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").finish_non_exhaustive()
    }
}

/// The complete answer to a query.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The result's schema (also when there are no rows).
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// Total number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl QueryEngine {
    /// An engine over every table of `store`.
    pub fn new(store: Store) -> Result<QueryEngine> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("grayscope", "public");
        let context = SessionContext::new_with_config(config);
        for table in Table::ALL {
            context.register_table(table.name(), store.provider(table))?;
        }
        if let Some(catalog) = context.catalog("grayscope") {
            let system = system_tables::schema(&store)?;
            for (name, table) in kafka_tables::providers(None)? {
                system.register_table(name.to_owned(), table)?;
            }
            catalog.register_schema("system", system)?;
        }
        cohort_rule::register(&context);
        trace_cohorts::register(&context)?;
        context.register_table(
            templates_table::TABLE_NAME,
            Arc::new(TemplatesTableProvider::new(Arc::new(NoTemplates))),
        )?;
        Ok(QueryEngine { context })
    }

    /// Reads the `templates` table from `source` (the server's template
    /// miner); without it the table is empty.
    pub fn with_templates(self, source: Arc<dyn TemplateSource>) -> Result<QueryEngine> {
        self.context.deregister_table(templates_table::TABLE_NAME)?;
        self.context.register_table(
            templates_table::TABLE_NAME,
            Arc::new(TemplatesTableProvider::new(source)),
        )?;
        Ok(self)
    }

    /// Adds `system.<name>`, read from `source` at each scan (another
    /// component's live state, such as the sinks' deliveries).
    pub fn register_system_table(
        &self,
        name: &str,
        schema: SchemaRef,
        source: system_tables::SnapshotSource,
    ) -> Result<()> {
        let system = self
            .context
            .catalog("grayscope")
            .and_then(|c| c.schema("system"))
            .ok_or_else(|| {
                Error::Query(datafusion::error::DataFusionError::Internal(
                    "no system schema".into(),
                ))
            })?;
        system.register_table(
            name.to_owned(),
            Arc::new(system_tables::SnapshotTableProvider { schema, source }),
        )?;
        Ok(())
    }

    /// Reads `system.kafka_partitions` and `system.kafka` from `source`
    /// (the server's Kafka consumer); without it they are empty.
    pub fn with_kafka(self, source: Arc<dyn KafkaSourceStatus>) -> Result<QueryEngine> {
        let system = self
            .context
            .catalog("grayscope")
            .and_then(|catalog| catalog.schema("system"));
        if let Some(system) = system {
            for (name, table) in kafka_tables::providers(Some(source))? {
                system.deregister_table(name)?;
                system.register_table(name.to_owned(), table)?;
            }
        }
        Ok(self)
    }

    /// The DataFusion session, for front ends that speak their own protocol.
    pub fn context(&self) -> &SessionContext {
        &self.context
    }

    /// Plans and runs one read-only statement.
    pub async fn sql(&self, sql: &str) -> Result<QueryResult> {
        if sql.trim().is_empty() {
            return Err(Error::BadRequest("the SQL text is empty".to_owned()));
        }
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = self.context.sql_with_options(sql, options).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await?;
        Ok(QueryResult { schema, batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn engine() -> (QueryEngine, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), Default::default()).await.unwrap();
        (QueryEngine::new(store).unwrap(), dir)
    }

    #[tokio::test]
    async fn every_table_is_queryable_when_empty() {
        let (engine, _dir) = engine().await;
        for table in Table::ALL {
            let result = engine
                .sql(&format!("SELECT count(*) AS n FROM {table}"))
                .await
                .unwrap();
            assert_eq!(result.num_rows(), 1);
        }
    }

    #[tokio::test]
    async fn writes_are_refused() {
        let (engine, _dir) = engine().await;
        for sql in [
            "CREATE TABLE t (a INT)",
            "INSERT INTO spans SELECT * FROM spans",
            "DROP TABLE spans",
            "SET datafusion.execution.batch_size = 1",
        ] {
            let error = engine.sql(sql).await.unwrap_err();
            assert!(matches!(error, Error::ReadOnly(_)), "{sql}: {error:?}");
            assert!(error.is_user_error());
        }
    }

    #[tokio::test]
    async fn bad_sql_is_the_users_error() {
        let (engine, _dir) = engine().await;
        let error = engine.sql("SELEC 1").await.unwrap_err();
        assert!(error.is_user_error(), "{error}");
        let error = engine.sql("SELECT nope FROM spans").await.unwrap_err();
        assert!(error.is_user_error());
        assert!(error.to_string().contains("nope"), "{error}");
    }
}
