//! The `verdicts` table: one row per judgement the judge made.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `time` | timestamp | the evaluation's time (end of the window judged) |
//! | `window_start` | timestamp | start of the window judged |
//! | `rollout` | text | the rollout |
//! | `cohort` | text | the canary cohort judged |
//! | `baseline` | text | the cohort it was compared with |
//! | `stage` | text | the stage the canary is in after this judgement |
//! | `status` | text | `running`, `paused`, `frozen`, `completed`, `rolled_back` |
//! | `verdict` | text | `promote`, `hold`, `rollback` |
//! | `action` | text | `promote`, `hold`, `rollback`, `scale_out`, `degraded_path`, `rate_limit` |
//! | `score` | float64 | weighted share of passing checks, 0–100 |
//! | `sequence` | int64 | the canary's signal sequence number after this judgement |
//! | `changed` | bool | whether this judgement changed verdict, stage or status (a signal went out) |
//! | `reasons` | list of text | why, most important first |
//! | `checks` | list of struct | per check: `name`, `level`, `outcome`, `critical`, `test`, `p_value`, `effect`, `interval_low`, `interval_high`, `baseline_value`, `canary_value`, `baseline_samples`, `canary_samples`, `reason` |
//! | `judgement` | text | the whole judgement as JSON, with each check's SQL and evidence |

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use super::{field, timestamp_type};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        field("time", timestamp_type(), false),
        field("window_start", timestamp_type(), false),
        field("rollout", DataType::Utf8, false),
        field("cohort", DataType::Utf8, false),
        field("baseline", DataType::Utf8, false),
        field("stage", DataType::Utf8, false),
        field("status", DataType::Utf8, false),
        field("verdict", DataType::Utf8, false),
        field("action", DataType::Utf8, false),
        field("score", DataType::Float64, false),
        field("sequence", DataType::Int64, false),
        field("changed", DataType::Boolean, false),
        field(
            "reasons",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))),
            false,
        ),
        field("checks", DataType::List(Arc::new(check_item())), false),
        field("judgement", DataType::Utf8, false),
    ]))
});

/// The `verdicts` schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The fields of one check in `checks`.
pub fn check_fields() -> Fields {
    Fields::from(vec![
        field("name", DataType::Utf8, false),
        field("level", DataType::Utf8, false),
        field("outcome", DataType::Utf8, false),
        field("critical", DataType::Boolean, false),
        field("test", DataType::Utf8, false),
        field("p_value", DataType::Float64, true),
        field("effect", DataType::Float64, true),
        field("interval_low", DataType::Float64, true),
        field("interval_high", DataType::Float64, true),
        field("baseline_value", DataType::Float64, true),
        field("canary_value", DataType::Float64, true),
        field("baseline_samples", DataType::Int64, false),
        field("canary_samples", DataType::Int64, false),
        field("reason", DataType::Utf8, false),
    ])
}

/// The list item field of `checks`.
pub fn check_item() -> Field {
    Field::new("item", DataType::Struct(check_fields()), false)
}
