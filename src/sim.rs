//! `grayscope sim`: simulated telemetry from scenario files.
//!
//! - `grayscope sim --otlp http://127.0.0.1:4318 scenarios/latency-shift.toml`
//!   sends a scenario's telemetry in real time to a running grayscope (or
//!   any OTLP/HTTP receiver), second by second.
//! - `grayscope sim --suite scenarios/` judges every scenario in simulated
//!   time: the telemetry goes through the same ingest pipeline as OTLP
//!   exports (decode, cohort labelling, template mining, store), the
//!   rollouts of `scenarios/grayscope.toml` (or `--config`) are judged every
//!   interval of simulated time, and the report compares each verdict with
//!   the scenario's expectation: precision and recall of rollbacks, false
//!   rollbacks of healthy canaries, and time to detect.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use grayscope_analyze::rollouts::now_nanos;
use grayscope_analyze::stage::Status;
use grayscope_core::verdict::Verdict;
use grayscope_ingest::{Encoding, Signal};
use grayscope_sim::{Expectation, Generator, Scenario};
use prost::Message as _;

use crate::serve::Services;

/// Arguments of `grayscope sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Scenario files, or directories of them (`*.toml` but `grayscope.toml`).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Send the scenario in real time to this OTLP/HTTP endpoint.
    #[arg(long, conflicts_with = "suite")]
    otlp: Option<String>,
    /// Judge every scenario in simulated time and report.
    #[arg(long)]
    suite: bool,
    /// The configuration (cohorts, rollouts) the suite judges with.
    /// Default: `grayscope.toml` in the first scenario directory.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run each scenario of the suite this many times, with seeds derived
    /// from its own: other traffic, same faults.
    #[arg(long, default_value_t = 1, requires = "suite")]
    seeds: u64,
}

/// Runs `grayscope sim`.
pub fn main(args: SimArgs) -> anyhow::Result<ExitCode> {
    let files = scenario_files(&args.scenarios)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match (&args.otlp, args.suite) {
        (Some(endpoint), _) => {
            for file in &files {
                let scenario = Scenario::load(file)?;
                runtime.block_on(send_realtime(&scenario, endpoint, true))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        (None, true) => {
            let config_path = match &args.config {
                Some(path) => path.clone(),
                None => default_config(&args.scenarios)?,
            };
            runtime.block_on(suite(&files, &config_path, args.seeds.max(1)))
        }
        (None, false) => anyhow::bail!(
            "say what to do with the scenarios: --otlp URL to send them, or --suite to judge them"
        ),
    }
}

fn scenario_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "toml")
                        && p.file_name().is_some_and(|n| n != "grayscope.toml")
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "no scenario files found");
    Ok(files)
}

fn default_config(paths: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let dir = paths
        .iter()
        .map(|p| {
            if p.is_dir() {
                p.clone()
            } else {
                p.parent().map(Path::to_owned).unwrap_or_default()
            }
        })
        .next()
        .unwrap_or_default();
    let path = dir.join("grayscope.toml");
    anyhow::ensure!(
        path.exists(),
        "no {} to judge with: pass --config",
        path.display()
    );
    Ok(path)
}

