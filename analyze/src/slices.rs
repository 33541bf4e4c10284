//! The checks' aggregates, kept per interval across evaluations.
//!
//! Every evaluation judges a window (5 minutes by default) that slides by one
//! interval (10 s): 29/30 of its rows were already aggregated the evaluation
//! before. An [`Aggregate`] is a grouped count or sum. Its rows for the
//! interval slice `[k·interval, (k+1)·interval)` are computed once, in one
//! query grouped by slice, and kept in a [`SliceCache`]. An evaluation then
//! queries only what no earlier one could keep: the partial slice at the
//! window's start, and the slices that are not yet final. The rows are
//! merged by summing the counts per key.
//!
//! A slice is final once it ended at least one interval before the
//! evaluation's end. Rows stored later than that for its time (an exporter
//! more than one interval late) are not counted by later evaluations. The
//! statement each check shows its users ([`Aggregate::sql`]) is the plain
//! window query, and re-running it counts every row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::array_value_to_string;
use grayscope_queries::QueryResult;

use crate::error::{Error, Result};
use crate::sql::Window;

/// A grouped aggregate whose values add up across slices: counts and sums.
#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    /// `(expression, alias)` of each grouping key.
    pub keys: Vec<(String, String)>,
    /// `(aggregate expression, alias)`: `count(*)` or `sum(…)` only.
    pub sums: Vec<(String, String)>,
    /// What to read: a table, or a subquery in parentheses. `{window}` is
    /// replaced by the time condition.
    pub from: String,
    /// The condition besides time; `{window}` is replaced as in `from`.
    pub filter: String,
}

impl Aggregate {
    fn select(&self, slice: Option<i64>) -> String {
        let mut columns: Vec<String> = Vec::new();
        if let Some(step) = slice {
            columns.push(format!("CAST(time AS BIGINT) / {step} AS slice"));
        }
        columns.extend(self.keys.iter().map(|(e, a)| format!("{e} AS {a}")));
        columns.extend(self.sums.iter().map(|(e, a)| format!("{e} AS {a}")));
        let groups = usize::from(slice.is_some()) + self.keys.len();
        let group_by = (1..=groups)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {} FROM {}", columns.join(", "), self.from);
        if !self.filter.is_empty() {
            sql.push_str(&format!(" WHERE {} AND {{window}}", self.filter));
        } else {
            sql.push_str(" WHERE {window}");
        }
        if groups > 0 {
            sql.push_str(&format!(" GROUP BY {group_by}"));
        }
        sql
    }

    /// The plain statement over `window`: what a user re-runs.
    pub fn sql(&self, window: Window) -> String {
        self.select(None).replace("{window}", &window.condition())
    }

    /// The statement grouped by slice of `step` ns, over `condition`.
    fn sliced_sql(&self, step: i64, condition: &str) -> String {
        self.select(Some(step)).replace("{window}", condition)
    }

    /// Identifies the aggregate in the cache, whatever the window.
    fn identity(&self, step: i64) -> String {
        self.select(Some(step))
    }
}

/// A slice's rows, by (aggregate identity, slice index).
type Kept = HashMap<(String, i64), Arc<RecordBatch>>;

/// Final slices of aggregates, kept between evaluations of one rollout.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SliceCache {
    slices: Arc<Mutex<Kept>>,
}

impl SliceCache {
    /// An empty cache.
    pub fn new() -> SliceCache {
        SliceCache::default()
    }

    /// A cache of its own holding the slices this one holds now (they are
    /// shared, not copied): what a later evaluation would find.
    pub fn fork(&self) -> SliceCache {
        SliceCache {
            slices: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// Slices kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no slice is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.slices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the slices that start before slice index `first`.
    fn forget_before(&self, first: i64) {
        self.lock().retain(|(_, k), _| *k >= first);
    }
}

/// How one evaluation reads an aggregate over a window.
pub(crate) struct Plan {
    /// Slice indexes that are final and whole: kept once computed.
    pub finals: std::ops::Range<i64>,
    /// Slice indexes of `finals` already kept.
    pub cached: Vec<(i64, Arc<RecordBatch>)>,
    /// The condition of what must be queried; `None` when nothing must.
    pub query: Option<String>,
}

/// Which slices of `window` (interval `step`) can come from `cache`, and
/// what to query; `final_before` is the time before which slices are final.
pub(crate) fn plan(
    cache: &SliceCache,
    identity: &str,
    window: Window,
    step: i64,
    final_before: i64,
) -> Plan {
    let first_whole = window.start.div_euclid(step) + i64::from(window.start.rem_euclid(step) != 0);
    let last_final_end = final_before.min(window.end).div_euclid(step);
    let finals = first_whole..last_final_end.max(first_whole);
    let kept = cache.lock();
    let cached: Vec<(i64, Arc<RecordBatch>)> = finals
        .clone()
        .filter_map(|k| kept.get(&(identity.to_owned(), k)).map(|b| (k, b.clone())))
        .collect();
    drop(kept);
    let mut ranges: Vec<Window> = Vec::new();
    let mut add = |start: i64, end: i64| {
        if start >= end {
            return;
        }
        match ranges.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => ranges.push(Window { start, end }),
        }
    };
    // The head before the first whole slice, then every slice not kept,
    // then the tail that is not final.
    add(window.start, (finals.start * step).min(window.end));
    let mut k = finals.start;
    for (kept, _) in &cached {
        add(k * step, kept * step);
        k = kept + 1;
    }
    add(k * step, finals.end * step);
    add((finals.end * step).max(window.start), window.end);
    let query = (!ranges.is_empty()).then(|| {
        let parts: Vec<String> = ranges
            .iter()
            .map(|w| format!("({})", w.condition()))
            .collect();
        if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("({})", parts.join(" OR "))
        }
    });
    Plan {
        finals,
        cached,
        query,
    }
}

