//! Cohort labelling: which cohort a record belongs to, decided once.
//!
//! The order is DESIGN §3's: the trace id's gray flag first, otherwise
//! `baseline`. (Routing rules over attributes will slot in between.)

use grayscope_core::cohort;

/// Decides the cohort of each record at ingest.
#[derive(Debug, Clone, Default)]
pub struct Labeler {}

impl Labeler {
    /// A labeler that uses the gray flag only.
    pub fn new() -> Labeler {
        Labeler {}
    }

    /// The cohort of a record carrying `trace_id` (binary; empty if none).
    pub fn cohort(&self, trace_id: &[u8]) -> &str {
        cohort::from_trace_id(trace_id)
    }
}
