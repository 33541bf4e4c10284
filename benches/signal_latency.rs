//! From a judge-decided rollback to the router: how long a rollback verdict
//! takes to reach a webhook receiver (and a gRPC `Watch` subscriber) on
//! loopback, with a real `grayscope serve` judging real telemetry.
//!
//! ```text
//! cargo bench --bench signal_latency -- [--rounds N]
//! cargo bench --profile dev --bench signal_latency -- [--rounds N]   # no release build
//! ```
//!
//! The bench starts `grayscope serve` with a signed webhook (verdicts =
//! rollback) pointing at a receiver in this process and the Watch stream
//! subscribed from this process; sends two minutes of a simulated checkout
//! service over OTLP/HTTP whose canary is slower, fails more and logs a new
//! error; then, each round, creates a new rollout over that telemetry. The
//! judge evaluates it at its next tick (every second), decides to roll back
//! (`failures_to_rollback = 1`), appends the signal to the outbox and the
//! webhook worker delivers it.
//!
//! Each round reports, from the verdict's time (the signal's `time`: the
//! instant the judge's evaluation started, so the span includes the
//! judgement's SQL over the window, the `verdicts` row, the outbox fsync and
//! the delivery):
//! - to the Watch subscriber receiving it (≈ the outbox append);
//! - to the webhook receiver having it, its HMAC verified.
//!
//! Times are wall-clock times of one machine (the signal's `time` has
//! millisecond precision). Target: webhook ≤ 1 s.

// A bench program: it prints its report and panics on setup failures.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use grayscope_sinks::watch::proto::WatchRequest;
use grayscope_sinks::watch::proto::signals_client::SignalsClient;
use prost::Message as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SECRET: &str = "bench-secret";

const SCENARIO: &str = r#"
name = "signal-latency"
description = "checkout 1.1.0 is slower, fails more and logs a new error"
expect = "rollback"
duration = "110s"
seed = 8
requests_per_second = 300
canary_share = 0.3

[[faults]]
target = "canary"
from = "0s"
latency_factor = 1.8
extra_error_rate = 0.05
log = { text = "redis timeout after {ms}ms on {host}", severity = "error", per_request = 0.05 }
"#;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The signal's `time` in ms since the epoch.
fn signal_ms(signal: &Value) -> f64 {
    let time = signal["time"].as_str().unwrap();
    // 2026-11-26T16:40:05.120Z
    let days = |y: i64, m: i64, d: i64| {
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    };
    let n = |a: usize, b: usize| time[a..b].parse::<i64>().unwrap();
    let day = days(n(0, 4), n(5, 7), n(8, 10));
    let seconds = day * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    seconds as f64 * 1000.0 + n(20, 23) as f64
}

struct Receiver {
    tx: mpsc::UnboundedSender<(Value, f64)>,
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = now_ms();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let verified = grayscope_sinks::signature::verify(
        SECRET.as_bytes(),
        header("x-grayscope-timestamp"),
        header("x-grayscope-signature"),
        &body,
        (at / 1000.0) as i64,
        300,
    );
    if verified.is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let _ = rx.tx.send((serde_json::from_slice(&body).unwrap(), at));
    StatusCode::OK
}

struct Grayscope {
    child: Child,
    api: SocketAddr,
    http: SocketAddr,
    watch: SocketAddr,
}

impl Drop for Grayscope {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, hook: SocketAddr) -> Grayscope {
    let config = dir.join("grayscope.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             [api]\naddr = \"127.0.0.1:0\"\n\
             [[cohorts]]\nname = \"canary\"\nrule = 'service.version == \"1.1.0\"'\n\
             [signals]\ngrpc_addr = \"127.0.0.1:0\"\n\
             [[signals.webhooks]]\nname = \"router\"\nurl = \"http://{hook}/hook\"\n\
             secret = {SECRET:?}\nverdicts = [\"rollback\"]\n",
            data = dir.join("data"),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_grayscope"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("GRAYSCOPE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    while !line.starts_with("listening ") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "grayscope exited");
    }
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|p| p.strip_prefix(&format!("{key}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    Grayscope {
        api: addr("api"),
        http: addr("otlp_http"),
        watch: addr("signals_grpc"),
        child,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

#[tokio::main]
async fn main() {
    let mut rounds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rounds" {
            rounds = args
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--rounds N");
        }
    }
    let (tx, mut hooked) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::new(Receiver { tx }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), hook);
    let client = reqwest::Client::new();

    // Two minutes of telemetry, ending now, at full speed.
    let scenario = grayscope_sim::Scenario::parse(SCENARIO, Path::new("bench.toml")).unwrap();
    let start_ns = (now_ms() * 1e6) as i64 - 115_000_000_000;
    let mut generator = grayscope_sim::Generator::new(&scenario, start_ns);
    while !generator.done() {
        let slice = generator.next_slice(Duration::from_secs(5));
        for (path, body) in [
            ("/v1/traces", slice.traces.encode_to_vec()),
            ("/v1/logs", slice.logs.encode_to_vec()),
            ("/v1/metrics", slice.metrics.encode_to_vec()),
        ] {
            let response = client
                .post(format!("http://{}{path}", server.http))
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{path}");
        }
    }

    let mut watch = SignalsClient::connect(format!("http://{}", server.watch))
        .await
        .unwrap()
        .watch(WatchRequest {
            only_new: true,
            ..WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();

    println!("round  judge→watch ms  judge→webhook ms  score  failing checks");
    let (mut to_watch, mut to_hook) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let name = format!("checkout-{round}");
        let created = client
            .post(format!("http://{}/api/v1/rollouts", server.api))
            .json(&json!({
                "name": name, "service": "checkout", "baseline": "baseline",
                "canary": ["canary"], "interval": "1s", "window": "2m",
                "failures_to_rollback": 1,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
        let asked = Instant::now();
        // The rollback, as the Watch subscriber and the webhook see it
        // (hold signals, if any, go only to the watcher).
        let watched = loop {
            let message = tokio::time::timeout(Duration::from_secs(30), watch.message())
                .await
                .expect("a signal within 30 s")
                .unwrap()
                .unwrap();
            let at = now_ms();
            if message.rollout == name && message.status == "rolled_back" {
                break (serde_json::from_str::<Value>(&message.json).unwrap(), at);
            }
        };
        let (signal, at) = tokio::time::timeout(Duration::from_secs(30), hooked.recv())
            .await
            .expect("the webhook within 30 s")
            .unwrap();
        assert_eq!(signal["rollout"], name.as_str());
        assert_eq!(signal["verdict"], "rollback");
        let decided = signal_ms(&signal);
        let (w, h) = (watched.1 - decided, at - decided);
        to_watch.push(w);
        to_hook.push(h);
        println!(
            "{round:>5}  {w:>14.1}  {h:>16.1}  {:>5.0}  {}",
            signal["score"].as_f64().unwrap(),
            signal["failing"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| format!(
                    "{} {}",
                    f["level"].as_str().unwrap(),
                    f["check"].as_str().unwrap()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(asked.elapsed() < Duration::from_secs(30));
    }
    for (what, values) in [
        ("judge → watch", &mut to_watch),
        ("judge → webhook", &mut to_hook),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "{what}: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} rollbacks",
            percentile(values, 0.5),
            percentile(values, 0.9),
            values[values.len() - 1],
            values.len()
        );
    }
    let worst = to_hook[to_hook.len() - 1];
    println!(
        "target ≤ 1000 ms from the verdict to the webhook: {}",
        if worst <= 1000.0 { "met" } else { "MISSED" }
    );
}
