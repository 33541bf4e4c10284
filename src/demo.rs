//! `grayscope demo`: a whole canary rollout in about a minute.
//!
//! Starts a real grayscope (listeners, store, judge) on a demo data
//! directory, sends a simulated checkout service's telemetry to its
//! OTLP/HTTP receiver in real time — a baseline on 1.0.0 and a canary on
//! 1.1.0 that turns bad after 35 s — and prints each judgement as the
//! stages advance, then the rollback with its evidence and the signal
//! document routers receive. The server keeps serving afterwards so the
//! user can ask what happened with `grayscope sql`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use grayscope_analyze::rollouts::{RolloutState, now_nanos};
use grayscope_analyze::stage::Status;
use grayscope_core::signal::Signal;
use grayscope_core::verdict::Judgement;
use grayscope_sim::Scenario;

use crate::serve::{Server, shutdown_signal};

/// Arguments of `grayscope demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its data (made afresh on every run; a directory
    /// that is not an earlier demo's is never touched).
    #[arg(long, default_value = "./grayscope-demo")]
    data_dir: PathBuf,
    /// Listen on free ports instead of the defaults (4317, 4318, 7600).
    #[arg(long)]
    free_ports: bool,
    /// Stop once the rollout is decided instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

/// Marks a directory as the demo's own, so a rerun may empty it.
const MARKER: &str = ".grayscope-demo";

/// When the canary turns bad, in the scenario below.
const FAULT_AT: Duration = Duration::from_secs(35);

const SCENARIO: &str = r#"
name = "demo"
description = "checkout 1.1.0 turns bad after 35 s"
expect = "rollback"
duration = "120s"
seed = 2026
requests_per_second = 400
canary_share = 0.25

[[faults]]
target = "canary"
from = "35s"
latency_factor = 1.6
extra_error_rate = 0.03
log = { text = "redis timeout after {ms}ms on {host}", severity = "error", per_request = 0.03 }
"#;

fn config_text(data_dir: &Path, free_ports: bool) -> String {
    let listeners = if free_ports {
        "[otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\n[api]\naddr = \"127.0.0.1:0\"\n[sql]\npostgres_addr = \"127.0.0.1:0\"\nflight_addr = \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    format!(
        r#"# Written by `grayscope demo`. Serve this data again with
#   grayscope serve --config {config}
data_dir = {data:?}

{listeners}
# The canary is whatever runs version 1.1.0.
[[cohorts]]
name = "canary"
rule = 'service.version == "1.1.0"'

[[rollouts]]
name = "checkout-v2"
service = "checkout"
baseline = "baseline"
canary = ["canary"]
interval = "5s"
window = "20s"
failures_to_rollback = 2

[rollouts.limits]
p99_ms = 250
error_rate = 0.02

[[rollouts.checks.kernel]]
metric = "tcp.retransmits"

[[rollouts.stages]]
name = "shadow"
min_duration = "15s"
passes = 2

[[rollouts.stages]]
name = "read_split"
min_duration = "15s"
passes = 2

[[rollouts.stages]]
name = "primary_switch"
min_duration = "15s"
passes = 2

[[rollouts.stages]]
name = "full_takeover"
min_duration = "15s"
passes = 2
"#,
        config = data_dir.join("grayscope.toml").display(),
        data = data_dir.join("data"),
    )
}

/// Empties `dir` if it is an earlier demo's (or makes it), and marks it.
fn prepare(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        anyhow::ensure!(
            empty || dir.join(MARKER).exists(),
            "{} exists and is not an earlier demo's; pass --data-dir with a new directory",
            dir.display()
        );
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by grayscope demo\n")
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    Ok(())
}

