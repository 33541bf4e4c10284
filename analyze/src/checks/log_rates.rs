//! L2 log rates: error and fatal records per log line, and user-rule hits
//! (timeouts, OOM kills, …) per log line, canary against baseline — the
//! exact conditional test for two Poisson rates, with the rate ratio's
//! interval against the floor.

use std::collections::BTreeMap;

use grayscope_core::config::RateCheck;
use grayscope_core::verdict::{Direction, Level};

use super::{Context, Finding, blank, enough, example_lines, log_lines, per_cohort};
use crate::error::Result;
use crate::slices::Aggregate;
use crate::sql::{Window, ints, quote, texts};
use crate::stats::multiple_testing::holm;
use crate::stats::{Movement, Rate, RateComparison, compare_rates};

/// Error severity and above (OTLP severity numbers 17–24).
pub(super) const ERROR_SEVERITY: i32 = 17;

/// (canary, baseline) of (error records, lines) in `window`.
async fn cohort_counts(cx: &Context<'_>, window: Window) -> Result<((u64, u64), (u64, u64))> {
    let answer = cx.aggregate(&log_lines(cx), window).await?;
    let cohorts = texts(&answer, "cohort")?;
    let lines = ints(&answer, "lines")?;
    let events = ints(&answer, "events")?;
    let (mut canary, mut baseline) = ((0, 0), (0, 0));
    for ((cohort, n), k) in cohorts.iter().zip(lines).zip(events) {
        let slot = if cohort.as_deref() == Some(cx.canary) {
            &mut canary
        } else {
            &mut baseline
        };
        *slot = (k.max(0) as u64, n.max(0) as u64);
    }
    Ok((canary, baseline))
}

fn test(events: (u64, u64), other: (u64, u64), cx: &Context<'_>) -> Option<RateComparison> {
    let canary = Rate::new(events.0, events.1 as f64).ok()?;
    let baseline = Rate::new(other.0, other.1 as f64).ok()?;
    Some(compare_rates(
        canary,
        baseline,
        crate::judge::alternative(Direction::HigherIsWorse),
        cx.confidence,
    ))
}

fn material(test: &RateComparison, canary_events: u64, check: &RateCheck) -> bool {
    if canary_events < check.min_count {
        return false;
    }
    match &test.ratio {
        Some(ratio) => ratio.estimate >= check.min_ratio && ratio.interval.low > 1.0,
        None => true,
    }
}

/// Error and fatal records per log line.
pub(super) async fn error_logs(cx: &Context<'_>) -> Result<Finding> {
    let check = &cx.rollout.checks.error_logs;
    let mut result = blank(
        cx,
        "error_logs",
        Level::L2,
        Direction::HigherIsWorse,
        check.critical,
        "poisson_rate_ratio",
    );
    result.sql.push(log_lines(cx).sql(cx.window));
    let (canary, baseline) = cohort_counts(cx, cx.window).await?;
    fill(&mut result, canary, baseline);
    if !enough(
        &mut result,
        (canary.1, baseline.1),
        check.min_samples,
        "log lines",
    ) {
        return Ok(Finding::no_data(result));
    }
    let Some(comparison) = test(canary, baseline, cx) else {
        return Ok(Finding::no_data(result));
    };
    describe(&mut result, &comparison, "error records", canary, baseline);

    // Is the baseline logging more errors than just before?
    let (_, before) = cohort_counts(cx, cx.window.previous()).await?;
    let mut baseline_degraded = false;
    if before.1 >= check.min_samples
        && let Some(history) = test(baseline, before, cx)
        && history.p_value < cx.rollout.alpha
        && material(&history, baseline.0, check)
    {
        baseline_degraded = true;
        result.reason.push_str(&format!(
            "; the baseline's own error records rose from {} in the previous window",
            before.0
        ));
    }

    // Evidence, for a canary that may be judged worse: its error lines.
    if comparison.p_value < cx.rollout.alpha {
        example_lines(
            cx,
            &mut result,
            &format!("severity_number >= {ERROR_SEVERITY}"),
        )
        .await?;
    }

    Ok(Finding {
        p_value: Some(comparison.p_value),
        material: material(&comparison, canary.0, check),
        movement: comparison.movement,
        canary_over_limit: false,
        baseline_degraded,
        nodata: false,
        result,
    })
}

