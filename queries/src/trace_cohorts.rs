//! Joining by trace id at query time: views that give log records and
//! metric exemplars the cohort a rule gave their trace's spans, for what the
//! ingest holding window missed.
//!
//! - `trace_cohorts`: one row per trace with a span that is not `baseline`:
//!   `trace_id`, `cohort` and `version` of its earliest such span (ties
//!   broken by span id), `first_time`, `labelled_spans`.
//! - `logs_with_trace_cohort`: every column of `logs`, where a record that
//!   ingest labelled `baseline` takes its trace's cohort (and, when it has
//!   no `version`, its trace's version); plus `ingest_cohort`, the cohort
//!   stored at ingest.
//! - `exemplars_with_trace_cohort`: one row per exemplar — its `time`,
//!   `value`, `trace_id`, `span_id`, `attributes`, `cohort` (stored, or its
//!   trace's when stored as `baseline`), `ingest_cohort` — and its data
//!   point's `point_time`, `service`, `name`, `kind`, `point_cohort`,
//!   `version`.
//!
//! A record's own decision (its gray flag, a rule on its own attributes) is
//! never overridden; only `baseline` is refined. The views read the spans
//! table whole, so they cost a scan of `spans` per query.

use std::sync::Arc;

use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use grayscope_core::schema::logs;

/// View names.
pub const TRACE_COHORTS: &str = "trace_cohorts";
/// View of logs with their trace's cohort.
pub const LOGS_WITH_TRACE_COHORT: &str = "logs_with_trace_cohort";
/// View of exemplars with their trace's cohort.
pub const EXEMPLARS_WITH_TRACE_COHORT: &str = "exemplars_with_trace_cohort";

fn trace_cohorts_sql() -> String {
    "SELECT trace_id, \
            first_value(cohort ORDER BY time, span_id) AS cohort, \
            first_value(version ORDER BY time, span_id) AS version, \
            min(time) AS first_time, \
            count(*) AS labelled_spans \
     FROM spans WHERE cohort <> 'baseline' GROUP BY trace_id"
        .to_owned()
}

/// `logs` columns in order, `cohort` and `version` refined.
fn logs_sql() -> String {
    let inherit = "l.cohort = 'baseline' AND t.cohort IS NOT NULL";
    let columns: Vec<String> = logs::schema()
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            "cohort" => format!("CASE WHEN {inherit} THEN t.cohort ELSE l.cohort END AS cohort"),
            "version" => format!(
                "CASE WHEN {inherit} THEN coalesce(l.version, t.version) ELSE l.version END AS version"
            ),
            name => format!("l.\"{name}\""),
        })
        .collect();
    format!(
        "SELECT {}, l.cohort AS ingest_cohort \
         FROM logs l LEFT JOIN {TRACE_COHORTS} t ON l.trace_id = t.trace_id",
        columns.join(", ")
    )
}

fn exemplars_sql() -> String {
    format!(
        "WITH points AS (\
            SELECT time AS point_time, service, name, kind, cohort AS point_cohort, version, \
                   unnest(exemplars) AS e \
            FROM metrics), \
         exemplars AS (\
            SELECT e['time'] AS time, e['value'] AS value, e['trace_id'] AS trace_id, \
                   e['span_id'] AS span_id, e['attributes'] AS attributes, e['cohort'] AS cohort, \
                   point_time, service, name, kind, point_cohort, version \
            FROM points) \
         SELECT x.time, x.value, x.trace_id, x.span_id, x.attributes, \
                CASE WHEN x.cohort = 'baseline' AND t.cohort IS NOT NULL THEN t.cohort \
                     ELSE x.cohort END AS cohort, \
                x.cohort AS ingest_cohort, \
                x.point_time, x.service, x.name, x.kind, x.point_cohort, x.version \
         FROM exemplars x LEFT JOIN {TRACE_COHORTS} t ON x.trace_id = t.trace_id"
    )
}

