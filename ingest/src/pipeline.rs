//! The one code path every export takes after the transport: decode,
//! convert and label, store, answer.

use std::sync::Arc;

use bytes::Bytes;
use grayscope_store::Store;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::convert::{Converted, convert_logs, convert_metrics, convert_spans};
use crate::decode::{Encoding, decode};
use crate::error::{Error, Result};
use crate::label::Labeler;
use crate::signal::Signal;

/// What became of an export request that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Records stored (spans, log records or data points).
    pub accepted: usize,
    /// Records rejected one by one; the client hears of them through
    /// `partial_success`.
    pub rejected: i64,
    /// Why they were rejected; empty when none were.
    pub error_message: String,
}

/// Decodes a request body and converts it into a labelled batch. This is
/// CPU work with no I/O; [`Pipeline::export`] runs it off the async runtime.
pub fn decode_and_convert(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
    labeler: &Labeler,
) -> Result<Converted> {
    let decode_error = |source| Error::Decode {
        signal,
        encoding,
        source,
    };
    let converted = match signal {
        Signal::Traces => {
            let request: ExportTraceServiceRequest =
                decode(encoding, body).map_err(decode_error)?;
            convert_spans(&request, labeler)
        }
        Signal::Logs => {
            let request: ExportLogsServiceRequest = decode(encoding, body).map_err(decode_error)?;
            convert_logs(&request, labeler)
        }
        Signal::Metrics => {
            let request: ExportMetricsServiceRequest =
                decode(encoding, body).map_err(decode_error)?;
            convert_metrics(&request, labeler)
        }
    };
    converted.map_err(|e| Error::Internal(format!("building the {signal} batch: {e}")))
}

/// Turns export requests into stored rows. Cheap to clone; every receiver
/// (gRPC, HTTP) holds one.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    labeler: Arc<Labeler>,
}

impl Pipeline {
    /// A pipeline writing into `store`.
    pub fn new(store: Store, labeler: Labeler) -> Pipeline {
        Pipeline {
            store,
            labeler: Arc::new(labeler),
        }
    }

    /// Handles one export request. When this returns `Ok`, the accepted
    /// records are visible to SQL.
    pub async fn export(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: Bytes,
    ) -> Result<ExportOutcome> {
        let labeler = self.labeler.clone();
        let converted = tokio::task::spawn_blocking(move || {
            decode_and_convert(signal, encoding, &body, &labeler)
        })
        .await
        .map_err(|e| Error::Internal(format!("conversion worker failed: {e}")))??;

        let error_message = converted.error_message();
        let rejected = converted.rejected;
        let accepted = converted.batch.num_rows();
        if accepted > 0 {
            let table = signal.table();
            self.store
                .append(table, converted.batch)
                .await
                .map_err(|source| Error::Store { table, source })?;
        }
        if rejected > 0 {
            tracing::debug!(%signal, accepted, rejected, %error_message, "export partially rejected");
        }
        Ok(ExportOutcome {
            accepted,
            rejected,
            error_message,
        })
    }
}
