//! Cohorts: the groups of traffic a rollout compares.
//!
//! A record's cohort is decided once, at ingest: first the trace id's
//! [gray flag](crate::gray_flag), otherwise [`BASELINE`]. (Routing rules over
//! attributes slot in between the two.)

use crate::gray_flag::GrayFlag;

/// The cohort of everything not routed elsewhere.
pub const BASELINE: &str = "baseline";
/// The cohort of requests whose trace id carries the canary flag.
pub const CANARY: &str = "canary";
/// The cohort of requests whose trace id carries the staging flag.
pub const STAGING: &str = "staging";

/// The cohort of a record from its (binary) trace id alone.
pub fn from_trace_id(trace_id: &[u8]) -> &'static str {
    GrayFlag::from_trace_id(trace_id)
        .cohort()
        .unwrap_or(BASELINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflagged_and_unknown_flags_are_baseline() {
        assert_eq!(from_trace_id(&[0x11; 16]), BASELINE);
        assert_eq!(from_trace_id(&[]), BASELINE);
        let mut id = [0x11; 16];
        id[14..].copy_from_slice(&[0, 2]);
        assert_eq!(from_trace_id(&id), CANARY);
        id[14..].copy_from_slice(&[0, 1]);
        assert_eq!(from_trace_id(&id), STAGING);
    }
}
