//! The PostgreSQL wire protocol: `psql`, Grafana's PostgreSQL datasource
//! and every PostgreSQL driver query grayscope as if it were PostgreSQL.
//!
//! Built on `datafusion-postgres` (pgwire, and the `pg_catalog` tables that
//! clients read to list tables and columns), with grayscope's rules in
//! front of it:
//! - every statement a client sends is routed by [`session`]: queries run
//!   through [`QueryEngine::execute`] (read-only, under the `[sql]`
//!   limits), the per-connection settings drivers send (`SET
//!   application_name`, `SET TIME ZONE`, `BEGIN`, `SHOW …`) are answered
//!   by the library, and anything else is refused;
//! - with `[[auth.tokens]]`, a client logs in with a token whose roles
//!   include `query` as its password (cleartext password authentication,
//!   any user name) — see [`startup`];
//! - with `[tls]`, the server offers TLS and refuses connections without
//!   it — see [`tls`].
//!
//! ```no_run
//! # async fn demo(engine: grayscope_queries::QueryEngine) -> Result<(), Box<dyn std::error::Error>> {
//! use grayscope_core::auth::Authenticator;
//! use grayscope_queries::postgres::PostgresServer;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7632").await?;
//! let server = PostgresServer::new(engine, Authenticator::open(), None)?;
//! server.serve(listener, tokio_util::sync::CancellationToken::new()).await?;
//! # Ok(()) }
//! ```

mod current_setting;
mod parameters;
pub mod session;
pub mod startup;
pub mod tls;
mod wire_types;

use std::sync::Arc;
use std::time::Duration;

use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::pgwire::api::PgWireServerHandlers;
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::tokio::{TlsAcceptor, process_socket};
use grayscope_core::auth::Authenticator;
use grayscope_core::config::TlsConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::QueryEngine;
use session::PgSession;
use startup::TokenStartup;

/// The catalog name clients see (`current_database()`).
pub const DATABASE: &str = "grayscope";

/// Why the PostgreSQL server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The `pg_catalog` schema could not be added to the session.
    #[error("cannot add the pg_catalog schema to the SQL session")]
    Catalog(#[source] Box<datafusion::error::DataFusionError>),
    /// The `[tls]` certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// How long a connection beyond `max_connections` may take to send its
/// startup message and be refused.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL wire protocol server, ready to serve on a listener.
pub struct PostgresServer {
    handlers: Arc<Handlers>,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl PostgresServer {
    /// A server over `engine` (whose session gains the `pg_catalog` schema
    /// and its functions), checking logins with `authenticator`, and
    /// requiring TLS with `tls`'s certificate when given.
    pub fn new(
        engine: QueryEngine,
        authenticator: Authenticator,
        tls: Option<&TlsConfig>,
    ) -> Result<PostgresServer, PostgresError> {
        setup_pg_catalog(engine.context(), DATABASE, EmptyContextProvider)
            .map_err(PostgresError::Catalog)?;
        engine.context().register_udf(current_setting::udf());
        let tls = tls.map(tls::acceptor).transpose()?;
        Ok(PostgresServer {
            handlers: Arc::new(Handlers {
                session: Arc::new(PgSession::new(engine)),
                startup: Arc::new(TokenStartup::new(authenticator, tls.is_some())),
            }),
            max_connections: grayscope_core::config::SqlConfig::default().max_connections,
            tls,
        })
    }

    /// Serves at most `max` connections at once (`[sql] max_connections`);
    /// one more is refused at login with SQLSTATE 53300.
    pub fn with_max_connections(mut self, max: usize) -> PostgresServer {
        self.max_connections = max.max(1);
        self
    }

    /// Serves connections from `listener` until `stop` is cancelled; then
    /// stops accepting and closes the open connections (a running query is
    /// cancelled with its connection).
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: CancellationToken,
    ) -> std::io::Result<()> {
        // For connections past the limit: the same checks, then a refusal.
        let refusing = Arc::new(Handlers {
            session: self.handlers.session.clone(),
            startup: Arc::new(TokenStartup::refusing_like(
                &self.handlers.startup,
                self.max_connections,
            )),
        });
        let mut connections = JoinSet::new();
        // Connections past the limit, each being told so (at most as many).
        let mut refusals = JoinSet::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                Some(_) = refusals.join_next(), if !refusals.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let tls = self.tls.clone();
                        if connections.len() < self.max_connections {
                            let handlers = self.handlers.clone();
                            connections.spawn(async move {
                                if let Err(error) = process_socket(socket, tls, handlers).await {
                                    tracing::debug!(%peer, %error, "PostgreSQL connection failed");
                                }
                            });
                        } else if refusals.len() < self.max_connections {
                            // Told why at login (53300), then closed; one that
                            // never logs in is dropped after a while.
                            tracing::info!(%peer, max = self.max_connections, "PostgreSQL connection refused: too many clients");
                            let handlers = refusing.clone();
                            refusals.spawn(async move {
                                let refusal = process_socket(socket, tls, handlers);
                                let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refusal).await;
                            });
                        } else {
                            // Twice the limit: closed at once, unanswered.
                            drop(socket);
                        }
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: wait, don't spin.
                        tracing::warn!(%error, "cannot accept a PostgreSQL connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        refusals.shutdown().await;
        connections.shutdown().await;
        Ok(())
    }
}

struct Handlers {
    session: Arc<PgSession>,
    startup: Arc<TokenStartup>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.session.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.session.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }
}
