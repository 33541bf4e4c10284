//! The SQL the checks run: windows, literals, and reading answers back.
//!
//! Every check is plain SQL over the `spans`, `logs` and `metrics` tables,
//! so a user can re-run exactly what the judge ran (each [`CheckResult`]
//! carries its statements).
//!
//! [`CheckResult`]: grayscope_core::verdict::CheckResult

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use grayscope_queries::{QueryEngine, QueryResult};

use crate::error::{Error, Result};

/// A half-open span of time `[start, end)`, nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First nanosecond in the window.
    pub start: i64,
    /// First nanosecond after it.
    pub end: i64,
}

impl Window {
    /// The window of `length_ns` ending at `end`.
    pub fn ending_at(end: i64, length_ns: i64) -> Window {
        Window {
            start: end.saturating_sub(length_ns),
            end,
        }
    }

    /// The window of the same length just before this one.
    pub fn previous(self) -> Window {
        Window::ending_at(self.start, self.end - self.start)
    }

    /// Its length in seconds.
    pub fn seconds(self) -> f64 {
        (self.end - self.start) as f64 / 1e9
    }

    /// The SQL condition selecting rows of this window by `time`.
    pub fn condition(self) -> String {
        format!(
            "time >= to_timestamp_nanos({}) AND time < to_timestamp_nanos({})",
            self.start, self.end
        )
    }
}

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `a IN ('x', 'y')` for the given cohorts.
pub fn cohorts_condition(cohorts: &[&str]) -> String {
    let list: Vec<String> = cohorts.iter().map(|c| quote(c)).collect();
    format!("cohort IN ({})", list.join(", "))
}

/// Runs one statement, naming it in the error.
pub async fn run(engine: &QueryEngine, sql: &str) -> Result<QueryResult> {
    engine.sql(sql).await.map_err(|source| Error::Query {
        sql: sql.to_owned(),
        source,
    })
}

/// The values of one column of a result, cast to `to`, batch after batch.
fn column(result: &QueryResult, name: &str, to: &DataType) -> Result<Vec<ArrayRef>> {
    result
        .batches
        .iter()
        .map(|batch| {
            let array = batch
                .column_by_name(name)
                .ok_or_else(|| Error::Internal(format!("no column {name}")))?;
            cast(array, to).map_err(|e| Error::Internal(format!("column {name}: {e}")))
        })
        .collect()
}

/// A column as floats (nulls as NaN).
pub fn floats(result: &QueryResult, name: &str) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(result.num_rows());
    for array in column(result, name, &DataType::Float64)? {
        let values = array
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| Error::Internal("cast to Float64".into()))?;
        out.extend((0..values.len()).map(|i| {
            if values.is_null(i) {
                f64::NAN
            } else {
                values.value(i)
            }
        }));
    }
    Ok(out)
}

/// A column as integers (nulls as 0).
pub fn ints(result: &QueryResult, name: &str) -> Result<Vec<i64>> {
    let mut out = Vec::with_capacity(result.num_rows());
    for array in column(result, name, &DataType::Int64)? {
        let values = array
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| Error::Internal("cast to Int64".into()))?;
        out.extend((0..values.len()).map(|i| {
            if values.is_null(i) {
                0
            } else {
                values.value(i)
            }
        }));
    }
    Ok(out)
}

/// A column as text (nulls as `None`).
pub fn texts(result: &QueryResult, name: &str) -> Result<Vec<Option<String>>> {
    let mut out = Vec::with_capacity(result.num_rows());
    for array in column(result, name, &DataType::Utf8)? {
        let values = array
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::Internal("cast to Utf8".into()))?;
        out.extend(
            (0..values.len()).map(|i| (!values.is_null(i)).then(|| values.value(i).to_owned())),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_and_windows_chain() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(
            cohorts_condition(&["baseline", "gray-a"]),
            "cohort IN ('baseline', 'gray-a')"
        );
        let w = Window::ending_at(100, 40);
        assert_eq!((w.start, w.end), (60, 100));
        assert_eq!(w.previous(), Window { start: 20, end: 60 });
        assert!(w.condition().contains("to_timestamp_nanos(60)"));
    }
}
