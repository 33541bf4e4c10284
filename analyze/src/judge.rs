//! The judge: one evaluation of one canary of a rollout — run the checks,
//! correct their p-values for their number (Holm), decide every outcome in
//! one place, and roll the outcomes up into an [`Evaluation`] with a score
//! and reasons.
//!
//! The roll-up, in order:
//! 1. a check *fails* when the canary breaks an absolute limit the baseline
//!    keeps, or when it moved the bad way significantly (corrected p below
//!    the rollout's alpha) by more than the check's floor;
//! 2. the evaluation fails when a critical check fails, or when the score
//!    (weighted share of checks with data that pass) is below
//!    `min_score` — the canary is worse than the baseline;
//! 3. otherwise, when the baseline itself is degraded at some level (over
//!    a limit, or worse than in the window before) — everyone is degraded —
//!    the evaluation says so, and the rollout holds with that level's
//!    remediation;
//! 4. otherwise, when a critical check had too little data, there is no
//!    verdict to give: no data (hold, never a silent pass);
//! 5. otherwise the canary passes.

use grayscope_core::config::RolloutConfig;
use grayscope_core::verdict::{Action, Direction, Judgement, Outcome, Verdict};
use grayscope_queries::QueryEngine;

use crate::checks::{self, Context, Finding};
use crate::error::{Error, Result};
use crate::slices::SliceCache;
use crate::sql::Window;
use crate::stage::Evaluation;
use crate::stats::multiple_testing::holm;
use crate::stats::{Alternative, Confidence, Movement};

/// The test alternative for a check's bad direction: one-sided where only
/// one way is bad (more power at the same false-alarm rate).
pub fn alternative(direction: Direction) -> Alternative {
    match direction {
        Direction::HigherIsWorse => Alternative::Greater,
        Direction::LowerIsWorse => Alternative::Less,
        Direction::Either => Alternative::TwoSided,
    }
}

/// Whether an effect is a material regression: its estimate is past
/// `floor` on the bad side, and its interval excludes no change.
pub fn beyond_floor(
    estimate: f64,
    (low, high): (f64, f64),
    floor: f64,
    direction: Direction,
) -> bool {
    let up = estimate >= floor && low > 0.0;
    let down = estimate <= -floor && high < 0.0;
    match direction {
        Direction::HigherIsWorse => up,
        Direction::LowerIsWorse => down,
        Direction::Either => up || down,
    }
}

/// The outcome of one evaluation, before the stage machine.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The judgement (its stage, verdict and action are provisional; the
    /// stage machine sets them).
    pub judgement: Judgement,
    /// What the evaluation concluded.
    pub evaluation: Evaluation,
}

/// Evaluates `canary` of `rollout` over the window ending at `now`
/// (nanoseconds since the epoch), aggregating the whole window afresh.
pub async fn assess(
    engine: &QueryEngine,
    rollout: &RolloutConfig,
    canary: &str,
    now: i64,
) -> Result<Assessment> {
    assess_with(engine, rollout, canary, now, &SliceCache::new()).await
}

/// [`assess`], reusing the interval slices that earlier evaluations of the
/// rollout kept in `slices` and keeping this one's: each evaluation then
/// reads only the newest rows of its window (see `slices.rs`).
pub async fn assess_with(
    engine: &QueryEngine,
    rollout: &RolloutConfig,
    canary: &str,
    now: i64,
    slices: &SliceCache,
) -> Result<Assessment> {
    let window = Window::ending_at(now, rollout.window.get().as_nanos() as i64);
    let confidence =
        Confidence::new(1.0 - rollout.alpha).map_err(|e| Error::Internal(e.to_string()))?;
    let cx = Context {
        engine,
        rollout,
        canary,
        window,
        confidence,
        answers: Default::default(),
        slices,
    };
    let mut findings = checks::run_all(&cx).await?;
    decide(rollout, &mut findings);
    let (evaluation, score, reasons) = roll_up(rollout, &findings);
    let judgement = Judgement {
        rollout: rollout.name.clone(),
        cohort: canary.to_owned(),
        baseline: rollout.baseline.clone(),
        stage: String::new(),
        verdict: Verdict::Hold,
        action: Action::Hold,
        score,
        reasons,
        checks: findings.into_iter().map(|f| f.result).collect(),
        window_start: window.start,
        window_end: window.end,
    };
    Ok(Assessment {
        judgement,
        evaluation,
    })
}

