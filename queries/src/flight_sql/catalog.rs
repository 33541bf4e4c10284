//! The metadata calls (GetCatalogs, GetDbSchemas, GetTables,
//! GetTableTypes): what the session's catalogs hold, as ADBC's
//! `get_objects` and Grafana's query builder ask for it.

use arrow::array::RecordBatch;
use arrow_flight::sql::metadata::{GetCatalogsBuilder, GetDbSchemasBuilder, GetTablesBuilder};
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables};
use datafusion::datasource::TableType;
use datafusion::execution::context::SessionContext;
use tonic::Status;

/// The table types a table may have, as GetTableTypes lists them: the
/// names of `information_schema.tables.table_type`, which Grafana's
/// FlightSQL datasource also filters its table list by (`BASE TABLE`).
pub(crate) const TABLE_TYPES: [&str; 2] = ["BASE TABLE", "VIEW"];

fn table_type_name(table_type: TableType) -> &'static str {
    match table_type {
        TableType::View => "VIEW",
        TableType::Base | TableType::Temporary => "BASE TABLE",
    }
}

fn internal(error: impl std::fmt::Display) -> Status {
    Status::internal(format!("cannot list the catalog: {error}"))
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

/// Every catalog.
pub(crate) fn catalogs(context: &SessionContext) -> Result<RecordBatch, Status> {
    let mut builder = GetCatalogsBuilder::new();
    for name in sorted(context.catalog_names()) {
        builder.append(name);
    }
    builder.build().map_err(internal)
}

/// The schemas that `command` filters for.
pub(crate) fn schemas(
    context: &SessionContext,
    command: CommandGetDbSchemas,
) -> Result<RecordBatch, Status> {
    let mut builder = command.into_builder();
    for catalog_name in sorted(context.catalog_names()) {
        let Some(catalog) = context.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in sorted(catalog.schema_names()) {
            builder.append(&catalog_name, schema_name);
        }
    }
    builder.build().map_err(internal)
}

/// The tables that `command` filters for, with their Arrow schemas when it
/// asks for them.
pub(crate) async fn tables(
    context: &SessionContext,
    command: CommandGetTables,
) -> Result<RecordBatch, Status> {
    let mut builder: GetTablesBuilder = command.into_builder();
    for catalog_name in sorted(context.catalog_names()) {
        let Some(catalog) = context.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in sorted(catalog.schema_names()) {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for table_name in sorted(schema.table_names()) {
                let Some(table) = schema.table(&table_name).await.map_err(internal)? else {
                    continue;
                };
                builder
                    .append(
                        &catalog_name,
                        &schema_name,
                        &table_name,
                        table_type_name(table.table_type()),
                        &crate::wire_strings::plain_schema(&table.schema()),
                    )
                    .map_err(internal)?;
            }
        }
    }
    builder.build().map_err(internal)
}

/// The table types.
pub(crate) fn table_types(command: CommandGetTableTypes) -> Result<RecordBatch, Status> {
    let mut builder = command.into_builder();
    for table_type in TABLE_TYPES {
        builder.append(table_type);
    }
    builder.build().map_err(internal)
}

/// The result schema of GetCatalogs.
pub(crate) fn catalogs_schema() -> arrow::datatypes::SchemaRef {
    GetCatalogsBuilder::new().schema()
}

/// The result schema of GetDbSchemas.
pub(crate) fn schemas_schema(command: &CommandGetDbSchemas) -> arrow::datatypes::SchemaRef {
    let builder: GetDbSchemasBuilder = command.clone().into_builder();
    builder.schema()
}

/// The result schema of GetTables (with or without the schema column).
pub(crate) fn tables_schema(command: &CommandGetTables) -> arrow::datatypes::SchemaRef {
    command.clone().into_builder().schema()
}

/// The result schema of GetTableTypes.
pub(crate) fn table_types_schema() -> arrow::datatypes::SchemaRef {
    CommandGetTableTypes {}.into_builder().schema()
}
