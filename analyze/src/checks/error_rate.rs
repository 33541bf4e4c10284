//! L1 error rate: the share of server spans that failed (status `error` or
//! an HTTP 5xx), canary against baseline — Fisher's exact test, with
//! Newcombe's interval on the difference against the floor — and the
//! absolute limit for both cohorts.

use grayscope_core::verdict::{Direction, Level, Outcome};

use super::{Context, Finding, blank, evidence};
use crate::error::Result;
use crate::slices::Aggregate;
use crate::sql::{Window, ints, quote, texts};
use crate::stats::{Proportion, compare_proportions};

/// A failed request, in SQL.
const FAILED: &str = "(status_code = 'error' OR http_status_code >= 500)";

/// Requests and failed requests per cohort (request_rate asks the same).
pub(super) fn requests(cx: &Context<'_>) -> Aggregate {
    Aggregate {
        keys: vec![("cohort".into(), "cohort".into())],
        sums: vec![
            ("count(*)".into(), "requests".into()),
            (
                format!("sum(CASE WHEN {FAILED} THEN 1 ELSE 0 END)"),
                "errors".into(),
            ),
        ],
        from: "spans".into(),
        filter: format!("kind = 'server' AND {}", cx.cohorts()),
    }
}

/// (canary, baseline) as (errors, requests) in `window`.
async fn counts(cx: &Context<'_>, window: Window) -> Result<((u64, u64), (u64, u64))> {
    let answer = cx.aggregate(&requests(cx), window).await?;
    let cohorts = texts(&answer, "cohort")?;
    let requests = ints(&answer, "requests")?;
    let errors = ints(&answer, "errors")?;
    let (mut canary, mut baseline) = ((0, 0), (0, 0));
    for ((cohort, n), k) in cohorts.iter().zip(requests).zip(errors) {
        let slot = if cohort.as_deref() == Some(cx.canary) {
            &mut canary
        } else {
            &mut baseline
        };
        *slot = (k.max(0) as u64, n.max(0) as u64);
    }
    Ok((canary, baseline))
}

pub(super) async fn run(cx: &Context<'_>) -> Result<Finding> {
    let check = &cx.rollout.checks.error_rate;
    let direction = Direction::HigherIsWorse;
    let mut result = blank(
        cx,
        "error_rate",
        Level::L1,
        direction,
        check.critical,
        "fisher_exact",
    );
    result.sql.push(requests(cx).sql(cx.window));
    let ((ck, cn), (bk, bn)) = counts(cx, cx.window).await?;
    let rate = |k: u64, n: u64| (n > 0).then(|| k as f64 / n as f64);
    result.canary.samples = cn;
    result.baseline.samples = bn;
    result.canary.value = rate(ck, cn);
    result.baseline.value = rate(bk, bn);
    result.canary.extra = vec![("errors".into(), ck as f64)];
    result.baseline.extra = vec![("errors".into(), bk as f64)];
    if cn < check.min_samples || bn < check.min_samples {
        result.outcome = Outcome::NoData;
        result.reason = format!(
            "{cn} canary and {bn} baseline requests in the window; {} each needed",
            check.min_samples
        );
        return Ok(Finding::no_data(result));
    }
    let (Ok(canary), Ok(baseline)) = (Proportion::new(ck, cn), Proportion::new(bk, bn)) else {
        return Ok(Finding::no_data(result));
    };
    let alternative = crate::judge::alternative(direction);
    let Some(test) = compare_proportions(canary, baseline, alternative, cx.confidence) else {
        return Ok(Finding::no_data(result));
    };
    let diff = &test.difference;
    result.effect = Some(diff.estimate);
    result.interval = Some((diff.interval.low, diff.interval.high));
    let material = crate::judge::beyond_floor(
        diff.estimate,
        (diff.interval.low, diff.interval.high),
        check.min_increase,
        direction,
    );
    result.reason = format!(
        "canary {ck}/{cn} = {:.3}% failed, baseline {bk}/{bn} = {:.3}%; difference {:+.3} points, interval [{:+.3}, {:+.3}]; floor {:+.3} points",
        100.0 * ck as f64 / cn as f64,
        100.0 * bk as f64 / bn as f64,
        100.0 * diff.estimate,
        100.0 * diff.interval.low,
        100.0 * diff.interval.high,
        100.0 * check.min_increase
    );

    let (mut canary_over_limit, mut baseline_over_limit) = (false, false);
    if let Some(limit) = cx.rollout.limits.error_rate {
        canary_over_limit = ck as f64 / cn as f64 > limit;
        baseline_over_limit = bk as f64 / bn as f64 > limit;
        if canary_over_limit || baseline_over_limit {
            result
                .reason
                .push_str(&format!("; error-rate limit {:.2}%", 100.0 * limit));
        }
    }

    // Is the baseline worse than just before?
    let ((_, _), (pk, pn)) = counts(cx, cx.window.previous()).await?;
    let mut baseline_degraded = baseline_over_limit;
    if pn >= check.min_samples
        && let (Ok(now), Ok(before)) = (Proportion::new(bk, bn), Proportion::new(pk, pn))
        && let Some(history) = compare_proportions(now, before, alternative, cx.confidence)
        && history.p_value < cx.rollout.alpha
        && crate::judge::beyond_floor(
            history.difference.estimate,
            (
                history.difference.interval.low,
                history.difference.interval.high,
            ),
            check.min_increase,
            direction,
        )
    {
        baseline_degraded = true;
        result.reason.push_str(&format!(
            "; the baseline's own error rate rose from {:.3}% in the previous window",
            100.0 * pk as f64 / pn as f64
        ));
    }

    // Evidence, for a canary that may be judged worse: failed requests.
    if test.p_value < cx.rollout.alpha || canary_over_limit {
        failed_requests(cx, &mut result).await?;
    }

    Ok(Finding {
        p_value: Some(test.p_value),
        material,
        movement: test.movement,
        canary_over_limit,
        baseline_degraded,
        nodata: false,
        result,
    })
}

/// Up to three failed canary requests, as evidence.
async fn failed_requests(
    cx: &Context<'_>,
    result: &mut grayscope_core::verdict::CheckResult,
) -> Result<()> {
    let failed = format!(
        "SELECT trace_id, name, status_message, http_status_code FROM spans WHERE kind = 'server' AND {FAILED} \
         AND service = {} AND cohort = {} AND {} LIMIT 3",
        quote(&cx.rollout.service),
        quote(cx.canary),
        cx.window.condition()
    );
    let rows = cx.query(&failed).await?;
    let names = texts(&rows, "name")?;
    let messages = texts(&rows, "status_message")?;
    let summaries = names
        .iter()
        .zip(messages.iter())
        .map(|(n, m)| {
            format!(
                "{} failed: {}",
                n.as_deref().unwrap_or("?"),
                m.as_deref().unwrap_or("(no message)")
            )
        })
        .collect();
    result.evidence = evidence("failed_request", summaries, texts(&rows, "trace_id")?);
    result.sql.push(failed);
    Ok(())
}
