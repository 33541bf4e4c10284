//! The DataFusion session over the store.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::TaskContext;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::logical_expr::LogicalPlan;
use grayscope_core::Table;
use grayscope_core::config::SqlConfig;
use grayscope_store::Store;

use crate::error::{Error, Result};
use crate::kafka_tables::{self, KafkaSourceStatus};
use crate::limits::{ClientTimeout, QueryLimits, QueryStream};
use crate::live_table::LiveTable;
use crate::read_only;
use crate::system_tables;
use crate::templates_table::{self, NoTemplates, TemplateSource};
use crate::{cohort_rule, trace_cohorts};

/// Runs read-only SQL over every table of a store. Cheap to clone; clones
/// share the session and the limits.
#[derive(Clone)]
pub struct QueryEngine {
    context: SessionContext,
    /// `None`: no limits (the judge's own engine).
    limits: Option<Arc<QueryLimits>>,
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
        crate::approx_quantile::register(&context);
        trace_cohorts::register(&context)?;
        context.register_table(
            templates_table::TABLE_NAME,
            templates_table::provider(Arc::new(NoTemplates)),
        )?;
        Ok(QueryEngine {
            context,
            limits: None,
        })
    }

    /// This engine with `[sql]`'s limits on every query run through it (and
    /// its clones): memory per query, time per query, queries at once (see
    /// [`crate::limits`]). Without it, queries are unlimited.
    pub fn with_limits(self, config: &SqlConfig) -> QueryEngine {
        QueryEngine {
            limits: Some(Arc::new(QueryLimits::new(config))),
            ..self
        }
    }

    /// Reads the `templates` table from `source` (the server's template
    /// miner); without it the table is empty.
    pub fn with_templates(self, source: Arc<dyn TemplateSource>) -> Result<QueryEngine> {
        self.context.deregister_table(templates_table::TABLE_NAME)?;
        self.context.register_table(
            templates_table::TABLE_NAME,
            templates_table::provider(source),
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
            LiveTable::with_schema(schema, move || {
                source().map_err(|e| datafusion::error::DataFusionError::External(e.into()))
            }),
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

    /// Plans and runs one read-only statement, and returns the whole
    /// result (for callers that need it all, such as the judge).
    pub async fn sql(&self, sql: &str) -> Result<QueryResult> {
        self.stream(sql).await?.collect().await
    }

    /// Plans one read-only statement and starts it: the rows stream as they
    /// are computed, under the engine's limits (the stream holds the
    /// query's slot until it ends or is dropped, and ends with
    /// [`Error::Timeout`] at the time limit).
    pub async fn stream(&self, sql: &str) -> Result<QueryStream> {
        if sql.trim().is_empty() {
            return Err(Error::BadRequest("the SQL text is empty".to_owned()));
        }
        let state = self.context.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(sql, &dialect)?;
        read_only::check_statement(&statement)?;
        let plan = state.statement_to_plan(statement).await?;
        self.execute(crate::wire_strings::plain_strings(plan)?)
            .await
    }

    /// Starts a plan made by a front end that parses SQL itself (the
    /// PostgreSQL wire protocol), under the same rules as [`Self::stream`]:
    /// it must only read, and it runs under the engine's limits.
    pub async fn execute(&self, plan: LogicalPlan) -> Result<QueryStream> {
        self.execute_within(plan, None).await
    }

    /// [`Self::execute`], with the client's own time limit when it is
    /// shorter than `sql.timeout`.
    pub async fn execute_within(
        &self,
        plan: LogicalPlan,
        client_timeout: Option<ClientTimeout>,
    ) -> Result<QueryStream> {
        read_only::check_plan(&plan)?;
        let state = self.context.state();
        let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
        let Some(limits) = &self.limits else {
            let physical = state.create_physical_plan(&plan).await?;
            let batches = datafusion::physical_plan::execute_stream(physical, state.task_ctx())?;
            return Ok(QueryStream {
                schema,
                batches,
                collect_limit: None,
            });
        };
        let admission = limits.admit(client_timeout).await?;
        let physical =
            tokio::time::timeout_at(admission.deadline(), state.create_physical_plan(&plan))
                .await
                .map_err(|_| admission.timeout_error())??;
        let task = TaskContext::from(&state).with_runtime(admission.runtime(state.runtime_env())?);
        let batches = datafusion::physical_plan::execute_stream(physical, Arc::new(task))?;
        Ok(QueryStream {
            schema,
            collect_limit: Some(limits.memory_limit()),
            batches: admission.limit(batches),
        })
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

    async fn limited(
        memory: u64,
        timeout_ms: u64,
        slots: usize,
    ) -> (QueryEngine, tempfile::TempDir) {
        let (engine, dir) = engine().await;
        let config = SqlConfig {
            memory_limit: grayscope_core::config::ByteSize(memory),
            timeout: grayscope_core::config::ConfigDuration::from_millis(timeout_ms),
            max_concurrent_queries: slots,
            ..SqlConfig::default()
        };
        (engine.with_limits(&config), dir)
    }

    #[tokio::test]
    async fn a_collected_result_larger_than_the_memory_limit_is_refused_not_held() {
        let (engine, _dir) = limited(1 << 20, 10_000, 2).await;
        // 1M rows of 8 bytes: nothing to sort or aggregate, 8 MiB of result.
        let error = engine
            .sql("SELECT value FROM generate_series(1, 1000000)")
            .await
            .unwrap_err();
        assert!(matches!(error, Error::MemoryLimit { .. }), "{error:?}");
        assert!(error.is_resources_exhausted());
        let message = error.to_string();
        assert!(message.contains("sql.memory_limit"), "{message}");
        assert!(message.contains("add a LIMIT"), "{message}");
        // A result that fits is answered, and the same query streams whole.
        let small = engine
            .sql("SELECT value FROM generate_series(1, 1000)")
            .await
            .unwrap();
        assert_eq!(small.num_rows(), 1000);
        let mut stream = engine
            .stream("SELECT value FROM generate_series(1, 1000000)")
            .await
            .unwrap();
        let mut rows = 0;
        while let Some(batch) = futures::StreamExt::next(&mut stream.batches).await {
            rows += batch.unwrap().num_rows();
        }
        assert_eq!(rows, 1_000_000);
    }

    #[tokio::test]
    async fn writes_are_refused_and_named() {
        let (engine, _dir) = limited(1 << 30, 10_000, 2).await;
        for (sql, refused) in [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
            (
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("INSERT INTO spans SELECT * FROM spans", "INSERT INTO"),
            ("UPDATE spans SET name = 'x'", "UPDATE"),
            ("DELETE FROM spans", "DELETE FROM"),
            ("TRUNCATE TABLE spans", "TRUNCATE"),
            ("DROP TABLE spans", "DROP TABLE"),
            ("DROP SCHEMA system", "DROP SCHEMA"),
            ("ALTER TABLE spans RENAME TO s", "ALTER TABLE"),
            ("COPY spans TO '/tmp/spans.csv'", "COPY"),
            ("COPY (SELECT 1) TO '/tmp/one.parquet'", "COPY"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            ("PREPARE p AS SELECT 1", "PREPARE"),
            (
                "EXPLAIN INSERT INTO spans SELECT * FROM spans",
                "INSERT INTO",
            ),
        ] {
            let error = engine.sql(sql).await.unwrap_err();
            assert!(
                matches!(&error, Error::ReadOnly(what) if what == refused),
                "{sql}: {error:?}"
            );
            assert!(error.is_user_error());
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("{refused} is refused")),
                "{message}"
            );
            assert!(message.contains("read-only"), "{message}");
        }
        // Reads are not refused, and still run afterwards.
        for sql in [
            "SELECT count(*) FROM spans",
            "WITH s AS (SELECT 1 AS one) SELECT * FROM s",
            "EXPLAIN SELECT * FROM spans",
            "SHOW TABLES",
            "DESCRIBE spans",
            "SELECT * FROM generate_series(1, 3)",
        ] {
            engine
                .sql(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[tokio::test]
    async fn no_function_or_table_name_reads_files() {
        let (engine, _dir) = limited(1 << 30, 10_000, 2).await;
        for sql in [
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 'Cargo.toml'",
            "SELECT * FROM read_parquet('x.parquet')",
            "SELECT * FROM read_csv('/etc/passwd')",
        ] {
            let error = engine.sql(sql).await.unwrap_err();
            assert!(error.is_user_error(), "{sql}: {error}");
        }
    }

    /// Sorting a million integers needs several MiB.
    const BIG_SORT: &str = "SELECT value FROM generate_series(1, 1000000) ORDER BY value DESC";

    #[tokio::test]
    async fn a_query_over_the_memory_limit_fails_while_another_runs() {
        let (engine, _dir) = limited(1 << 20, 30_000, 4).await;
        let (big, small) = tokio::join!(
            engine.sql(BIG_SORT),
            engine.sql("SELECT count(*) AS n FROM generate_series(1, 1000)")
        );
        let error = big.unwrap_err();
        assert!(matches!(error, Error::MemoryLimit { .. }), "{error:?}");
        assert!(error.is_resources_exhausted());
        let message = error.to_string();
        assert!(message.contains("1MiB (sql.memory_limit)"), "{message}");
        assert_eq!(small.unwrap().num_rows(), 1);
        // The limit is per query: the same sort fits in a larger one.
        let (roomy, _dir) = limited(256 << 20, 30_000, 4).await;
        assert_eq!(roomy.sql(BIG_SORT).await.unwrap().num_rows(), 1_000_000);
    }

    #[tokio::test]
    async fn a_slow_query_is_cancelled_at_the_time_limit() {
        let (engine, _dir) = limited(1 << 30, 300, 4).await;
        let started = std::time::Instant::now();
        let error = engine
            .sql("SELECT count(*) FROM generate_series(1, 1000000000000)")
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the query was cancelled after 300ms (sql.timeout)"
        );
        assert!(
            elapsed >= std::time::Duration::from_millis(300),
            "{elapsed:?}"
        );
        assert!(
            elapsed < std::time::Duration::from_secs(5),
            "stopped late: {elapsed:?}"
        );
        // Its slot is free again.
        assert_eq!(engine.sql("SELECT 1").await.unwrap().num_rows(), 1);
    }

    #[tokio::test]
    async fn queries_beyond_the_concurrency_limit_wait_then_fail() {
        let (engine, _dir) = limited(1 << 30, 400, 1).await;
        let running = engine.stream("SELECT 1 AS one").await.unwrap();
        let started = std::time::Instant::now();
        let error = engine.sql("SELECT 2").await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::Busy {
                    max_concurrent: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(400));
        // The unread query's own time ran out meanwhile.
        let error = running.collect().await.unwrap_err();
        assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
        // Reading a stream to its end frees its slot, as dropping it does.
        let mut held = engine.stream("SELECT 3").await.unwrap();
        while futures::StreamExt::next(&mut held.batches).await.is_some() {}
        assert_eq!(engine.sql("SELECT 4").await.unwrap().num_rows(), 1);
        drop(held);
        // A waiting query gets a slot as soon as one frees.
        let holder = engine.stream("SELECT 5").await.unwrap();
        let waiter = tokio::spawn({
            let engine = engine.clone();
            async move { engine.sql("SELECT 6").await.map(|r| r.num_rows()) }
        });
        tokio::task::yield_now().await;
        drop(holder);
        assert_eq!(waiter.await.unwrap().unwrap(), 1);
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
