//! The same L1 query — per-cohort request count, error rate and p99
//! latency of server spans — over 10M spans, through each of grayscope's
//! SQL front ends, against DuckDB over the same Parquet files, in one run.
//!
//! ```text
//! cargo bench --bench sql_frontends -- [--spans N] [--runs N] [--data-dir DIR] [--part-rows N]
//! ```
//!
//! Setup (not timed): `--spans` spans (default 10M) over the last two
//! hours, 5 % canary, half of them server spans, written through
//! grayscope's own store (`Store::append`, flushed every 2M spans: Parquet
//! parts of about 2M rows in hour partitions, the layout a server writes).
//! `--part-rows N` flushes every N spans instead, with no compaction: the
//! many small parts of an hour that compaction has not merged yet (a
//! server flat out flushes about 110k spans at a time).
//! With `--data-dir`, the data is kept there and reused by the next run
//! (delete it to regenerate). Then a real
//! `grayscope serve` (release binary) is started on that directory.
//!
//! Timed, `--runs` rounds (default 15) after two warm-up rounds, each
//! round running every front end once in a rotated order, from request
//! sent to last row received:
//!
//! - HTTP: `POST /api/v1/sql`, JSON answer (reqwest);
//! - PostgreSQL wire protocol: `tokio-postgres`, simple query protocol, on
//!   the `postgres=` address the server prints (skipped if it prints none);
//! - Arrow Flight SQL: arrow-flight's `FlightSqlServiceClient`,
//!   GetFlightInfo then DoGet;
//! - HTTP again, with DataFusion's `approx_percentile_cont` (a t-digest)
//!   for the p99 instead of grayscope's `approx_quantile` (log buckets);
//! - DuckDB (Python, from the test venv `target/venv`) over the same
//!   Parquet parts, one warm connection, timed inside its process.
//!
//! Reports the median and min of each, their ratio to DuckDB's, and
//! checks that all five gave the same answer.

// A bench program: it prints its report and panics on setup failures.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, AsArray as _, Int32Builder, Int64Array, ListArray, MapArray, RecordBatch,
    StringBuilder, StructArray, TimestampNanosecondArray, new_empty_array, new_null_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type};
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt as _;
use grayscope_core::Table;
use grayscope_core::config::StoreConfig;
use grayscope_store::Store;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The query every grayscope front end runs, its p99 by grayscope's
/// `approx_quantile` (log buckets, within 0.4 %).
const QUERY: &str = "SELECT cohort, count(*) AS requests, \
     avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate, \
     approx_quantile(duration_ns, 0.99) AS p99_ns \
     FROM spans WHERE kind = 'server' GROUP BY cohort ORDER BY cohort";

/// The same query with DataFusion's t-digest `approx_percentile_cont`,
/// timed over HTTP beside the others.
const QUERY_TDIGEST: &str = "SELECT cohort, count(*) AS requests, \
     avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate, \
     approx_percentile_cont(duration_ns, 0.99) AS p99_ns \
     FROM spans WHERE kind = 'server' GROUP BY cohort ORDER BY cohort";

const BATCH_ROWS: usize = 64 * 1024;

struct Args {
    spans: usize,
    runs: usize,
    data_dir: Option<PathBuf>,
    part_rows: usize,
}

