//! Durable ingest end to end: OTLP/HTTP clients on loopback against a real
//! `grayscope serve` (write-ahead log with fsync on every commit group, the
//! default), and against a peer (`otlp2parquet`) under the same load in the
//! same run.
//!
//! ```text
//! cargo bench --bench ingest_e2e -- [--seconds N] [--clients N] [--rounds N]
//!     [--signals traces,logs] [--peer PATH | --no-peer] [--wal-sync commit|interval]
//!     [--no-compaction] [--store KEY=VALUE]...
//! ```
//!
//! `--wal-sync interval` runs grayscope with `[store.wal] sync = "interval"`
//! (answers before the fsync; for telling the disk's share of the latency
//! from the rest, not for the durable figures). `--no-compaction` turns
//! compaction off (`compact_below = "0"`), to tell the ingest path's own
//! cost from that background work's. `--store KEY=VALUE` sets any other
//! `[store]` setting, VALUE in TOML (`--store 'flush_size="256MiB"'`); the
//! bench's own are `flush_interval = "5s"` and `memory_limit = "2GiB"`.
//! (`[store.wal]` has a table of its own, which `--store` does not reach;
//! only its `sync` is set, by `--wal-sync`.) The settings given are
//! printed in the first line of the output.
//!
//! For each signal (spans, then log records; 512 records per export
//! request, protobuf), each round drives grayscope flat out, then the peer
//! flat out with the same requests and clients, then grayscope again paced
//! at half of the throughput it just reached. Alternating the two servers
//! within a round, and repeating rounds, keeps the ratio honest on a
//! machine shared with other work. Each line reports:
//!
//! - records/s acknowledged (2xx) and export calls that failed;
//! - the CPU the server used while it was driven, in cores, and records per
//!   CPU-second of the server, both while driven and including the work
//!   left after the load stopped until everything acknowledged was in
//!   Parquet (grayscope's flush; the peer's age-based batch writes);
//! - the load generator's own CPU (this process: one tokio worker and
//!   reqwest), and records per CPU-second of server and client together;
//! - export call latency (request sent to response read): p50, p90, p99, max.
//!
//! Then the Parquet bytes per record each server wrote (the peer's rows
//! read from its files' footers, which also checks that it wrote what it
//! acknowledged), and the ratios per round.
//!
//! What each side guarantees when it answers: grayscope has appended the
//! batch to its write-ahead log and fsynced it (shared by concurrent
//! requests); otlp2parquet has the batch in memory, written to a Parquet
//! file within its batch age (10 s by default) and never fsynced, so a
//! crash loses up to that window.
//!
//! Log records carry trace context without the W3C sampled flag, so no
//! export waits in the trace join's hold window (sampled records of traces
//! not seen yet wait by design; see `docs/cohorts.md`). Their bodies come
//! from eight kinds of event and are mined at ingest with the default
//! miner, as a server does.
//!
//! The server run is the `grayscope` binary built with the bench, or the
//! one `GRAYSCOPE_BIN` names: an A/B of two builds runs each build's
//! binary, copied aside, with the same bench.

// A bench program: it prints its report, panics on setup failures, and its
// synchronous main thread sleeps while it polls.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::cast_precision_loss
)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use parquet::file::reader::{FileReader as _, SerializedFileReader};
use prost::Message as _;

const BATCH: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Traces,
    Logs,
}

impl Signal {
    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Logs => "/v1/logs",
        }
    }

    /// grayscope's table.
    fn table(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "logs",
        }
    }

    /// otlp2parquet's folder under its output directory.
    fn peer_folder(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "logs",
        }
    }
}

struct Args {
    seconds: u64,
    clients: usize,
    rounds: usize,
    signals: Vec<Signal>,
    peer: Option<PathBuf>,
    wal_sync: String,
    compaction: bool,
    /// `[store]` settings, `key = value` lines, over the bench's own.
    store: BTreeMap<String, String>,
}

