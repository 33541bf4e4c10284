//! An export request of either signal: its body, and how to read it.

use std::fmt;
use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::fields::{Stretch, WireError};
use super::logs::ResourceLogs;
use super::traces::ResourceSpans;
use super::value::{Message, Repeated};

/// What tells one signal's requests from another's.
pub trait Kind {
    /// The request's repeated top-level message (field 1): a resource and
    /// its records.
    type Resource<'a>: Message<'a> + 'a;
    /// prost's struct of the whole request.
    type Proto: prost::Message;
    /// How many records a resource holds, counted without reading them.
    fn records(resource: &Self::Resource<'_>) -> usize;
}

/// Spans: `ExportTraceServiceRequest`.
#[derive(Debug, Clone, Copy)]
pub struct Traces;

impl Kind for Traces {
    type Resource<'a> = ResourceSpans<'a>;
    type Proto = ExportTraceServiceRequest;

    fn records(resource: &ResourceSpans<'_>) -> usize {
        resource
            .scope_spans
            .iter()
            .map(|s| s.spans.messages().count())
            .sum()
    }
}

/// Log records: `ExportLogsServiceRequest`.
#[derive(Debug, Clone, Copy)]
pub struct Logs;

impl Kind for Logs {
    type Resource<'a> = ResourceLogs<'a>;
    type Proto = ExportLogsServiceRequest;

    fn records(resource: &ResourceLogs<'_>) -> usize {
        resource
            .scope_logs
            .iter()
            .map(|s| s.log_records.messages().count())
            .sum()
    }
}

/// An export request read in place.
pub struct Request<K> {
    body: Bytes,
    records: usize,
    kind: PhantomData<fn() -> K>,
}

/// A trace export request read in place.
pub type TraceRequest = Request<Traces>;

/// A logs export request read in place.
pub type LogsRequest = Request<Logs>;

impl<K> Clone for Request<K> {
    fn clone(&self) -> Self {
        Request {
            body: self.body.clone(),
            records: self.records,
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for Request<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("bytes", &self.body.len())
            .field("records", &self.records)
            .finish()
    }
}

impl<K: Kind> Request<K> {
    /// Checks an encoded request whole: its structure, wire types, strings
    /// and nested values.
    pub fn decode(body: Bytes) -> Result<Self, WireError> {
        let request = Self::read(body);
        request.check()?;
        Ok(request)
    }

    /// An encoded request, not checked yet: reading it (the converter)
    /// meets any damage, and the request is refused then, before anything
    /// of it is stored. Cheaper than [`Request::decode`] by a whole pass.
    pub fn read(body: Bytes) -> Self {
        let records = top::<K>(&body).iter().map(|r| K::records(&r)).sum();
        Request {
            body,
            records,
            kind: PhantomData,
        }
    }

    /// Checks the whole request, as [`Request::decode`] does.
    pub fn check(&self) -> Result<(), WireError> {
        for resource in top::<K>(&self.body).try_iter() {
            resource?.validate()?;
        }
        Ok(())
    }

    /// The same request as prost's struct (OTLP JSON, JSON lines from
    /// Kafka, tests), re-encoded: prost writes well-formed protobuf and
    /// Rust strings are UTF-8, so there is nothing to check.
    pub fn from_proto(request: &K::Proto) -> Self {
        Self::read(prost::Message::encode_to_vec(request).into())
    }

    /// The requests as one: protobuf merges concatenated messages by
    /// appending their repeated fields.
    pub fn concat(requests: impl IntoIterator<Item = Self>) -> Self {
        let mut body = BytesMut::new();
        let mut records = 0;
        for request in requests {
            body.extend_from_slice(&request.body);
            records += request.records;
        }
        Request {
            body: body.freeze(),
            records,
            kind: PhantomData,
        }
    }

    /// The resources and their records.
    pub fn resources(&self) -> impl Iterator<Item = K::Resource<'_>> {
        top::<K>(&self.body).iter()
    }

    /// The same, with any damage met reading them.
    pub(crate) fn try_resources(&self) -> impl Iterator<Item = Result<K::Resource<'_>, WireError>> {
        top::<K>(&self.body).try_iter()
    }

    /// How many records (spans, log records) the request holds.
    pub fn record_count(&self) -> usize {
        self.records
    }
}

/// Field 1 of the request, over the whole body.
fn top<K: Kind>(body: &[u8]) -> Repeated<'_, K::Resource<'_>> {
    let mut stretch = Stretch::default();
    stretch.add(0, body.len());
    Repeated::new(body, stretch, 1)
}
