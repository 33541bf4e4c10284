//! The Flight SQL commands grayscope answers.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlSupportedTransaction,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::scalar::ScalarValue;
use futures::{Stream, TryStreamExt as _};
use grayscope_core::auth::Authenticator;
use prost::Message as _;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{self, HandshakeStream};
use super::catalog;
use super::handle::PreparedHandle;
use super::placeholders::number_question_marks;
use super::statement;
use super::status::status;
use crate::engine::QueryEngine;
use crate::error::Error;

/// Answers Flight SQL over a [`QueryEngine`]: statements, prepared
/// statements with parameters, and the metadata calls. Build it with
/// [`service`](super::service).
#[derive(Clone)]
pub struct FlightSqlEngine {
    engine: QueryEngine,
    authenticator: Authenticator,
    sql_info: Arc<SqlInfoData>,
}

impl std::fmt::Debug for FlightSqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlEngine").finish_non_exhaustive()
    }
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

impl FlightSqlEngine {
    pub(crate) fn new(engine: QueryEngine, authenticator: Authenticator) -> FlightSqlEngine {
        FlightSqlEngine {
            engine,
            authenticator,
            sql_info: Arc::new(sql_info()),
        }
    }

    /// Runs `sql` and streams its batches as Flight data.
    async fn stream(
        &self,
        sql: &str,
        parameters: Vec<ScalarValue>,
    ) -> Result<Response<DoGetStream>, Status> {
        let started = std::time::Instant::now();
        let (schema, batches) = statement::execute(&self.engine, sql, parameters)
            .await
            .map_err(|e| status(&e))?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Flight SQL query planned"
        );
        let batches = batches.map_err(|e| FlightError::Tonic(Box::new(status(&Error::from(e)))));
        let data = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(data)))
    }
}

/// What GetSqlInfo tells: who we are, that SQL is read-only, and how
/// identifiers are quoted.
fn sql_info() -> SqlInfoData {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "grayscope");
    builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow IPC format version (Schema.fbs MetadataVersion V5).
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    // Constant entries: whether they build is decided at compile time and
    // checked by `sql_info_says_read_only` below, not by any input.
    #[allow(clippy::expect_used)]
    builder.build().expect("the constant SQL info builds")
}

/// A FlightInfo whose one endpoint's ticket is `ticket` (on this server).
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the result schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// A complete result (the small metadata answers) as Flight data.
fn batch_stream(batch: RecordBatch) -> Response<DoGetStream> {
    let schema = batch.schema();
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from);
    Response::new(Box::pin(data))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))?;
    Ok(message.0)
}

fn read_only() -> Status {
    Status::permission_denied("only queries are allowed (SQL is read-only)")
}

fn plain_schema(schema: SchemaRef) -> Schema {
    Arc::unwrap_or_clone(schema)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSqlEngine {
    type FlightService = FlightSqlEngine;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        auth::handshake(&self.authenticator, request.metadata())
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        // Planned here too, so bad SQL fails before any DoGet.
        let frame = statement::plan(&self.engine, &query.query, Vec::new())
            .await
            .map_err(|e| status(&e))?;
        let schema = statement::result_schema(&frame);
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = std::str::from_utf8(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("the ticket's SQL is not UTF-8"))?;
        self.stream(sql, Vec::new()).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let sql = number_question_marks(&query.query);
        let frame = statement::plan(&self.engine, &sql, Vec::new())
            .await
            .map_err(|e| status(&e))?;
        let dataset_schema = ipc_schema(&statement::result_schema(&frame))?;
        let parameter_schema =
            ipc_schema(&statement::parameter_schema(&frame).map_err(|e| status(&e))?)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: PreparedHandle {
                sql,
                parameters: Vec::new(),
            }
            .encode(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles hold all their state: nothing to free.
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let handle = PreparedHandle::decode(&query.prepared_statement_handle)?;
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(
            request.into_inner().map_err(FlightError::from),
        )
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("the parameters do not decode: {e}")))?;
        let bound = handle.bind(&batches)?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bound.encode()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let handle = PreparedHandle::decode(&query.prepared_statement_handle)?;
        let frame = statement::plan(&self.engine, &handle.sql, handle.parameter_values()?)
            .await
            .map_err(|e| status(&e))?;
        let schema = statement::result_schema(&frame);
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let handle = PreparedHandle::decode(&query.prepared_statement_handle)?;
        let parameters = handle.parameter_values()?;
        self.stream(&handle.sql, parameters).await
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let ticket = query.as_any().encode_to_vec();
        let schema = query.into_builder(&self.sql_info).schema();
        flight_info(&plain_schema(schema), ticket, request.into_inner())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let batch = query
            .into_builder(&self.sql_info)
            .build()
            .map_err(|e| Status::internal(format!("cannot list the SQL info: {e}")))?;
        Ok(batch_stream(batch))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = catalog::catalogs_schema();
        flight_info(
            &plain_schema(schema),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(batch_stream(catalog::catalogs(self.engine.context())?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = catalog::schemas_schema(&query);
        flight_info(
            &plain_schema(schema),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(batch_stream(catalog::schemas(
            self.engine.context(),
            query,
        )?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = catalog::tables_schema(&query);
        flight_info(
            &plain_schema(schema),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(batch_stream(
            catalog::tables(self.engine.context(), query).await?,
        ))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = catalog::table_types_schema();
        flight_info(
            &plain_schema(schema),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(batch_stream(catalog::table_types(query)?))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_info_says_read_only() {
        let info = sql_info();
        let batch = info
            .record_batch([SqlInfo::FlightSqlServerReadOnly as u32])
            .unwrap();
        assert_eq!(batch.num_rows(), 1);
        let all = info.record_batch(std::iter::empty()).unwrap();
        assert!(all.num_rows() >= 10, "{all:?}");
    }
}
