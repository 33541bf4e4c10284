//! Query errors as gRPC statuses, the codes Flight SQL clients act on.

use tonic::Status;

use crate::error::Error;

/// The status a client gets for `error`: INVALID_ARGUMENT for SQL it can
/// fix, PERMISSION_DENIED for statements that would change something,
/// DEADLINE_EXCEEDED past `sql.timeout`, RESOURCE_EXHAUSTED when the query
/// ran out of memory or found no free slot (retry later or ask for less),
/// INTERNAL for our own failures.
pub(crate) fn status(error: &Error) -> Status {
    match error {
        Error::ReadOnly(_) => Status::permission_denied(error.to_string()),
        Error::Timeout { .. } => Status::deadline_exceeded(error.to_string()),
        _ if error.is_resources_exhausted() => Status::resource_exhausted(error.to_string()),
        _ if error.is_user_error() => Status::invalid_argument(error.to_string()),
        _ => {
            tracing::error!(%error, "Flight SQL query failed on our side");
            Status::internal(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::error::DataFusionError;
    use tonic::Code;

    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_code() {
        for (error, code) in [
            (
                Error::ReadOnly("DDL not supported".into()),
                Code::PermissionDenied,
            ),
            (Error::BadRequest("empty".into()), Code::InvalidArgument),
            (
                Error::Query(DataFusionError::Plan("no column nope".into())),
                Code::InvalidArgument,
            ),
            (
                Error::Query(DataFusionError::ResourcesExhausted("memory".into())),
                Code::ResourceExhausted,
            ),
            (
                Error::Query(DataFusionError::Internal("bug".into())),
                Code::Internal,
            ),
            (
                Error::Timeout {
                    after: std::time::Duration::from_secs(2),
                    limit: "sql.timeout",
                },
                Code::DeadlineExceeded,
            ),
            (
                Error::Busy {
                    waited: std::time::Duration::from_secs(2),
                    max_concurrent: 8,
                },
                Code::ResourceExhausted,
            ),
        ] {
            assert_eq!(status(&error).code(), code, "{error}");
        }
    }
}
