//! `grayscope serve`: wires store, ingest, queries and the judge into one
//! server.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use grayscope_analyze::rollouts::{Rollouts, now_nanos};
use grayscope_core::Config;
use grayscope_core::auth::{Authenticator, Role};
use grayscope_ingest::{
    Labeler, Labeling, LogMining, LogMiningBuilder, Pipeline, SourceRebuild, otlp_grpc, otlp_http,
};
use grayscope_queries::{QueryEngine, flight_sql, sql_http};
use grayscope_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::reload::Reloader;
use crate::rollouts_api;
use crate::security::{self, RoleOf, Tls};
use crate::signals_api::{self, SignalsApi};
use crate::templates_source::MinerTemplates;

/// How long running requests get to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Loads the configuration and runs the server until SIGINT or SIGTERM.
pub fn main(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (config, mining) = match config_path {
        Some(path) => crate::load_config(path)?,
        None => {
            let config = Config::default();
            let mining = LogMiningBuilder::from_config(&config)?;
            (config, mining)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("grayscope")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, mining, config_path))?;
    Ok(ExitCode::SUCCESS)
}

async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// Everything a grayscope instance runs, wired together: what `serve`
/// exposes over its listeners, and what `sim --suite` and `demo` drive
/// directly.
pub struct Services {
    /// The durable store.
    pub store: Store,
    /// The ingest pipeline (the one code path after the transports).
    pub pipeline: Pipeline,
    /// SQL over the store.
    pub engine: QueryEngine,
    /// The template miner.
    pub mining: LogMining,
    /// The rollouts under verification.
    pub rollouts: Rollouts,
    /// Rule and configuration reloads.
    pub reloader: Arc<Reloader>,
    /// The signals' outbox (appended to by the judge).
    pub outbox: grayscope_sinks::Outbox,
    /// What `/metrics` exposes.
    pub metrics: grayscope_sinks::metrics::Metrics,
    /// The signal destinations, until the server runs them.
    pub sinks: Option<grayscope_sinks::Sinks>,
}

impl Services {
    /// Opens the store in `config.data_dir`, loads the miner and the
    /// rollouts' state, and wires the pipeline and the SQL engine. `now`
    /// is when new rollouts start (nanoseconds since the epoch).
    pub async fn build(
        config: &Config,
        mining: LogMiningBuilder,
        config_path: Option<&Path>,
        now: i64,
    ) -> anyhow::Result<Services> {
        // Spans are logged as their OTLP requests; replaying them converts
        // them again (`grayscope_ingest::SourceRebuild`).
        let rebuild = SourceRebuild::shared(Labeler::from_config(config));
        let (store, recovery) =
            Store::open_with_rebuild(&config.data_dir, config.store.clone(), Some(rebuild))
                .await
                .with_context(|| {
                    format!("cannot open the store in {}", config.data_dir.display())
                })?;
        if !recovery.wal_damage.is_empty() {
            tracing::warn!(
                ranges = recovery.wal_damage.len(),
                "the write-ahead log was damaged; intact records were recovered (see warnings above)"
            );
        }
        let data_dir = config.data_dir.clone();
        let mining = tokio::task::spawn_blocking(move || mining.open(&data_dir))
            .await
            .context("the template miner loader failed")?
            .with_context(|| {
                format!(
                    "cannot load the template miner state from {}; move the file away to start \
                     with no learned templates (template ids do not change)",
                    config
                        .data_dir
                        .join(grayscope_ingest::mining::STATE_FILE)
                        .display()
                )
            })?;
        let labeling = Labeling::new(Labeler::from_config(config), &config.trace_join);
        // Held exports keep their request slot: leave half for the spans that
        // release them.
        labeling.limit_held_requests((config.otlp.max_concurrent_requests / 2).max(1));
        let reloader = Arc::new(Reloader::new(
            config_path.map(Path::to_owned),
            labeling.clone(),
            config.clone(),
        ));
        let pipeline = Pipeline::new(store.clone(), labeling)
            .with_mining(mining.clone())
            .with_max_concurrent_requests(config.otlp.max_concurrent_requests);
        let engine = QueryEngine::new(store.clone())
            .and_then(|engine| engine.with_templates(Arc::new(MinerTemplates(mining.clone()))))
            .context("cannot set up the SQL engine")?;
        // The judge's own queries are ours: they do not queue behind users'
        // queries for a slot. Every front end gets the limited engine.
        let rollouts = Rollouts::open(
            &config.data_dir,
            engine.clone(),
            store.clone(),
            &config.rollouts,
            now,
        )
        .await
        .context("cannot load the rollouts' state")?;
        let engine = engine.with_limits(&config.sql);
        let metrics = grayscope_sinks::metrics::Metrics::new()?;
        let sinks = grayscope_sinks::Sinks::open(&config.signals, &config.data_dir, &metrics)
            .context("cannot set up the signals' outbox and destinations")?;
        let outbox = sinks.outbox();
        rollouts
            .attach_log(Arc::new(outbox.clone()))
            .await
            .context("cannot attach the signal outbox to the rollouts")?;
        let deliveries = sinks.deliveries();
        engine.register_system_table(
            "deliveries",
            grayscope_sinks::Deliveries::schema(),
            Arc::new(move || deliveries.record_batch().map_err(|e| e.to_string())),
        )?;
        Ok(Services {
            store,
            pipeline,
            engine,
            mining,
            rollouts,
            reloader,
            outbox,
            metrics,
            sinks: Some(sinks),
        })
    }

