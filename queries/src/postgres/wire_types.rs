//! Columns PostgreSQL clients cannot read as they are: attribute maps,
//! structs, lists of structs (span events and links, metric exemplars, the
//! judge's checks). They cross the wire as text, rendered as the HTTP API's
//! CSV renders them (`{http.route: /cart, …}`); every other column keeps
//! its PostgreSQL type (lists of scalars are PostgreSQL arrays).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion_postgres::arrow_pg::datatypes::into_pg_type;

use crate::format::render_as_text;

fn as_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Map(..) | DataType::Struct(_) | DataType::Union(..) => true,
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::FixedSizeList(item, _)
        | DataType::ListView(item)
        | DataType::LargeListView(item) => {
            item.data_type().is_nested() || as_text(item.data_type())
        }
        other => into_pg_type(other).is_err(),
    }
}

/// `schema` as it goes out: columns clients cannot read become text.
pub(crate) fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|field| {
                if as_text(field.data_type()) {
                    Arc::new(Field::new(field.name(), DataType::Utf8, true))
                } else {
                    field.clone()
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// `batch` with its columns as [`wire_schema`] says.
pub(crate) fn to_wire(batch: RecordBatch, wire: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| as_text(f.data_type()))
    {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            if as_text(column.data_type()) {
                render_as_text(column)
            } else {
                Ok(column.clone())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(wire.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_columns_become_text_and_scalar_lists_stay_arrays() {
        let schema = grayscope_core::schema::spans::schema();
        let wire = wire_schema(&schema);
        let kind = |name: &str| wire.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(kind("attributes"), DataType::Utf8);
        assert_eq!(kind("events"), DataType::Utf8);
        assert_eq!(kind("duration_ns"), DataType::Int64);
        let logs = wire_schema(&grayscope_core::schema::logs::schema());
        assert!(matches!(
            logs.field_with_name("rules").unwrap().data_type(),
            DataType::List(_)
        ));
    }
}
