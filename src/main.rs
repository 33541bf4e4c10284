//! The `grayscope` command: parses arguments, loads configuration, and wires
//! the library crates together. No logic lives here that a crate could own.
//!
//! Exit codes: 0 success, 1 failure at run time (a server error, a query the
//! server refused), 2 bad usage or configuration.

mod allocator;
mod check_config;
mod demo;
mod kafka;
mod mine;
mod reload;
mod rollouts_api;
mod security;
mod serve;
mod signals_api;
mod sim;
mod sql_client;
mod templates_source;
mod trace_id;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// grayscope: verify canary (gray) releases from OpenTelemetry telemetry.
#[derive(Debug, Parser)]
#[command(name = "grayscope", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: OTLP receivers, the store and the SQL API.
    Serve {
        /// Configuration file (TOML). Without one, every default applies.
        #[arg(long, short, env = "GRAYSCOPE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run SQL on a running server and print the result.
    Sql(sql_client::SqlArgs),
    /// Check a configuration file and explain what is wrong with it.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Make or explain trace ids carrying a gray flag.
    TraceId(trace_id::TraceIdArgs),
    /// Mine log bodies (one per line) into templates, as ingest does.
    Mine(mine::MineArgs),
    /// Simulate a service with a baseline and a canary: send a scenario's
    /// telemetry to a server, or judge a suite of scenarios.
    Sim(sim::SimArgs),
    /// Watch a whole canary rollout go bad and be rolled back, in a minute:
    /// a real server, simulated traffic, every judgement as it happens.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    allocator::tune();
    // One TLS provider for the whole process: ring. reqwest also compiles
    // aws-lc-rs in (see the workspace Cargo.toml), and with two providers
    // rustls cannot pick a default by itself (tonic's and reqwest's TLS
    // would panic). Failing means one is installed already: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // The demo talks on stdout; only warnings should interrupt it.
    let quiet = matches!(cli.command, Command::Demo(_));
    init_tracing(if quiet { "warn" } else { "info" });
    let outcome = match cli.command {
        Command::Serve { config } => serve::main(config.as_deref()),
        Command::Sql(args) => sql_client::main(args),
        Command::CheckConfig { file } => check_config::main(&file),
        Command::TraceId(args) => trace_id::main(args),
        Command::Mine(args) => mine::main(args),
        Command::Sim(args) => sim::main(args),
        Command::Demo(args) => demo::main(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<grayscope_core::Error>().is_some()
                || error.downcast_ref::<trace_id::UsageError>().is_some()
            {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Reads and validates a configuration file: what core checks, then what
/// only the template miner can (`[patterns]` ranges, `[[log_rules]]`
/// patterns). Errors are `grayscope_core::Error`s: exit code 2.
pub(crate) fn load_config(
    path: &Path,
) -> anyhow::Result<(grayscope_core::Config, grayscope_ingest::LogMiningBuilder)> {
    let config = grayscope_core::Config::load(path)?;
    let mining = grayscope_ingest::LogMiningBuilder::from_config(&config)?;
    Ok((config, mining))
}

fn init_tracing(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("GRAYSCOPE_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