    /// Saves the miner's state and closes the store (flushing memtables).
    pub async fn close(self) {
        if let Err(error) = self.mining.persist().await {
            tracing::warn!(
                "saving the template miner state: {:#}",
                anyhow::Error::new(error)
            );
        }
        if let Err(error) = self.store.close().await {
            tracing::warn!("closing the store: {error:#}");
        }
    }
}

async fn run(
    config: Config,
    mining: LogMiningBuilder,
    config_path: Option<&Path>,
) -> anyhow::Result<()> {
    let server = Server::start(&config, mining, config_path, now_nanos()).await?;
    // One machine-readable line on stdout, for scripts and tests that bind
    // port 0 and need to learn the ports.
    #[allow(clippy::print_stdout)]
    {
        let watch = server
            .signals_grpc
            .map(|addr| format!(" signals_grpc={addr}"))
            .unwrap_or_default();
        println!(
            "listening otlp_grpc={} otlp_http={} api={} postgres={} flight={}{watch}",
            server.otlp_grpc, server.otlp_http, server.api, server.postgres, server.flight
        );
    }
    server.serve_until(shutdown_signal()).await
}

/// A running server: the services behind their listeners.
pub struct Server {
    /// The OTLP/gRPC listener's address.
    pub otlp_grpc: SocketAddr,
    /// The OTLP/HTTP listener's address.
    pub otlp_http: SocketAddr,
    /// The HTTP API's address.
    pub api: SocketAddr,
    /// The gRPC `Watch` stream's address, when `signals.grpc_addr` is set.
    pub signals_grpc: Option<SocketAddr>,
    /// The PostgreSQL wire protocol's address.
    pub postgres: SocketAddr,
    /// The Arrow Flight SQL listener's address.
    pub flight: SocketAddr,
    services: Services,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Server {
    /// Builds the services and starts serving on the configured addresses.
    pub async fn start(
        config: &Config,
        mining: LogMiningBuilder,
        config_path: Option<&Path>,
        now: i64,
    ) -> anyhow::Result<Server> {
        let mut services = Services::build(config, mining, config_path, now).await?;
        let sinks = services.sinks.take();
        let (pipeline, engine, mining, rollouts, reloader) = (
            services.pipeline.clone(),
            services.engine.clone(),
            services.mining.clone(),
            services.rollouts.clone(),
            services.reloader.clone(),
        );

        let grpc = bind("OTLP/gRPC", config.otlp.grpc_addr).await?;
        let http = bind("OTLP/HTTP", config.otlp.http_addr).await?;
        let api = bind("the HTTP API", config.api.addr).await?;
        let watch = match config.signals.grpc_addr {
            Some(addr) => Some(bind("the signals' gRPC Watch stream", addr).await?),
            None => None,
        };
        let signals_grpc = watch.as_ref().map(TcpListener::local_addr).transpose()?;
        let postgres = bind("the PostgreSQL wire protocol", config.sql.postgres_addr).await?;
        let flight = bind("Arrow Flight SQL", config.sql.flight_addr).await?;
        let (otlp_grpc, otlp_http, api_addr, postgres_addr, flight_addr) = (
            grpc.local_addr()?,
            http.local_addr()?,
            api.local_addr()?,
            postgres.local_addr()?,
            flight.local_addr()?,
        );
        tracing::info!(
            %otlp_grpc, %otlp_http, api = %api_addr, postgres = %postgres_addr, flight = %flight_addr,
            data_dir = %config.data_dir.display(), "grayscope serving"
        );

        let auth = Authenticator::new(&config.auth);
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        if auth.is_open() {
            tracing::info!("no [[auth.tokens]]: every listener is open (loopback only)");
        }

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let engine = crate::kafka::start(
            config,
            &pipeline,
            engine,
            &services.metrics,
            &shutdown,
            &mut tasks,
        )?;

        let postgres_server = grayscope_queries::postgres::PostgresServer::new(
            engine.clone(),
            auth.clone(),
            config.tls.as_ref(),
        )
        .context("cannot set up the PostgreSQL wire protocol server")?
        .with_max_connections(config.sql.max_connections);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            postgres_server
                .serve(postgres, stop)
                .await
                .context("PostgreSQL wire protocol server failed")
        });

