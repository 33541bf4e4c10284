//! The error type of `grayscope-queries`.

use datafusion::error::DataFusionError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused or failed the query. Whether that is the user's
    /// doing or ours is told by [`Error::is_user_error`].
    #[error("{0}")]
    Query(#[source] DataFusionError),
    /// A statement that would change something: SQL here is read-only.
    #[error("only queries are allowed (SQL is read-only): {0}")]
    ReadOnly(String),
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
}

impl Error {
    /// Whether the user can fix this by changing the request (HTTP 400)
    /// rather than it being our fault (HTTP 500).
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Query(error) => is_user_error(error),
            Error::ReadOnly(_) | Error::BadRequest(_) => true,
            Error::Encode { .. } => true,
        }
    }

    /// Whether the query ran out of a resource and may succeed later.
    pub fn is_resources_exhausted(&self) -> bool {
        matches!(self, Error::Query(e) if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)))
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
        // SQLOptions reports forbidden statements as plan errors; name them.
        if let DataFusionError::Plan(message) = error.find_root()
            && message.contains("not supported")
            && (message.contains("DDL") || message.contains("DML") || message.contains("Statement"))
        {
            return Error::ReadOnly(message.clone());
        }
        Error::Query(error)
    }
}
