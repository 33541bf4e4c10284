//! Planning and running one statement for Flight SQL.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::scalar::ScalarValue;

use crate::engine::QueryEngine;
use crate::error::{Error, Result};

/// Plans `sql` read-only, with `parameters` bound to `$1`, `$2`, … (each
/// cast to the type the plan expects there, so a client's Int64 fits an
/// Int32 comparison).
pub(crate) async fn plan(
    engine: &QueryEngine,
    sql: &str,
    parameters: Vec<ScalarValue>,
) -> Result<DataFrame> {
    if sql.trim().is_empty() {
        return Err(Error::BadRequest("the SQL text is empty".to_owned()));
    }
    // The same read-only rules as `QueryEngine::stream`: statements that
    // would write are refused by name before they are planned.
    let state = engine.context().state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(sql, &dialect)?;
    crate::read_only::check_statement(&statement)?;
    let plan = crate::wire_strings::plain_strings(state.statement_to_plan(statement).await?)?;
    let frame = DataFrame::new(state, plan);
    if parameters.is_empty() {
        return Ok(frame);
    }
    let expected = parameter_types(&frame)?;
    let parameters = parameters
        .into_iter()
        .enumerate()
        .map(|(i, value)| match expected.get(i) {
            Some(Some(wanted)) if value.data_type() != *wanted => {
                value.cast_to(wanted).map_err(|e| {
                    Error::BadRequest(format!("parameter ${} does not fit {wanted}: {e}", i + 1))
                })
            }
            _ => Ok(value),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(frame.with_param_values(parameters)?)
}

/// Runs `sql` and streams its batches, never holding the whole result: the
/// one place Flight SQL runs a query, through the engine's `[sql]` memory,
/// time and concurrency limits and its read-only check of the plan.
pub(crate) async fn execute(
    engine: &QueryEngine,
    sql: &str,
    parameters: Vec<ScalarValue>,
) -> Result<(SchemaRef, SendableRecordBatchStream)> {
    let frame = plan(engine, sql, parameters).await?;
    let stream = engine.execute(frame.logical_plan().clone()).await?;
    Ok((stream.schema, stream.batches))
}

/// The result schema of a planned statement.
pub(crate) fn result_schema(frame: &DataFrame) -> SchemaRef {
    Arc::new(frame.schema().as_arrow().clone())
}

/// The parameters of a planned statement as a schema: one field per
/// placeholder, `$1` first, typed where the plan tells (else Null).
pub(crate) fn parameter_schema(frame: &DataFrame) -> Result<Schema> {
    let types = parameter_types(frame)?;
    Ok(Schema::new(
        types
            .into_iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("${}", i + 1), t.unwrap_or(DataType::Null), true))
            .collect::<Vec<_>>(),
    ))
}

/// The type of each positional placeholder, `$1` first, up to the highest
/// one used.
fn parameter_types(frame: &DataFrame) -> Result<Vec<Option<DataType>>> {
    let found = frame.logical_plan().get_parameter_types()?;
    let mut types = Vec::new();
    for (name, data_type) in found {
        let Some(index) = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0)
        else {
            return Err(Error::BadRequest(format!(
                "placeholder {name} is not positional: write ? or $1, $2, …"
            )));
        };
        if types.len() < index {
            types.resize(index, None);
        }
        types[index - 1] = data_type;
    }
    Ok(types)
}
