//! L1 latency: the whole distribution of server-span durations, canary
//! against baseline — Mann-Whitney U for "is it shifted", the
//! Hodges-Lehmann shift with its confidence interval for "by how much",
//! the quantiles for people, and the absolute p99 limit for both cohorts.

use grayscope_core::verdict::{Level, Outcome};

use super::{Context, Finding, blank, evidence};
use crate::error::Result;
use crate::sql::{Window, floats, quote, split_floats, texts};
use crate::stats::quantiles::quantiles_unsorted;
use crate::stats::{Sample, hodges_lehmann, mann_whitney};

/// Relative grid of the latency samples (see [`Sample::log_quantized`]).
const QUANTUM: f64 = 1e-3;

fn durations_sql(cx: &Context<'_>, window: Window) -> String {
    format!(
        "SELECT cohort, duration_ns / 1e6 AS ms FROM spans WHERE kind = 'server' AND {}",
        cx.scope(window)
    )
}

pub(super) async fn run(cx: &Context<'_>) -> Result<Finding> {
    let check = &cx.rollout.checks.latency;
    let mut result = blank(
        cx,
        "latency",
        Level::L1,
        check.direction,
        check.critical,
        "mann_whitney_u",
    );
    let sql = durations_sql(cx, cx.window);
    result.sql.push(sql.clone());
    let answer = cx.query(&sql).await?;
    let (mut canary, mut baseline) = split_floats(&answer, "ms", cx.canary)?;
    let figures = |values: &mut Vec<f64>| {
        let q = quantiles_unsorted(values, &[0.5, 0.9, 0.99]);
        q.into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    let (cq, bq) = (figures(&mut canary), figures(&mut baseline));
    result.canary.samples = canary.len() as u64;
    result.baseline.samples = baseline.len() as u64;
    for (figures, q) in [(&mut result.canary, &cq), (&mut result.baseline, &bq)] {
        figures.value = q.first().copied().filter(|v| v.is_finite());
        figures.extra = ["p50_ms", "p90_ms", "p99_ms"]
            .iter()
            .zip(q.iter())
            .filter(|(_, v)| v.is_finite())
            .map(|(name, v)| (name.to_string(), *v))
            .collect();
    }
    if (canary.len() as u64) < check.min_samples || (baseline.len() as u64) < check.min_samples {
        result.outcome = Outcome::NoData;
        result.reason = format!(
            "{} canary and {} baseline requests in the window; {} each needed",
            canary.len(),
            baseline.len(),
            check.min_samples
        );
        return Ok(Finding::no_data(result));
    }

    // On a 0.1 % logarithmic grid: a million durations cost milliseconds,
    // and no shift an SRE would act on is lost (BENCHMARKS-stats.md).
    let (Some(canary_sample), Some(baseline_sample)) = (
        Sample::log_quantized(&canary, QUANTUM),
        Sample::log_quantized(&baseline, QUANTUM),
    ) else {
        return Ok(Finding::no_data(result));
    };
    let alternative = crate::judge::alternative(check.direction);
    let Some(test) = mann_whitney(&canary_sample, &baseline_sample, alternative) else {
        return Ok(Finding::no_data(result));
    };
    let shift = hodges_lehmann(&canary_sample, &baseline_sample, cx.confidence);
    result.statistic = Some(test.u_canary);
    let baseline_median = bq[0];
    let floor_ms = check
        .min_absolute_shift_ms
        .max(check.min_relative_shift * baseline_median.abs());
    let mut material = false;
    if let Some(shift) = &shift {
        let relative = |ms: f64| {
            if baseline_median > 0.0 {
                ms / baseline_median
            } else {
                f64::NAN
            }
        };
        result.effect = Some(relative(shift.estimate));
        result.interval = Some((relative(shift.interval.low), relative(shift.interval.high)));
        material = crate::judge::beyond_floor(
            shift.estimate,
            (shift.interval.low, shift.interval.high),
            floor_ms,
            check.direction,
        );
        result.reason = format!(
            "canary shifted by {:+.2} ms ({:+.1}% of the baseline median {:.2} ms), {}% interval [{:+.2}, {:+.2}] ms; floor {:.2} ms",
            shift.estimate,
            100.0 * relative(shift.estimate),
            baseline_median,
            (cx.confidence.level() * 100.0).round(),
            shift.interval.low,
            shift.interval.high,
            floor_ms
        );
    }

    // Absolute limit on p99, for both cohorts.
    let (mut canary_over_limit, mut baseline_over_limit) = (false, false);
    if let Some(limit) = cx.rollout.limits.p99_ms {
        canary_over_limit = cq[2] > limit;
        baseline_over_limit = bq[2] > limit;
        if canary_over_limit || baseline_over_limit {
            result.reason.push_str(&format!(
                "; p99 limit {limit} ms: canary {:.1} ms, baseline {:.1} ms",
                cq[2], bq[2]
            ));
        }
    }

    // Is the baseline itself worse than it was just before?
    let previous_sql = durations_sql(cx, cx.window.previous());
    let previous = cx.query(&previous_sql).await?;
    let (_, before) = split_floats(&previous, "ms", cx.canary)?;
    let mut baseline_degraded = baseline_over_limit;
    if (before.len() as u64) >= check.min_samples {
        let before = Sample::new(before);
        if let (Some(history), Some(drift)) = (
            mann_whitney(&baseline_sample, &before, alternative),
            hodges_lehmann(&baseline_sample, &before, cx.confidence),
        ) {
            let before_median = before
                .values()
                .get(before.values().len() / 2)
                .copied()
                .unwrap_or(baseline_median);
            let floor = check
                .min_absolute_shift_ms
                .max(check.min_relative_shift * before_median.abs());
            if history.p_value < cx.rollout.alpha
                && crate::judge::beyond_floor(
                    drift.estimate,
                    (drift.interval.low, drift.interval.high),
                    floor,
                    check.direction,
                )
            {
                baseline_degraded = true;
                result.reason.push_str(&format!(
                    "; the baseline itself moved {:+.2} ms against the previous window",
                    drift.estimate
                ));
            }
        }
    }

    // Evidence: the slowest canary requests.
    let slowest = format!(
        "SELECT trace_id, name, duration_ns / 1e6 AS ms FROM spans WHERE kind = 'server' AND service = {} AND cohort = {} AND {} ORDER BY duration_ns DESC LIMIT 3",
        quote(&cx.rollout.service),
        quote(cx.canary),
        cx.window.condition()
    );
    let rows = cx.query(&slowest).await?;
    let names = texts(&rows, "name")?;
    let ms = floats(&rows, "ms")?;
    let summaries = names
        .iter()
        .zip(ms.iter())
        .map(|(name, ms)| format!("{} took {ms:.1} ms", name.as_deref().unwrap_or("?")))
        .collect();
    result.evidence = evidence("slow_request", summaries, texts(&rows, "trace_id")?);
    result.sql.push(slowest);

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
