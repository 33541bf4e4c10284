//! The checks a rollout runs, L1 to L3. Each check runs its SQL, applies
//! its test, and returns a [`Finding`]; the judge then corrects p-values
//! for the number of checks and decides every outcome in one place
//! ([`crate::judge`]).

mod error_rate;
mod kernel;
mod latency;
mod log_rates;
mod request_rate;
mod templates;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use grayscope_core::config::RolloutConfig;
use grayscope_core::verdict::{CheckResult, CohortFigures, Direction, Evidence, Level, Outcome};
use grayscope_queries::{QueryEngine, QueryResult};
use tokio::sync::OnceCell;

use crate::error::Result;
use crate::slices::{self, Aggregate, SliceCache};
use crate::sql::Window;
use crate::stats::{Confidence, Movement};

/// What every check needs to know.
pub(crate) struct Context<'a> {
    pub engine: &'a QueryEngine,
    pub rollout: &'a RolloutConfig,
    pub canary: &'a str,
    /// The window judged.
    pub window: Window,
    /// The confidence of effect intervals (1 − the rollout's alpha).
    pub confidence: Confidence,
    /// Answers of this evaluation by SQL text: checks that need the same
    /// numbers (log lines per cohort, requests per cohort) share one query.
    pub answers: Mutex<HashMap<String, Arc<OnceCell<Arc<QueryResult>>>>>,
    /// The aggregates' final interval slices, kept across evaluations.
    pub slices: &'a SliceCache,
}

impl Context<'_> {
    /// Runs `sql` once per evaluation, however many checks ask.
    pub async fn query(&self, sql: &str) -> Result<Arc<QueryResult>> {
        let cell = {
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            answers.entry(sql.to_owned()).or_default().clone()
        };
        cell.get_or_try_init(|| async { crate::sql::run(self.engine, sql).await.map(Arc::new) })
            .await
            .cloned()
    }

    /// The answer of `aggregate` over `window`, from the slices earlier
    /// evaluations kept and one query over the rest (see [`slices`]); once
    /// per evaluation, however many checks ask.
    pub async fn aggregate(
        &self,
        aggregate: &Aggregate,
        window: Window,
    ) -> Result<Arc<QueryResult>> {
        let cell = {
            let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            let key = format!("aggregate {}", aggregate.sql(window));
            answers.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let parts = self.aggregate_parts(aggregate, window).await?;
            slices::merge(aggregate, parts).map(Arc::new)
        })
        .await
        .cloned()
    }

    /// The rows of `aggregate` over `window`, slice by slice, unmerged: for
    /// aggregates with many keys per slice (latency buckets), which their
    /// check adds up itself.
    pub async fn aggregate_parts(
        &self,
        aggregate: &Aggregate,
        window: Window,
    ) -> Result<Vec<arrow::array::RecordBatch>> {
        let step = self.rollout.interval.get().as_nanos().max(1) as i64;
        // A slice is final one interval after it ended.
        let final_before = self.window.end.saturating_sub(step);
        slices::run(
            self.engine,
            self.slices,
            aggregate,
            window,
            step,
            final_before,
        )
        .await
    }

    /// `service = '…' AND cohort IN (baseline, canary)`.
    pub fn cohorts(&self) -> String {
        format!(
            "service = {} AND {}",
            crate::sql::quote(&self.rollout.service),
            crate::sql::cohorts_condition(&[self.baseline(), self.canary]),
        )
    }

    pub fn baseline(&self) -> &str {
        &self.rollout.baseline
    }

    /// `service = '…' AND cohort IN (baseline, canary) AND time in window`.
    pub fn scope(&self, window: Window) -> String {
        format!(
            "service = {} AND {} AND {}",
            crate::sql::quote(&self.rollout.service),
            crate::sql::cohorts_condition(&[self.baseline(), self.canary]),
            window.condition()
        )
    }
}

/// What a check found, before correction for the number of checks.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// The result, with a provisional outcome (`Pass` or `NoData`).
    pub result: CheckResult,
    /// The test's p-value, uncorrected; `None` when no test ran.
    pub p_value: Option<f64>,
    /// Whether the effect is beyond the check's floor in its bad direction
    /// (the whole confidence interval, where there is one).
    pub material: bool,
    /// Which way the canary moved.
    pub movement: Movement,
    /// The canary breaks an absolute limit.
    pub canary_over_limit: bool,
    /// The baseline breaks an absolute limit, or is materially worse than
    /// it was in the window before: everyone is degraded at this level.
    pub baseline_degraded: bool,
    /// Too few samples.
    pub nodata: bool,
}

impl Finding {
    /// A finding for a check that could not judge (too little data).
    pub fn no_data(result: CheckResult) -> Finding {
        Finding {
            result,
            p_value: None,
            material: false,
            movement: Movement::Unchanged,
            canary_over_limit: false,
            baseline_degraded: false,
            nodata: true,
        }
    }
}

/// A blank result for a check, filled in by the check.
pub(crate) fn blank(
    cx: &Context<'_>,
    name: &str,
    level: Level,
    direction: Direction,
    critical: bool,
    test: &str,
) -> CheckResult {
    CheckResult {
        name: name.to_owned(),
        level,
        direction,
        critical,
        outcome: Outcome::Pass,
        test: test.to_owned(),
        statistic: None,
        p_value: None,
        effect: None,
        interval: None,
        baseline: CohortFigures {
            cohort: cx.baseline().to_owned(),
            ..CohortFigures::default()
        },
        canary: CohortFigures {
            cohort: cx.canary.to_owned(),
            ..CohortFigures::default()
        },
        reason: String::new(),
        sql: Vec::new(),
        evidence: Vec::new(),
    }
}