/// Hits of each `[[log_rules]]` rule per log line.
pub(super) async fn rule_hits(cx: &Context<'_>) -> Result<Finding> {
    let check = &cx.rollout.checks.rule_hits;
    let mut result = blank(
        cx,
        "rule_hits",
        Level::L2,
        Direction::HigherIsWorse,
        check.critical,
        "poisson_rate_ratio",
    );
    let lines = log_lines(cx);
    let hits = Aggregate {
        keys: ["cohort", "rule"]
            .map(|k| (k.to_owned(), k.to_owned()))
            .to_vec(),
        sums: vec![("count(*)".into(), "hits".into())],
        from: format!(
            "(SELECT cohort, time, unnest(rules) AS rule FROM logs WHERE {} AND {{window}})",
            cx.cohorts()
        ),
        filter: String::new(),
    };
    result.sql = vec![lines.sql(cx.window), hits.sql(cx.window)];
    let (canary_lines, baseline_lines) = per_cohort(cx, &lines, "lines").await?;
    if !enough(
        &mut result,
        (canary_lines, baseline_lines),
        check.min_samples,
        "log lines",
    ) {
        return Ok(Finding::no_data(result));
    }
    let answer = cx.aggregate(&hits, cx.window).await?;
    let mut per_rule: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for ((cohort, rule), hits) in texts(&answer, "cohort")?
        .iter()
        .zip(texts(&answer, "rule")?)
        .zip(ints(&answer, "hits")?)
    {
        let Some(rule) = rule else { continue };
        let entry = per_rule.entry(rule).or_default();
        if cohort.as_deref() == Some(cx.canary) {
            entry.0 = hits.max(0) as u64;
        } else {
            entry.1 = hits.max(0) as u64;
        }
    }
    let rules: Vec<(String, (u64, u64))> = per_rule.into_iter().collect();
    let tests: Vec<Option<RateComparison>> = rules
        .iter()
        .map(|(_, (c, b))| test((*c, canary_lines), (*b, baseline_lines), cx))
        .collect();
    let p_values: Vec<f64> = tests
        .iter()
        .map(|t| t.as_ref().map_or(1.0, |t| t.p_value))
        .collect();
    let adjusted = holm(&p_values);
    let mut flagged = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        if let Some(t) = t
            && adjusted[i] < cx.rollout.alpha
            && material(t, rules[i].1.0, check)
        {
            flagged.push(i);
        }
    }
    result.statistic = Some(flagged.len() as f64);
    let summary: Vec<String> = rules
        .iter()
        .map(|(name, (c, b))| format!("{name}: canary {c}, baseline {b}"))
        .collect();
    result.reason = if rules.is_empty() {
        "no log rule matched in either cohort".to_owned()
    } else if flagged.is_empty() {
        format!(
            "rule hits per line not significantly higher in the canary ({})",
            summary.join("; ")
        )
    } else {
        let names: Vec<&str> = flagged.iter().map(|i| rules[*i].0.as_str()).collect();
        format!(
            "the canary hits {} far more often ({})",
            names.join(", "),
            summary.join("; ")
        )
    };
    if let Some(&first) = flagged.first() {
        let (c, b) = rules[first].1;
        result.canary.value = Some(1000.0 * c as f64 / canary_lines as f64);
        result.baseline.value = Some(1000.0 * b as f64 / baseline_lines as f64);
        if let Some(Some(t)) = tests.get(first) {
            result.effect = t.ratio.as_ref().map(|r| r.estimate);
            result.interval = t.ratio.as_ref().map(|r| (r.interval.low, r.interval.high));
        }
        let condition = format!("array_has(rules, {})", quote(&rules[first].0));
        example_lines(cx, &mut result, &condition).await?;
    }
    let best = adjusted.iter().copied().fold(1.0_f64, f64::min);
    Ok(Finding {
        p_value: (!rules.is_empty()).then_some(best),
        material: !flagged.is_empty(),
        movement: if flagged.is_empty() {
            Movement::Unchanged
        } else {
            Movement::Higher
        },
        canary_over_limit: false,
        baseline_degraded: false,
        nodata: false,
        result,
    })
}

fn fill(
    result: &mut grayscope_core::verdict::CheckResult,
    canary: (u64, u64),
    baseline: (u64, u64),
) {
    let per_thousand = |(k, n): (u64, u64)| (n > 0).then(|| 1000.0 * k as f64 / n as f64);
    result.canary.samples = canary.1;
    result.baseline.samples = baseline.1;
    result.canary.value = per_thousand(canary);
    result.baseline.value = per_thousand(baseline);
    result.canary.extra = vec![("events".into(), canary.0 as f64)];
    result.baseline.extra = vec![("events".into(), baseline.0 as f64)];
}

fn describe(
    result: &mut grayscope_core::verdict::CheckResult,
    test: &RateComparison,
    what: &str,
    canary: (u64, u64),
    baseline: (u64, u64),
) {
    result.effect = test.ratio.as_ref().map(|r| r.estimate);
    result.interval = test
        .ratio
        .as_ref()
        .map(|r| (r.interval.low, r.interval.high));
    let ratio = match &test.ratio {
        Some(r) => format!(
            "ratio {:.2}, interval [{:.2}, {:.2}]",
            r.estimate, r.interval.low, r.interval.high
        ),
        None => "the baseline had none".to_owned(),
    };
    result.reason = format!(
        "{what}: canary {} in {} lines, baseline {} in {} lines; {ratio}",
        canary.0, canary.1, baseline.0, baseline.1
    );
}