fn args() -> Args {
    let mut args = Args {
        spans: 10_000_000,
        runs: 15,
        data_dir: None,
        part_rows: 2_000_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--spans" => args.spans = it.next().unwrap().parse().unwrap(),
            "--runs" => args.runs = it.next().unwrap().parse().unwrap(),
            "--data-dir" => args.data_dir = Some(it.next().unwrap().into()),
            "--part-rows" => args.part_rows = it.next().unwrap().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    args
}

/// One cohort's answer: requests, error rate, p99 in ns.
type Answer = Vec<(String, i64, f64, f64)>;

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("date: {}", shell("date -u"));
    println!("load: {}", shell("uptime"));

    let temp = tempfile::tempdir().unwrap();
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let data = dir.join("data");
    if has_spans(&data) {
        println!("reusing the spans in {}", data.display());
    } else {
        let started = Instant::now();
        runtime.block_on(generate(&data, args.spans, args.part_rows));
        println!(
            "wrote {} spans to {} in {:.1} s",
            args.spans,
            data.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let parts = spans_parts(&data);
    let bytes: u64 = parts
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "{} Parquet parts, {:.1} MiB",
        parts.len(),
        bytes as f64 / (1 << 20) as f64
    );

    let server = start_server(&dir, &data);
    println!("server: {}", server.line);
    let mut duckdb = DuckDb::start(&data);

    runtime.block_on(async {
        let http = reqwest::Client::new();
        let api = server.addr("api").unwrap();
        let flight_addr = server.addr("flight").expect("the server prints flight=");
        let channel = tonic::transport::Channel::from_shared(format!("http://{flight_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut flight = FlightSqlServiceClient::new(channel);
        let postgres = match server.addr("postgres") {
            Some(addr) => {
                let (client, connection) = tokio_postgres::connect(
                    &format!(
                        "host={} port={} user=grayscope dbname=grayscope",
                        addr.ip(),
                        addr.port()
                    ),
                    tokio_postgres::NoTls,
                )
                .await
                .expect("connect to the PostgreSQL wire server");
                tokio::spawn(connection);
                Some(client)
            }
            None => {
                println!("PostgreSQL wire: skipped, the listening line has no postgres= address");
                None
            }
        };

        let names = [
            "HTTP SQL API",
            "PostgreSQL wire",
            "Flight SQL",
            "HTTP, approx_percentile_cont",
            "DuckDB (Python)",
        ];
        const DUCK: usize = 4;
        let mut times: [Vec<f64>; 5] = Default::default();
        let mut answers: [Option<Answer>; 5] = Default::default();
        for round in 0..args.runs + 2 {
            for k in 0..names.len() {
                let which = (round + k) % names.len();
                let (ms, answer) = match which {
                    0 => timed(query_http(&http, api, QUERY)).await,
                    1 => match &postgres {
                        Some(client) => timed(query_postgres(client)).await,
                        None => continue,
                    },
                    2 => timed(query_flight(&mut flight)).await,
                    3 => timed(query_http(&http, api, QUERY_TDIGEST)).await,
                    _ => duckdb.run(),
                };
                if round >= 2 {
                    times[which].push(ms);
                }
                answers[which] = Some(answer);
            }
        }

        println!();
        println!(
            "{} server spans counted by the query, {} runs each after 2 warm-up runs, interleaved",
            count(&answers),
            args.runs
        );
        let duck_median = median(&times[DUCK]);
        let duck_min = min(&times[DUCK]);
        println!("| front end | median ms | min ms | median / DuckDB | min / DuckDB |");
        println!("|---|---:|---:|---:|---:|");
        for (name, times) in names.iter().zip(&times) {
            if times.is_empty() {
                println!("| {name} | skipped | | | |");
                continue;
            }
            println!(
                "| {name} | {:.1} | {:.1} | {:.2}× | {:.2}× |",
                median(times),
                min(times),
                median(times) / duck_median,
                min(times) / duck_min
            );
        }
        println!();
        let reference = answers[DUCK].clone().unwrap();
        for (name, answer) in names.iter().zip(&answers) {
            match answer {
                None => {}
                Some(answer) if agrees(answer, &reference) => {
                    println!("{name}: {answer:?}");
                }
                Some(answer) => {
                    println!("{name}: DIFFERS from DuckDB: {answer:?} vs {reference:?}")
                }
            }
        }
    });
    println!("load: {}", shell("uptime"));
    drop(server);
}

fn count(answers: &[Option<Answer>]) -> i64 {
    answers
        .iter()
        .flatten()
        .next()
        .map(|a| a.iter().map(|r| r.1).sum())
        .unwrap_or(0)
}

/// Counts and error rates equal; p99 within 2 % (every side estimates it:
/// DuckDB and `approx_percentile_cont` with t-digests, `approx_quantile`
/// with log buckets).
fn agrees(a: &Answer, b: &Answer) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.0 == y.0
                && x.1 == y.1
                && (x.2 - y.2).abs() < 1e-9
                && (x.3 - y.3).abs() <= 0.02 * y.3.abs()
        })
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn min(times: &[f64]) -> f64 {
    times.iter().copied().fold(f64::INFINITY, f64::min)
}

fn shell(command: &str) -> String {
    let output = Command::new("sh").args(["-c", command]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn timed(query: impl std::future::Future<Output = Answer>) -> (f64, Answer) {
    let started = Instant::now();
    let answer = query.await;
    (started.elapsed().as_secs_f64() * 1e3, answer)
}

async fn query_http(client: &reqwest::Client, api: SocketAddr, sql: &'static str) -> Answer {
    let response = client
        .post(format!("http://{api}/api/v1/sql"))
        .header("content-type", "text/plain")
        .header("accept", "application/json")
        .body(sql)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["cohort"].as_str().unwrap().to_owned(),
                row["requests"].as_i64().unwrap(),
                row["error_rate"].as_f64().unwrap(),
                row["p99_ns"].as_f64().unwrap(),
            )
        })
        .collect()
}