/// The weight of a check in the score.
pub(crate) fn weight(rollout: &RolloutConfig, name: &str) -> f64 {
    let checks = &rollout.checks;
    match name {
        "request_rate" => checks.request_rate.weight,
        "error_rate" => checks.error_rate.weight,
        "latency" => checks.latency.weight,
        "templates" => checks.templates.weight,
        "rule_hits" => checks.rule_hits.weight,
        "error_logs" => checks.error_logs.weight,
        other => checks
            .kernel
            .iter()
            .find(|k| format!("kernel:{}", k.metric) == other)
            .map(|k| k.weight)
            .unwrap_or(1.0),
    }
}

/// Runs every enabled check of the rollout for one canary.
pub(crate) async fn run_all(cx: &Context<'_>) -> Result<Vec<Finding>> {
    type Check<'a> = Pin<Box<dyn Future<Output = Result<Finding>> + Send + 'a>>;
    let checks = &cx.rollout.checks;
    let mut running: Vec<Check<'_>> = Vec::new();
    if checks.request_rate.enabled {
        running.push(Box::pin(request_rate::run(cx)));
    }
    if checks.error_rate.enabled {
        running.push(Box::pin(error_rate::run(cx)));
    }
    if checks.latency.enabled {
        running.push(Box::pin(latency::run(cx)));
    }
    if checks.templates.enabled {
        running.push(Box::pin(templates::run(cx)));
    }
    if checks.rule_hits.enabled {
        running.push(Box::pin(log_rates::rule_hits(cx)));
    }
    if checks.error_logs.enabled {
        running.push(Box::pin(log_rates::error_logs(cx)));
    }
    for kernel in &checks.kernel {
        running.push(Box::pin(kernel::run(cx, kernel)));
    }
    // The checks' queries overlap: one's scan runs while another's
    // statistics compute. The findings keep the order above.
    futures::future::try_join_all(running).await
}

/// Each cohort's log lines and error records: `cohort, lines, events`
/// (the L2 checks share it: one scan of the logs).
pub(crate) fn log_lines(cx: &Context<'_>) -> Aggregate {
    Aggregate {
        keys: vec![("cohort".into(), "cohort".into())],
        sums: vec![
            ("count(*)".into(), "lines".into()),
            (
                format!(
                    "sum(CASE WHEN severity_number >= {} THEN 1 ELSE 0 END)",
                    log_rates::ERROR_SEVERITY
                ),
                "events".into(),
            ),
        ],
        from: "logs".into(),
        filter: cx.cohorts(),
    }
}

/// (canary, baseline) of the integer column `column` of a per-cohort
/// aggregate over the window.
pub(crate) async fn per_cohort(
    cx: &Context<'_>,
    aggregate: &Aggregate,
    column: &str,
) -> Result<(u64, u64)> {
    let answer = cx.aggregate(aggregate, cx.window).await?;
    let (mut canary, mut baseline) = (0u64, 0u64);
    let cohorts = crate::sql::texts(&answer, "cohort")?;
    for (cohort, n) in cohorts.iter().zip(crate::sql::ints(&answer, column)?) {
        if cohort.as_deref() == Some(cx.canary) {
            canary = n.max(0) as u64;
        } else {
            baseline = n.max(0) as u64;
        }
    }
    Ok((canary, baseline))
}

/// Records both cohorts' sample counts; with fewer than `min` in either,
/// marks the result as no data, says why, and returns false.
pub(crate) fn enough(
    result: &mut CheckResult,
    (canary, baseline): (u64, u64),
    min: u64,
    what: &str,
) -> bool {
    result.canary.samples = canary;
    result.baseline.samples = baseline;
    if canary >= min && baseline >= min {
        return true;
    }
    result.outcome = Outcome::NoData;
    result.reason =
        format!("{canary} canary and {baseline} baseline {what} in the window; {min} each needed");
    false
}

/// Up to three canary log lines matching `condition` in the window, as
/// evidence with their trace ids; the query joins the check's SQL.
pub(crate) async fn example_lines(
    cx: &Context<'_>,
    result: &mut CheckResult,
    condition: &str,
) -> Result<()> {
    let sql = format!(
        "SELECT body, trace_id FROM logs WHERE {condition} AND service = {} AND cohort = {} AND {} LIMIT 3",
        crate::sql::quote(&cx.rollout.service),
        crate::sql::quote(cx.canary),
        cx.window.condition()
    );
    let rows = cx.query(&sql).await?;
    let bodies = crate::sql::texts(&rows, "body")?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect();
    let traces = crate::sql::texts(&rows, "trace_id")?;
    result.evidence.extend(evidence("log_line", bodies, traces));
    result.sql.push(sql);
    Ok(())
}

/// Evidence rows: `kind`, a summary per row, the trace id column.
pub(crate) fn evidence(
    kind: &str,
    summaries: Vec<String>,
    trace_ids: Vec<Option<String>>,
) -> Vec<Evidence> {
    summaries
        .into_iter()
        .zip(trace_ids)
        .map(|(summary, trace_id)| Evidence {
            kind: kind.to_owned(),
            summary,
            trace_id,
        })
        .collect()
}
