//! L1 request rate: is the canary still getting its share of the traffic?
//! A canary whose pods crash or fail readiness loses requests to the
//! baseline. The check compares the canary's share of requests in the
//! window with its share in the window before (Fisher's exact test), and
//! fails when it dropped by more than `max_drop` of what it was.

use grayscope_core::verdict::{Direction, Level, Outcome};

use super::{Context, Finding, blank};
use crate::error::Result;
use crate::sql::{Window, ints, texts};
use crate::stats::{Movement, Proportion, compare_proportions};

/// (canary, baseline) request counts in `window`.
async fn counts(cx: &Context<'_>, window: Window) -> Result<(u64, u64)> {
    let answer = cx
        .aggregate(&super::error_rate::requests(cx), window)
        .await?;
    let cohorts = texts(&answer, "cohort")?;
    let requests = ints(&answer, "requests")?;
    let (mut canary, mut baseline) = (0, 0);
    for (cohort, n) in cohorts.iter().zip(requests) {
        if cohort.as_deref() == Some(cx.canary) {
            canary = n.max(0) as u64;
        } else {
            baseline = n.max(0) as u64;
        }
    }
    Ok((canary, baseline))
}

pub(super) async fn run(cx: &Context<'_>) -> Result<Finding> {
    let check = &cx.rollout.checks.request_rate;
    let direction = Direction::LowerIsWorse;
    let mut result = blank(
        cx,
        "request_rate",
        Level::L1,
        direction,
        false,
        "fisher_exact",
    );
    let requests = super::error_rate::requests(cx);
    result.sql = vec![requests.sql(cx.window), requests.sql(cx.window.previous())];
    let (cn, bn) = counts(cx, cx.window).await?;
    let (pc, pb) = counts(cx, cx.window.previous()).await?;
    let seconds = cx.window.seconds().max(1e-9);
    result.canary.samples = cn;
    result.baseline.samples = bn;
    result.canary.value = Some(cn as f64 / seconds);
    result.baseline.value = Some(bn as f64 / seconds);
    result.canary.extra = vec![("previous_window_requests".into(), pc as f64)];
    result.baseline.extra = vec![("previous_window_requests".into(), pb as f64)];

    let min = 20;
    if pc < min || cn + bn < min {
        result.outcome = Outcome::NoData;
        result.reason = format!(
            "the canary served {pc} requests in the previous window and the cohorts {} now; {min} needed to compare shares",
            cn + bn
        );
        return Ok(Finding::no_data(result));
    }
    let (Ok(now), Ok(before)) = (Proportion::new(cn, cn + bn), Proportion::new(pc, pc + pb)) else {
        return Ok(Finding::no_data(result));
    };
    let alternative = crate::judge::alternative(direction);
    let Some(test) = compare_proportions(now, before, alternative, cx.confidence) else {
        return Ok(Finding::no_data(result));
    };
    let share_now = cn as f64 / (cn + bn) as f64;
    let share_before = pc as f64 / (pc + pb).max(1) as f64;
    let drop = if share_before > 0.0 {
        1.0 - share_now / share_before
    } else {
        0.0
    };
    result.effect = Some(-drop);
    result.interval = Some((test.difference.interval.low, test.difference.interval.high));
    let material = drop >= check.max_drop && test.difference.interval.high < 0.0;
    result.reason = format!(
        "canary share of requests {:.2}% now, {:.2}% in the previous window ({:+.0}%); fails past a {:.0}% drop",
        100.0 * share_now,
        100.0 * share_before,
        -100.0 * drop,
        100.0 * check.max_drop
    );
    Ok(Finding {
        p_value: Some(test.p_value),
        material,
        movement: if drop > 0.0 {
            Movement::Lower
        } else {
            test.movement
        },
        canary_over_limit: false,
        baseline_degraded: false,
        nodata: false,
        result,
    })
}
