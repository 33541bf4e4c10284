//! What happens to each statement a PostgreSQL client sends.
//!
//! A statement is routed one of three ways:
//! - a query (`SELECT`, `WITH`, `VALUES`, `EXPLAIN`, `SHOW TABLES`, …):
//!   planned with the client's bound parameters and run through
//!   [`QueryEngine::execute`] — read-only, under the `[sql]` limits — its
//!   rows streamed to the client as they are computed;
//! - a per-connection setting drivers send (`SET application_name`,
//!   `datestyle`, `extra_float_digits`, `search_path`, `bytea_output`,
//!   `intervalstyle`, `statement_timeout`, `SET TIME ZONE`), `SHOW`, and
//!   `BEGIN`/`COMMIT`/`ROLLBACK` (no-ops: nothing here writes): answered by
//!   datafusion-postgres' hooks, which touch only the connection;
//! - anything else, including `SET` of anything else (it would change the
//!   session every client shares): refused with the name of the statement
//!   and SQLSTATE 25006 (read_only_sql_transaction). The connection stays
//!   usable.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, QueryResponse, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, Type};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use datafusion_postgres::pgwire::messages::data::DataRow;
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use futures::{Sink, StreamExt as _, stream};

use super::parameters;
use super::wire_types::{to_wire, wire_schema};
use crate::error::Error;
use crate::limits::ClientTimeout;
use crate::{QueryEngine, read_only};

/// A prepared statement: its text, and its parsed form and plan.
type PreparedStatement = (String, Option<(Statement, LogicalPlan)>);

/// The per-connection settings a client may change (datafusion-postgres
/// keeps them in the connection's metadata).
const SESSION_SETTINGS: &[&str] = &[
    "application_name",
    "datestyle",
    "extra_float_digits",
    "search_path",
    "bytea_output",
    "intervalstyle",
    "statement_timeout",
];

enum Route {
    Query,
    Session,
    Refuse(Error),
}

fn route(statement: &Statement) -> Route {
    match statement {
        Statement::Set(set) if is_session_setting(set) => Route::Session,
        Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => Route::Session,
        statement => match read_only::check(statement) {
            Ok(()) => Route::Query,
            Err(error) => Route::Refuse(error),
        },
    }
}

fn is_session_setting(set: &Set) -> bool {
    match set {
        Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            ..
        } => {
            let name = variable.to_string().to_lowercase();
            SESSION_SETTINGS.contains(&name.as_str())
        }
        Set::SetTimeZone { local: false, .. } => true,
        _ => false,
    }
}

/// The connection's `SET statement_timeout`, as datafusion-postgres keeps
/// it in the connection's metadata.
fn statement_timeout<C: ClientInfo + ?Sized>(client: &C) -> Option<ClientTimeout> {
    let millis: u64 = client
        .metadata()
        .get("statement_timeout_ms")?
        .parse()
        .ok()?;
    Some(ClientTimeout {
        timeout: std::time::Duration::from_millis(millis),
        setting: "statement_timeout",
    })
}

/// The PostgreSQL error for one of ours, with its SQLSTATE.
pub fn pg_error(error: Error) -> PgWireError {
    let code = match &error {
        Error::ReadOnly(_) => "25006",
        Error::MemoryLimit { .. } => "53200",
        Error::Timeout { .. } => "57014",
        Error::Busy { .. } => "53000",
        Error::Query(e) if matches!(e.find_root(), datafusion::error::DataFusionError::SQL(..)) => {
            "42601"
        }
        Error::Internal(_) => "XX000",
        error if error.is_user_error() => "42000",
        _ => "XX000",
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        error.to_string(),
    )))
}

/// For SQL the PostgreSQL parser cannot read: if DataFusion's parser reads
/// it as a refused statement (`CREATE EXTERNAL TABLE`, `COPY … TO`), that
/// refusal.
fn refusal_of_unparsed(sql: &str) -> Option<PgWireError> {
    use datafusion::sql::parser::DFParserBuilder;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    let dialect = PostgreSqlDialect {};
    let statements = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .build()
        .ok()?
        .parse_statements()
        .ok()?;
    statements
        .iter()
        .find_map(|statement| read_only::check_statement(statement).err())
        .map(pg_error)
}

/// The handler of one server: every connection's queries.
pub struct PgSession {
    engine: QueryEngine,
    library: Arc<DfSessionService>,
    parser: Arc<GatedParser>,
}

impl PgSession {
    /// Queries run by `engine`; session statements answered by
    /// datafusion-postgres over the engine's session.
    pub fn new(engine: QueryEngine) -> PgSession {
        let hooks: Vec<Arc<dyn QueryHook>> =
            vec![Arc::new(SetShowHook), Arc::new(TransactionStatementHook)];
        let library = Arc::new(DfSessionService::new_with_hooks(
            Arc::new(engine.context().clone()),
            hooks,
        ));
        let parser = Arc::new(GatedParser {
            library: library.query_parser(),
            sql_parser: PostgresCompatibilityParser::new(),
        });
        PgSession {
            engine,
            library,
            parser,
        }
    }

