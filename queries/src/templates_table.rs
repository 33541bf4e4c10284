//! The `templates` table: every log template the miner knows, computed at
//! scan time.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `id` | text | 16 hex digits, a hash of the template text; what `logs.template_id` holds |
//! | `template` | text | the template, variables written `<*>` |
//! | `first_seen`, `last_seen` | timestamp | times of the first and latest log record of this template (or of templates it generalised) |
//! | `count` | int64 | log records this template stands for: its own, plus those of the templates it generalised |
//! | `parent_id` | text, null for a current template | the more general template that replaced this one |
//! | `current_id` | text, null if unknown | the current template this id leads to: itself, or the end of its `parent_id` chain (null when that chain was evicted) |
//!
//! The miner lives in ingest and this crate may not depend on it (DESIGN §2:
//! dependencies point down the data flow), so the table reads a
//! [`TemplateSource`] that the binary implements over the miner. Without one
//! the table is empty. The miner keeps a bounded number of templates and
//! lineage records (`[patterns] max_templates`, `max_lineage`): ids of
//! evicted templates stay in `logs` but leave this table.
//!
//! ```sql
//! SELECT l.cohort, t.template, count(*) AS n
//! FROM logs l JOIN templates t ON l.template_id = t.id
//! GROUP BY l.cohort, t.template
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use grayscope_core::schema::timestamp_type;

use crate::live_table::LiveTable;

/// The table's SQL name.
pub const TABLE_NAME: &str = "templates";

/// One template, as a [`TemplateSource`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// The template's id (shown as 16 lowercase hex digits).
    pub id: u64,
    /// The template text.
    pub template: Arc<str>,
    /// Time of its first log record, Unix nanoseconds.
    pub first_seen_unix_nano: u64,
    /// Time of its latest log record, Unix nanoseconds.
    pub last_seen_unix_nano: u64,
    /// Log records it stands for.
    pub count: u64,
    /// The template that replaced it, for a generalised one.
    pub parent_id: Option<u64>,
    /// The current template its lineage ends in (itself when current).
    pub current_id: Option<u64>,
}

/// Where the `templates` table reads its rows: the template miner of a
/// running server.
pub trait TemplateSource: Send + Sync + std::fmt::Debug {
    /// Every template known now. Called once per scan, on a blocking
    /// thread.
    fn templates(&self) -> Vec<TemplateRow>;
}

/// A source with no templates.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTemplates;

impl TemplateSource for NoTemplates {
    fn templates(&self) -> Vec<TemplateRow> {
        Vec::new()
    }
}

/// The table's schema.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("template", DataType::Utf8, false),
        Field::new("first_seen", timestamp_type(), false),
        Field::new("last_seen", timestamp_type(), false),
        Field::new("count", DataType::Int64, false),
        Field::new("parent_id", DataType::Utf8, true),
        Field::new("current_id", DataType::Utf8, true),
    ]))
}

/// The `templates` table over `source`, read at every scan.
pub fn provider(source: Arc<dyn TemplateSource>) -> Arc<dyn TableProvider> {
    LiveTable::with_schema(schema(), move || build(&source.templates(), schema()))
}

/// An id as `logs.template_id` writes it.
fn id_text(id: u64) -> String {
    format!("{id:016x}")
}

fn build(rows: &[TemplateRow], schema: SchemaRef) -> Result<RecordBatch> {
    let times = |f: fn(&TemplateRow) -> u64| -> ArrayRef {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(
                rows.iter().map(|r| i64::try_from(f(r)).unwrap_or(i64::MAX)),
            )
            .with_timezone("UTC"),
        )
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| id_text(r.id)),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| &*r.template),
        )),
        times(|r| r.first_seen_unix_nano),
        times(|r| r.last_seen_unix_nano),
        Arc::new(Int64Array::from_iter_values(
            rows.iter()
                .map(|r| i64::try_from(r.count).unwrap_or(i64::MAX)),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.parent_id.map(id_text)),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.current_id.map(id_text)),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueryEngine;

    #[derive(Debug)]
    struct Fixed(Vec<TemplateRow>);

    impl TemplateSource for Fixed {
        fn templates(&self) -> Vec<TemplateRow> {
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn the_table_answers_from_its_source_at_every_scan() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = grayscope_store::Store::open(dir.path(), Default::default())
            .await
            .unwrap();
        let engine = QueryEngine::new(store.clone()).unwrap();
        let empty = engine
            .sql("SELECT count(*) AS n FROM templates")
            .await
            .unwrap();
        assert_eq!(empty.num_rows(), 1);

        let rows = vec![
            TemplateRow {
                id: 0xab,
                template: "user <*> logged in".into(),
                first_seen_unix_nano: 1_764_000_000_000_000_000,
                last_seen_unix_nano: 1_764_000_001_000_000_000,
                count: 7,
                parent_id: None,
                current_id: Some(0xab),
            },
            TemplateRow {
                id: 0x0102_0304_0506_0708,
                template: "user alice logged in".into(),
                first_seen_unix_nano: 1_764_000_000_000_000_000,
                last_seen_unix_nano: 1_764_000_000_000_000_000,
                count: 1,
                parent_id: Some(0xab),
                current_id: Some(0xab),
            },
        ];
        let engine = QueryEngine::new(store)
            .unwrap()
            .with_templates(Arc::new(Fixed(rows)))
            .unwrap();
        let result = engine
            .sql(
                "SELECT id, parent_id, current_id, count, CAST(first_seen AS BIGINT) AS t \
                 FROM templates ORDER BY count",
            )
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&result.batches)
            .unwrap()
            .to_string();
        assert!(
            text.contains(
                "| 0102030405060708 | 00000000000000ab | 00000000000000ab | 1     | 1764000000000000000 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| 00000000000000ab |                  | 00000000000000ab | 7     |"),
            "{text}"
        );
        assert_eq!(
            result.schema.field_with_name("t").unwrap().data_type(),
            &DataType::Int64
        );
        let typed = engine
            .sql("SELECT first_seen FROM templates")
            .await
            .unwrap();
        assert_eq!(typed.schema.field(0).data_type(), &timestamp_type());
    }
}
