//! The error type of `grayscope-ingest`, and how each error is answered on
//! the wire (HTTP status, gRPC code) as the OTLP specification asks.

use grayscope_core::Table;

use crate::decode::Encoding;
use crate::signal::Signal;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an export request was not accepted. Every variant rejects the
/// request whole: nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not a valid OTLP message in the announced encoding.
    #[error("cannot decode {signal} export request as {encoding}")]
    Decode {
        /// What was being exported.
        signal: Signal,
        /// The encoding the client announced.
        encoding: Encoding,
        /// The decoder's complaint.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The body (compressed or not) exceeds the configured limit.
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// A `Content-Type` other than OTLP's two.
    #[error("unsupported content type {0:?}: use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// A `Content-Encoding` we do not decompress.
    #[error("unsupported content encoding {0:?}: use gzip or none")]
    UnsupportedContentEncoding(String),
    /// The gzip stream is corrupt.
    #[error("cannot decompress the gzip body")]
    Decompress {
        /// What the decompressor said.
        source: std::io::Error,
    },
    /// The request body could not be read from the connection.
    #[error("cannot read the request body")]
    ReadBody {
        /// The transport error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store refused the batch.
    #[error("cannot store the {table} batch")]
    Store {
        /// The table written to.
        table: Table,
        /// The store's error.
        source: grayscope_store::Error,
    },
    /// All request slots are taken (`[otlp] max_concurrent_requests`).
    /// Retryable: HTTP 429 / gRPC RESOURCE_EXHAUSTED, with a retry hint.
    #[error("too many export requests in flight; retry in {}s", retry_after.as_secs().max(1))]
    Overloaded {
        /// When to retry.
        retry_after: std::time::Duration,
    },
    /// The store is over its memory limit: flushes have not kept up.
    /// Retryable: HTTP 503 / gRPC UNAVAILABLE, with a retry hint. Nothing of
    /// the request was stored.
    #[error("the store cannot keep up; retry in {}s", retry_after.as_secs().max(1))]
    Backpressure {
        /// When to retry.
        retry_after: std::time::Duration,
        /// The store's refusal.
        source: grayscope_store::Error,
    },
    /// The Kafka client could not be set up: librdkafka refused a
    /// `[kafka]` setting, or the subscription failed.
    #[error("cannot {action} the Kafka {client}")]
    Kafka {
        /// What was being done (`create`, `subscribe`).
        action: &'static str,
        /// `consumer` or `dead-letter producer`.
        client: &'static str,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// A bug on our side (a conversion that produced an invalid batch, a
    /// panicked worker). The client may retry; we should be told.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status that answers this error.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            Error::Decode { .. } | Error::Decompress { .. } | Error::ReadBody { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Backpressure { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::UnsupportedContentType(_) | Error::UnsupportedContentEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Error::Store { .. } | Error::Kafka { .. } | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The gRPC status code that answers this error.
    pub fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Error::Decode { .. }
            | Error::Decompress { .. }
            | Error::UnsupportedContentType(_)
            | Error::UnsupportedContentEncoding(_) => Code::InvalidArgument,
            Error::ReadBody { .. } => Code::Cancelled,
            Error::TooLarge { .. } | Error::Overloaded { .. } => Code::ResourceExhausted,
            Error::Backpressure { .. } => Code::Unavailable,
            Error::Store { .. } | Error::Kafka { .. } | Error::Internal(_) => Code::Internal,
        }
    }

    /// When the client should retry, for errors that are worth retrying.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Overloaded { retry_after } | Error::Backpressure { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// The message sent to the client: this error and its causes.
    pub fn client_message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}
