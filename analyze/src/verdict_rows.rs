//! Judgements as rows of the `verdicts` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListArray, ListBuilder, StringBuilder,
    StructArray, TimestampNanosecondArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use grayscope_core::schema::verdicts;
use grayscope_core::verdict::Judgement;

use crate::error::{Error, Result};
use crate::stage::{Canary, Status};

/// One judgement and the state it left the canary in.
pub struct VerdictRow<'a> {
    /// The judgement (its stage, verdict and action are final).
    pub judgement: &'a Judgement,
    /// The canary's state after it.
    pub canary: &'a Canary,
    /// Whether the judgement changed the canary (a signal went out).
    pub changed: bool,
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Frozen => "frozen",
        Status::Completed => "completed",
        Status::RolledBack => "rolled_back",
    }
}

/// Builds a `verdicts` batch.
pub fn batch(rows: &[VerdictRow<'_>]) -> Result<RecordBatch> {
    let n = rows.len();
    let text = |f: &dyn Fn(&VerdictRow<'_>) -> String| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for row in rows {
            b.append_value(f(row));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&VerdictRow<'_>) -> i64| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(rows.iter().map(f)).with_timezone("UTC"),
        )
    };
    let mut score = Float64Builder::with_capacity(n);
    let mut sequence = Int64Builder::with_capacity(n);
    let mut changed = BooleanBuilder::with_capacity(n);
    let mut reasons = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
        "item",
        DataType::Utf8,
        false,
    ));
    for row in rows {
        score.append_value(row.judgement.score);
        sequence.append_value(row.canary.sequence as i64);
        changed.append_value(row.changed);
        for reason in &row.judgement.reasons {
            reasons.values().append_value(reason);
        }
        reasons.append(true);
    }

    // checks: a list of structs, built column by column.
    let mut offsets = vec![0i32];
    let (mut name, mut level, mut outcome, mut test, mut reason) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut critical = BooleanBuilder::new();
    let (mut p, mut effect, mut low, mut high, mut bv, mut cv) = (
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
    );
    let (mut bs, mut cs) = (Int64Builder::new(), Int64Builder::new());
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    for row in rows {
        for check in &row.judgement.checks {
            name.append_value(&check.name);
            level.append_value(check.level.to_string());
            outcome.append_value(check.outcome.to_string());
            critical.append_value(check.critical);
            test.append_value(&check.test);
            p.append_option(finite(check.p_value));
            effect.append_option(finite(check.effect));
            low.append_option(finite(check.interval.map(|i| i.0)));
            high.append_option(finite(check.interval.map(|i| i.1)));
            bv.append_option(finite(check.baseline.value));
            cv.append_option(finite(check.canary.value));
            bs.append_value(check.baseline.samples as i64);
            cs.append_value(check.canary.samples as i64);
            reason.append_value(&check.reason);
        }
        offsets.push(offsets.last().copied().unwrap_or(0) + row.judgement.checks.len() as i32);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(name.finish()),
        Arc::new(level.finish()),
        Arc::new(outcome.finish()),
        Arc::new(critical.finish()),
        Arc::new(test.finish()),
        Arc::new(p.finish()),
        Arc::new(effect.finish()),
        Arc::new(low.finish()),
        Arc::new(high.finish()),
        Arc::new(bv.finish()),
        Arc::new(cv.finish()),
        Arc::new(bs.finish()),
        Arc::new(cs.finish()),
        Arc::new(reason.finish()),
    ];
    let internal =
        |e: arrow::error::ArrowError| Error::Internal(format!("building a verdicts batch: {e}"));
    let checks = StructArray::try_new(verdicts::check_fields(), columns, None).map_err(internal)?;
    let checks = ListArray::try_new(
        Arc::new(verdicts::check_item()),
        OffsetBuffer::new(offsets.into()),
        Arc::new(checks),
        None,
    )
    .map_err(internal)?;

    let stage_of = |row: &VerdictRow<'_>| row.judgement.stage.clone();
    RecordBatch::try_new(
        verdicts::schema(),
        vec![
            times(&|r| r.judgement.window_end),
            times(&|r| r.judgement.window_start),
            text(&|r| r.judgement.rollout.clone()),
            text(&|r| r.judgement.cohort.clone()),
            text(&|r| r.judgement.baseline.clone()),
            text(&stage_of),
            text(&|r| status_name(r.canary.status).to_owned()),
            text(&|r| r.judgement.verdict.to_string()),
            text(&|r| r.judgement.action.to_string()),
            Arc::new(score.finish()),
            Arc::new(sequence.finish()),
            Arc::new(changed.finish()),
            Arc::new(reasons.finish()),
            Arc::new(checks),
            text(&|r| serde_json::to_string(r.judgement).unwrap_or_default()),
        ],
    )
    .map_err(internal)
}
