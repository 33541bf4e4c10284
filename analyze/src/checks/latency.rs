//! L1 latency: the whole distribution of server-span durations, canary
//! against baseline — Mann-Whitney U for "is it shifted", the
//! Hodges-Lehmann shift with its confidence interval for "by how much",
//! the quantiles for people, and the absolute p99 limit for both cohorts.

use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use grayscope_core::verdict::{Level, Outcome};

use super::{Context, Finding, blank, evidence};
use crate::error::{Error, Result};
use crate::slices::Aggregate;
use crate::sql::{Window, floats, quote, texts};
use crate::stats::{Sample, hodges_lehmann, mann_whitney};

/// Relative grid of the latency samples: each duration is counted at the
/// centre of its cell of a logarithmic grid of ratio 1 + QUANTUM, so it
/// moves by at most QUANTUM / 2 relative (0.05 %).
const QUANTUM: f64 = 1e-3;

/// Server-span durations per cohort on the grid: `cohort, bucket, n`, with
/// `bucket` = round(ln(duration_ns) / ln(1 + QUANTUM)), null for durations
/// of zero or less. The grid is computed where the rows are, so a window of
/// a million durations comes back as a few thousand buckets per cohort.
fn durations(cx: &Context<'_>) -> Aggregate {
    Aggregate {
        keys: vec![
            ("cohort".into(), "cohort".into()),
            (
                format!(
                    "CASE WHEN duration_ns > 0 THEN CAST(round(ln(CAST(duration_ns AS DOUBLE)) / {}) AS BIGINT) END",
                    QUANTUM.ln_1p()
                ),
                "bucket".into(),
            ),
        ],
        sums: vec![("count(*)".into(), "n".into())],
        from: "spans".into(),
        filter: format!("kind = 'server' AND {}", cx.cohorts()),
    }
}

/// The bucket's duration in milliseconds.
fn bucket_ms(bucket: Option<i64>) -> f64 {
    bucket.map_or(0.0, |b| (b as f64 * QUANTUM.ln_1p()).exp() / 1e6)
}

/// (canary, baseline) samples of `window`, from the slices' buckets.
async fn samples(cx: &Context<'_>, window: Window) -> Result<(Sample, Sample)> {
    let parts = cx.aggregate_parts(&durations(cx), window).await?;
    let (mut canary, mut baseline) = (Vec::new(), Vec::new());
    for part in &parts {
        add_buckets(part, cx.canary, &mut canary, &mut baseline)?;
    }
    Ok((
        Sample::from_weighted(canary),
        Sample::from_weighted(baseline),
    ))
}

fn add_buckets(
    part: &RecordBatch,
    canary: &str,
    canary_pairs: &mut Vec<(f64, u64)>,
    baseline_pairs: &mut Vec<(f64, u64)>,
) -> Result<()> {
    let column = |name: &str, to: &DataType| {
        let array = part
            .column_by_name(name)
            .ok_or_else(|| Error::Internal(format!("latency: no column {name}")))?;
        cast(array, to).map_err(|e| Error::Internal(format!("latency: {e}")))
    };
    let (cohorts, buckets, counts) = (
        column("cohort", &DataType::Utf8)?,
        column("bucket", &DataType::Int64)?,
        column("n", &DataType::Int64)?,
    );
    let (Some(cohorts), Some(buckets), Some(counts)) = (
        cohorts.as_any().downcast_ref::<StringArray>(),
        buckets.as_any().downcast_ref::<Int64Array>(),
        counts.as_any().downcast_ref::<Int64Array>(),
    ) else {
        return Err(Error::Internal("latency: bucket columns".into()));
    };
    for row in 0..part.num_rows() {
        if cohorts.is_null(row) {
            continue;
        }
        let bucket = (!buckets.is_null(row)).then(|| buckets.value(row));
        let pair = (bucket_ms(bucket), counts.value(row).max(0) as u64);
        if cohorts.value(row) == canary {
            canary_pairs.push(pair);
        } else {
            baseline_pairs.push(pair);
        }
    }
    Ok(())
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
    result.sql.push(format!(
        "SELECT cohort, duration_ns / 1e6 AS ms FROM spans WHERE kind = 'server' AND {} AND {}",
        cx.cohorts(),
        cx.window.condition()
    ));
    let (canary_sample, baseline_sample) = samples(cx, cx.window).await?;
    let figures = |sample: &Sample| {
        [0.5, 0.9, 0.99]
            .iter()
            .map(|&q| sample.quantile(q).unwrap_or(f64::NAN))
            .collect::<Vec<_>>()
    };
    let (cq, bq) = (figures(&canary_sample), figures(&baseline_sample));
    result.canary.samples = canary_sample.len();
    result.baseline.samples = baseline_sample.len();
    for (figures, q) in [(&mut result.canary, &cq), (&mut result.baseline, &bq)] {
        figures.value = q.first().copied().filter(|v| v.is_finite());
        figures.extra = ["p50_ms", "p90_ms", "p99_ms"]
            .iter()
            .zip(q.iter())
            .filter(|(_, v)| v.is_finite())
            .map(|(name, v)| (name.to_string(), *v))
            .collect();
    }
    if canary_sample.len() < check.min_samples || baseline_sample.len() < check.min_samples {
        result.outcome = Outcome::NoData;
        result.reason = format!(
            "{} canary and {} baseline requests in the window; {} each needed",
            canary_sample.len(),
            baseline_sample.len(),
            check.min_samples
        );
        return Ok(Finding::no_data(result));
    }

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
    let (_, before) = samples(cx, cx.window.previous()).await?;
    let mut baseline_degraded = baseline_over_limit;
    if before.len() >= check.min_samples
        && let (Some(history), Some(drift)) = (
            mann_whitney(&baseline_sample, &before, alternative),
            hodges_lehmann(&baseline_sample, &before, cx.confidence),
        )
    {
        let before_median = before.median().unwrap_or(baseline_median);
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

    // Evidence, for a canary that may be judged worse: its slowest requests.
    if test.p_value < cx.rollout.alpha || canary_over_limit {
        slowest_requests(cx, &mut result).await?;
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

/// The three slowest canary requests of the window, as evidence.
async fn slowest_requests(
    cx: &Context<'_>,
    result: &mut grayscope_core::verdict::CheckResult,
) -> Result<()> {
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
    Ok(())
}