/// Runs `grayscope demo`.
pub fn main(args: DemoArgs) -> anyhow::Result<ExitCode> {
    prepare(&args.data_dir)?;
    let data_dir = std::path::absolute(&args.data_dir).context("cannot resolve --data-dir")?;
    let config_path = data_dir.join("grayscope.toml");
    std::fs::write(&config_path, config_text(&data_dir, args.free_ports))
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let (config, mining) = crate::load_config(&config_path)?;
    let scenario = Scenario::parse(SCENARIO, Path::new("<demo scenario>"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::start(&config, mining, Some(&config_path), now_nanos()).await?;
        let decided = watch(&server, &scenario, &config_path).await?;
        if args.exit {
            server.serve_until(async { Ok(()) }).await?;
        } else {
            say(format_args!(
                "grayscope keeps serving on {} until you press Ctrl-C.",
                server.api
            ));
            server.serve_until(shutdown_signal()).await?;
        }
        Ok(if decided {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

#[allow(clippy::print_stdout)] // the demo talks to the user on stdout
fn say(line: std::fmt::Arguments<'_>) {
    println!("{line}");
}

/// Sends the scenario and prints every judgement until the canary is rolled
/// back (true) or the traffic ends undecided (false).
async fn watch(server: &Server, scenario: &Scenario, config_path: &Path) -> anyhow::Result<bool> {
    let otlp = format!("http://{}", server.otlp_http);
    let api = format!("http://{}", server.api);
    say(format_args!(
        "grayscope demo: checkout ships version 1.1.0 (the canary) to a quarter of its traffic.\n\
         \n  grayscope  OTLP {otlp}  SQL and API {api}\n  \
         config     {}\n  \
         rollout    checkout-v2: canary against baseline, judged every 5 s over the last 20 s;\n             \
         stages shadow → read_split → primary_switch → full_takeover, 2 passes and 15 s each\n  \
         traffic    400 requests/s with logs and kernel metrics; from {} s the canary answers\n             \
         60% slower, fails 3% more requests and logs redis timeouts\n",
        config_path.display(),
        FAULT_AT.as_secs()
    ));
    say(format_args!(
        "{:>5}  {:<15} {:<9} {:>5}  why",
        "t", "stage", "verdict", "score"
    ));

    let sender = {
        let scenario = scenario.clone();
        tokio::spawn(async move { crate::sim::send_realtime(&scenario, &otlp, false).await })
    };
    let rollouts = server.services().rollouts.clone();
    let started = Instant::now();
    let mut seen = 0_i64;
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let state = rollouts
            .get("checkout-v2")
            .await
            .context("the demo rollout vanished")?;
        let Some(judgement) = state.last.get("canary") else {
            continue;
        };
        if judgement.window_end != seen {
            seen = judgement.window_end;
            progress(started.elapsed(), judgement);
        }
        let canary = &state.canaries[0];
        if canary.status.is_final() {
            break Some(state);
        }
        if sender.is_finished() {
            break None;
        }
    };
    sender.abort();
    let Some(state) = outcome else {
        say(format_args!(
            "\nThe traffic ended and the canary was not rolled back."
        ));
        return Ok(false);
    };
    conclude(&state, started.elapsed(), &api);
    Ok(state.canaries[0].status == Status::RolledBack)
}

fn progress(elapsed: Duration, judgement: &Judgement) {
    let why = judgement.reasons.first().map_or("", String::as_str);
    let why: String = if why.chars().count() > 90 {
        why.chars().take(89).chain(['…']).collect()
    } else {
        why.to_owned()
    };
    say(format_args!(
        "{:>4}s  {:<15} {:<9} {:>5.0}  {why}",
        elapsed.as_secs(),
        judgement.stage,
        judgement.verdict.to_string(),
        judgement.score,
    ));
}

fn conclude(state: &RolloutState, elapsed: Duration, api: &str) {
    let canary = &state.canaries[0];
    let Some(judgement) = state.last.get(&canary.cohort) else {
        return;
    };
    if canary.status == Status::RolledBack {
        say(format_args!(
            "\nRolled back at {} s, {} s after the canary turned bad, from stage {}.\n\nEvidence:",
            elapsed.as_secs(),
            elapsed.saturating_sub(FAULT_AT).as_secs(),
            judgement.stage
        ));
    } else {
        say(format_args!(
            "\nThe canary was promoted through every stage.\n"
        ));
    }
    for check in judgement
        .checks
        .iter()
        .filter(|c| c.outcome.fails(c.direction))
    {
        say(format_args!(
            "  {} {} ({}): {}",
            check.level, check.name, check.outcome, check.reason
        ));
        for evidence in check.evidence.iter().take(3) {
            say(format_args!(
                "      {}: {}{}",
                evidence.kind,
                evidence.summary,
                evidence
                    .trace_id
                    .as_deref()
                    .map(|t| format!("  (trace {t})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(sql) = check.sql.first() {
            say(format_args!("      SQL: {sql}"));
        }
    }
    let mut signal = Signal::new(
        judgement,
        canary.status.as_str(),
        canary.sequence,
        canary.changed_at,
    );
    for check in &mut signal.failing {
        check.evidence.truncate(2);
    }
    say(format_args!(
        "\nThe signal document routers receive (evidence cut to two items a check here):\n{}",
        serde_json::to_string_pretty(&signal).unwrap_or_default()
    ));
    let url = if api == "http://127.0.0.1:7600" {
        String::new()
    } else {
        format!(" --url {api}")
    };
    say(format_args!(
        "\nAsk what happened:\n  \
         grayscope sql{url} \"SELECT time, stage, verdict, action, score FROM verdicts ORDER BY time\"\n  \
         grayscope sql{url} \"SELECT cohort, count(*) AS requests, approx_percentile_cont(duration_ns / 1e6, 0.99) AS p99_ms FROM spans GROUP BY cohort\"\n  \
         grayscope sql{url} \"SELECT cohort, template, count(*) AS n FROM logs WHERE severity_number >= 17 GROUP BY cohort, template ORDER BY n DESC LIMIT 5\"\n  \
         curl {api}/api/v1/rollouts/checkout-v2\n"
    ));
}
