//! Storing a chunk of messages: decode each one (a message that does not
//! decode goes to the dead-letter topic alone), then the rest as one
//! request through the same labelling, mining, conversion and store append
//! as an OTLP export.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use grayscope_core::config::{KafkaEncoding, KafkaSignal};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tokio_util::sync::CancellationToken;

use super::consumer::{Chunk, Finish, Shared};
use super::dead_letter::{DeadLetters, Delivered};
use super::json_lines;
use super::message::KafkaMessage;
use super::span_dedup::SpanDedup;
use super::status::SourceCounters;
use crate::convert::DecodedRequest;
use crate::decode::Encoding;
use crate::error::Error;
use crate::pipeline::Pipeline;
use crate::signal::Signal;
use crate::wire::{LogsRequest, TraceRequest};

/// Longest wait between two attempts to append after back-pressure or a
/// store failure.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(1);

/// Why messages could not be stored.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Converting them failed (our bug): dead-letter them.
    Convert(String),
    /// Their batch can never fit under the store's memory limit.
    TooLarge(String),
}

impl Refusal {
    fn reason(&self) -> String {
        match self {
            Refusal::Convert(reason) => reason.clone(),
            Refusal::TooLarge(reason) => format!("too large to store: {reason}"),
        }
    }
}

/// Everything a storing task needs.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) pipeline: Pipeline,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) dedup: SpanDedup,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cancel: CancellationToken,
    pub(crate) max_message_size: usize,
}

pub(crate) fn signal_of(signal: KafkaSignal) -> Signal {
    match signal {
        KafkaSignal::Traces => Signal::Traces,
        KafkaSignal::Metrics => Signal::Metrics,
        KafkaSignal::Logs => Signal::Logs,
    }
}

/// Decodes one message as its topic says.
fn decode(
    signal: Signal,
    encoding: KafkaEncoding,
    payload: &Bytes,
    max_size: usize,
) -> Result<DecodedRequest, String> {
    if payload.len() > max_size {
        return Err(format!(
            "message of {} bytes exceeds kafka.max_message_size ({max_size} bytes)",
            payload.len()
        ));
    }
    let encoding = match encoding {
        KafkaEncoding::OtlpProto => Encoding::Protobuf,
        KafkaEncoding::OtlpJson => Encoding::Json,
        KafkaEncoding::JsonLines => {
            return json_lines::decode(payload)
                .map(|request| LogsRequest::from_proto(&request))
                .map(DecodedRequest::Logs)
                .map_err(|e| format!("cannot decode a JSON-lines log message: {e}"));
        }
    };
    DecodedRequest::decode(signal, encoding, payload.clone())
        .and_then(|request| request.checked(signal))
        .map_err(|e| e.client_message())
}

/// Concatenates decoded requests of one signal.
fn merge(requests: Vec<DecodedRequest>) -> Option<DecodedRequest> {
    let first = requests.first()?;
    Some(match first {
        DecodedRequest::Traces(_) => DecodedRequest::Traces(TraceRequest::concat(
            requests.into_iter().filter_map(|r| match r {
                DecodedRequest::Traces(r) => Some(r),
                _ => None,
            }),
        )),
        DecodedRequest::Logs(_) => DecodedRequest::Logs(LogsRequest::concat(
            requests.into_iter().filter_map(|r| match r {
                DecodedRequest::Logs(r) => Some(r),
                _ => None,
            }),
        )),
        DecodedRequest::Metrics(_) => {
            let mut merged = ExportMetricsServiceRequest::default();
            for request in requests {
                // One chunk holds one topic, so one signal.
                if let DecodedRequest::Metrics(r) = request {
                    merged.resource_metrics.extend(r.resource_metrics);
                }
            }
            DecodedRequest::Metrics(merged)
        }
    })
}

fn is_empty(request: &DecodedRequest) -> bool {
    match request {
        DecodedRequest::Traces(request) => request.record_count() == 0,
        DecodedRequest::Logs(request) => request.record_count() == 0,
        DecodedRequest::Metrics(ExportMetricsServiceRequest { resource_metrics }) => {
            resource_metrics.is_empty()
        }
    }
}