/// Runs `aggregate` over `window`, reusing and keeping final slices in
/// `cache`: at most one query, over what is not kept. Returns the rows of
/// every slice, unmerged: a key can appear once per slice (see [`merge`]).
pub(crate) async fn run(
    engine: &grayscope_queries::QueryEngine,
    cache: &SliceCache,
    aggregate: &Aggregate,
    window: Window,
    step: i64,
    final_before: i64,
) -> Result<Vec<RecordBatch>> {
    let identity = aggregate.identity(step);
    let plan = plan(cache, &identity, window, step, final_before);
    if window.start >= window.end {
        return Ok(Vec::new());
    }
    let mut parts: Vec<RecordBatch> = plan.cached.iter().map(|(_, b)| (**b).clone()).collect();
    if let Some(condition) = &plan.query {
        let sql = aggregate.sliced_sql(step, condition);
        let answer = crate::sql::run(engine, &sql).await?;
        let batch = concat_batches(&answer.schema, &answer.batches)
            .map_err(|e| Error::Internal(format!("slices: {e}")))?;
        let slice_of = ints(&batch, "slice")?;
        let mut by_slice: HashMap<i64, Vec<u32>> = HashMap::new();
        for (row, &k) in slice_of.iter().enumerate() {
            by_slice.entry(k).or_default().push(row as u32);
        }
        let mut kept = cache.lock();
        for k in plan.finals.clone() {
            if plan.cached.iter().any(|(c, _)| *c == k) {
                continue;
            }
            let rows = by_slice.remove(&k).unwrap_or_default();
            let slice = Arc::new(take_rows(&batch, &rows)?);
            kept.insert((identity.clone(), k), slice);
        }
        drop(kept);
        parts.push(batch);
    }
    // Keep two windows' worth: this one and the one before it, which the
    // checks compare with.
    let length = window.end - window.start;
    cache.forget_before((window.start - length).div_euclid(step));
    Ok(parts)
}

fn ints(batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("slices: no column {name}")))?;
    let column = cast(column, &DataType::Int64).map_err(|e| Error::Internal(e.to_string()))?;
    let column = column
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Internal("slices: cast".into()))?;
    Ok((0..column.len())
        .map(|i| {
            if column.is_null(i) {
                0
            } else {
                column.value(i)
            }
        })
        .collect())
}

fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    let indices = UInt32Array::from(rows.to_vec());
    let columns = batch
        .columns()
        .iter()
        .map(|c| take(c, &indices, None))
        .collect::<std::result::Result<Vec<ArrayRef>, _>>()
        .map_err(|e| Error::Internal(e.to_string()))?;
    RecordBatch::try_new(batch.schema(), columns).map_err(|e| Error::Internal(e.to_string()))
}

