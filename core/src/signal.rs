//! The signal document: what grayscope tells a router (and a human) when a
//! canary's verdict, stage or status changes. One JSON shape for every
//! way a signal leaves grayscope.
//!
//! ```json
//! {
//!   "id": "checkout-v2/canary/7",
//!   "rollout": "checkout-v2", "cohort": "canary", "baseline": "baseline",
//!   "sequence": 7, "time": "2026-11-26T16:40:05.120Z",
//!   "stage": "read_split", "status": "rolled_back",
//!   "verdict": "rollback", "action": "rollback", "score": 50.0,
//!   "reasons": ["the canary is worse than the baseline (score 50, 2 failing)", "…"],
//!   "window": { "start": "…", "end": "…" },
//!   "failing": [ { "check": "latency", "level": "L1", "outcome": "high",
//!                  "reason": "…", "evidence": [ { "kind": "slow_request", "summary": "…", "trace_id": "…" } ] } ]
//! }
//! ```
//!
//! `id` is `<rollout>/<cohort>/<sequence>`: the same change always has the
//! same id, so a receiver can drop redeliveries; `sequence` grows by one
//! per change of that canary, so a receiver can order them and see gaps.

use serde::{Deserialize, Serialize};

use crate::verdict::{Action, Evidence, Judgement, Level, Outcome, Verdict};

/// A change of a canary, as routers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// `<rollout>/<cohort>/<sequence>`: unique and stable per change.
    pub id: String,
    /// The rollout.
    pub rollout: String,
    /// The canary cohort.
    pub cohort: String,
    /// The cohort it is compared with.
    pub baseline: String,
    /// Per canary, +1 on every change.
    pub sequence: u64,
    /// When the change happened (RFC 3339, UTC).
    pub time: String,
    /// The stage the canary is in after the change.
    pub stage: String,
    /// The canary's status after the change (`running`, `paused`,
    /// `frozen`, `completed`, `rolled_back`).
    pub status: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What the router should do.
    pub action: Action,
    /// The roll-up score, 0–100.
    pub score: f64,
    /// Why, most important first.
    pub reasons: Vec<String>,
    /// The window the judgement covered.
    pub window: SignalWindow,
    /// The checks that count against the canary, with their evidence.
    pub failing: Vec<FailingCheck>,
}

/// The window a judgement covered (RFC 3339, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalWindow {
    /// First instant in the window.
    pub start: String,
    /// First instant after it.
    pub end: String,
}

/// A failing check, as a signal carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailingCheck {
    /// The check's name (`latency`, `templates`, `kernel:tcp.retransmits`).
    pub check: String,
    /// Its level.
    pub level: Level,
    /// Its outcome.
    pub outcome: Outcome,
    /// In words, with the figures of both cohorts.
    pub reason: String,
    /// Example requests, lines or templates.
    pub evidence: Vec<Evidence>,
}

impl Signal {
    /// The signal for a change: `judgement` after the stage machine,
    /// `status` and `sequence` of the canary, at `time_ns` (nanoseconds
    /// since the epoch).
    pub fn new(judgement: &Judgement, status: &str, sequence: u64, time_ns: i64) -> Signal {
        Signal {
            id: format!("{}/{}/{}", judgement.rollout, judgement.cohort, sequence),
            rollout: judgement.rollout.clone(),
            cohort: judgement.cohort.clone(),
            baseline: judgement.baseline.clone(),
            sequence,
            time: rfc3339(time_ns),
            stage: judgement.stage.clone(),
            status: status.to_owned(),
            verdict: judgement.verdict,
            action: judgement.action,
            score: judgement.score,
            reasons: judgement.reasons.clone(),
            window: SignalWindow {
                start: rfc3339(judgement.window_start),
                end: rfc3339(judgement.window_end),
            },
            failing: judgement
                .checks
                .iter()
                .filter(|c| c.outcome.fails(c.direction))
                .map(|c| FailingCheck {
                    check: c.name.clone(),
                    level: c.level,
                    outcome: c.outcome,
                    reason: c.reason.clone(),
                    evidence: c.evidence.clone(),
                })
                .collect(),
        }
    }
}

/// Where signals become durable before the state that produced them is
/// saved, so that a change is never lost between the judge and a router
/// (the sinks' outbox implements it).
pub trait SignalLog: Send + Sync + std::fmt::Debug {
    /// Appends `signals`, in order, and makes them durable before returning.
    fn append(&self, signals: &[Signal]) -> std::io::Result<()>;
    /// The highest sequence appended for a canary, so that a restart after
    /// an append whose state was never saved does not reuse an id.
    fn last_sequence(&self, rollout: &str, cohort: &str) -> Option<u64>;
}

/// Nanoseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{CheckResult, CohortFigures, Direction};

    fn check(name: &str, outcome: Outcome, evidence: Vec<Evidence>) -> CheckResult {
        CheckResult {
            name: name.into(),
            level: Level::L1,
            direction: Direction::HigherIsWorse,
            critical: true,
            outcome,
            test: "mann_whitney_u".into(),
            statistic: None,
            p_value: None,
            effect: None,
            interval: None,
            baseline: CohortFigures::default(),
            canary: CohortFigures::default(),
            reason: String::new(),
            sql: Vec::new(),
            evidence,
        }
    }

    #[test]
    fn a_signal_carries_the_failing_checks_and_a_stable_id() {
        let slow = Evidence {
            kind: "slow_request".into(),
            summary: "GET /api/cart 412 ms".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
        };
        let failing = check("latency", Outcome::High, vec![slow]);
        let passing = check("error_rate", Outcome::Pass, Vec::new());
        let judgement = Judgement {
            rollout: "checkout-v2".into(),
            cohort: "canary".into(),
            baseline: "baseline".into(),
            stage: "shadow".into(),
            verdict: Verdict::Rollback,
            action: Action::Rollback,
            score: 50.0,
            reasons: vec!["the canary is worse".into()],
            checks: vec![failing, passing],
            window_start: 1_764_172_800_000_000_000,
            window_end: 1_764_172_860_000_000_000,
        };
        let signal = Signal::new(&judgement, "rolled_back", 7, 1_764_172_860_120_000_000);
        assert_eq!(signal.id, "checkout-v2/canary/7");
        assert_eq!(signal.time, "2025-11-26T16:01:00.120Z");
        assert_eq!(signal.window.start, "2025-11-26T16:00:00.000Z");
        assert_eq!(signal.failing.len(), 1);
        assert_eq!(signal.failing[0].check, "latency");
        let json = serde_json::to_value(&signal).unwrap();
        assert_eq!(json["verdict"], "rollback");
        assert_eq!(json["failing"][0]["outcome"], "high");
        assert_eq!(json["failing"][0]["level"], "L1");
    }
}