async fn query_postgres(client: &tokio_postgres::Client) -> Answer {
    let messages = client.simple_query(QUERY).await.unwrap();
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some((
                row.get(0).unwrap().to_owned(),
                row.get(1).unwrap().parse().unwrap(),
                row.get(2).unwrap().parse().unwrap(),
                row.get(3).unwrap().parse().unwrap(),
            )),
            _ => None,
        })
        .collect()
}

async fn query_flight(client: &mut FlightSqlServiceClient<tonic::transport::Channel>) -> Answer {
    let info = client.execute(QUERY.to_owned(), None).await.unwrap();
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.unwrap();
        let stream = client.do_get(ticket).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    let mut answer = Vec::new();
    for batch in batches {
        let cohort = arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
        let p99 = arrow::compute::cast(batch.column(3), &DataType::Float64).unwrap();
        for i in 0..batch.num_rows() {
            answer.push((
                cohort.as_string::<i32>().value(i).to_owned(),
                batch.column(1).as_primitive::<Int64Type>().value(i),
                batch.column(2).as_primitive::<Float64Type>().value(i),
                p99.as_primitive::<Float64Type>().value(i),
            ));
        }
    }
    answer
}

/// DuckDB in a Python process that answers one run per line.
struct DuckDb {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl DuckDb {
    fn start(data: &Path) -> DuckDb {
        let python = std::env::var_os("GRAYSCOPE_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python")
            });
        assert!(
            python.exists(),
            "no Python with duckdb at {}: run scripts/test once (it creates target/venv)",
            python.display()
        );
        let glob = data.join("spans/*/*/*.parquet");
        let mut child = Command::new(python)
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/sql_frontends_duckdb.py"))
            .arg(glob)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        println!("duckdb: {}", line.trim());
        DuckDb {
            child,
            stdin,
            stdout,
        }
    }

    fn run(&mut self) -> (f64, Answer) {
        writeln!(self.stdin, "run").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
        let rows = reply["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().to_owned(),
                    r[1].as_i64().unwrap(),
                    r[2].as_f64().unwrap(),
                    r[3].as_f64().unwrap(),
                )
            })
            .collect();
        (reply["ms"].as_f64().unwrap(), rows)
    }
}

impl Drop for DuckDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Server {
    child: Child,
    line: String,
}