/// Corrects p-values across checks and sets every outcome.
fn decide(rollout: &RolloutConfig, findings: &mut [Finding]) {
    let tested: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].p_value.is_some())
        .collect();
    let raw: Vec<f64> = tested
        .iter()
        .map(|&i| findings[i].p_value.unwrap_or(1.0))
        .collect();
    let adjusted = holm(&raw);
    for (slot, &i) in tested.iter().enumerate() {
        findings[i].result.p_value = Some(adjusted[slot]);
    }
    for finding in findings.iter_mut() {
        let result = &mut finding.result;
        if finding.nodata {
            result.outcome = Outcome::NoData;
            continue;
        }
        let significant = result.p_value.is_some_and(|p| p < rollout.alpha);
        let moved = |movement: Movement| match movement {
            Movement::Higher => Outcome::High,
            Movement::Lower => Outcome::Low,
            Movement::Unchanged => Outcome::Pass,
        };
        result.outcome = if finding.canary_over_limit && !finding.baseline_degraded {
            // Over a limit the baseline keeps: the canary's doing.
            Outcome::High
        } else if significant && finding.material {
            moved(finding.movement)
        } else {
            Outcome::Pass
        };
        if result.outcome != Outcome::Pass && !result.outcome.fails(result.direction) {
            // Significant, but in the harmless direction (faster, fewer errors).
            result.reason.push_str("; the change is an improvement");
        }
    }
}

/// The evaluation, the score and the reasons.
fn roll_up(rollout: &RolloutConfig, findings: &[Finding]) -> (Evaluation, f64, Vec<String>) {
    let mut total = 0.0;
    let mut passing = 0.0;
    for f in findings {
        if f.result.outcome == Outcome::NoData {
            continue;
        }
        let weight = checks::weight(rollout, &f.result.name);
        total += weight;
        if !f.result.outcome.fails(f.result.direction) {
            passing += weight;
        }
    }
    let score = if total > 0.0 {
        100.0 * passing / total
    } else {
        0.0
    };
    let describe = |f: &Finding| {
        format!(
            "{} {} ({}): {}",
            f.result.level, f.result.name, f.result.outcome, f.result.reason
        )
    };

    let failing: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.result.outcome.fails(f.result.direction))
        .collect();
    let critical_failure = failing.iter().any(|f| f.result.critical);
    if !failing.is_empty() && (critical_failure || score < rollout.min_score) {
        let mut reasons: Vec<String> = failing.iter().map(|f| describe(f)).collect();
        reasons.insert(
            0,
            format!(
                "the canary is worse than the baseline (score {score:.0}, {} failing)",
                failing.len()
            ),
        );
        return (Evaluation::Fail, score, reasons);
    }
    if let Some(degraded) = findings.iter().find(|f| f.baseline_degraded) {
        let level = degraded.result.level;
        let reasons = vec![
            format!("everyone is degraded at {level}, not only the canary: hold and remediate"),
            describe(degraded),
        ];
        return (Evaluation::Degraded(level), score, reasons);
    }
    let missing: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.result.outcome == Outcome::NoData && f.result.critical)
        .collect();
    if !missing.is_empty() || total == 0.0 {
        let mut reasons = vec!["not enough data to judge".to_owned()];
        reasons.extend(missing.iter().map(|f| describe(f)));
        return (Evaluation::NoData, score, reasons);
    }
    let mut reasons = vec![format!(
        "the canary is as good as the baseline (score {score:.0}, {} checks with data)",
        findings
            .iter()
            .filter(|f| f.result.outcome != Outcome::NoData)
            .count()
    )];
    reasons.extend(
        failing
            .iter()
            .map(|f| format!("below the bar: {}", describe(f))),
    );
    (Evaluation::Pass, score, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_need_the_estimate_past_them_and_the_interval_off_zero() {
        assert!(beyond_floor(5.0, (1.0, 9.0), 4.0, Direction::HigherIsWorse));
        assert!(!beyond_floor(
            3.0,
            (1.0, 9.0),
            4.0,
            Direction::HigherIsWorse
        ));
        assert!(!beyond_floor(
            5.0,
            (-1.0, 9.0),
            4.0,
            Direction::HigherIsWorse
        ));
        assert!(beyond_floor(
            -5.0,
            (-9.0, -1.0),
            4.0,
            Direction::LowerIsWorse
        ));
        assert!(!beyond_floor(
            -5.0,
            (-9.0, -1.0),
            4.0,
            Direction::HigherIsWorse
        ));
        assert!(beyond_floor(-5.0, (-9.0, -1.0), 4.0, Direction::Either));
    }

    #[test]
    fn directions_map_to_one_sided_alternatives() {
        assert_eq!(alternative(Direction::HigherIsWorse), Alternative::Greater);
        assert_eq!(alternative(Direction::LowerIsWorse), Alternative::Less);
        assert_eq!(alternative(Direction::Either), Alternative::TwoSided);
    }
}