/// Sums the slices' rows per key: the aggregate over the whole window, with
/// the key columns as the query returns them and each sum as Int64 (or
/// Float64 when the query's is a float). Meant for aggregates with few
/// keys per slice (cohorts, templates, rules).
pub(crate) fn merge(aggregate: &Aggregate, parts: Vec<RecordBatch>) -> Result<QueryResult> {
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("slices: {e}"));
    let Some(first) = parts.first() else {
        // No rows at all (an empty window): the keys and sums, no rows.
        let mut fields: Vec<Field> = aggregate
            .keys
            .iter()
            .map(|(_, alias)| Field::new(alias, DataType::Utf8, true))
            .collect();
        fields.extend(
            aggregate
                .sums
                .iter()
                .map(|(_, a)| Field::new(a, DataType::Int64, true)),
        );
        let schema = Arc::new(Schema::new(fields));
        return Ok(QueryResult {
            schema: schema.clone(),
            batches: vec![RecordBatch::new_empty(schema)],
        });
    };
    let schema = first.schema();
    let batch = concat_batches(&schema, &parts).map_err(|e| internal(&e))?;
    let key_columns: Vec<ArrayRef> = aggregate
        .keys
        .iter()
        .map(|(_, alias)| {
            batch
                .column_by_name(alias)
                .cloned()
                .ok_or_else(|| internal(&format!("no column {alias}")))
        })
        .collect::<Result<_>>()?;
    let mut groups: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    let mut first_rows: Vec<u32> = Vec::new();
    let mut group_of = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let key = key_columns
            .iter()
            .map(|c| {
                if c.is_null(row) {
                    Ok(None)
                } else {
                    array_value_to_string(c, row).map(Some)
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| internal(&e))?;
        let next = groups.len();
        let group = *groups.entry(key).or_insert(next);
        if group == next {
            first_rows.push(row as u32);
        }
        group_of.push(group);
    }
    let indices = UInt32Array::from(first_rows);
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for ((_, alias), column) in aggregate.keys.iter().zip(&key_columns) {
        let field = schema.field_with_name(alias).map_err(|e| internal(&e))?;
        fields.push(field.clone());
        columns.push(take(column, &indices, None).map_err(|e| internal(&e))?);
    }
    for (_, alias) in &aggregate.sums {
        let column = batch
            .column_by_name(alias)
            .ok_or_else(|| internal(&format!("no column {alias}")))?;
        let float = matches!(column.data_type(), DataType::Float32 | DataType::Float64);
        let target = if float {
            DataType::Float64
        } else {
            DataType::Int64
        };
        let values = cast(column, &target).map_err(|e| internal(&e))?;
        if float {
            let values = values
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| internal(&"cast"))?;
            let mut sums = vec![0.0; groups.len()];
            for (row, &g) in group_of.iter().enumerate() {
                if !values.is_null(row) {
                    sums[g] += values.value(row);
                }
            }
            columns.push(Arc::new(Float64Array::from(sums)));
        } else {
            let values = values
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or_else(|| internal(&"cast"))?;
            let mut sums = vec![0_i64; groups.len()];
            for (row, &g) in group_of.iter().enumerate() {
                if !values.is_null(row) {
                    sums[g] += values.value(row);
                }
            }
            columns.push(Arc::new(Int64Array::from(sums)));
        }
        fields.push(Field::new(alias, target, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| internal(&e))?;
    Ok(QueryResult {
        schema,
        batches: vec![batch],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 10;

    fn conditions(plan: &Plan) -> String {
        plan.query.clone().unwrap_or_default()
    }

    #[test]
    fn a_cold_window_is_one_query_and_its_final_whole_slices_are_kept() {
        let cache = SliceCache::new();
        // Window [95, 395): head [95, 100), slices 10..=38 whole; final
        // before 385 → slices 10..38 (ending at or before 380) are final.
        let plan = plan(
            &cache,
            "a",
            Window {
                start: 95,
                end: 395,
            },
            S,
            385,
        );
        assert_eq!(plan.finals, 10..38);
        assert!(plan.cached.is_empty());
        assert_eq!(
            conditions(&plan),
            "(time >= to_timestamp_nanos(95) AND time < to_timestamp_nanos(395))"
        );
    }

    #[test]
    fn a_warm_window_queries_only_its_head_and_what_is_not_final() {
        let cache = SliceCache::new();
        let empty = Arc::new(RecordBatch::new_empty(Arc::new(Schema::empty())));
        for k in 10..38 {
            cache.lock().insert(("a".into(), k), empty.clone());
        }
        let plan = plan(
            &cache,
            "a",
            Window {
                start: 105,
                end: 405,
            },
            S,
            395,
        );
        assert_eq!(plan.finals, 11..39);
        assert_eq!(plan.cached.len(), 27, "slices 11..38 are kept");
        assert_eq!(
            conditions(&plan),
            "((time >= to_timestamp_nanos(105) AND time < to_timestamp_nanos(110)) OR \
             (time >= to_timestamp_nanos(380) AND time < to_timestamp_nanos(405)))"
        );
    }

    #[test]
    fn other_aggregates_do_not_share_slices() {
        let cache = SliceCache::new();
        let empty = Arc::new(RecordBatch::new_empty(Arc::new(Schema::empty())));
        cache.lock().insert(("a".into(), 10), empty);
        let plan = plan(
            &cache,
            "b",
            Window {
                start: 100,
                end: 130,
            },
            S,
            130,
        );
        assert!(plan.cached.is_empty());
        assert_eq!(plan.finals, 10..13);
    }

    #[test]
    fn the_plain_statement_is_what_users_re_run() {
        let aggregate = Aggregate {
            keys: vec![("cohort".into(), "cohort".into())],
            sums: vec![("count(*)".into(), "requests".into())],
            from: "spans".into(),
            filter: "kind = 'server'".into(),
        };
        assert_eq!(
            aggregate.sql(Window { start: 1, end: 2 }),
            "SELECT cohort AS cohort, count(*) AS requests FROM spans WHERE kind = 'server' AND \
             time >= to_timestamp_nanos(1) AND time < to_timestamp_nanos(2) GROUP BY 1"
        );
        assert!(aggregate.sliced_sql(S, "x").starts_with(
            "SELECT CAST(time AS BIGINT) / 10 AS slice, cohort AS cohort, count(*) AS requests"
        ));
    }
}
