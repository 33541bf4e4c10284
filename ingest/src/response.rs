//! The answers OTLP clients expect: export responses with
//! `partial_success`, and `google.rpc.Status` error bodies.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};

use crate::decode::{Encoding, encode};
use crate::pipeline::ExportOutcome;
use crate::signal::Signal;

/// The encoded export response of `signal` for `outcome`. `partial_success`
/// is set only when something was rejected, as the specification asks.
pub(crate) fn export_response(
    signal: Signal,
    encoding: Encoding,
    outcome: &ExportOutcome,
) -> Vec<u8> {
    let partial = outcome.rejected > 0;
    let message = outcome.error_message.clone();
    match signal {
        Signal::Traces => encode(
            encoding,
            &ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: outcome.rejected,
                    error_message: message,
                }),
            },
        ),
        Signal::Logs => encode(
            encoding,
            &ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: outcome.rejected,
                    error_message: message,
                }),
            },
        ),
        Signal::Metrics => encode(
            encoding,
            &ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: outcome.rejected,
                    error_message: message,
                }),
            },
        ),
    }
}

/// `google.rpc.Status`, the error body of OTLP/HTTP.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// The encoded error body for `code` and `message`.
pub(crate) fn error_body(encoding: Encoding, code: tonic::Code, message: String) -> Vec<u8> {
    let status = RpcStatus {
        code: code as i32,
        message,
    };
    match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(&status),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    }
}
