//! L3 kernel metrics that eBPF agents export (TCP retransmits, run-queue
//! latency, OOM kills, …), named in `[[rollouts.checks.kernel]]`, compared
//! per cohort:
//!
//! - counters (`sum`): the increase per series over the window — the
//!   difference of the first and last point of a cumulative series, the sum
//!   of a delta series — as a rate per series-second, with the exact test
//!   for two Poisson rates;
//! - `gauge`s: the distribution of the points, with Mann-Whitney U and the
//!   Hodges-Lehmann shift.
//!
//! A series is one resource and attribute set. Histograms are not compared
//! yet.

use std::collections::HashMap;

use grayscope_core::config::KernelCheck;
use grayscope_core::verdict::{Level, Outcome};

use super::{Context, Finding, blank};
use crate::error::Result;
use crate::sql::{Window, floats, ints, quote, texts};
use crate::stats::{Movement, Rate, Sample, compare_rates, hodges_lehmann, mann_whitney};

fn points_sql(cx: &Context<'_>, metric: &str, window: Window) -> String {
    format!(
        "SELECT cohort, kind, temporality, value, CAST(time AS BIGINT) AS t, \
         concat(array_to_string(map_values(resource_attributes), '|'), '#', \
                array_to_string(map_values(attributes), '|')) AS series \
         FROM metrics WHERE name = {} AND kind IN ('sum', 'gauge') AND value IS NOT NULL AND {}",
        quote(metric),
        cx.scope(window)
    )
}

#[derive(Default)]
struct Series {
    first: (i64, f64),
    last: (i64, f64),
    sum: f64,
    points: u64,
}

/// Per cohort: total increase, number of series and the series-seconds
/// the increase was observed over, or gauge values.
#[derive(Default)]
struct Cohort {
    increase: f64,
    series: u64,
    exposure_seconds: f64,
    gauge: Vec<f64>,
    points: u64,
}

async fn collect(cx: &Context<'_>, sql: &str) -> Result<(Cohort, Cohort, bool)> {
    let answer = cx.query(sql).await?;
    let cohorts = texts(&answer, "cohort")?;
    let kinds = texts(&answer, "kind")?;
    let temporality = texts(&answer, "temporality")?;
    let values = floats(&answer, "value")?;
    let times = ints(&answer, "t")?;
    let keys = texts(&answer, "series")?;
    let mut counters: HashMap<(bool, String, bool), Series> = HashMap::new();
    let (mut canary, mut baseline) = (Cohort::default(), Cohort::default());
    let mut is_gauge = false;
    for i in 0..values.len() {
        let is_canary = cohorts[i].as_deref() == Some(cx.canary);
        let cohort = if is_canary {
            &mut canary
        } else {
            &mut baseline
        };
        cohort.points += 1;
        if kinds[i].as_deref() == Some("gauge") {
            is_gauge = true;
            cohort.gauge.push(values[i]);
            continue;
        }
        let delta = temporality[i].as_deref() == Some("delta");
        let key = (is_canary, keys[i].clone().unwrap_or_default(), delta);
        let series = counters.entry(key).or_insert_with(|| Series {
            first: (times[i], values[i]),
            last: (times[i], values[i]),
            ..Series::default()
        });
        if times[i] < series.first.0 {
            series.first = (times[i], values[i]);
        }
        if times[i] >= series.last.0 {
            series.last = (times[i], values[i]);
        }
        series.sum += values[i];
        series.points += 1;
    }
    for ((is_canary, _, delta), series) in counters {
        let cohort = if is_canary {
            &mut canary
        } else {
            &mut baseline
        };
        cohort.series += 1;
        // What the points cover: a window only partly filled (a series that
        // started late, the first minute of a rollout) must not read as a
        // lower rate. One point of a series tells no interval: skipped.
        if series.points < 2 {
            continue;
        }
        let span = (series.last.0 - series.first.0) as f64 / 1e9;
        if delta {
            // n delta points cover n intervals; first to last spans n - 1.
            cohort.increase += series.sum;
            cohort.exposure_seconds += span * series.points as f64 / (series.points - 1) as f64;
        } else {
            // A counter reset shows as a fall; count from the reset instead.
            let rise = series.last.1 - series.first.1;
            cohort.increase += if rise >= 0.0 { rise } else { series.last.1 };
            cohort.exposure_seconds += span;
        }
    }
    Ok((canary, baseline, is_gauge))
}

