//! OTLP requests → Arrow record batches, one function per signal.
//!
//! Each converter walks a decoded export request once, validates every
//! record, labels it with its cohort and appends it to column builders laid
//! out exactly as the table's schema in `grayscope_core::schema`. Records
//! that cannot be stored (a trace id of the wrong length, a data point
//! without a value) are rejected one by one and reported back to the client
//! as an OTLP partial success; the rest of the request is kept.

mod attribute_column;
mod attributes;
mod columns;
mod logs;
mod metrics;
mod resource;
mod spans;
mod text;

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
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
use crate::wire::{LogsRequest, TraceRequest, WireError};

/// Why a request could not be converted at all.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The request's protobuf is damaged, as found while reading it: the
    /// client's error, and nothing of the request is stored.
    #[error(transparent)]
    Malformed(#[from] WireError),
    /// Building the batch failed.
    #[error(transparent)]
    Arrow(ArrowError),
}

impl From<ArrowError> for ConvertError {
    /// Attribute columns check their text when they are finished, and
    /// report text that is not UTF-8 as the reader would have: as damage,
    /// the client's error.
    fn from(error: ArrowError) -> Self {
        match error {
            ArrowError::ExternalError(source) => match source.downcast::<WireError>() {
                Ok(damage) => ConvertError::Malformed(*damage),
                Err(source) => ConvertError::Arrow(ArrowError::ExternalError(source)),
            },
            error => ConvertError::Arrow(error),
        }
    }
}

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

    pub(crate) fn into_converted(self, batch: RecordBatch) -> Result<Converted, ArrowError> {
        Ok(Converted {
            batch: shrunk(batch)?,
            rejected: self.count,
            reasons: self.reasons,
            sightings: Vec::new(),
        })
    }
}

/// `batch` with its buffers cut to their length. The builders reserve
/// room for several attributes per row in every map column, most of it
/// unused (scope attributes are usually empty); kept, that room would
/// count against the store's memory limit and fill memtables with nothing.
/// Shrinking gives the tail back to the allocator without copying.
fn shrunk(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let (schema, mut columns, rows) = batch.into_parts();
    for column in &mut columns {
        // Just built, so not shared: every buffer is shrunk in place.
        arrow::array::Array::shrink_to_fit(column);
    }
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema, columns, &options)
}

/// Nanoseconds since the epoch as Arrow's signed timestamp. OTLP's `fixed64`
/// exceeds `i64` only past the year 2262; such times are clamped.
pub(crate) fn nanos(unix_nano: u64) -> i64 {
    i64::try_from(unix_nano).unwrap_or(i64::MAX)
}

/// A decoded export request of any signal: spans and log records read in
/// place ([`crate::wire`]), metrics as prost's structs.
#[derive(Debug)]
pub(crate) enum DecodedRequest {
    /// Spans.
    Traces(TraceRequest),
    /// Log records.
    Logs(LogsRequest),
    /// Metric data points.
    Metrics(ExportMetricsServiceRequest),
}

impl DecodedRequest {
    /// Decodes a request body; the whole request is rejected when it does
    /// not decode. Protobuf spans and log records are read in place, and
    /// checked as they are converted ([`DecodedRequest::convert`] refuses
    /// them whole then); OTLP JSON goes through prost's structs first.
    pub(crate) fn decode(signal: Signal, encoding: Encoding, body: Bytes) -> Result<Self> {
        let decode_error = |source| Error::Decode {
            signal,
            encoding,
            source,
        };
        Ok(match (signal, encoding) {
            // Checked as they are converted.
            (Signal::Traces, Encoding::Protobuf) => {
                DecodedRequest::Traces(TraceRequest::read(body))
            }
            (Signal::Logs, Encoding::Protobuf) => DecodedRequest::Logs(LogsRequest::read(body)),
            (Signal::Traces, Encoding::Json) => {
                let request: ExportTraceServiceRequest =
                    decode(encoding, &body).map_err(decode_error)?;
                DecodedRequest::Traces(TraceRequest::from_proto(&request))
            }
            (Signal::Logs, Encoding::Json) => {
                let request: ExportLogsServiceRequest =
                    decode(encoding, &body).map_err(decode_error)?;
                DecodedRequest::Logs(LogsRequest::from_proto(&request))
            }
            (Signal::Metrics, _) => {
                DecodedRequest::Metrics(decode(encoding, &body).map_err(decode_error)?)
            }
        })
    }

    /// Checks the whole request now rather than while converting it (a
    /// Kafka message is refused on its own, before it joins a batch).
    pub(crate) fn checked(self, signal: Signal) -> Result<Self> {
        let checked = match &self {
            DecodedRequest::Traces(request) => request.check(),
            DecodedRequest::Logs(request) => request.check(),
            DecodedRequest::Metrics(_) => Ok(()),
        };
        checked.map_err(|e| Error::Decode {
            signal,
            encoding: Encoding::Protobuf,
            source: Box::new(e),
        })?;
        Ok(self)
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
        converted.map_err(|e| match e {
            ConvertError::Malformed(e) => Error::Decode {
                signal,
                encoding: Encoding::Protobuf,
                source: Box::new(e),
            },
            ConvertError::Arrow(e) => Error::Internal(format!("building the {signal} batch: {e}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::ArrayData;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    /// Bytes held by the buffers of `data` and its children, and bytes in use.
    fn held_and_used(data: &ArrayData) -> (usize, usize) {
        let mut held = 0;
        let mut used = 0;
        for buffer in data.buffers() {
            held += buffer.capacity();
            used += buffer.len();
        }
        for child in data.child_data() {
            let (h, u) = held_and_used(child);
            held += h;
            used += u;
        }
        (held, used)
    }

    #[test]
    fn a_converted_batch_holds_no_room_reserved_by_the_builders() {
        let attribute = |key: &str, value: &str| KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        };
        let spans = (0..512u32)
            .map(|i| Span {
                trace_id: [i.to_be_bytes(), [1; 4], [1; 4], [1; 4]].concat(),
                span_id: [i.to_be_bytes(), [1; 4]].concat(),
                name: "GET /".to_owned(),
                start_time_unix_nano: 10,
                attributes: vec![attribute("k", "v")],
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let labeler = Labeler::new();
        let decoded = DecodedRequest::Traces(TraceRequest::from_proto(&request));
        let labels = Labels::of(&decoded, &labeler);
        let converted = decoded.convert(&labeler, &labels, None).unwrap();
        assert_eq!(converted.batch.num_rows(), 512);
        let (mut held, mut used) = (0, 0);
        for column in converted.batch.columns() {
            let (h, u) = held_and_used(&column.to_data());
            held += h;
            used += u;
        }
        // Allocation granularity aside, what is held is what is used: one
        // attribute per row, none in the resource or scope maps.
        assert!(
            held <= used + used / 10,
            "{held} bytes held for {used} used"
        );
    }
}