/// Registers the three views; the tables `spans`, `logs` and `metrics`
/// must be registered already.
pub fn register(context: &SessionContext) -> Result<()> {
    for (name, sql) in [
        (TRACE_COHORTS, trace_cohorts_sql()),
        (LOGS_WITH_TRACE_COHORT, logs_sql()),
        (EXEMPLARS_WITH_TRACE_COHORT, exemplars_sql()),
    ] {
        // Planning reads only the catalog, which is in memory: the future
        // completes without waiting on anything.
        let plan = futures::executor::block_on(context.state().create_logical_plan(&sql))?;
        let view = ViewTable::new(plan, Some(sql));
        context.register_table(name, Arc::new(view))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, StringArray, TimestampNanosecondArray, new_null_array};
    use arrow::datatypes::{Field, Schema, SchemaRef};
    use arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;

    use super::*;

    /// `schema` with every field nullable, so a test fills only what it
    /// needs.
    fn loose(schema: SchemaRef) -> SchemaRef {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn table(schema: SchemaRef, rows: usize, columns: &[(&str, ArrayRef)]) -> Arc<MemTable> {
        let schema = loose(schema);
        let arrays = schema
            .fields()
            .iter()
            .map(|f| {
                columns
                    .iter()
                    .find(|(name, _)| name == f.name())
                    .map(|(_, a)| a.clone())
                    .unwrap_or_else(|| new_null_array(f.data_type(), rows))
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn times(values: &[i64]) -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(values.to_vec()).with_timezone("UTC"))
    }

    #[tokio::test]
    async fn logs_take_their_traces_cohort_only_where_ingest_said_baseline() {
        use grayscope_core::schema::{metrics, spans};
        let context = SessionContext::new();
        let spans = table(
            spans::schema(),
            5,
            &[
                (
                    "trace_id",
                    text(&[Some("t1"), Some("t1"), Some("t2"), Some("t3"), Some("t4")]),
                ),
                (
                    "span_id",
                    text(&[Some("s2"), Some("s1"), Some("s3"), Some("s4"), Some("s5")]),
                ),
                ("time", times(&[20, 10, 5, 5, 5])),
                (
                    "cohort",
                    text(&[
                        Some("gray-b"),
                        Some("gray-a"),
                        Some("baseline"),
                        Some("beta"),
                        Some("canary"),
                    ]),
                ),
                (
                    "version",
                    text(&[Some("2"), Some("2.1"), Some("1"), None, Some("3")]),
                ),
            ],
        );
        context.register_table("spans", spans).unwrap();
        let logs = table(
            logs::schema(),
            5,
            &[
                ("time", times(&[1, 2, 3, 4, 5])),
                (
                    "trace_id",
                    text(&[Some("t1"), Some("t1"), Some("t2"), None, Some("t3")]),
                ),
                (
                    "cohort",
                    text(&[
                        Some("baseline"),
                        Some("ios"),
                        Some("baseline"),
                        Some("baseline"),
                        Some("baseline"),
                    ]),
                ),
                ("version", text(&[None, Some("9"), None, None, Some("7")])),
                (
                    "body",
                    text(&[Some("a"), Some("b"), Some("c"), Some("d"), Some("e")]),
                ),
            ],
        );
        context.register_table("logs", logs).unwrap();
        context
            .register_table("metrics", table(metrics::schema(), 0, &[]))
            .unwrap();
        register(&context).unwrap();

        let batches = context
            .sql("SELECT body, cohort, version, ingest_cohort FROM logs_with_trace_cohort ORDER BY time")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let want = "\
+------+----------+---------+---------------+
| body | cohort   | version | ingest_cohort |
+------+----------+---------+---------------+
| a    | gray-a   | 2.1     | baseline      |
| b    | ios      | 9       | ios           |
| c    | baseline |         | baseline      |
| d    | baseline |         | baseline      |
| e    | beta     | 7       | baseline      |
+------+----------+---------+---------------+";
        assert_eq!(text, want);

        // The view keeps the logs table's columns, in order.
        let view = context.table(LOGS_WITH_TRACE_COHORT).await.unwrap();
        let names: Vec<String> = view
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut want: Vec<String> = logs::schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        want.push("ingest_cohort".to_owned());
        assert_eq!(names, want);

        let exemplars = context
            .sql("SELECT count(*) FROM exemplars_with_trace_cohort")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(exemplars[0].num_rows(), 1);
    }
}
