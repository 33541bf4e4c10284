//! The `metrics` table: one row per metric data point, every kind in one table.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `time` | timestamp | the point's time |
//! | `start_time` | timestamp, null if unset | start of a cumulative or delta interval |
//! | `service` | text | resource `service.name`, else `unknown_service` |
//! | `name`, `description`, `unit` | text | the metric's |
//! | `kind` | text | `gauge`, `sum`, `histogram`, `exponential_histogram`, `summary` |
//! | `temporality` | text | `delta` or `cumulative` (sums and histograms), else null |
//! | `is_monotonic` | bool | sums only |
//! | `value` | float64 | gauges and sums (integer points converted) |
//! | `count`, `sum`, `min`, `max` | | histograms and summaries |
//! | `bucket_counts`, `explicit_bounds` | lists | histograms |
//! | `scale`, `zero_count`, `zero_threshold`, `positive_offset`, `positive_bucket_counts`, `negative_offset`, `negative_bucket_counts` | | exponential histograms |
//! | `quantiles` | list of struct | summaries: `quantile`, `value` |
//! | `flags` | uint32 | OTLP data point flags (1 = no recorded value) |
//! | `exemplars` | list of struct | `time`, `value`, `trace_id`, `span_id`, `attributes`, `cohort` (the cohort of the exemplar's trace, decided at ingest: its gray flag, else the cohort a rule gave the trace's spans, else `baseline`) |
//! | `attributes`, `resource_attributes`, `scope_*` | | as sent |
//! | `cohort`, `version` | text | decided at ingest |

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use super::{attributes_type, field, provenance_fields, timestamp_type};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let u64_list = || DataType::List(Arc::new(Field::new("item", DataType::UInt64, false)));
    let mut fields = vec![
        field("time", timestamp_type(), false),
        field("start_time", timestamp_type(), true),
        field("service", DataType::Utf8, false),
        field("name", DataType::Utf8, false),
        field("description", DataType::Utf8, true),
        field("unit", DataType::Utf8, true),
        field("kind", DataType::Utf8, false),
        field("temporality", DataType::Utf8, true),
        field("is_monotonic", DataType::Boolean, true),
        field("value", DataType::Float64, true),
        field("count", DataType::UInt64, true),
        field("sum", DataType::Float64, true),
        field("min", DataType::Float64, true),
        field("max", DataType::Float64, true),
        field("bucket_counts", u64_list(), true),
        field(
            "explicit_bounds",
            DataType::List(Arc::new(Field::new("item", DataType::Float64, false))),
            true,
        ),
        field("scale", DataType::Int32, true),
        field("zero_count", DataType::UInt64, true),
        field("zero_threshold", DataType::Float64, true),
        field("positive_offset", DataType::Int32, true),
        field("positive_bucket_counts", u64_list(), true),
        field("negative_offset", DataType::Int32, true),
        field("negative_bucket_counts", u64_list(), true),
        field("quantiles", DataType::List(Arc::new(quantile_item())), true),
        field("flags", DataType::UInt32, false),
        field(
            "exemplars",
            DataType::List(Arc::new(exemplar_item())),
            false,
        ),
    ];
    fields.extend(provenance_fields());
    Arc::new(Schema::new(fields))
});

/// The `metrics` schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The fields of one summary quantile.
pub fn quantile_fields() -> Fields {
    Fields::from(vec![
        field("quantile", DataType::Float64, false),
        field("value", DataType::Float64, false),
    ])
}

/// The fields of one exemplar.
pub fn exemplar_fields() -> Fields {
    Fields::from(vec![
        field("time", timestamp_type(), false),
        field("value", DataType::Float64, true),
        field("trace_id", DataType::Utf8, true),
        field("span_id", DataType::Utf8, true),
        field("attributes", attributes_type(), false),
        field("cohort", DataType::Utf8, false),
    ])
}

/// The list item field of `quantiles`.
pub fn quantile_item() -> Field {
    Field::new("item", DataType::Struct(quantile_fields()), false)
}

/// The list item field of `exemplars`.
pub fn exemplar_item() -> Field {
    Field::new("item", DataType::Struct(exemplar_fields()), false)
}
