//! OTLP requests → Arrow record batches, one function per signal.
//!
//! Each converter walks a decoded export request once, validates every
//! record, labels it with its cohort and appends it to column builders laid
//! out exactly as the table's schema in `grayscope_core::schema`. Records
//! that cannot be stored (a trace id of the wrong length, a data point
//! without a value) are rejected one by one and reported back to the client
//! as an OTLP partial success; the rest of the request is kept.

mod attributes;
mod columns;
mod logs;
mod metrics;
mod resource;
mod spans;

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

pub(crate) use attributes::value_text;
pub use logs::convert_logs;
pub use metrics::convert_metrics;
pub use spans::convert_spans;

use crate::decode::{Encoding, decode};
use crate::error::{Error, Result};
use crate::join::Sighting;
use crate::label::{Labeler, Labels};
use crate::mining::LogMining;
use crate::signal::Signal;

/// At most this many rejection reasons are reported per request.
const MAX_REASONS: usize = 5;

/// The result of converting one export request.
#[derive(Debug)]
pub struct Converted {
    /// The accepted records, in the table's schema.
    pub batch: RecordBatch,
    /// How many records (spans, log records, data points) were rejected.
    pub rejected: i64,
    /// Why, for the first few rejected records.
    pub reasons: Vec<String>,
    /// What the spans said about their traces, for the trace join once the
    /// batch is stored.
    pub(crate) sightings: Vec<Sighting>,
}

impl Converted {
    /// A single message summarising the rejections, for `partial_success`.
    pub fn error_message(&self) -> String {
        let mut message = self.reasons.join("; ");
        let unexplained = self.rejected - self.reasons.len() as i64;
        if unexplained > 0 {
            message.push_str(&format!("; and {unexplained} more"));
        }
        message
    }
}

/// Collects rejections while a request is converted.
#[derive(Debug, Default)]
pub(crate) struct Rejections {
    count: i64,
    reasons: Vec<String>,
}

impl Rejections {
    pub(crate) fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.reasons.len() < MAX_REASONS {
            self.reasons.push(reason());
        }
    }

    pub(crate) fn into_converted(self, batch: RecordBatch) -> Converted {
        Converted {
            batch,
            rejected: self.count,
            reasons: self.reasons,
            sightings: Vec::new(),
        }
    }
}

/// Nanoseconds since the epoch as Arrow's signed timestamp. OTLP's `fixed64`
/// exceeds `i64` only past the year 2262; such times are clamped.
pub(crate) fn nanos(unix_nano: u64) -> i64 {
    i64::try_from(unix_nano).unwrap_or(i64::MAX)
}

/// A decoded export request of any signal.
#[derive(Debug)]
pub(crate) enum DecodedRequest {
    /// Spans.
    Traces(ExportTraceServiceRequest),
    /// Log records.
    Logs(ExportLogsServiceRequest),
    /// Metric data points.
    Metrics(ExportMetricsServiceRequest),
}

impl DecodedRequest {
    /// Decodes a request body; the whole request is rejected when it does
    /// not decode.
    pub(crate) fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Self> {
        let decode_error = |source| Error::Decode {
            signal,
            encoding,
            source,
        };
        Ok(match signal {
            Signal::Traces => DecodedRequest::Traces(decode(encoding, body).map_err(decode_error)?),
            Signal::Logs => DecodedRequest::Logs(decode(encoding, body).map_err(decode_error)?),
            Signal::Metrics => {
                DecodedRequest::Metrics(decode(encoding, body).map_err(decode_error)?)
            }
        })
    }

    /// Converts the request into its table's batch, with its records'
    /// labels (and, for logs, their templates and rules when `mining`).
    pub(crate) fn convert(
        &self,
        labeler: &Labeler,
        labels: &Labels,
        mining: Option<&LogMining>,
    ) -> Result<Converted> {
        let (signal, converted) = match self {
            DecodedRequest::Traces(request) => {
                (Signal::Traces, convert_spans(request, labeler, labels))
            }
            DecodedRequest::Logs(request) => {
                (Signal::Logs, convert_logs(request, labeler, labels, mining))
            }
            DecodedRequest::Metrics(request) => {
                (Signal::Metrics, convert_metrics(request, labeler, labels))
            }
        };
        let mut converted =
            converted.map_err(|e| Error::Internal(format!("building the {signal} batch: {e}")))?;
        converted.sightings = labels.sightings.clone();
        Ok(converted)
    }
}
