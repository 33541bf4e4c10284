//! Durable ingest end to end: OTLP/HTTP clients on loopback against a real
//! `grayscope serve` (write-ahead log with fsync on every commit group),
//! and against a peer (`otlp2parquet`) under the same load in the same run.
//!
//! ```text
//! cargo bench --bench ingest_e2e -- [--seconds N] [--clients N] [--peer PATH]
//! ```
//!
//! Reports, for each server: spans/s acknowledged, the CPU seconds the
//! server and the load generator spent (so throughput per core counts both
//! sides), export latency percentiles, and Parquet bytes per span. Then a
//! paced run at half of grayscope's measured throughput, for the latency
//! an export sees when the server is not saturated.

// A bench program: it prints its report, panics on setup failures, and its
// synchronous main thread sleeps while it polls.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;

const BATCH: usize = 512;

struct Args {
    seconds: u64,
    clients: usize,
    peer: Option<PathBuf>,
}

fn args() -> Args {
    let mut args = Args {
        seconds: 15,
        clients: 8,
        peer: which("otlp2parquet"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => args.seconds = it.next().unwrap().parse().unwrap(),
            "--clients" => args.clients = it.next().unwrap().parse().unwrap(),
            "--peer" => args.peer = Some(it.next().unwrap().into()),
            "--no-peer" => args.peer = None,
            _ => {} // cargo passes --bench
        }
    }
    args
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        key_strindex: 0,
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        key_strindex: 0,
    }
}