impl Server {
    fn addr(&self, key: &str) -> Option<SocketAddr> {
        self.line
            .split_whitespace()
            .find_map(|p| p.strip_prefix(&format!("{key}=")))
            .map(|a| a.parse().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &Path, data: &Path) -> Server {
    let config = dir.join("grayscope.toml");
    // No compaction while timing: the parts stay as written.
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[sql]\npostgres_addr = \"127.0.0.1:0\"\nflight_addr = \"127.0.0.1:0\"\n\
             [otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             [api]\naddr = \"127.0.0.1:0\"\n[store]\ncompact_below = \"0\"\n"
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
    assert!(line.starts_with("listening "), "{line:?}");
    Server {
        child,
        line: line.trim().to_owned(),
    }
}

fn spans_parts(data: &Path) -> Vec<PathBuf> {
    let mut parts = Vec::new();
    let Ok(dates) = std::fs::read_dir(data.join("spans")) else {
        return parts;
    };
    for date in dates.flatten() {
        for hour in std::fs::read_dir(date.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for file in std::fs::read_dir(hour.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if file.path().extension().is_some_and(|e| e == "parquet") {
                    parts.push(file.path());
                }
            }
        }
    }
    parts
}

fn has_spans(data: &Path) -> bool {
    !spans_parts(data).is_empty()
}

/// Writes `n` spans through the store: appended in batches, flushed every
/// `part_rows`, never compacted.
async fn generate(data: &Path, n: usize, part_rows: usize) {
    let config = StoreConfig {
        flush_size: grayscope_core::config::ByteSize(64 << 30),
        memory_limit: grayscope_core::config::ByteSize(64 << 30),
        flush_interval: grayscope_core::config::ConfigDuration::from_secs(3600),
        compact_below: grayscope_core::config::ByteSize(0),
        ..StoreConfig::default()
    };
    let (store, _) = Store::open(data, config).await.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let window = 2 * 3600 * 1_000_000_000_i64;
    let start = now - window - 60 * 1_000_000_000;
    let mut rng = StdRng::seed_from_u64(7);
    let mut written = 0;
    while written < n {
        let rows = BATCH_ROWS.min(part_rows).min(n - written);
        let batch = spans_batch(&mut rng, written, rows, n, start, window);
        store.append(Table::Spans, batch).await.unwrap();
        written += rows;
        // Flushing every ~2M spans by default keeps the write-ahead log
        // (truncated behind each flush) and memory small.
        if written % part_rows < rows {
            store.flush().await.unwrap();
        }
    }
    store.flush().await.unwrap();
    store.close().await.unwrap();
}

const SERVICES: [&str; 5] = ["checkout", "cart", "payments", "frontend", "inventory"];
const ROUTES: [&str; 8] = [
    "/cart",
    "/cart/items",
    "/checkout",
    "/pay",
    "/products",
    "/products/{id}",
    "/search",
    "/health",
];

/// Rows `first..first + rows` of `total`, evenly spread over the window,
/// with a realistic mix: 5 % canary, half server spans, the rest client
/// and internal; log-normal latencies (canary a little slower); about 1 %
/// errors (1.5 % in the canary).
fn spans_batch(
    rng: &mut StdRng,
    first: usize,
    rows: usize,
    total: usize,
    start: i64,
    window: i64,
) -> RecordBatch {
    let schema = Table::Spans.schema();
    let mut time = Vec::with_capacity(rows);
    let mut end = Vec::with_capacity(rows);
    let mut duration = Vec::with_capacity(rows);
    let mut trace_id = StringBuilder::with_capacity(rows, rows * 32);
    let mut span_id = StringBuilder::with_capacity(rows, rows * 16);
    let mut parent = StringBuilder::with_capacity(rows, rows * 16);
    let mut service = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut message = StringBuilder::new();
    let mut route = StringBuilder::new();
    let mut method = StringBuilder::new();
    let mut http_status = Int32Builder::new();
    let mut peer = StringBuilder::new();
    let mut scope_name = StringBuilder::new();
    let mut cohort = StringBuilder::new();
    let mut version = StringBuilder::new();
    for i in 0..rows {
        let t = start + ((first + i) as f64 / total as f64 * window as f64) as i64;
        let canary = rng.random::<f64>() < 0.05;
        let roll = rng.random::<f64>();
        let span_kind = if roll < 0.5 {
            "server"
        } else if roll < 0.8 {
            "client"
        } else {
            "internal"
        };
        // Log-normal around 20 ms (server), 5 ms (client), 1 ms (internal).
        let median_ms = match span_kind {
            "server" => 20.0,
            "client" => 5.0,
            _ => 1.0,
        } * if canary { 1.1 } else { 1.0 };
        let normal = (-2.0 * rng.random::<f64>().max(1e-12).ln()).sqrt()
            * (std::f64::consts::TAU * rng.random::<f64>()).cos();
        let d = (median_ms * 1e6 * (0.8 * normal).exp()) as i64;
        let error = rng.random::<f64>() < if canary { 0.015 } else { 0.01 };
        time.push(t);
        end.push(t + d);
        duration.push(d);
        let flag: u128 = if canary { 2 } else { 0 };
        write!(trace_id, "{:032x}", (rng.random::<u128>() & !0xffff) | flag).unwrap();
        trace_id.append_value("");
        write!(span_id, "{:016x}", rng.random::<u64>()).unwrap();
        span_id.append_value("");
        if span_kind == "server" {
            parent.append_null();
        } else {
            write!(parent, "{:016x}", rng.random::<u64>()).unwrap();
            parent.append_value("");
        }
        service.append_value(SERVICES[rng.random_range(0..SERVICES.len())]);
        let r = ROUTES[rng.random_range(0..ROUTES.len())];
        let m = if rng.random::<f64>() < 0.8 {
            "GET"
        } else {
            "POST"
        };
        match span_kind {
            "server" => {
                name.append_value(format!("{m} {r}"));
                route.append_value(r);
                method.append_value(m);
                http_status.append_value(if error { 500 } else { 200 });
                peer.append_null();
            }
            "client" => {
                name.append_value("redis GET");
                route.append_null();
                method.append_null();
                http_status.append_null();
                peer.append_value("redis");
            }
            _ => {
                name.append_value("render");
                route.append_null();
                method.append_null();
                http_status.append_null();
                peer.append_null();
            }
        }
        kind.append_value(span_kind);
        status.append_value(if error { "error" } else { "unset" });
        if error {
            message.append_value("upstream timeout");
        } else {
            message.append_null();
        }
        scope_name.append_value("io.opentelemetry.http");
        cohort.append_value(if canary { "canary" } else { "baseline" });
        version.append_value(if canary { "2.5.0" } else { "2.4.0" });
    }
    let timestamps = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
    };
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in schema.fields() {
        let column: ArrayRef = match field.name().as_str() {
            "time" => timestamps(std::mem::take(&mut time)),
            "end_time" => timestamps(std::mem::take(&mut end)),
            "duration_ns" => Arc::new(Int64Array::from(std::mem::take(&mut duration))),
            "trace_id" => Arc::new(trace_id.finish()),
            "span_id" => Arc::new(span_id.finish()),
            "parent_span_id" => Arc::new(parent.finish()),
            "service" => Arc::new(service.finish()),
            "name" => Arc::new(name.finish()),
            "kind" => Arc::new(kind.finish()),
            "status_code" => Arc::new(status.finish()),
            "status_message" => Arc::new(message.finish()),
            "http_route" => Arc::new(route.finish()),
            "http_method" => Arc::new(method.finish()),
            "http_status_code" => Arc::new(http_status.finish()),
            "peer_service" => Arc::new(peer.finish()),
            "scope_name" => Arc::new(scope_name.finish()),
            "cohort" => Arc::new(cohort.finish()),
            "version" => Arc::new(version.finish()),
            _ => empty(field, rows),
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema, columns).unwrap()
}

/// A column of `rows` empty lists or maps, or nulls.
fn empty(field: &Field, rows: usize) -> ArrayRef {
    match field.data_type() {
        DataType::List(item) => Arc::new(ListArray::new(
            item.clone(),
            OffsetBuffer::new_zeroed(rows),
            new_empty_array(item.data_type()),
            None,
        )),
        DataType::Map(entries, sorted) => {
            let entries_array = new_empty_array(entries.data_type());
            let entries_struct: StructArray = entries_array.as_struct().clone();
            Arc::new(MapArray::new(
                entries.clone(),
                OffsetBuffer::new_zeroed(rows),
                entries_struct,
                None,
                *sorted,
            ))
        }
        other if field.is_nullable() => new_null_array(other, rows),
        other => panic!("no empty value for {} ({other})", field.name()),
    }
}