    async fn run<C: ClientInfo + ?Sized>(
        &self,
        plan: LogicalPlan,
        format: &Format,
        client: &C,
    ) -> PgWireResult<Response> {
        let query = self
            .engine
            .execute_within(plan, statement_timeout(client))
            .await
            .map_err(pg_error)?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let wire = wire_schema(&query.schema);
        let fields: Arc<Vec<FieldInfo>> =
            Arc::new(arrow_schema_to_pg_fields(&wire, format, Some(options))?);
        let row_fields = fields.clone();
        let rows = query
            .batches
            .map(move |batch| {
                let batch = batch.and_then(|batch| Ok(to_wire(batch, &wire)?));
                let rows: Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> =
                    match batch {
                        Ok(batch) => encode_recordbatch(row_fields.clone(), batch),
                        Err(error) => Box::new(std::iter::once(Err(pg_error(Error::from(error))))),
                    };
                stream::iter(rows)
            })
            .flatten();
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

#[async_trait]
impl SimpleQueryHandler for PgSession {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = self.parser.sql_parser.parse(query).map_err(|error| {
            refusal_of_unparsed(query).unwrap_or_else(|| PgWireError::ApiError(Box::new(error)))
        })?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            match route(&statement) {
                Route::Refuse(error) => return Err(pg_error(error)),
                Route::Session => {
                    let sql = statement.to_string();
                    responses
                        .extend(SimpleQueryHandler::do_query(&*self.library, client, &sql).await?);
                }
                Route::Query => {
                    let plan = self
                        .engine
                        .context()
                        .state()
                        .statement_to_plan(DfStatement::Statement(Box::new(statement)))
                        .await
                        .map_err(|e| pg_error(e.into()))?;
                    responses.push(self.run(plan, &Format::UnifiedText, client).await?);
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for PgSession {
    type Statement = PreparedStatement;
    type QueryParser = GatedParser;

    fn query_parser(&self) -> Arc<GatedParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PreparedStatement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (_, Some((statement, plan))) = &portal.statement.statement else {
            return Ok(Response::EmptyQuery);
        };
        match route(statement) {
            Route::Refuse(error) => Err(pg_error(error)),
            Route::Session => {
                ExtendedQueryHandler::do_query(&*self.library, client, portal, max_rows).await
            }
            Route::Query => {
                let values = parameters::values(portal, plan)?;
                let plan = plan
                    .clone()
                    .replace_params_with_values(&values)
                    .map_err(|e| pg_error(e.into()))?;
                self.run(plan, &portal.result_column_format, client).await
            }
        }
    }
}

/// datafusion-postgres' parser for prepared statements, refusing what may
/// not run already when the statement is prepared.
pub struct GatedParser {
    library: Arc<Parser>,
    sql_parser: PostgresCompatibilityParser,
}

#[async_trait]
impl QueryParser for GatedParser {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<PreparedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        match self.sql_parser.parse(sql) {
            Ok(statements) => {
                if let Some(Route::Refuse(error)) = statements.first().map(route) {
                    return Err(pg_error(error));
                }
            }
            Err(error) => {
                return Err(refusal_of_unparsed(sql)
                    .unwrap_or_else(|| PgWireError::ApiError(Box::new(error))));
            }
        }
        self.library.parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, statement: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        self.library.get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &PreparedStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match statement {
            (_, Some((_, plan))) if !matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Dml(_)) => {
                arrow_schema_to_pg_fields(
                    &wire_schema(plan.schema().as_arrow()),
                    column_format.unwrap_or(&Format::UnifiedText),
                    None,
                )
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Statement {
        PostgresCompatibilityParser::new()
            .parse(sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn statements_are_routed_to_the_engine_the_library_or_a_refusal() {
        for sql in [
            "SELECT 1",
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
        ] {
            assert!(matches!(route(&parse(sql)), Route::Query), "{sql}");
        }
        for sql in [
            "SET application_name = 'grafana'",
            "SET extra_float_digits = 3",
            "SET TIME ZONE 'UTC'",
            "SHOW server_version",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
        ] {
            assert!(matches!(route(&parse(sql)), Route::Session), "{sql}");
        }
        for (sql, refused) in [
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("SET LOCAL application_name = 'x'", "SET"),
            ("CREATE TABLE t (a int)", "CREATE TABLE"),
            ("DECLARE c CURSOR FOR SELECT 1", "DECLARE"),
            ("COPY spans TO '/tmp/x'", "COPY"),
        ] {
            match route(&parse(sql)) {
                Route::Refuse(Error::ReadOnly(what)) => assert_eq!(what, refused, "{sql}"),
                _ => panic!("{sql} was not refused"),
            }
        }
    }

    #[test]
    fn what_only_datafusion_parses_is_refused_by_name() {
        let error =
            refusal_of_unparsed("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'")
                .expect("refused");
        assert!(
            error
                .to_string()
                .contains("CREATE EXTERNAL TABLE is refused"),
            "{error}"
        );
        assert!(refusal_of_unparsed("SELEC 1").is_none());
    }

    #[test]
    fn errors_carry_their_sqlstate() {
        let code = |error: Error| match pg_error(error) {
            PgWireError::UserError(info) => info.code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(Error::ReadOnly("SET".into())), "25006");
        assert_eq!(
            code(Error::Timeout {
                after: std::time::Duration::from_secs(1),
                limit: "sql.timeout",
            }),
            "57014"
        );
        assert_eq!(
            code(Error::MemoryLimit {
                limit: grayscope_core::config::ByteSize(1),
                message: String::new()
            }),
            "53200"
        );
        assert_eq!(code(Error::Internal("bug".into())), "XX000");
    }
}
