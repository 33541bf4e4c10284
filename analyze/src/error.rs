//! The error type of `grayscope-analyze`.
//!
//! The statistics return `Option`s or result structs for degenerate data (an
//! empty cohort, no events at all): those are facts about the data the judge
//! must report as "no data", not failures. [`Error`] is for arguments no
//! data could make valid — a count above its total, a negative exposure, a
//! confidence level of 1.5 — which are the caller's to fix.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the judge: an argument to a statistical function
/// that no data could make valid, or a failure to query, record or persist.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A confidence level outside (0, 1).
    #[error("confidence level {level} is not strictly between 0 and 1")]
    InvalidConfidence {
        /// What we were given.
        level: f64,
    },
    /// More events than trials in a proportion (`k` of `n`).
    #[error("{events} events out of {trials} trials")]
    EventsExceedTrials {
        /// Events counted.
        events: u64,
        /// Trials they were counted in.
        trials: u64,
    },
    /// An exposure (pod-hours, segments, log lines…) that is not a finite,
    /// positive number.
    #[error("exposure {exposure} is not a finite positive number")]
    InvalidExposure {
        /// What we were given.
        exposure: f64,
    },
    /// A quantile level outside [0, 1].
    #[error("quantile level {q} is not in [0, 1]")]
    InvalidQuantile {
        /// What we were given.
        q: f64,
    },
    /// A histogram whose shape is inconsistent (bounds not increasing, bucket
    /// counts not matching the bounds, a scale out of range…).
    #[error("invalid histogram: {reason}")]
    InvalidHistogram {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two histograms that cannot be compared bucket by bucket.
    #[error("histograms are not comparable: {reason}")]
    IncomparableHistograms {
        /// Why.
        reason: &'static str,
    },
    /// A check's SQL failed.
    #[error("the check query failed: {sql}")]
    Query {
        /// The statement.
        sql: String,
        /// The engine's error.
        source: grayscope_queries::Error,
    },
    /// Writing a judgement to the `verdicts` table failed.
    #[error("cannot record the judgement")]
    Store {
        /// The store's error.
        source: grayscope_store::Error,
    },
    /// The rollouts' state file could not be read or written.
    #[error("rollout state {}: {reason}", path.display())]
    State {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The signal outbox could not make a change durable.
    #[error("cannot append the signal to the outbox: {0}")]
    SignalLog(String),
    /// A rollout definition that is not valid.
    #[error("{0}")]
    InvalidRollout(String),
    /// A rollout of that name is already verified.
    #[error("a rollout named {0:?} exists already")]
    RolloutExists(String),
    /// No rollout of that name.
    #[error("no rollout named {0:?}")]
    NoSuchRollout(String),
    /// The rollout has no canary of that cohort.
    #[error("rollout {rollout:?} has no canary cohort {cohort:?}")]
    NoSuchCanary {
        /// The rollout.
        rollout: String,
        /// The cohort asked for.
        cohort: String,
    },
    /// An operator's command that the canary's state does not allow.
    #[error("{0}")]
    Refused(String),
    /// A bug on our side.
    #[error("internal error: {0}")]
    Internal(String),
}
