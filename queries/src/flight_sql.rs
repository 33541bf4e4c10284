//! Arrow Flight SQL: the SQL of [`QueryEngine`] for ADBC, JDBC and ODBC
//! Flight SQL drivers and Grafana's FlightSQL datasource, with results
//! streamed as Arrow IPC.
//!
//! [`service`] builds the tonic service; the binary only gives it a
//! listener (and TLS). It answers:
//!
//! - statements: GetFlightInfo(CommandStatementQuery) plans the query (bad
//!   SQL fails there) and returns a ticket holding it; DoGet runs it and
//!   streams batches as they come, never collecting the whole result;
//! - prepared statements, stateless: the handle carries the SQL and, once
//!   bound with DoPut, one row of parameters (`?` or `$1` placeholders);
//! - GetSqlInfo, GetCatalogs, GetDbSchemas, GetTables (with Arrow schemas
//!   on request), GetTableTypes;
//! - Handshake with basic credentials (password = token) for clients that
//!   log in that way.
//!
//! Errors map to gRPC codes: INVALID_ARGUMENT for SQL the client can fix,
//! PERMISSION_DENIED for statements that would write and for tokens
//! without the `query` role, UNAUTHENTICATED for missing or unknown
//! tokens, RESOURCE_EXHAUSTED when a query ran out of memory.
//!
//! ```no_run
//! # async fn demo(engine: grayscope_queries::QueryEngine) -> Result<(), Box<dyn std::error::Error>> {
//! use grayscope_core::auth::Authenticator;
//!
//! tonic::transport::Server::builder()
//!     .add_service(grayscope_queries::flight_sql::service(engine, Authenticator::open()))
//!     .serve("127.0.0.1:7633".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```

mod auth;
mod catalog;
mod handle;
mod placeholders;
mod service;
mod statement;
mod status;

use arrow_flight::flight_service_server::FlightServiceServer;
use grayscope_core::auth::Authenticator;

pub use auth::Authenticated;
pub use service::FlightSqlEngine;

use crate::engine::QueryEngine;

/// The Flight SQL gRPC service, behind its bearer-token check.
pub type FlightSqlServer = Authenticated<FlightServiceServer<FlightSqlEngine>>;

/// The Flight SQL service over `engine`; every call but `Handshake` needs
/// a bearer token with the `query` role unless `authenticator` is open.
pub fn service(engine: QueryEngine, authenticator: Authenticator) -> FlightSqlServer {
    let server = FlightServiceServer::new(FlightSqlEngine::new(engine, authenticator.clone()))
        // Prepared statement parameters and handles are small; results
        // flow the other way, in messages of at most 2 MiB each.
        .max_decoding_message_size(16 * 1024 * 1024);
    Authenticated::new(server, authenticator)
}
