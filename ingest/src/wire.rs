//! Trace and log export requests read in place, from their protobuf bytes.
//!
//! Decoding a request into prost's structs gives every attribute key,
//! string value, id and name an owned allocation of its own, freed again
//! once the batch is built: about 25 allocations per span, a third of the
//! server's CPU under load. The converters only ever copy those strings
//! into Arrow builders, so here they are borrowed from the request body
//! instead:
//!
//! - [`Request`] ([`TraceRequest`], [`LogsRequest`]) owns the body (a
//!   `Bytes`). [`Request::decode`] checks all of it: structure, wire types,
//!   UTF-8 of every string, nested values; a request that fails is
//!   rejected whole, as prost would reject it. [`Request::read`] defers
//!   the check to the converter, which reads every field checked anyway
//!   (record attributes as `RawKeyValue`s, whose text their Arrow column
//!   checks at once when it is finished).
//! - Their records ([`Span`], [`LogRecord`], …) are parsed from the body on
//!   each visit, as small structs of borrowed slices; repeated fields
//!   ([`Repeated`]) are walked lazily, over the stretch of the message
//!   where they were seen.
//! - [`Value`] is an attribute value as the converters need it: strings
//!   and bytes borrowed, arrays and key-value lists left encoded until they
//!   are rendered (rare), then decoded with prost.
//!
//! OTLP JSON (and requests built in memory) is decoded with prost and
//! re-encoded ([`TraceRequest::from_proto`]), so every signal path converts
//! from the same representation. Metrics keep prost's structs; their
//! attributes reach the shared code as [`Attributes::Proto`].

mod fields;
mod logs;
mod request;
mod traces;
mod value;

pub(crate) use fields::At;
pub use fields::WireError;
pub use logs::{LogRecord, LogRecordLabel, ResourceLogs, ScopeLogs};
pub use request::{Kind, Logs, LogsRequest, Request, TraceRequest, Traces};
pub use traces::{Event, Link, ResourceSpans, ScopeSpans, Span, Status};
pub use value::{
    Attributes, AttributesIter, KeyValue, Message, Nested, Repeated, Resource, Scope, Value,
};
pub(crate) use value::{RawKeyValue, RawValue};

#[cfg(test)]
mod tests;
