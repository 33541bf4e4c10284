//! The error type of `grayscope-queries`.

use std::time::Duration;

use datafusion::error::DataFusionError;
use grayscope_core::config::{ByteSize, ConfigDuration};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused or failed the query. Whether that is the user's
    /// doing or ours is told by [`Error::is_user_error`].
    #[error("{0}")]
    Query(#[source] DataFusionError),
    /// A statement that would change something: SQL here is read-only. The
    /// text names what was refused (`CREATE TABLE`, `SET`, `COPY`, …).
    #[error(
        "{0} is refused: SQL here is read-only (only SELECT, WITH, VALUES, EXPLAIN, SHOW and DESCRIBE run)"
    )]
    ReadOnly(String),
    /// The query needed more memory than `sql.memory_limit` allows.
    #[error(
        "the query needs more memory than its limit of {limit} (sql.memory_limit) allows; \
         it was stopped: {message}"
    )]
    MemoryLimit {
        /// The limit.
        limit: ByteSize,
        /// The engine's account of the allocation that failed.
        message: String,
    },
    /// The query ran longer than its time limit and was stopped.
    #[error("the query was cancelled after {} ({limit})", ConfigDuration(*after))]
    Timeout {
        /// How long it ran.
        after: Duration,
        /// The setting that limited it: `sql.timeout`, or a PostgreSQL
        /// client's shorter `statement_timeout`.
        limit: &'static str,
    },
    /// No query slot came free in time: the server is busy (retry later).
    #[error(
        "the query was cancelled after waiting {} for a slot: {max_concurrent} queries are already \
         running (sql.max_concurrent_queries); retry later",
        ConfigDuration(*waited)
    )]
    Busy {
        /// How long it waited.
        waited: Duration,
        /// The number of slots.
        max_concurrent: usize,
    },
    /// The result could not be encoded in the requested format.
    #[error("cannot encode the result as {format}")]
    Encode {
        /// The requested format.
        format: &'static str,
        /// The encoder's complaint.
        source: arrow::error::ArrowError,
    },
    /// The request itself is malformed (empty SQL, bad JSON).
    #[error("{0}")]
    BadRequest(String),
    /// Our own bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the user can fix this by changing the request (HTTP 400)
    /// rather than it being our fault (HTTP 500).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Query(error) => is_user_error(error),
            Error::ReadOnly(_) | Error::BadRequest(_) | Error::Encode { .. } => true,
            Error::MemoryLimit { .. } | Error::Timeout { .. } | Error::Busy { .. } => true,
            Error::Internal(_) => false,
        }
    }

    /// Whether the query ran out of a resource (memory, time, a slot).
    pub fn is_resources_exhausted(&self) -> bool {
        match self {
            Error::MemoryLimit { .. } | Error::Timeout { .. } | Error::Busy { .. } => true,
            Error::Query(e) => matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)),
            _ => false,
        }
    }

    /// This error inside a DataFusion error, as a record batch stream
    /// carries it; [`Error::from`] takes it out again.
    pub fn into_datafusion(self) -> DataFusionError {
        match self {
            Error::Query(error) => error,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

fn is_user_error(error: &DataFusionError) -> bool {
    !matches!(
        error.find_root(),
        DataFusionError::Internal(_)
            | DataFusionError::IoError(_)
            | DataFusionError::ObjectStore(_)
            | DataFusionError::ResourcesExhausted(_)
    )
}

impl From<DataFusionError> for Error {
    fn from(error: DataFusionError) -> Self {
        match error {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(inner) => Error::Query(DataFusionError::External(inner)),
            },
            error => Error::Query(error),
        }
    }
}
