//! `grayscope serve`: wires store, ingest and queries into one server.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use grayscope_core::Config;
use grayscope_ingest::{Labeler, Labeling, LogMiningBuilder, Pipeline, otlp_grpc, otlp_http};
use grayscope_queries::{QueryEngine, sql_http};
use grayscope_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::reload::Reloader;
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

async fn run(
    config: Config,
    mining: LogMiningBuilder,
    config_path: Option<&Path>,
) -> anyhow::Result<()> {
    let (store, recovery) = Store::open(&config.data_dir, config.store.clone())
        .await
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
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
    let labeling = Labeling::new(Labeler::from_config(&config), &config.trace_join);
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

    let grpc = bind("OTLP/gRPC", config.otlp.grpc_addr).await?;
    let http = bind("OTLP/HTTP", config.otlp.http_addr).await?;
    let api = bind("the HTTP API", config.api.addr).await?;
    let addrs = [grpc.local_addr()?, http.local_addr()?, api.local_addr()?];
    tracing::info!(
        otlp_grpc = %addrs[0], otlp_http = %addrs[1], api = %addrs[2],
        data_dir = %config.data_dir.display(), "grayscope serving"
    );
    // One machine-readable line on stdout, for scripts and tests that bind
    // port 0 and need to learn the ports.
    #[allow(clippy::print_stdout)]
    {
        println!(
            "listening otlp_grpc={} otlp_http={} api={}",
            addrs[0], addrs[1], addrs[2]
        );
    }

    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let engine = crate::kafka::start(&config, &pipeline, engine, &shutdown, &mut tasks)?;

    let max_request = config.otlp.max_request_size.as_usize();
    let grpc_routes = otlp_grpc::routes(pipeline.clone(), max_request);
    let stop = shutdown.clone();
    tasks.spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(grpc_routes)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
                stop.cancelled_owned(),
            )
            .await
            .context("OTLP/gRPC server failed")
    });

    let otlp_router = otlp_http::router(pipeline, max_request);
    let stop = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(http, otlp_router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("OTLP/HTTP server failed")
    });

    let api_router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(sql_http::router(engine, config.api.max_sql_size.as_usize()))
        .merge(reloader.clone().routes());
    tasks.spawn(reloader.watch_sighup(shutdown.clone()));
    let saver = mining.clone().save_every(shutdown.clone());
    tasks.spawn(async move {
        saver.await;
        Ok(())
    });
    let stop = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(api, api_router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("HTTP API server failed")
    });

    let failure = tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            tracing::info!("shutting down");
            None
        }
        Some(joined) = tasks.join_next() => Some(match joined {
            Ok(Ok(())) => anyhow::anyhow!("a server stopped unexpectedly"),
            Ok(Err(error)) => error,
            Err(panic) => anyhow::anyhow!("a server task panicked: {panic}"),
        }),
    };
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(error)) = joined {
                tracing::warn!("{error:#}");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    // Ingest has stopped: the miner's state is final.
    if let Err(error) = mining.persist().await {
        tracing::warn!(
            "saving the template miner state: {:#}",
            anyhow::Error::new(error)
        );
    }
    // Flush what is in memory, so the next start need not replay the log.
    if let Err(error) = store.close().await {
        tracing::warn!("closing the store: {error:#}");
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot watch SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
