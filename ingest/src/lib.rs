//! grayscope's receivers: OTLP telemetry in, labelled Arrow batches out.
//!
//! ```text
//! OTLP/gRPC ─┐
//!            ├─► Pipeline::export ─► decode ─► convert + label ─► Store::append
//! OTLP/HTTP ─┘   (bytes, encoding)   (wire /    (one batch per
//!                                     JSON)       request)
//! ```
//!
//! - [`otlp_grpc::routes`] and [`otlp_http::router`] are the transports;
//!   both hand the raw body to the same [`Pipeline`].
//! - [`wire`] reads protobuf spans and log records in place, borrowing
//!   every string from the request body; OTLP JSON and metrics are decoded
//!   with prost.
//! - [`convert`] turns a decoded request into a batch in the table's schema
//!   (`grayscope_core::schema`), rejecting malformed records one by one.
//! - [`LogMining`] gives each log record its template (`template_id`,
//!   `template`) and the `[[log_rules]]` it matches (`rules`), with the
//!   `patterns` crate's miner; the same [`LogMining::mine`] serves
//!   `grayscope mine`.
//! - [`Labeler`] decides each record's cohort (gray flag, then the
//!   `[[cohorts]]` rules, then `baseline`); [`Labeling`] holds the one in
//!   use, swaps it on reload, and joins log records and exemplars to their
//!   trace's cohort.
//!
//! The whole request is rejected (nothing stored) when it does not decode;
//! individual records are rejected (the rest stored) when they are
//! malformed, and the client learns both through OTLP's status codes and
//! `partial_success`.

pub mod convert;
mod decode;
mod error;
mod join;
pub mod kafka;
pub mod label;
mod logged_source;
pub mod mining;
pub mod otlp_grpc;
pub mod otlp_http;
mod pipeline;
mod response;
mod signal;
pub mod wire;

pub use decode::Encoding;
pub use error::{Error, Result};
pub use join::JoinStats;
pub use label::{Labeler, Labeling};
pub use logged_source::SourceRebuild;
pub use mining::{LogMining, LogMiningBuilder};
pub use pipeline::{ExportOutcome, Pipeline, decode_and_convert};
pub use response::RpcStatus;
pub use signal::Signal;