/// Sends a scenario to an OTLP/HTTP endpoint, one second per second.
pub(crate) async fn send_realtime(
    scenario: &Scenario,
    endpoint: &str,
    progress: bool,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base = endpoint.trim_end_matches('/');
    let mut generator = Generator::new(scenario, now_nanos());
    let started = Instant::now();
    if progress {
        eprintln!(
            "sending {} ({}) to {base}",
            scenario.name, scenario.description
        );
    }
    while !generator.done() {
        let slice = generator.next_slice(Duration::from_secs(1));
        for (path, body) in [
            ("/v1/traces", slice.traces.encode_to_vec()),
            ("/v1/logs", slice.logs.encode_to_vec()),
            ("/v1/metrics", slice.metrics.encode_to_vec()),
        ] {
            let response = client
                .post(format!("{base}{path}"))
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .with_context(|| format!("cannot reach {base}"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
        }
        let second = generator.elapsed().as_secs();
        if progress && second.is_multiple_of(10) {
            eprintln!(
                "  {second:>4}s  baseline {} req/s, canary {} req/s",
                slice.requests.0, slice.requests.1
            );
        }
        // Keep to real time.
        let due = started + generator.elapsed();
        tokio::time::sleep_until(due.into()).await;
    }
    Ok(())
}

/// What one scenario of the suite came to.
struct Outcome {
    name: String,
    expect: Expectation,
    rolled_back_at: Option<Duration>,
    promotions: u32,
    fault_start: Option<Duration>,
    last_verdict: Verdict,
    last_reason: String,
    wall: Duration,
}

async fn suite(files: &[PathBuf], config_path: &Path, seeds: u64) -> anyhow::Result<ExitCode> {
    let (config, mining) = crate::load_config(config_path)?;
    anyhow::ensure!(
        !config.rollouts.is_empty(),
        "{} defines no [[rollouts]] to judge the scenarios with",
        config_path.display()
    );
    let mut outcomes = Vec::new();
    for file in files {
        let original = Scenario::load(file)?;
        for k in 0..seeds {
            let mut scenario = original.clone();
            if seeds > 1 {
                scenario.seed = original.seed.wrapping_add(k.wrapping_mul(0x9E37_79B9));
                scenario.name = format!("{}#{k}", original.name);
            }
            eprintln!("{:<28} {}", scenario.name, scenario.description);
            outcomes.push(run_scenario(&scenario, &config, &mining).await?);
        }
    }
    report(&outcomes);
    Ok(ExitCode::SUCCESS)
}

async fn run_scenario(
    scenario: &Scenario,
    config: &grayscope_core::Config,
    mining: &grayscope_ingest::LogMiningBuilder,
) -> anyhow::Result<Outcome> {
    let data = tempfile::tempdir().context("cannot make a data directory")?;
    let mut config = config.clone();
    config.data_dir = data.path().to_owned();
    for rollout in &mut config.rollouts {
        rollout.service = scenario.service.clone();
    }
    // Simulated time ends now, so nothing is older than retention.
    let start = now_nanos() - scenario.duration.get().as_nanos() as i64 - 60_000_000_000;
    let services = Services::build(&config, mining.clone(), None, start).await?;
    let rollout = config.rollouts[0].clone();
    let interval = rollout.interval.get();
    let mut generator = Generator::new(scenario, start);
    let wall = Instant::now();
    let mut next_evaluation = interval;
    let mut outcome = Outcome {
        name: scenario.name.clone(),
        expect: scenario.expect,
        rolled_back_at: None,
        promotions: 0,
        fault_start: scenario.fault_start(),
        last_verdict: Verdict::Hold,
        last_reason: String::new(),
        wall: Duration::ZERO,
    };
    while !generator.done() {
        let slice = generator.next_slice(Duration::from_secs(1));
        for (signal, body) in [
            (Signal::Traces, slice.traces.encode_to_vec()),
            (Signal::Logs, slice.logs.encode_to_vec()),
            (Signal::Metrics, slice.metrics.encode_to_vec()),
        ] {
            services
                .pipeline
                .export(signal, Encoding::Protobuf, body.into())
                .await
                .with_context(|| format!("ingesting {signal} of {}", scenario.name))?;
        }
        if generator.elapsed() < next_evaluation {
            continue;
        }
        next_evaluation += interval;
        let judgements = services.rollouts.evaluate(&rollout.name, slice.end).await?;
        let state = services
            .rollouts
            .get(&rollout.name)
            .await
            .context("the rollout vanished")?;
        for judgement in &judgements {
            outcome.last_verdict = judgement.verdict;
            outcome.last_reason = judgement.reasons.first().cloned().unwrap_or_default();
            if judgement.verdict == Verdict::Promote {
                outcome.promotions += 1;
            }
        }
        if state
            .canaries
            .iter()
            .any(|c| c.status == Status::RolledBack)
        {
            outcome.rolled_back_at = Some(generator.elapsed());
            if let Some(judgement) = judgements.first() {
                for reason in judgement.reasons.iter().take(3) {
                    eprintln!("    {reason}");
                }
            }
            break;
        }
        if state.canaries.iter().all(|c| c.status.is_final()) {
            break;
        }
    }
    outcome.wall = wall.elapsed();
    services.close().await;
    Ok(outcome)
}

#[allow(clippy::print_stdout)] // the report is the command's output
fn report(outcomes: &[Outcome]) {
    let (mut tp, mut fp, mut fn_, mut false_healthy) = (0, 0, 0, 0);
    let mut detect: Vec<f64> = Vec::new();
    println!(
        "\n{:<28} {:<9} {:<22} {:>8} {:>10}",
        "scenario", "expect", "result", "detect", "wall"
    );
    for o in outcomes {
        let early = matches!((o.rolled_back_at, o.fault_start), (Some(at), Some(fault)) if at < fault)
            || (o.rolled_back_at.is_some() && o.fault_start.is_none());
        let result = match (o.rolled_back_at, o.expect) {
            (Some(at), Expectation::Rollback) if !early => {
                tp += 1;
                let delay = at.saturating_sub(o.fault_start.unwrap_or_default());
                detect.push(delay.as_secs_f64());
                format!("rolled back at {}s", at.as_secs())
            }
            (Some(at), _) => {
                fp += 1;
                if o.expect != Expectation::Rollback {
                    false_healthy += 1;
                } else {
                    fn_ += 1;
                }
                format!("FALSE rollback at {}s", at.as_secs())
            }
            (None, Expectation::Rollback) => {
                fn_ += 1;
                format!("MISSED ({})", o.last_verdict)
            }
            (None, Expectation::Promote) if o.promotions == 0 => {
                format!("never promoted ({})", o.last_verdict)
            }
            (None, _) => format!("{} promotions, last {}", o.promotions, o.last_verdict),
        };
        let delay = match (o.rolled_back_at, o.fault_start) {
            (Some(at), Some(fault)) if at >= fault => format!("{}s", (at - fault).as_secs()),
            _ => "-".to_owned(),
        };
        println!(
            "{:<28} {:<9} {:<22} {:>8} {:>9.1}s",
            o.name,
            format!("{:?}", o.expect).to_lowercase(),
            result,
            delay,
            o.wall.as_secs_f64()
        );
        if o.rolled_back_at.is_none() && !o.last_reason.is_empty() {
            println!("{:<28} {}", "", o.last_reason);
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    detect.sort_by(f64::total_cmp);
    let median = detect.get(detect.len() / 2).copied();
    println!(
        "\nprecision {:.2}  recall {:.2}  false rollbacks of healthy canaries {false_healthy}  median time to detect {}",
        ratio(tp, tp + fp),
        ratio(tp, tp + fn_),
        median.map_or("-".to_owned(), |m| format!("{m:.0}s")),
    );
}
