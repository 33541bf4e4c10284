//! grayscope's SQL: one DataFusion session over the store, and the ways to
//! reach it.
//!
//! - [`QueryEngine`] registers every table of the store (`spans`, `logs`,
//!   `metrics`) in a DataFusion `SessionContext` and runs read-only SQL:
//!   [`QueryEngine::stream`] streams a result, [`QueryEngine::sql`]
//!   collects it. Every front end goes through it, so the same rules hold
//!   for all: [`read_only`] says which statements run, [`limits`] bounds
//!   each query's memory and time and the queries at once.
//! - [`sql_http::router`] serves `POST /api/v1/sql`: SQL in, rows out as
//!   JSON, CSV or Arrow IPC (chosen by the `Accept` header).
//! - [`postgres::PostgresServer`] serves the PostgreSQL wire protocol
//!   (`psql`, Grafana, drivers), with token logins and TLS.
//! - [`flight_sql::service`] serves Arrow Flight SQL (ADBC, Grafana's
//!   FlightSQL datasource), results streamed as Arrow IPC.
//! - [`templates_table`] is the `templates` table: every log template the
//!   ingest miner knows, with its lineage, read at scan time from a
//!   [`TemplateSource`].
//! - [`approx_quantile`] adds `approx_quantile(value, q)`, a quantile
//!   within 0.4 % in constant time per row (faster than DataFusion's
//!   t-digest `approx_percentile_cont` on large inputs).
//! - The `system` schema shows the store's health as tables
//!   (`system.tables`, `system.parts`, `system.store`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use grayscope_queries::QueryEngine;
//! use grayscope_store::Store;
//!
//! let (store, _recovery) = Store::open("./grayscope-data".as_ref(), Default::default()).await?;
//! let engine = QueryEngine::new(store)?.with_limits(&Default::default());
//! let result = engine.sql("SELECT cohort, count(*) FROM spans GROUP BY cohort").await?;
//! println!("{} batches", result.batches.len());
//! # Ok(()) }
//! ```

pub mod approx_quantile;
pub mod cohort_rule;
mod engine;
mod error;
pub mod flight_sql;
mod format;
pub mod kafka_tables;
pub mod limits;
mod live_table;
pub mod postgres;
pub mod read_only;
pub mod sql_http;
mod system_tables;
pub mod templates_table;
pub mod trace_cohorts;
pub mod wire_strings;

pub use engine::{QueryEngine, QueryResult};
pub use error::{Error, Result};
pub use format::OutputFormat;
pub use kafka_tables::{KafkaPartitionRow, KafkaSourceRow, KafkaSourceStatus};
pub use limits::QueryStream;
pub use system_tables::SnapshotSource;
pub use templates_table::{TemplateRow, TemplateSource};