        let max_request = config.otlp.max_request_size.as_usize();
        let grpc_routes = otlp_grpc::routes(pipeline.clone(), max_request);
        let mut grpc_server = tonic::transport::Server::builder();
        if let Some(tls) = &tls {
            grpc_server = grpc_server
                .tls_config(tls.grpc())
                .context("the TLS identity for OTLP/gRPC")?;
        }
        let mut grpc_server = grpc_server.layer(tonic::service::InterceptorLayer::new(
            security::grpc_interceptor(auth.clone(), Role::Ingest),
        ));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            grpc_server
                .add_routes(grpc_routes)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
                    stop.cancelled_owned(),
                )
                .await
                .context("OTLP/gRPC server failed")
        });

        let mut flight_server = tonic::transport::Server::builder();
        if let Some(tls) = &tls {
            flight_server = flight_server
                .tls_config(tls.grpc())
                .context("the TLS identity for Arrow Flight SQL")?;
        }
        let flight_routes =
            flight_server.add_service(flight_sql::service(engine.clone(), auth.clone()));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            flight_routes
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(flight).with_nodelay(Some(true)),
                    stop.cancelled_owned(),
                )
                .await
                .context("Arrow Flight SQL server failed")
        });

        if let Some(watch) = watch {
            // The signal stream is read access: the query role, same TLS.
            let routes = grayscope_sinks::watch::routes(
                services.outbox.clone(),
                services.metrics.sinks(),
                shutdown.clone(),
            );
            let mut watch_server = tonic::transport::Server::builder();
            if let Some(tls) = &tls {
                watch_server = watch_server
                    .tls_config(tls.grpc())
                    .context("the TLS identity for the signals' Watch stream")?;
            }
            let mut watch_server = watch_server.layer(tonic::service::InterceptorLayer::new(
                security::grpc_interceptor(auth.clone(), Role::Query),
            ));
            let stop = shutdown.clone();
            tasks.spawn(async move {
                watch_server
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(watch).with_nodelay(Some(true)),
                        stop.cancelled_owned(),
                    )
                    .await
                    .context("the signals' gRPC Watch server failed")
            });
        }

        let otlp_router =
            otlp_http::router(pipeline, max_request).layer(axum::middleware::from_fn_with_state(
                (auth.clone(), security::ingest_role as RoleOf),
                security::require_http,
            ));
        let (stop, otlp_tls) = (shutdown.clone(), tls.clone());
        tasks.spawn(async move {
            security::serve_http(http, otlp_tls, otlp_router, stop)
                .await
                .context("OTLP/HTTP server failed")
        });

        let signals = SignalsApi {
            rollouts: rollouts.clone(),
            metrics: services.metrics.clone(),
            store: services.store.clone(),
            outbox: services.outbox.clone(),
        };
        let sql_router = sql_http::router(engine, config.api.max_sql_size.as_usize()).layer(
            axum::middleware::from_fn_with_state(
                services.metrics.clone(),
                signals_api::count_queries,
            ),
        );
        let api_router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .merge(sql_router)
            .merge(rollouts_api::router(rollouts.clone()))
            .merge(signals_api::router(signals))
            .merge(reloader.clone().routes());
        tasks.spawn({
            let stop = shutdown.clone();
            async move {
                rollouts.run(stop).await;
                Ok(())
            }
        });
        if let Some(sinks) = sinks {
            let stop = shutdown.clone();
            tasks.spawn(async move { sinks.run(stop).await.context("signal delivery failed") });
        }
        tasks.spawn(reloader.watch_sighup(shutdown.clone()));
        let saver = mining.save_every(shutdown.clone());
        tasks.spawn(async move {
            saver.await;
            Ok(())
        });
        let api_router = api_router.layer(axum::middleware::from_fn_with_state(
            (auth, security::api_role as RoleOf),
            security::require_http,
        ));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            security::serve_http(api, tls, api_router, stop)
                .await
                .context("HTTP API server failed")
        });
        Ok(Server {
            otlp_grpc,
            otlp_http,
            api: api_addr,
            signals_grpc,
            postgres: postgres_addr,
            flight: flight_addr,
            services,
            shutdown,
            tasks,
        })
    }

    /// The services behind the listeners.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `stop` completes (or a listener fails), then stops
    /// accepting, lets running requests finish, and closes the store.
    pub async fn serve_until(
        mut self,
        stop: impl std::future::Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        let failure = tokio::select! {
            signal = stop => {
                signal?;
                tracing::info!("shutting down");
                None
            }
            Some(joined) = self.tasks.join_next() => Some(match joined {
                Ok(Ok(())) => anyhow::anyhow!("a server stopped unexpectedly"),
                Ok(Err(error)) => error,
                Err(panic) => anyhow::anyhow!("a server task panicked: {panic}"),
            }),
        };
        self.shutdown.cancel();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Ok(Err(error)) = joined {
                    tracing::warn!("{error:#}");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
        }
        // Ingest has stopped: the miner's state is final; flush what is in
        // memory, so the next start need not replay the log.
        self.services.close().await;
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot watch SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