/// A realistic export request: 512 spans of one service, 10 attributes
/// each, unique ids (`seed` makes every request different).
fn request(seed: u64) -> Bytes {
    let routes = ["/cart", "/checkout", "/api/v1/items/{id}", "/health"];
    let spans = (0..BATCH as u64)
        .map(|i| {
            let n = seed * BATCH as u64 + i;
            let start = 1_764_000_000_000_000_000 + n * 100_000;
            let mut trace_id = [0u8; 16];
            trace_id[..8]
                .copy_from_slice(&(n / 4).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            trace_id[8..].copy_from_slice(&(n / 4 + 1).to_be_bytes());
            if n.is_multiple_of(10) {
                trace_id[14..].copy_from_slice(&[0, 2]);
            }
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (n + 1)
                    .wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
                    .to_be_bytes()
                    .to_vec(),
                name: format!("GET {}", routes[(i % 4) as usize]),
                kind: 2,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000 + (n % 977) * 13_000,
                attributes: vec![
                    text("http.route", routes[(i % 4) as usize]),
                    text("http.request.method", "GET"),
                    int(
                        "http.response.status_code",
                        if n.is_multiple_of(50) { 500 } else { 200 },
                    ),
                    text("url.scheme", "https"),
                    text("server.address", "checkout.internal"),
                    int("server.port", 8443),
                    text("network.protocol.version", "1.1"),
                    text(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                    ),
                    text("client.address", &format!("10.12.{}.{}", n % 250, n % 199)),
                    int("http.response.body.size", 1532 + (n % 4096) as i64),
                ],
                status: Some(Status {
                    code: if n.is_multiple_of(50) { 2 } else { 0 },
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "checkout"),
                    text("service.version", "2.14.1"),
                    text("service.instance.id", "checkout-7d9f8b6c5-x2x4q"),
                    text("deployment.environment.name", "production"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "axum".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(request.encode_to_vec())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

fn dir_bytes(dir: &Path, extension: &str) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == extension) {
                total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

struct Server {
    child: Child,
    http: SocketAddr,
    api: Option<SocketAddr>,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_grayscope(dir: &Path) -> Server {
    let config = dir.join("grayscope.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             max_concurrent_requests = 256\n[api]\naddr = \"127.0.0.1:0\"\n\
             [store]\nflush_interval = \"5s\"\nmemory_limit = \"2GiB\"\n",
            dir.join("data")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_grayscope"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("GRAYSCOPE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|p| p.strip_prefix(&format!("{key}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    Server {
        http: addr("otlp_http"),
        api: Some(addr("api")),
        child,
        data: dir.join("data"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_peer(binary: &Path, dir: &Path) -> Server {
    let port = free_port();
    let data = dir.join("otlp2parquet");
    std::fs::create_dir_all(&data).unwrap();
    let child = Command::new(binary)
        .args(["serve", "-p", &port.to_string(), "-o"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(http).is_err() {
        assert!(Instant::now() < deadline, "otlp2parquet did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        http,
        api: None,
        data,
    }
}

struct Run {
    spans: u64,
    seconds: f64,
    server_cpu: f64,
    client_cpu: f64,
    latencies: Vec<Duration>,
    errors: u64,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// Drives `server` with `clients` concurrent exporters for `seconds`;
/// with `rate` (requests/s), paces them instead of sending flat out.
fn drive(
    server: &Server,
    payloads: &Arc<Vec<Bytes>>,
    clients: usize,
    seconds: u64,
    rate: Option<f64>,
) -> Run {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pid = server.child.id().to_string();
    let server_cpu0 = cpu_seconds(&pid);
    let client_cpu0 = cpu_seconds("self");
    let spans = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let url = format!("http://{}/v1/traces", server.http);
    let latencies = runtime.block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (client, url, payloads) = (client.clone(), url.clone(), payloads.clone());
                let (spans, errors) = (spans.clone(), errors.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = c;
                    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
                    let mut next = Instant::now();
                    while started.elapsed() < Duration::from_secs(seconds) {
                        if let Some(interval) = interval {
                            next += interval;
                            tokio::time::sleep_until(next.into()).await;
                        }
                        let sent = Instant::now();
                        let response = client
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .body(payloads[i % payloads.len()].clone())
                            .send()
                            .await;
                        match response {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                latencies.push(sent.elapsed());
                                spans.fetch_add(BATCH as u64, Ordering::Relaxed);
                            }
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        i += clients;
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    Run {
        spans: spans.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        server_cpu: cpu_seconds(&pid) - server_cpu0,
        client_cpu: cpu_seconds("self") - client_cpu0,
        latencies,
        errors: errors.load(Ordering::Relaxed),
    }
}

fn report(name: &str, run: &Run) {
    let rate = run.spans as f64 / run.seconds;
    println!(
        "{name:<14} {:>10.0} spans/s  server {:>5.2} cores ({:>9.0} spans per server-CPU-s)  client {:>4.2} cores  \
         per core incl. client {:>9.0}  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}",
        rate,
        run.server_cpu / run.seconds,
        run.spans as f64 / run.server_cpu.max(1e-9),
        run.client_cpu / run.seconds,
        run.spans as f64 / (run.server_cpu + run.client_cpu).max(1e-9),
        run.percentile(0.5).as_secs_f64() * 1e3,
        run.percentile(0.99).as_secs_f64() * 1e3,
        run.errors,
    );
}

fn sql(api: SocketAddr, query: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("http://{api}/api/v1/sql"))
            .body(query.to_owned())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

fn main() {
    let args = args();
    let payloads: Arc<Vec<Bytes>> = Arc::new((0..64).map(request).collect());
    let dir = tempfile::tempdir().unwrap();
    println!(
        "durable OTLP/HTTP ingest, {} clients, {} s, 512 spans x 10 attributes per request ({} bytes protobuf)",
        args.clients,
        args.seconds,
        payloads[0].len()
    );

    let grayscope = start_grayscope(dir.path());
    let ours = drive(&grayscope, &payloads, args.clients, args.seconds, None);
    report("grayscope", &ours);

    // Bytes per span once everything is in Parquet.
    let api = grayscope.api.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = sql(
            api,
            "SELECT sum(memory_rows) AS m, sum(part_rows) AS p, sum(part_bytes) AS b FROM system.tables",
        );
        let row = &rows["rows"][0];
        if row["m"].as_i64() == Some(0) || Instant::now() > deadline {
            let (parts, bytes) = (
                row["p"].as_f64().unwrap_or(0.0),
                row["b"].as_f64().unwrap_or(0.0),
            );
            println!(
                "grayscope      Parquet {:.1} bytes/span over {parts} spans",
                bytes / parts.max(1.0)
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let half = ours.spans as f64 / ours.seconds / 2.0 / BATCH as f64;
    let paced = drive(
        &grayscope,
        &payloads,
        args.clients,
        args.seconds,
        Some(half),
    );
    report("grayscope 50%", &paced);
    drop(grayscope);

    if let Some(peer) = &args.peer {
        let server = start_peer(peer, dir.path());
        let theirs = drive(&server, &payloads, args.clients, args.seconds, None);
        report("otlp2parquet", &theirs);
        // It buffers and writes by age: give it time, then weigh its files.
        std::thread::sleep(Duration::from_secs(15));
        let bytes = dir_bytes(&server.data, "parquet");
        println!(
            "otlp2parquet   Parquet {:.1} bytes/span over {} acknowledged spans (files written so far)",
            bytes as f64 / theirs.spans.max(1) as f64,
            theirs.spans
        );
        let per_core = |r: &Run| r.spans as f64 / (r.server_cpu + r.client_cpu).max(1e-9);
        println!(
            "ratio grayscope / otlp2parquet: throughput {:.2}x, spans per CPU-s incl. client {:.2}x",
            (ours.spans as f64 / ours.seconds) / (theirs.spans as f64 / theirs.seconds).max(1e-9),
            per_core(&ours) / per_core(&theirs).max(1e-9),
        );
    } else {
        println!("(no peer: install otlp2parquet or pass --peer PATH for the side-by-side run)");
    }
}
