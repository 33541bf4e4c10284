//! What the judge concludes, and why: check outcomes, verdicts, actions.
//!
//! One evaluation of one canary cohort of a rollout produces a
//! [`Judgement`]: every check's [`CheckResult`] (outcome, statistic,
//! numbers of both cohorts, the SQL it ran, evidence) rolled up into a
//! [`Verdict`] with an [`Action`] for the router. These types are shared by
//! the judge (which makes them), the `verdicts` table, the HTTP API and the
//! signals sent to routers, so they serialise to stable JSON.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The three levels of evidence (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Application: request rate, errors, latency.
    L1,
    /// Logs: new or growing templates, rule hits, error severities.
    L2,
    /// Kernel: metrics from eBPF agents.
    L3,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
        })
    }
}

/// The outcome of one check, Kayenta-style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No difference that matters between canary and baseline, and both
    /// within their absolute limits.
    Pass,
    /// The canary is higher than the baseline (or over a limit), by more
    /// than the effect floor, with statistical confidence.
    High,
    /// The canary is lower than the baseline, likewise.
    Low,
    /// Too little data to judge: fewer samples than the check's minimum.
    /// Never counted as a pass.
    NoData,
}

impl Outcome {
    /// Whether the outcome counts against the canary for a check whose
    /// worse direction is `direction`.
    pub fn fails(self, direction: Direction) -> bool {
        matches!(
            (self, direction),
            (Outcome::High, Direction::HigherIsWorse | Direction::Either)
                | (Outcome::Low, Direction::LowerIsWorse | Direction::Either)
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::High => "high",
            Outcome::Low => "low",
            Outcome::NoData => "nodata",
        })
    }
}

/// Which way a change is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More is worse (latency, errors, retransmits).
    #[default]
    HigherIsWorse,
    /// Less is worse (throughput, cache hit ratio).
    LowerIsWorse,
    /// Any significant change is suspect.
    Either,
}

/// The decision for a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The canary is as good as the baseline: move on to the next stage.
    Promote,
    /// Keep the current stage: not enough data or evidence yet, or everyone
    /// is degraded, or an operator paused or froze the rollout.
    Hold,
    /// The canary is worse than the baseline: send its traffic back.
    Rollback,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Promote => "promote",
            Verdict::Hold => "hold",
            Verdict::Rollback => "rollback",
        })
    }
}

/// What the router (or an operator) should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Send the canary more traffic: the next stage.
    Promote,
    /// Change nothing.
    Hold,
    /// Send the canary's traffic back to the baseline.
    Rollback,
    /// Everyone's application level is degraded: add capacity.
    ScaleOut,
    /// Everyone logs new failures: switch to the degraded path.
    DegradedPath,
    /// Everyone's kernel metrics are degraded: rate-limit.
    RateLimit,
}

impl Action {
    /// The remediation that fits a fleet-wide degradation at `level`.
    pub fn remediation(level: Level) -> Action {
        match level {
            Level::L1 => Action::ScaleOut,
            Level::L2 => Action::DegradedPath,
            Level::L3 => Action::RateLimit,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Promote => "promote",
            Action::Hold => "hold",
            Action::Rollback => "rollback",
            Action::ScaleOut => "scale_out",
            Action::DegradedPath => "degraded_path",
            Action::RateLimit => "rate_limit",
        })
    }
}

/// A cohort's figures for one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CohortFigures {
    /// The cohort.
    pub cohort: String,
    /// Samples (requests, log lines, metric points) the check saw.
    pub samples: u64,
    /// The check's headline value for the cohort (error rate, median
    /// latency in ms, template rate per 1000 lines, …).
    pub value: Option<f64>,
    /// Other named figures (p50, p90, p99, counts, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(String, f64)>,
}

/// Evidence a human can follow up: a request, a log line, a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What this is (`slow_request`, `failed_request`, `log_line`, `template`).
    pub kind: String,
    /// A one-line description.
    pub summary: String,
    /// The trace to open, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name (`latency`, `error_rate`, `new_templates`, …).
    pub name: String,
    /// Its level.
    pub level: Level,
    /// Which way is worse for it.
    pub direction: Direction,
    /// Whether failing it alone rolls back.
    pub critical: bool,
    /// The outcome.
    pub outcome: Outcome,
    /// Name of the statistical test used (`mann_whitney_u`, `fisher_exact`, …).
    pub test: String,
    /// The test statistic.
    pub statistic: Option<f64>,
    /// The p-value, after correction for the number of checks.
    pub p_value: Option<f64>,
    /// The effect: relative shift, rate ratio or difference, as the test
    /// defines it.
    pub effect: Option<f64>,
    /// Confidence interval of the effect.
    pub interval: Option<(f64, f64)>,
    /// The baseline's figures.
    pub baseline: CohortFigures,
    /// The canary's figures.
    pub canary: CohortFigures,
    /// Why the outcome is what it is, in words.
    pub reason: String,
    /// The SQL the check ran, to re-run it.
    pub sql: Vec<String>,
    /// Examples to look at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// One evaluation of one canary cohort of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The rollout.
    pub rollout: String,
    /// The canary cohort judged.
    pub cohort: String,
    /// The baseline it was compared with.
    pub baseline: String,
    /// The stage the rollout was in.
    pub stage: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What to do.
    pub action: Action,
    /// Weighted share of passing checks, 0–100.
    pub score: f64,
    /// The reasons for the verdict, most important first.
    pub reasons: Vec<String>,
    /// Every check's result.
    pub checks: Vec<CheckResult>,
    /// Start of the window judged, nanoseconds since the epoch.
    pub window_start: i64,
    /// End of the window judged (the judge's "now").
    pub window_end: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_fail_only_in_their_bad_direction() {
        assert!(Outcome::High.fails(Direction::HigherIsWorse));
        assert!(!Outcome::Low.fails(Direction::HigherIsWorse));
        assert!(Outcome::Low.fails(Direction::LowerIsWorse));
        assert!(Outcome::High.fails(Direction::Either));
        assert!(!Outcome::NoData.fails(Direction::Either));
        assert!(!Outcome::Pass.fails(Direction::Either));
    }

    #[test]
    fn names_serialise_as_documented() {
        assert_eq!(
            serde_json::to_string(&Outcome::NoData).unwrap(),
            "\"nodata\""
        );
        assert_eq!(
            serde_json::to_string(&Action::ScaleOut).unwrap(),
            "\"scale_out\""
        );
        assert_eq!(
            serde_json::to_string(&Verdict::Rollback).unwrap(),
            "\"rollback\""
        );
        assert_eq!(serde_json::to_string(&Level::L2).unwrap(), "\"L2\"");
        assert_eq!(Action::remediation(Level::L3), Action::RateLimit);
    }
}
