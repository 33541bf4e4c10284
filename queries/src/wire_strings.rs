//! Results leave as `Utf8`, whatever the plan computed them as.
//!
//! The store's tables show their string columns as `Utf8View` (cheaper to
//! scan, filter and group; see `grayscope_store::StoreTableProvider`). Not
//! every client reads Arrow's view types yet (Grafana's FlightSQL
//! datasource, older pyarrow and ADBC drivers), so the front ends cast a
//! result's top-level view columns back to `Utf8` / `Binary` as the last
//! step of the plan: only the rows a client receives pay for it.

use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};

use crate::error::Result;

/// The wire type of `data_type`: views as their plain types.
fn wire_type(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Utf8View => Some(DataType::Utf8),
        DataType::BinaryView => Some(DataType::Binary),
        _ => None,
    }
}

/// `plan` with its view columns cast to plain strings (unchanged when it
/// has none).
pub fn plain_strings(plan: LogicalPlan) -> Result<LogicalPlan> {
    let needs_cast = plan
        .schema()
        .fields()
        .iter()
        .any(|f| wire_type(f.data_type()).is_some());
    if !needs_cast {
        return Ok(plan);
    }
    let columns: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match wire_type(field.data_type()) {
                Some(plain) => {
                    cast(column, plain).alias_qualified(qualifier.cloned(), field.name())
                }
                None => column,
            }
        })
        .collect();
    Ok(LogicalPlanBuilder::from(plan).project(columns)?.build()?)
}

/// `schema` with its view fields as plain strings (for catalogs that show
/// a table's schema, such as Flight SQL's `GetTables`).
pub fn plain_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match wire_type(f.data_type()) {
            Some(plain) => f.as_ref().clone().with_data_type(plain),
            None => f.as_ref().clone(),
        })
        .collect();
    std::sync::Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}
