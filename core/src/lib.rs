//! The shared vocabulary of grayscope: everything two crates must agree on.
//!
//! - [`schema`]: the Arrow schema of every table (`spans`, `logs`, `metrics`),
//!   defined once; ingest builds batches in exactly this shape and the store
//!   and SQL layers read them back.
//! - [`gray_flag`]: the trace-id gray flag codec. A router that colours a
//!   request writes the environment into the last two bytes of its trace id;
//!   [`GrayFlag::from_trace_id`] reads it back.
//! - [`cohort`]: cohort names and the decision of a record's cohort.
//! - [`rule`]: the cohort routing rule language — [`rule::Rule::parse`] with
//!   line/column errors, a public syntax tree, and a fast row evaluator over
//!   attribute maps ([`rule::Rule::evaluate`]).
//! - [`verdict`]: what the judge concludes — check outcomes, verdicts,
//!   actions — shared by the judge, the API and the signals.
//! - [`auth`]: bearer tokens and roles, checked the same way by every
//!   listener.
//! - [`config`]: the TOML configuration, one `*Config` struct per component,
//!   every field documented and defaulted, unknown fields rejected.
//!
//! ```
//! use grayscope_core::{GrayFlag, cohort};
//!
//! let mut trace_id = [0x5a_u8; 16];
//! trace_id[14..].copy_from_slice(&[0x00, 0x02]);
//! assert_eq!(GrayFlag::from_trace_id(&trace_id), GrayFlag::CANARY);
//! assert_eq!(GrayFlag::CANARY.cohort(), Some(cohort::CANARY));
//! ```
//!
//! This crate depends on no other crate of ours.

pub mod auth;
pub mod cohort;
pub mod config;
pub mod error;
pub mod gray_flag;
pub mod rule;
pub mod schema;
pub mod signal;
pub mod verdict;

pub use config::Config;
pub use error::{Error, Result};
pub use gray_flag::GrayFlag;
pub use schema::Table;