pub(super) async fn run(cx: &Context<'_>, check: &KernelCheck) -> Result<Finding> {
    let name = format!("kernel:{}", check.metric);
    let sql = points_sql(cx, &check.metric, cx.window);
    let (canary, baseline, is_gauge) = collect(cx, &sql).await?;
    let test_name = if is_gauge {
        "mann_whitney_u"
    } else {
        "poisson_rate_ratio"
    };
    let mut result = blank(
        cx,
        &name,
        Level::L3,
        check.direction,
        check.critical,
        test_name,
    );
    result.sql.push(sql);
    result.canary.samples = canary.points;
    result.baseline.samples = baseline.points;
    if canary.points < check.min_samples || baseline.points < check.min_samples {
        result.outcome = Outcome::NoData;
        result.reason = format!(
            "{} canary and {} baseline points of {} in the window; {} each needed",
            canary.points, baseline.points, check.metric, check.min_samples
        );
        return Ok(Finding::no_data(result));
    }
    let alternative = crate::judge::alternative(check.direction);

    let (p_value, material, movement) = if is_gauge {
        let (c, b) = (
            Sample::new(canary.gauge.clone()),
            Sample::new(baseline.gauge.clone()),
        );
        let median = |s: &Sample| s.values().get(s.values().len() / 2).copied().unwrap_or(0.0);
        let (cm, bm) = (median(&c), median(&b));
        result.canary.value = Some(cm);
        result.baseline.value = Some(bm);
        let Some(test) = mann_whitney(&c, &b, alternative) else {
            return Ok(Finding::no_data(result));
        };
        result.statistic = Some(test.u_canary);
        let mut material = false;
        if let Some(shift) = hodges_lehmann(&c, &b, cx.confidence) {
            let ratio = if bm != 0.0 {
                (bm + shift.estimate) / bm
            } else {
                f64::INFINITY
            };
            result.effect = Some(ratio);
            let floor = (check.min_ratio - 1.0) * bm.abs();
            material = crate::judge::beyond_floor(
                shift.estimate,
                (shift.interval.low, shift.interval.high),
                floor,
                check.direction,
            );
            result.reason = format!(
                "median {cm:.3} against {bm:.3}; shift {:+.3}, interval [{:+.3}, {:+.3}]",
                shift.estimate, shift.interval.low, shift.interval.high
            );
        }
        (test.p_value, material, test.movement)
    } else {
        let exposure = |c: &Cohort| c.exposure_seconds;
        let (Ok(c), Ok(b)) = (
            Rate::new(canary.increase.round().max(0.0) as u64, exposure(&canary)),
            Rate::new(
                baseline.increase.round().max(0.0) as u64,
                exposure(&baseline),
            ),
        ) else {
            return Ok(Finding::no_data(result));
        };
        let test = compare_rates(c, b, alternative, cx.confidence);
        result.canary.value = Some(c.per_unit());
        result.baseline.value = Some(b.per_unit());
        result.canary.extra = vec![
            ("increase".into(), canary.increase),
            ("series".into(), canary.series as f64),
        ];
        result.baseline.extra = vec![
            ("increase".into(), baseline.increase),
            ("series".into(), baseline.series as f64),
        ];
        result.effect = test.ratio.as_ref().map(|r| r.estimate);
        result.interval = test
            .ratio
            .as_ref()
            .map(|r| (r.interval.low, r.interval.high));
        let material = match (&test.ratio, check.direction) {
            (Some(r), grayscope_core::verdict::Direction::LowerIsWorse) => {
                r.estimate <= 1.0 / check.min_ratio && r.interval.high < 1.0
            }
            (Some(r), _) => {
                (r.estimate >= check.min_ratio && r.interval.low > 1.0)
                    || (r.estimate <= 1.0 / check.min_ratio
                        && r.interval.high < 1.0
                        && check.direction == grayscope_core::verdict::Direction::Either)
            }
            (None, _) => c.events > 0,
        };
        result.reason = format!(
            "{}: canary {:.4}/s per series ({} series), baseline {:.4}/s per series ({} series)",
            check.metric,
            c.per_unit(),
            canary.series,
            b.per_unit(),
            baseline.series
        );
        let movement = if c.per_unit() > b.per_unit() {
            Movement::Higher
        } else if c.per_unit() < b.per_unit() {
            Movement::Lower
        } else {
            Movement::Unchanged
        };
        (test.p_value, material, movement)
    };

    // Is the baseline worse than just before?
    let mut baseline_degraded = false;
    let (_, before, _) = collect(cx, &points_sql(cx, &check.metric, cx.window.previous())).await?;
    if !is_gauge && before.points >= check.min_samples {
        let exposure = |c: &Cohort| c.exposure_seconds;
        if let (Ok(now), Ok(then)) = (
            Rate::new(
                baseline.increase.round().max(0.0) as u64,
                exposure(&baseline),
            ),
            Rate::new(before.increase.round().max(0.0) as u64, exposure(&before)),
        ) {
            let history = compare_rates(now, then, alternative, cx.confidence);
            if history.p_value < cx.rollout.alpha
                && history
                    .ratio
                    .as_ref()
                    .is_some_and(|r| r.estimate >= check.min_ratio && r.interval.low > 1.0)
            {
                baseline_degraded = true;
                result
                    .reason
                    .push_str("; the baseline itself rose against the previous window");
            }
        }
    }

    Ok(Finding {
        p_value: Some(p_value),
        material,
        movement,
        canary_over_limit: false,
        baseline_degraded,
        nodata: false,
        result,
    })
}
