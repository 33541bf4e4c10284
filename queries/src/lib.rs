//! grayscope's SQL: one DataFusion session over the store, and the ways to
//! reach it.
//!
//! - [`QueryEngine`] registers every table of the store (`spans`, `logs`,
//!   `metrics`) in a DataFusion `SessionContext` and runs read-only SQL.
//! - [`sql_http::router`] serves `POST /api/v1/sql`: SQL in, rows out as
//!   JSON, CSV or Arrow IPC (chosen by the `Accept` header).
//!
//! ```no_run
//! # async fn demo() -> Result<(), grayscope_queries::Error> {
//! use grayscope_queries::QueryEngine;
//! use grayscope_store::Store;
//!
//! let engine = QueryEngine::new(Store::in_memory())?;
//! let result = engine.sql("SELECT cohort, count(*) FROM spans GROUP BY cohort").await?;
//! println!("{} batches", result.batches.len());
//! # Ok(()) }
//! ```

pub mod cohort_rule;
mod engine;
mod error;
mod format;
pub mod sql_http;
pub mod trace_cohorts;

pub use engine::{QueryEngine, QueryResult};
pub use error::{Error, Result};
pub use format::OutputFormat;
