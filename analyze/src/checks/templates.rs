//! L2 templates: kinds of log lines the canary writes that the baseline
//! does not, or far less. For every template of warn-or-worse records the
//! canary wrote at least `min_count` times, its rate per log line is
//! compared with the baseline's (the exact conditional test for two Poisson
//! rates); the p-values are corrected across templates (Holm), and a
//! template counts when it is significant and its rate ratio is at least
//! `min_ratio` (a template the baseline never wrote has an infinite ratio).

use std::collections::BTreeMap;

use grayscope_core::verdict::{Direction, Evidence, Level};

use super::{Context, Finding, blank, enough, example_lines, log_lines, per_cohort};
use crate::error::Result;
use crate::slices::Aggregate;
use crate::sql::{ints, quote, texts};
use crate::stats::multiple_testing::holm;
use crate::stats::{Movement, Rate, compare_rates};

#[derive(Debug, Default, Clone)]
struct Counts {
    template: String,
    canary: u64,
    baseline: u64,
}

pub(super) async fn run(cx: &Context<'_>) -> Result<Finding> {
    let check = &cx.rollout.checks.templates;
    let direction = Direction::HigherIsWorse;
    let mut result = blank(
        cx,
        "templates",
        Level::L2,
        direction,
        check.critical,
        "poisson_rate_ratio",
    );
    let lines = log_lines(cx);
    // The template's text is a key: the miner may widen a template's text
    // while its id stays, and the counts of both texts add up below.
    let per_template = Aggregate {
        keys: ["cohort", "template_id", "template"]
            .map(|k| (k.to_owned(), k.to_owned()))
            .to_vec(),
        sums: vec![("count(*)".into(), "n".into())],
        from: "logs".into(),
        filter: format!(
            "severity_number >= {} AND template_id IS NOT NULL AND {}",
            check.min_severity,
            cx.cohorts()
        ),
    };
    result.sql = vec![lines.sql(cx.window), per_template.sql(cx.window)];

    let (canary_lines, baseline_lines) = per_cohort(cx, &lines, "lines").await?;
    if !enough(
        &mut result,
        (canary_lines, baseline_lines),
        check.min_samples,
        "log lines",
    ) {
        return Ok(Finding::no_data(result));
    }

    let answer = cx.aggregate(&per_template, cx.window).await?;
    let mut by_template: BTreeMap<String, Counts> = BTreeMap::new();
    let cohorts = texts(&answer, "cohort")?;
    let ids = texts(&answer, "template_id")?;
    let templates = texts(&answer, "template")?;
    let counts = ints(&answer, "n")?;
    for i in 0..counts.len() {
        let Some(id) = ids[i].clone() else { continue };
        let entry = by_template.entry(id).or_default();
        if let Some(text) = &templates[i] {
            entry.template.clone_from(text);
        }
        if cohorts[i].as_deref() == Some(cx.canary) {
            entry.canary += counts[i].max(0) as u64;
        } else {
            entry.baseline += counts[i].max(0) as u64;
        }
    }

    // One test per template the canary wrote often enough.
    let alternative = crate::judge::alternative(direction);
    let candidates: Vec<(String, Counts)> = by_template
        .into_iter()
        .filter(|(_, c)| c.canary >= check.min_count)
        .collect();
    let mut tests = Vec::with_capacity(candidates.len());
    for (_, counts) in &candidates {
        let (Ok(canary), Ok(baseline)) = (
            Rate::new(counts.canary, canary_lines as f64),
            Rate::new(counts.baseline, baseline_lines as f64),
        ) else {
            continue;
        };
        tests.push(compare_rates(canary, baseline, alternative, cx.confidence));
    }
    let adjusted = holm(&tests.iter().map(|t| t.p_value).collect::<Vec<_>>());
    let mut flagged: Vec<(usize, f64)> = Vec::new();
    for (i, test) in tests.iter().enumerate() {
        let ratio_ok = match &test.ratio {
            Some(ratio) => ratio.estimate >= check.min_ratio && ratio.interval.low > 1.0,
            // The baseline never wrote it.
            None => true,
        };
        if adjusted[i] < cx.rollout.alpha && ratio_ok {
            flagged.push((i, adjusted[i]));
        }
    }
    flagged.sort_by(|a, b| a.1.total_cmp(&b.1));

    let best = adjusted.iter().copied().fold(1.0_f64, f64::min);
    result.statistic = Some(flagged.len() as f64);
    result.canary.extra = vec![("templates_tested".into(), tests.len() as f64)];
    let per_thousand = |count: u64, lines: u64| 1000.0 * count as f64 / lines.max(1) as f64;
    if let Some(&(first, _)) = flagged.first() {
        let counts = &candidates[first].1;
        result.canary.value = Some(per_thousand(counts.canary, canary_lines));
        result.baseline.value = Some(per_thousand(counts.baseline, baseline_lines));
        result.effect = tests[first].ratio.as_ref().map(|r| r.estimate);
        result.interval = tests[first]
            .ratio
            .as_ref()
            .map(|r| (r.interval.low, r.interval.high));
    }
    result.reason = if flagged.is_empty() {
        format!(
            "{} templates the canary wrote at least {} times; none significantly more often than the baseline by {}x",
            tests.len(),
            check.min_count,
            check.min_ratio
        )
    } else {
        let list: Vec<String> = flagged
            .iter()
            .take(3)
            .map(|(i, _)| {
                let c = &candidates[*i].1;
                format!(
                    "{:?} (canary {}, baseline {})",
                    c.template, c.canary, c.baseline
                )
            })
            .collect();
        format!(
            "{} template(s) the canary writes far more than the baseline: {}",
            flagged.len(),
            list.join("; ")
        )
    };

    // Evidence: each flagged template (up to 3) with three example lines.
    for &(i, _) in flagged.iter().take(3) {
        let (id, counts) = &candidates[i];
        result.evidence.push(Evidence {
            kind: "template".into(),
            summary: format!(
                "{} — canary {} of {canary_lines} lines, baseline {} of {baseline_lines}",
                counts.template, counts.canary, counts.baseline
            ),
            trace_id: None,
        });
        example_lines(cx, &mut result, &format!("template_id = {}", quote(id))).await?;
    }

    Ok(Finding {
        p_value: (!tests.is_empty()).then_some(best),
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
