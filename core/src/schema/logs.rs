//! The `logs` table: one row per log record.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `time` | timestamp | the record's time, else its observed time, else the time it was received |
//! | `observed_time` | timestamp, null if unset | when a collector saw it |
//! | `trace_id`, `span_id` | text, null if unset | lowercase hex |
//! | `severity_number` | int32 | 0 unspecified, 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error, 21–24 fatal |
//! | `severity_text` | text, null if empty | as sent |
//! | `body` | text, null if absent | strings as sent; other values as JSON, key-value lists with their keys in sorted order (they are maps, which SDKs send in any order) |
//! | `service` | text | resource `service.name`, else `unknown_service` |
//! | `event_name` | text, null if empty | |
//! | `template_id` | text, null if no body | the body's log template at ingest: 16 hex digits, a hash of the template text, so the same on every instance and after a restart; joins `templates.id` |
//! | `template` | text, null if no body | that template's text, variables written `<*>`; if it later generalises, `templates` maps its id to the replacement (`parent_id`, `current_id`) |
//! | `rules` | list of text | names of the `[[log_rules]]` whose pattern matches the body, in configuration order; empty when none does |
//! | `attributes`, `resource_attributes`, `scope_*` | | as sent |
//! | `cohort`, `version` | text | decided at ingest |

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{field, provenance_fields, timestamp_type};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        field("time", timestamp_type(), false),
        field("observed_time", timestamp_type(), true),
        field("trace_id", DataType::Utf8, true),
        field("span_id", DataType::Utf8, true),
        field("severity_number", DataType::Int32, false),
        field("severity_text", DataType::Utf8, true),
        field("body", DataType::Utf8, true),
        field("service", DataType::Utf8, false),
        field("event_name", DataType::Utf8, true),
        field("template_id", DataType::Utf8, true),
        field("template", DataType::Utf8, true),
        field("rules", rules_type(), true),
    ];
    fields.extend(provenance_fields());
    Arc::new(Schema::new(fields))
});

/// `List<Utf8>`, the type of the `rules` column. The column is nullable only
/// so that rows stored before it existed read as null.
pub fn rules_type() -> DataType {
    DataType::List(Arc::new(Field::new(RULES_ITEM, DataType::Utf8, false)))
}

/// Name of the item field of [`rules_type`] (Arrow's default list item name).
pub const RULES_ITEM: &str = "item";

/// The `logs` schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}
