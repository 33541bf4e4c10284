//! One evaluation of one rollout over a 5-minute window holding 1M spans and
//! 1M log records (issue 7's target: ≤ 100 ms on the project's 2-core
//! machine).
//!
//! `cargo bench -p grayscope-analyze --bench judge [-- --requests-per-second N --runs N]`
//!
//! Setup (not timed): a simulated checkout service (grayscope-sim) with a
//! canary on a fifth of the traffic sends 300 s of telemetry — one server
//! span and on average one log record per request, plus kernel metrics —
//! through the real ingest pipeline (decode, cohort labelling, template
//! mining) into a real store in a temporary directory, as a running server
//! holds it: the recent part in memtables, the rest in Parquet parts.
//!
//! Timed, `--runs` times each (default 15) after one warm-up; min, median
//! and max are printed:
//! - steady state: `judge::assess_with` at the window's end with the
//!   interval slices that the evaluation one interval (10 s) earlier kept —
//!   what a running server does every interval;
//! - cold: `judge::assess`, aggregating the whole window afresh (the first
//!   evaluation after a start).
//!
//! Then each check's SQL is re-run alone and timed, to show where a cold
//! evaluation's time goes.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::time::{Duration, Instant};

use grayscope_analyze::SliceCache;
use grayscope_analyze::judge::{assess, assess_with};
use grayscope_core::Config;
use grayscope_ingest::{Encoding, Labeler, Labeling, LogMiningBuilder, Pipeline, Signal};
use grayscope_queries::QueryEngine;
use grayscope_sim::{Generator, Scenario};
use grayscope_store::Store;
use prost::Message as _;

const CONFIG: &str = r#"
[[cohorts]]
name = "canary"
rule = 'service.version == "1.1.0"'

[[rollouts]]
name = "checkout-v2"
service = "checkout"
baseline = "baseline"
canary = ["canary"]
interval = "10s"
window = "5m"

[[rollouts.checks.kernel]]
metric = "tcp.retransmits"
"#;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `f` once to warm up, then `runs` times; the sorted durations.
async fn time<F, Fut, T>(runs: usize, mut f: F) -> Vec<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    std::hint::black_box(f().await);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn main() {
    let rps = arg("--requests-per-second", 3_334.0);
    let runs = arg("--runs", 15.0) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::parse(CONFIG, None).expect("config");
        config.data_dir = dir.path().to_owned();
        let (store, _) = Store::open(&config.data_dir, config.store.clone())
            .await
            .expect("store");
        let mining = LogMiningBuilder::from_config(&config)
            .expect("miner")
            .in_memory();
        let labeling = Labeling::new(Labeler::from_config(&config), &config.trace_join);
        let pipeline = Pipeline::new(store.clone(), labeling).with_mining(mining);
        let engine = QueryEngine::new(store.clone()).expect("engine");

        let scenario = Scenario::parse(
            &format!(
                "name = \"judge-bench\"\nexpect = \"promote\"\nduration = \"300s\"\nseed = 3\n\
                 requests_per_second = {rps}\ncanary_share = 0.2\n\
                 [baseline]\nlogs_per_request = 1.0\n"
            ),
            std::path::Path::new("<bench>"),
        )
        .expect("scenario");
        let end = grayscope_analyze::rollouts::now_nanos();
        let start = end - 300 * 1_000_000_000;
        let setup = Instant::now();
        let mut generator = Generator::new(&scenario, start);
        while !generator.done() {
            let slice = generator.next_slice(Duration::from_secs(1));
            for (signal, body) in [
                (Signal::Traces, slice.traces.encode_to_vec()),
                (Signal::Logs, slice.logs.encode_to_vec()),
                (Signal::Metrics, slice.metrics.encode_to_vec()),
            ] {
                pipeline
                    .export(signal, Encoding::Protobuf, body.into())
                    .await
                    .expect("export");
            }
        }
        let count = |table: &'static str| {
            let engine = engine.clone();
            async move {
                let answer = engine
                    .sql(&format!("SELECT count(*) FROM {table}"))
                    .await
                    .expect("count");
                arrow::array::cast::AsArray::as_primitive::<arrow::datatypes::Int64Type>(
                    answer.batches[0].column(0),
                )
                .value(0)
            }
        };
        let parts = engine
            .sql("SELECT count(*) FROM system.parts")
            .await
            .map(|a| a.num_rows())
            .unwrap_or(0);
        println!(
            "window: 300 s, {} spans, {} log records, {} metric points ({} rows of system.parts); setup {:.1} s",
            count("spans").await,
            count("logs").await,
            count("metrics").await,
            parts,
            setup.elapsed().as_secs_f64()
        );

        let rollout = &config.rollouts[0];
        let judgement = assess(&engine, rollout, "canary", end)
            .await
            .expect("assess")
            .judgement;
        let interval = rollout.interval.get().as_nanos() as i64;
        let earlier = SliceCache::new();
        assess_with(&engine, rollout, "canary", end - interval, &earlier)
            .await
            .expect("assess one interval earlier");
        let steady = time(runs, || async {
            let slices = earlier.fork();
            assess_with(&engine, rollout, "canary", end, &slices)
                .await
                .expect("assess")
        })
        .await;
        let cold = time(runs, || assess(&engine, rollout, "canary", end)).await;
        for (what, times) in [
            ("steady state (slices kept one interval earlier)", steady),
            ("cold (whole window)", cold),
        ] {
            println!(
                "judge, {what}, {runs} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
                millis(times[0]),
                millis(times[runs / 2]),
                millis(times[runs - 1]),
            );
        }
        println!(
            "(verdict {}, score {:.0}, {} checks; {} slices kept)",
            judgement.verdict,
            judgement.score,
            judgement.checks.len(),
            earlier.len()
        );

        println!("each check's SQL alone (best of 5):");
        for check in &judgement.checks {
            let mut total = Duration::ZERO;
            for sql in &check.sql {
                let mut best = Duration::MAX;
                for _ in 0..5 {
                    let t = Instant::now();
                    engine.sql(sql).await.expect("check SQL");
                    best = best.min(t.elapsed());
                }
                total += best;
            }
            println!(
                "  {:<24} {:>7.1} ms  ({} queries, {} and {} samples)",
                check.name,
                millis(total),
                check.sql.len(),
                check.canary.samples,
                check.baseline.samples
            );
        }
        store.close().await.expect("close");
    });
}
