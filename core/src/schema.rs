//! The Arrow schema of every table, defined once.
//!
//! Ingest builds record batches in exactly these shapes, the store persists
//! them and SQL reads them. Conventions shared by all tables:
//!
//! - `time` is the record's own timestamp, `Timestamp(ns, "UTC")`; it is the
//!   partitioning and pruning column.
//! - `trace_id` / `span_id` are lowercase hex text (32 / 16 digits), so SQL
//!   can match them against ids copied from any UI.
//! - Attribute maps are `Map<Utf8, Utf8>`: every OTLP value is kept as text
//!   (ints in decimal, doubles in shortest round-trip form, bytes in base64,
//!   arrays and maps as JSON). `attributes['http.route']` reads one.
//! - Frequently used attributes are *also* promoted to typed columns
//!   (`http_route`, `http_status_code`, …); the map stays complete.
//! - `cohort` and `version` are decided once at ingest.

pub mod logs;
pub mod metrics;
pub mod spans;
pub mod verdicts;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, SchemaRef, TimeUnit};

/// The tables grayscope keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per span.
    Spans,
    /// One row per log record.
    Logs,
    /// One row per metric data point.
    Metrics,
    /// One row per judgement of a canary.
    Verdicts,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 4] = [Table::Spans, Table::Logs, Table::Metrics, Table::Verdicts];

    /// The table's SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Logs => "logs",
            Table::Metrics => "metrics",
            Table::Verdicts => "verdicts",
        }
    }

    /// The table's Arrow schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Spans => spans::schema(),
            Table::Logs => logs::schema(),
            Table::Metrics => metrics::schema(),
            Table::Verdicts => verdicts::schema(),
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Table {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Table::ALL
            .into_iter()
            .find(|table| table.name() == name)
            .ok_or_else(|| format!("no table named {name:?}"))
    }
}

/// `Timestamp(ns, "UTC")`, the type of every time column.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Name of the map entries field of [`attributes_type`].
pub const MAP_ENTRIES: &str = "entries";
/// Name of the map keys field of [`attributes_type`].
pub const MAP_KEYS: &str = "keys";
/// Name of the map values field of [`attributes_type`].
pub const MAP_VALUES: &str = "values";

/// `Map<Utf8, Utf8>`, the type of every attribute column. Field names are
/// those of arrow's `MapBuilder`, so builders produce it without renaming.
pub fn attributes_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new(MAP_KEYS, DataType::Utf8, false),
        Field::new(MAP_VALUES, DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
        false,
    )
}

/// Shorthand for a field.
fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// The resource, scope and cohort columns that every table ends with.
fn provenance_fields() -> Vec<Field> {
    vec![
        field("attributes", attributes_type(), false),
        field("resource_attributes", attributes_type(), false),
        field("scope_name", DataType::Utf8, true),
        field("scope_version", DataType::Utf8, true),
        field("scope_attributes", attributes_type(), false),
        field("cohort", DataType::Utf8, false),
        field("version", DataType::Utf8, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_time_and_cohort_columns() {
        for table in Table::ALL {
            let schema = table.schema();
            assert_eq!(
                schema.field_with_name("time").unwrap().data_type(),
                &timestamp_type()
            );
            assert!(!schema.field_with_name("cohort").unwrap().is_nullable());
            assert!(!schema.field_with_name("time").unwrap().is_nullable());
            assert_eq!(table.name().parse::<Table>().unwrap(), table);
        }
    }

    #[test]
    fn column_names_are_unique() {
        for table in Table::ALL {
            let schema = table.schema();
            let mut names: Vec<_> = schema.fields().iter().map(|f| f.name()).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), schema.fields().len(), "{table}");
        }
    }
}
