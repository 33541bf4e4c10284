//! Simulated telemetry for verifying the judge: a service whose traffic is
//! split between a baseline and a canary cohort, each with its latency,
//! errors, logs and kernel metrics, and faults that start at a given time.
//!
//! - [`Scenario`] is what a scenario file (`scenarios/*.toml`) says.
//! - [`Generator`] turns a scenario into OTLP export requests, one slice of
//!   time after another, deterministically from a seed: the same scenario
//!   gives the same telemetry. The requests carry trace ids with the gray
//!   flag of their cohort, as a router that colours requests writes them,
//!   and resources with the cohort's `service.version`.
//!
//! The generator only builds requests; `grayscope sim` sends them through
//! the real OTLP path (in real time) or through the ingest pipeline in
//! simulated time (the scenario suite).

mod error;
mod generator;
mod random;
mod scenario;

pub use error::{Error, Result};
pub use generator::{Generator, Slice};
pub use scenario::{
    CohortProfile, Expectation, Fault, FaultTarget, LatencyProfile, LogTemplate, Scenario,
};
