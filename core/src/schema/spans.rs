//! The `spans` table: one row per span.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `time` | timestamp | span start |
//! | `end_time` | timestamp | span end |
//! | `duration_ns` | int64 | `end_time - time`, in nanoseconds (0 if the end precedes the start) |
//! | `trace_id`, `span_id` | text | lowercase hex |
//! | `parent_span_id` | text, null for roots | lowercase hex |
//! | `trace_state` | text, null if empty | W3C tracestate |
//! | `service` | text | resource `service.name`, else `unknown_service` |
//! | `name` | text | span name |
//! | `kind` | text | `unspecified`, `internal`, `server`, `client`, `producer`, `consumer` |
//! | `status_code` | text | `unset`, `ok`, `error` |
//! | `status_message` | text, null if empty | |
//! | `http_route`, `http_method` | text | promoted `http.route`, `http.request.method` (or `http.method`) |
//! | `http_status_code` | int32 | promoted `http.response.status_code` (or `http.status_code`) |
//! | `rpc_method` | text | promoted `rpc.method` |
//! | `peer_service` | text | promoted `peer.service` (or `server.address`) |
//! | `events` | list of struct | `time`, `name`, `attributes` |
//! | `links` | list of struct | `trace_id`, `span_id`, `trace_state`, `attributes` |
//! | `attributes`, `resource_attributes`, `scope_*` | | as sent |
//! | `cohort`, `version` | text | decided at ingest; `version` is resource `service.version` |

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use super::{attributes_type, field, provenance_fields, timestamp_type};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        field("time", timestamp_type(), false),
        field("end_time", timestamp_type(), false),
        field("duration_ns", DataType::Int64, false),
        field("trace_id", DataType::Utf8, false),
        field("span_id", DataType::Utf8, false),
        field("parent_span_id", DataType::Utf8, true),
        field("trace_state", DataType::Utf8, true),
        field("service", DataType::Utf8, false),
        field("name", DataType::Utf8, false),
        field("kind", DataType::Utf8, false),
        field("status_code", DataType::Utf8, false),
        field("status_message", DataType::Utf8, true),
        field("http_route", DataType::Utf8, true),
        field("http_method", DataType::Utf8, true),
        field("http_status_code", DataType::Int32, true),
        field("rpc_method", DataType::Utf8, true),
        field("peer_service", DataType::Utf8, true),
        field("events", DataType::List(Arc::new(event_item())), false),
        field("links", DataType::List(Arc::new(link_item())), false),
    ];
    fields.extend(provenance_fields());
    Arc::new(Schema::new(fields))
});

/// The `spans` schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The fields of one span event.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        field("time", timestamp_type(), false),
        field("name", DataType::Utf8, false),
        field("attributes", attributes_type(), false),
    ])
}

/// The fields of one span link.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        field("trace_id", DataType::Utf8, false),
        field("span_id", DataType::Utf8, false),
        field("trace_state", DataType::Utf8, true),
        field("attributes", attributes_type(), false),
    ])
}

/// The list item field of `events`.
pub fn event_item() -> Field {
    Field::new("item", DataType::Struct(event_fields()), false)
}

/// The list item field of `links`.
pub fn link_item() -> Field {
    Field::new("item", DataType::Struct(link_fields()), false)
}