fn args() -> Args {
    let mut args = Args {
        seconds: 15,
        clients: 8,
        rounds: 1,
        signals: vec![Signal::Traces, Signal::Logs],
        peer: which("otlp2parquet"),
        wal_sync: "commit".to_owned(),
        compaction: true,
        store: BTreeMap::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => args.seconds = it.next().unwrap().parse().unwrap(),
            "--clients" => args.clients = it.next().unwrap().parse().unwrap(),
            "--rounds" => args.rounds = it.next().unwrap().parse().unwrap(),
            "--signals" => {
                args.signals = it
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|s| match s {
                        "traces" | "spans" => Signal::Traces,
                        "logs" => Signal::Logs,
                        other => panic!("unknown signal {other:?}: traces or logs"),
                    })
                    .collect();
            }
            "--peer" => args.peer = Some(it.next().unwrap().into()),
            "--no-peer" => args.peer = None,
            "--wal-sync" => args.wal_sync = it.next().unwrap(),
            "--no-compaction" => args.compaction = false,
            "--store" => {
                let setting = it.next().unwrap();
                let (key, value) = setting
                    .split_once('=')
                    .expect("--store KEY=VALUE, VALUE in TOML");
                args.store
                    .insert(key.trim().to_owned(), value.trim().to_owned());
            }
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

fn resource() -> Resource {
    Resource {
        attributes: vec![
            text("service.name", "checkout"),
            text("service.version", "2.14.1"),
            text("service.instance.id", "checkout-7d9f8b6c5-x2x4q"),
            text("deployment.environment.name", "production"),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "axum".into(),
        ..Default::default()
    }
}

fn trace_id(n: u64) -> Vec<u8> {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(n / 4).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    trace_id[8..].copy_from_slice(&(n / 4 + 1).to_be_bytes());
    if n.is_multiple_of(10) {
        trace_id[14..].copy_from_slice(&[0, 2]);
    }
    trace_id.to_vec()
}

fn span_id(n: u64) -> Vec<u8> {
    (n + 1)
        .wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        .to_be_bytes()
        .to_vec()
}

/// A realistic export request: 512 spans of one service, 10 attributes
/// each, unique ids (`seed` makes every request different), starting at
/// `base` (nanoseconds since the epoch), so that they land in the current
/// hour partition as live telemetry does.
fn spans_request(seed: u64, base: u64) -> Bytes {
    let routes = ["/cart", "/checkout", "/api/v1/items/{id}", "/health"];
    let spans = (0..BATCH as u64)
        .map(|i| {
            let n = seed * BATCH as u64 + i;
            let start = base + n * 100_000;
            Span {
                trace_id: trace_id(n),
                span_id: span_id(n),
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
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(request.encode_to_vec())
}

/// A log body of one of eight kinds of event, its variables varied by `n`.
fn log_body(n: u64) -> (String, i32, &'static str) {
    let k = n / 8;
    match n % 8 {
        0 => (
            format!(
                "order {} reserved {} items in {}ms for user {}",
                100_000 + k,
                k % 7 + 1,
                k % 90 + 3,
                k * 31 % 10_000
            ),
            9,
            "INFO",
        ),
        1 => (
            format!(
                "GET /api/v1/items/{} 200 {}ms bytes={}",
                k % 5000,
                k % 120 + 1,
                1000 + k % 9000
            ),
            9,
            "INFO",
        ),
        2 => (
            format!(
                "connection from 10.{}.{}.{}:{} closed after {}s",
                k % 4,
                k % 250,
                k % 199,
                30_000 + k % 20_000,
                k % 600
            ),
            5,
            "DEBUG",
        ),
        3 => (
            format!(
                "cache miss for key user:{}:cart, loading from db",
                k % 20_000
            ),
            5,
            "DEBUG",
        ),
        4 => (
            format!(
                "payment {:08x}-{:04x}-4{:03x}-8{:03x}-{:012x} authorized amount={}.{:02} currency=EUR",
                k.wrapping_mul(2_654_435_761) as u32,
                k % 0xffff,
                k % 0xfff,
                (k * 7) % 0xfff,
                k.wrapping_mul(0x9e37_79b9) & 0xffff_ffff_ffff,
                k % 500,
                k % 100
            ),
            9,
            "INFO",
        ),
        5 => (
            format!(
                "timeout after {}ms calling redis at 10.0.{}.{}:6379, retrying ({}/3)",
                100 + k % 900,
                k % 8,
                k % 32,
                k % 3 + 1
            ),
            13,
            "WARN",
        ),
        6 => (
            format!(
                "level=info msg=\"request done\" route=/checkout status=200 duration={}ms user_id={}",
                k % 300,
                k % 50_000
            ),
            9,
            "INFO",
        ),
        _ => (
            format!(
                "failed to reserve stock for sku {} in warehouse {}: insufficient quantity (wanted {}, have {})",
                10_000 + k % 90_000,
                ["ams-1", "fra-2", "waw-1"][(k % 3) as usize],
                k % 9 + 2,
                k % 2
            ),
            17,
            "ERROR",
        ),
    }
}

/// 512 log records of one service, 5 attributes each, trace context
/// without the sampled flag, bodies of eight kinds of event.
fn logs_request(seed: u64, base: u64) -> Bytes {
    let log_records = (0..BATCH as u64)
        .map(|i| {
            let n = seed * BATCH as u64 + i;
            let time = base + n * 100_000;
            let (body, severity_number, severity_text) = log_body(n);
            LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time + 50_000,
                severity_number,
                severity_text: severity_text.into(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(body)),
                }),
                attributes: vec![
                    text("code.function.name", "reserve_items"),
                    text("code.file.path", "src/orders/reserve.rs"),
                    int("code.line.number", 212 + (n % 8) as i64),
                    text("thread.name", "tokio-runtime-worker"),
                    text("order.channel", ["web", "ios", "android"][(n % 3) as usize]),
                ],
                trace_id: trace_id(n),
                span_id: span_id(n),
                flags: 0,
                ..Default::default()
            }
        })
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records,
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

/// CPU seconds (user + system) a process has used, all its threads.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parquet files under `dir`: (files, rows from their footers, bytes).
fn parquet_stats(dir: &Path) -> (u64, u64, u64) {
    let (mut files, mut rows, mut bytes) = (0, 0, 0);
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let Ok(file) = std::fs::File::open(&path) else {
                    continue;
                };
                // A file still being written has no footer yet.
                let Ok(reader) = SerializedFileReader::new(file) else {
                    continue;
                };
                files += 1;
                rows += u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    (files, rows, bytes)
}

struct Server {
    child: Child,
    http: SocketAddr,
    api: Option<SocketAddr>,
    data: PathBuf,
}

impl Server {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_grayscope(dir: &Path, args: &Args) -> Server {
    let config = dir.join("grayscope.toml");
    let compact_below = if args.compaction {
        "\"64MiB\""
    } else {
        "\"0\""
    };
    let mut store: BTreeMap<String, String> = [
        ("flush_interval", "\"5s\""),
        ("memory_limit", "\"2GiB\""),
        ("compact_below", compact_below),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    store.extend(args.store.clone());
    let store: String = store.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             max_concurrent_requests = 256\n[api]\naddr = \"127.0.0.1:0\"\n[sql]\npostgres_addr = \"127.0.0.1:0\"\nflight_addr = \"127.0.0.1:0\"\n\
             [store]\n{store}[store.wal]\nsync = {:?}\n",
            dir.join("data"),
            args.wal_sync
        ),
    )
    .unwrap();
    let binary =
        std::env::var_os("GRAYSCOPE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_grayscope").into());
    let mut child = Command::new(binary)
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
    records: u64,
    seconds: f64,
    /// Server CPU while it was driven.
    server_cpu: f64,
    /// Server CPU from the start of the load until what it acknowledged
    /// was in Parquet.
    server_cpu_drained: f64,
    client_cpu: f64,
    latencies: Vec<Duration>,
    errors: u64,
    /// Failed calls by HTTP status (or "no response").
    failures: BTreeMap<String, u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    fn per_server_cpu(&self) -> f64 {
        self.records as f64 / self.server_cpu.max(1e-9)
    }

    fn per_server_cpu_drained(&self) -> f64 {
        self.records as f64 / self.server_cpu_drained.max(1e-9)
    }

    fn per_cpu_with_client(&self) -> f64 {
        self.records as f64 / (self.server_cpu_drained + self.client_cpu).max(1e-9)
    }

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
/// `drained` waits, after the load, until the server has written what it
/// acknowledged; the server's CPU is read before and after it too.
fn drive(
    server: &Server,
    signal: Signal,
    payloads: &Arc<Vec<Bytes>>,
    clients: usize,
    seconds: u64,
    rate: Option<f64>,
    drained: impl FnOnce(u64),
) -> Run {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pid = server.pid();
    let server_cpu0 = cpu_seconds(&pid);
    let client_cpu0 = cpu_seconds("self");
    let records = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let started = Instant::now();
    let url = format!("http://{}{}", server.http, signal.path());
    let latencies = runtime.block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (client, url, payloads) = (client.clone(), url.clone(), payloads.clone());
                let (records, failures) = (records.clone(), failures.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = c;
                    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
                    // Spread the paced clients over one interval.
                    let mut next = Instant::now()
                        + interval.map_or(Duration::ZERO, |d| d * c as u32 / clients as u32);
                    while started.elapsed() < Duration::from_secs(seconds) {
                        if let Some(interval) = interval {
                            tokio::time::sleep_until(next.into()).await;
                            next += interval;
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
                                records.fetch_add(BATCH as u64, Ordering::Relaxed);
                            }
                            failed => {
                                let why = failed.map_or("no response".to_owned(), |r| {
                                    r.status().as_u16().to_string()
                                });
                                *failures.lock().unwrap().entry(why).or_default() += 1;
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
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&pid) - server_cpu0;
    let client_cpu = cpu_seconds("self") - client_cpu0;
    let records = records.load(Ordering::Relaxed);
    drained(records);
    // One lock: a second `lock()` in the same expression would wait for the
    // first guard, which lives until the expression ends.
    let failures = failures.lock().unwrap().clone();
    Run {
        records,
        seconds,
        server_cpu,
        server_cpu_drained: cpu_seconds(&pid) - server_cpu0,
        client_cpu,
        latencies,
        errors: failures.values().sum(),
        failures,
    }
}

fn header(signal: Signal) {
    let unit = signal.unit();
    println!(
        "{:<18} {:>10} {:>6} {:>6} {:>12} {:>12} {:>6} {:>12} {:>7} {:>7} {:>7} {:>7}  load",
        "run",
        format!("{unit}/s"),
        "errors",
        "cores",
        "/server-CPUs",
        "+drain",
        "client",
        "/CPUs+client",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    );
}

fn report(name: &str, run: &Run) {
    println!(
        "{name:<18} {:>10.0} {:>6} {:>6.2} {:>12.0} {:>12.0} {:>6.2} {:>12.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2}  {}",
        run.rate(),
        run.errors,
        run.server_cpu / run.seconds,
        run.per_server_cpu(),
        run.per_server_cpu_drained(),
        run.client_cpu / run.seconds,
        run.per_cpu_with_client(),
        run.percentile(0.5).as_secs_f64() * 1e3,
        run.percentile(0.9).as_secs_f64() * 1e3,
        run.percentile(0.99).as_secs_f64() * 1e3,
        run.percentile(1.0).as_secs_f64() * 1e3,
        load_average(),
    );
    if !run.failures.is_empty() {
        println!("{:<18} failed calls by status: {:?}", "", run.failures);
    }
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

/// grayscope's rows of `table`: (in memtables, in Parquet parts, part bytes).
fn table_stats(server: &Server, table: &str) -> (i64, i64, i64) {
    let rows = sql(
        server.api.unwrap(),
        &format!(
            "SELECT memory_rows AS m, part_rows AS p, part_bytes AS b FROM system.tables \
             WHERE table_name = '{table}'"
        ),
    );
    let row = &rows["rows"][0];
    let get = |k: &str| row[k].as_i64().unwrap_or(0);
    (get("m"), get("p"), get("b"))
}

/// Bytes grayscope has appended to its write-ahead log since it started.
fn wal_appended_bytes(server: &Server) -> i64 {
    let rows = sql(
        server.api.unwrap(),
        "SELECT wal_appended_bytes AS b FROM system.store",
    );
    rows["rows"][0]["b"].as_i64().unwrap_or(0)
}

/// Waits until grayscope has flushed every row of `table` to Parquet.
fn grayscope_drained(server: &Server, table: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while table_stats(server, table).0 > 0 {
        assert!(
            Instant::now() < deadline,
            "grayscope did not flush in 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the peer's files hold `expected` rows of `signal` (it
/// writes a batch once it is 10 s old), or 60 s have passed.
fn peer_drained(server: &Server, signal: Signal, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let folder = server.data.join(signal.peer_folder());
    while parquet_stats(&folder).1 < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let base = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    println!(
        "durable OTLP/HTTP ingest on loopback: {} clients, {} s per run, {} round(s), 512 records per \
         request (protobuf); grayscope's WAL sync = {:?}, compaction {}{}; {} cores; \
         load average at start {}",
        args.clients,
        args.seconds,
        args.rounds,
        args.wal_sync,
        if args.compaction { "on" } else { "off" },
        args.store
            .iter()
            .map(|(key, value)| format!(", {key} = {value}"))
            .collect::<String>(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
    );
    println!(
        "columns: records/s acknowledged, failed calls, server cores used while driven, records per \
         server CPU-second while driven and including the work until all was in Parquet (+drain), \
         client cores, records per CPU-second of server (+drain) and client together, export latency"
    );
    let grayscope = start_grayscope(dir.path(), &args);
    let peer = args.peer.as_ref().map(|p| start_peer(p, dir.path()));
    if peer.is_none() {
        println!("(no peer: install otlp2parquet or pass --peer PATH for the side-by-side run)");
    }

    for &signal in &args.signals {
        let payloads: Arc<Vec<Bytes>> = Arc::new(
            (0..64)
                .map(|seed| match signal {
                    Signal::Traces => spans_request(seed, base),
                    Signal::Logs => logs_request(seed, base),
                })
                .collect(),
        );
        println!(
            "\n{}: 512 per request, {} bytes of protobuf per request",
            signal.unit(),
            payloads[0].len()
        );
        header(signal);
        let logged_before = wal_appended_bytes(&grayscope);
        let mut peer_acked = 0;
        let (mut ours_all, mut theirs_all, mut half_all) = (vec![], vec![], vec![]);
        for round in 1..=args.rounds {
            let ours = drive(
                &grayscope,
                signal,
                &payloads,
                args.clients,
                args.seconds,
                None,
                |_| grayscope_drained(&grayscope, signal.table()),
            );
            report(&format!("grayscope #{round}"), &ours);
            if let Some(peer) = &peer {
                let theirs = drive(
                    peer,
                    signal,
                    &payloads,
                    args.clients,
                    args.seconds,
                    None,
                    |acked| {
                        peer_acked += acked;
                        peer_drained(peer, signal, peer_acked);
                    },
                );
                report(&format!("otlp2parquet #{round}"), &theirs);
                println!(
                    "{:<18} throughput {:.2}x, per server CPU-s (+drain) {:.2}x, per CPU-s with client {:.2}x",
                    format!("ratio #{round}"),
                    ours.rate() / theirs.rate().max(1e-9),
                    ours.per_server_cpu_drained() / theirs.per_server_cpu_drained().max(1e-9),
                    ours.per_cpu_with_client() / theirs.per_cpu_with_client().max(1e-9),
                );
                theirs_all.push(theirs);
            }
            // Half of what it just reached, in requests/s.
            let half_rate = ours.rate() / 2.0 / BATCH as f64;
            let half = drive(
                &grayscope,
                signal,
                &payloads,
                args.clients,
                args.seconds,
                Some(half_rate),
                |_| grayscope_drained(&grayscope, signal.table()),
            );
            report(&format!("grayscope 50% #{round}"), &half);
            ours_all.push(ours);
            half_all.push(half);
        }

        let (_, rows, bytes) = table_stats(&grayscope, signal.table());
        println!(
            "grayscope          Parquet {:.1} bytes per record ({rows} rows in parts, {bytes} bytes)",
            bytes as f64 / rows.max(1) as f64
        );
        let logged = wal_appended_bytes(&grayscope) - logged_before;
        println!(
            "grayscope          write-ahead log {:.1} bytes per record ({logged} bytes appended)",
            logged as f64 / rows.max(1) as f64
        );
        if let Some(peer) = &peer {
            let (files, rows, bytes) = parquet_stats(&peer.data.join(signal.peer_folder()));
            println!(
                "otlp2parquet       Parquet {:.1} bytes per record ({rows} rows in {files} files, {bytes} bytes; \
                 {peer_acked} acknowledged)",
                bytes as f64 / rows.max(1) as f64
            );
        }
        let med = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        println!(
            "median of {} round(s): grayscope {:.0} {unit}/s, {:.0} {unit} per server CPU-s (+drain), \
             {:.0} per CPU-s with client; p99 at 50% load {:.2} ms",
            args.rounds,
            med(&ours_all, Run::rate),
            med(&ours_all, Run::per_server_cpu_drained),
            med(&ours_all, Run::per_cpu_with_client),
            med(&half_all, |r| r.percentile(0.99).as_secs_f64() * 1e3),
            unit = signal.unit(),
        );
        if !theirs_all.is_empty() {
            let ratios = |f: fn(&Run) -> f64| {
                median(
                    ours_all
                        .iter()
                        .zip(&theirs_all)
                        .map(|(o, t)| f(o) / f(t).max(1e-9))
                        .collect(),
                )
            };
            println!(
                "median of {} round(s): otlp2parquet {:.0} {unit}/s; ratio grayscope / otlp2parquet: \
                 throughput {:.2}x, per server CPU-s (+drain) {:.2}x, per CPU-s with client {:.2}x",
                args.rounds,
                med(&theirs_all, Run::rate),
                ratios(Run::rate),
                ratios(Run::per_server_cpu_drained),
                ratios(Run::per_cpu_with_client),
                unit = signal.unit(),
            );
        }
    }
    println!("\nload average at end {}", load_average());
}