impl Worker {
    /// Stores (or dead-letters) every message of `chunk`, then reports
    /// each as finished.
    pub(crate) async fn process(self: Arc<Self>, chunk: Chunk) {
        let route = &self.shared.routes[chunk.route].config;
        let (signal, encoding) = (signal_of(route.signal), route.encoding);
        let max_size = self.max_message_size;
        let messages = chunk.messages;
        let decoded = tokio::task::spawn_blocking(move || {
            let mut good = Vec::with_capacity(messages.len());
            let mut requests = Vec::with_capacity(messages.len());
            let mut poison = Vec::new();
            for message in messages {
                let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    decode(signal, encoding, &message.payload, max_size)
                }))
                .unwrap_or_else(|_| Err("internal error: the decoder panicked".to_owned()));
                match decoded {
                    Ok(request) => {
                        requests.push(request);
                        good.push(message);
                    }
                    Err(reason) => poison.push((message, reason)),
                }
            }
            (good, merge(requests), poison)
        })
        .await;
        let (good, request, poison) = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                // Only when the runtime shuts down: the messages are
                // delivered again after a restart.
                tracing::warn!(%error, "a Kafka decoding worker stopped");
                return;
            }
        };
        for (message, reason) in poison {
            self.dead_letter(message, &reason).await;
        }
        if good.is_empty() {
            return;
        }
        let finish = match request {
            Some(request) if !is_empty(&request) => self.store(signal, request, chunk.bytes).await,
            _ => Ok(Finish::Stored),
        };
        match finish {
            Ok(finish) => self.shared.finish(&good, finish),
            Err(Refusal::TooLarge(_)) if good.len() > 1 => {
                // The batch of the whole chunk can never fit under the
                // store's memory limit: store the messages one by one.
                for message in good {
                    let payload = message.payload.clone();
                    let request = decode(signal, encoding, &payload, max_size);
                    let finish = match request {
                        Ok(request) => self.store(signal, request, payload.len()).await,
                        Err(reason) => Err(Refusal::Convert(reason)),
                    };
                    match finish {
                        Ok(finish) => self.shared.finish(std::slice::from_ref(&message), finish),
                        Err(refusal) => self.dead_letter(message, &refusal.reason()).await,
                    }
                }
            }
            Err(refusal) => {
                let reason = refusal.reason();
                for message in good {
                    self.dead_letter(message, &reason).await;
                }
            }
        }
    }

    async fn dead_letter(&self, message: KafkaMessage, reason: &str) {
        let route = &self.shared.routes[message.route].config;
        tracing::warn!(
            topic = %message.topic, partition = message.partition, offset = message.offset,
            dead_letter_topic = %self.dead_letters_topic(), %reason,
            "Kafka message cannot be stored; sending it to the dead-letter topic"
        );
        let finish = match self
            .dead_letters
            .send(&message, route, reason, &self.cancel)
            .await
        {
            Delivered::Yes => {
                SourceCounters::add(&self.shared.counters.dead_letters, 1);
                Finish::DeadLettered
            }
            Delivered::Refused => {
                SourceCounters::add(&self.shared.counters.dead_letters_refused, 1);
                Finish::DeadLettered
            }
            Delivered::Cancelled => Finish::Abandoned,
        };
        self.shared.finish(std::slice::from_ref(&message), finish);
    }

    fn dead_letters_topic(&self) -> &str {
        self.dead_letters.topic()
    }

    /// Labels, converts and appends `request`, waiting out back-pressure.
    /// An error is a reason to dead-letter the messages (our bug in the
    /// conversion); shutdown abandons them.
    async fn store(
        &self,
        signal: Signal,
        request: DecodedRequest,
        bytes: usize,
    ) -> Result<Finish, Refusal> {
        let pipeline = &self.pipeline;
        let converted = pipeline
            .labeling()
            .label_and_convert(bytes, pipeline.mining().clone(), move || Ok(request))
            .await;
        let mut converted = match converted {
            Ok(converted) => converted,
            Err(error) => {
                tracing::error!(error = %error.client_message(), "converting Kafka messages failed");
                return Err(Refusal::Convert(error.client_message()));
            }
        };
        let counters = &self.shared.counters;
        if converted.rejected > 0 {
            SourceCounters::add(&counters.rejected_records, converted.rejected as u64);
            tracing::warn!(
                %signal, rejected = converted.rejected, reasons = %converted.error_message(),
                "Kafka records rejected"
            );
        }
        let sightings = std::mem::take(&mut converted.sightings);
        let claim = match signal {
            Signal::Traces => self.dedup.claim(converted.batch),
            _ => super::span_dedup::Claim::unfiltered(converted.batch),
        };
        if claim.duplicates > 0 {
            SourceCounters::add(&counters.duplicate_spans, claim.duplicates as u64);
            tracing::info!(
                duplicates = claim.duplicates,
                "spans delivered again were not stored twice"
            );
        }
        let rows = claim.batch.num_rows() as u64;
        let claim_size = claim.batch.get_array_memory_size();
        let mut wait = Duration::from_millis(20);
        let mut waiting = false;
        let stored = loop {
            let error = match pipeline.append(signal, claim.batch.clone()).await {
                Ok(()) => break true,
                Err(error) => error,
            };
            let retry_after = match &error {
                Error::Backpressure {
                    source: grayscope_store::Error::Backpressure { limit, .. },
                    ..
                } if claim.batch.get_array_memory_size() > limit / 2 => {
                    if waiting {
                        self.shared.set_backpressured(false);
                    }
                    self.dedup.release(claim);
                    return Err(Refusal::TooLarge(format!(
                        "its {signal} take {} bytes in memory, more than half the store's \
                         memory limit ({limit} bytes)",
                        claim_size
                    )));
                }
                Error::Backpressure { retry_after, .. } => {
                    if !waiting {
                        waiting = true;
                        self.shared.set_backpressured(true);
                    }
                    SourceCounters::add(&counters.backpressure_retries, 1);
                    *retry_after
                }
                other => {
                    tracing::error!(error = %other.client_message(), "storing Kafka records failed; retrying");
                    MAX_RETRY_WAIT
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait.min(retry_after)) => {}
                () = self.cancel.cancelled() => break false,
            }
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        };
        if waiting {
            self.shared.set_backpressured(false);
        }
        if !stored {
            self.dedup.release(claim);
            return Ok(Finish::Abandoned);
        }
        pipeline.labeling().publish(sightings);
        SourceCounters::add(&counters.records, rows);
        Ok(Finish::Stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_and_undecodable_messages_have_reasons() {
        let too_big = decode(
            Signal::Traces,
            KafkaEncoding::OtlpProto,
            &Bytes::from(vec![0; 2048]),
            1024,
        );
        assert!(too_big.unwrap_err().contains("max_message_size"));
        let garbage = decode(
            Signal::Traces,
            KafkaEncoding::OtlpProto,
            &Bytes::from_static(b"\xff\xff\xff"),
            1024,
        );
        assert!(garbage.unwrap_err().contains("cannot decode traces"));
        let json = decode(
            Signal::Metrics,
            KafkaEncoding::OtlpJson,
            &Bytes::from_static(b"{not json"),
            1024,
        );
        assert!(json.unwrap_err().contains("OTLP JSON"));
        let lines = decode(
            Signal::Logs,
            KafkaEncoding::JsonLines,
            &Bytes::from_static(b"[]"),
            1024,
        );
        assert!(lines.unwrap_err().contains("JSON-lines"));
    }

    #[test]
    fn an_empty_protobuf_message_is_an_empty_request() {
        let request = decode(
            Signal::Traces,
            KafkaEncoding::OtlpProto,
            &Bytes::new(),
            1024,
        )
        .unwrap();
        assert!(is_empty(&request));
    }
}
