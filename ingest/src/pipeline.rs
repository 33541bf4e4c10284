//! The one code path every export takes after the transport: decode,
//! convert and label, store, answer.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use grayscope_store::Store;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::convert::{Converted, DecodedRequest};
use crate::decode::Encoding;
use crate::error::{Error, Result};
use crate::label::{Labeler, Labeling, Labels};
use crate::logged_source::span_source;
use crate::mining::LogMining;
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

/// Decodes a request body and converts it into a labelled batch, mining log
/// bodies with `mining` (none: template columns null), without joining
/// traces (a log record that would take its trace's cohort is `baseline`
/// here). This is CPU work with no I/O; [`Pipeline::export`] does the same
/// off the async runtime, joining traces.
pub fn decode_and_convert(
    signal: Signal,
    encoding: Encoding,
    body: Bytes,
    labeler: &Labeler,
    mining: Option<&LogMining>,
) -> Result<Converted> {
    let request = DecodedRequest::decode(signal, encoding, body)?;
    let labels = Labels::of(&request, labeler);
    request.convert(labeler, &labels, mining)
}

/// Turns export requests into stored rows. Cheap to clone; every receiver
/// (gRPC, HTTP) holds one.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    labeling: Labeling,
    mining: LogMining,
    admission: Arc<Semaphore>,
}

/// A slot among the requests handled at once; held until the request is
/// answered.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
}

/// Retry hint given when too many requests are in flight.
const OVERLOAD_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Pipeline {
    /// A pipeline writing into `store`, labelling with `labeling` (a
    /// [`Labeler`] alone labels without reloads and with the default trace
    /// join), mining log bodies with a default miner in memory.
    pub fn new(store: Store, labeling: impl Into<Labeling>) -> Pipeline {
        Pipeline {
            store,
            labeling: labeling.into(),
            mining: LogMining::default(),
            admission: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        }
    }

    /// Mines log bodies with `mining` (the server's configured, persisted
    /// miner and rules).
    pub fn with_mining(mut self, mining: LogMining) -> Pipeline {
        self.mining = mining;
        self
    }

    /// Caps the requests handled at once; more are refused by
    /// [`Pipeline::admit`] rather than queued.
    pub fn with_max_concurrent_requests(mut self, max: usize) -> Pipeline {
        self.admission = Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS)));
        self
    }

    /// Takes a slot for one request, before its body is read, or refuses
    /// with [`Error::Overloaded`] when all slots are taken.
    pub fn admit(&self) -> Result<Admission> {
        match self.admission.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admission { _permit: permit }),
            Err(_) => Err(Error::Overloaded {
                retry_after: OVERLOAD_RETRY_AFTER,
            }),
        }
    }

    /// Appends a converted batch to its table; back-pressure is
    /// [`Error::Backpressure`].
    pub(crate) async fn append(&self, signal: Signal, batch: RecordBatch) -> Result<()> {
        let table = signal.table();
        self.store
            .append(table, batch)
            .await
            .map_err(|source| store_error(table, source))
    }

    /// Appends a batch converted from a request `body`: protobuf spans are
    /// logged as their request (see [`crate::logged_source`]), the rest as
    /// the batch.
    async fn append_converted(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: Bytes,
        batch: RecordBatch,
    ) -> Result<()> {
        let source = match (signal, encoding) {
            (Signal::Traces, Encoding::Protobuf) if self.store.rebuilds_sources() => {
                span_source(&batch, body)
            }
            _ => None,
        };
        let Some(source) = source else {
            return self.append(signal, batch).await;
        };
        let table = signal.table();
        self.store
            .append_source(table, batch, source)
            .await
            .map_err(|source| store_error(table, source))
    }

    /// The store written to.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The labelling in use, shared with the receivers.
    pub(crate) fn labeling(&self) -> &Labeling {
        &self.labeling
    }

    /// The log template miner in use.
    pub(crate) fn mining(&self) -> &LogMining {
        &self.mining
    }

    /// Handles one export request. When this returns `Ok`, the accepted
    /// records are visible to SQL.
    pub async fn export(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: Bytes,
    ) -> Result<ExportOutcome> {
        // A request the store would refuse is refused before it costs any
        // decoding: under a flood, that CPU is what the flushes need.
        self.store
            .check_pressure(body.len())
            .map_err(|source| store_error(signal.table(), source))?;
        let mut converted = self
            .labeling
            .decode_and_convert(signal, encoding, body.clone(), self.mining.clone())
            .await?;
        let sightings = std::mem::take(&mut converted.sightings);

        let error_message = converted.error_message();
        let rejected = converted.rejected;
        let accepted = converted.batch.num_rows();
        if accepted > 0 {
            self.append_converted(signal, encoding, body, converted.batch)
                .await?;
            self.labeling.publish(sightings);
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

/// A store error as ingest reports it: back-pressure stays retryable.
fn store_error(table: grayscope_core::Table, source: grayscope_store::Error) -> Error {
    match source {
        grayscope_store::Error::Backpressure { retry_after, .. } => Error::Backpressure {
            retry_after,
            source,
        },
        source => Error::Store { table, source },
    }
}
