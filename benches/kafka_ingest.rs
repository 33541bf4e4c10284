//! Durable Kafka ingest: a real `grayscope serve` consumes a backlog of
//! Collector-format `otlp_proto` span messages from librdkafka's mock
//! cluster (in this process, on loopback) into its store (write-ahead log
//! with fsync on every commit group).
//!
//! ```text
//! cargo bench --bench kafka_ingest -- [--messages N] [--spans N] [--partitions N] [--brokers HOST:PORT]
//! ```
//!
//! With `--brokers`, a real broker (e.g. tansu, see
//! `scripts/kafka-e2e-tansu`) is used instead: the topics are created through
//! the admin API, and the run fails unless every span is stored.
//!
//! Reports spans/s stored (from the first to the last span, polled through
//! SQL), the CPU seconds the server spent (so spans per CPU-second is the
//! per-core figure), and the CPU the broker (this process) spent.

// A bench program: it prints its report and panics on setup failures.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn arg_text(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn arg(name: &str, default: u64) -> u64 {
    arg_text(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates `topics` on a real broker.
async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        if let Err((topic, error)) = result {
            println!("creating {topic}: {error:?} (continuing)");
        }
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// One message as the Collector's Kafka exporter writes it after its batch
/// processor: `spans` spans of one service.
fn message(seed: u64, spans: u64) -> Vec<u8> {
    let routes = ["/api/cart", "/api/pay", "/api/search", "/api/user"];
    // Recent spans: retention (7 days by default) would drop old ones.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 600_000_000_000;
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "checkout"),
                    text("service.version", "2.4.1"),
                    text("k8s.pod.name", "checkout-7d9f8b-x2x4q"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| {
                        let n = seed * spans + i;
                        let mut trace_id = [0u8; 16];
                        trace_id[..8].copy_from_slice(&(n / 8 + 1).to_be_bytes());
                        trace_id[8..].copy_from_slice(&(n * 7919 + 1).to_be_bytes());
                        let start = base + n * 1_000;
                        Span {
                            trace_id: trace_id.to_vec(),
                            span_id: (n + 1).to_be_bytes().to_vec(),
                            parent_span_id: if i % 8 == 0 {
                                Vec::new()
                            } else {
                                n.to_be_bytes().to_vec()
                            },
                            name: format!("GET {}", routes[(n % 4) as usize]),
                            kind: 2,
                            start_time_unix_nano: start,
                            end_time_unix_nano: start + 1_000 + (n % 977) * 1_000,
                            attributes: vec![
                                text("http.route", routes[(n % 4) as usize]),
                                text("http.request.method", "GET"),
                                KeyValue {
                                    key: "http.response.status_code".to_owned(),
                                    value: Some(AnyValue {
                                        value: Some(Value::IntValue(200)),
                                    }),
                                    ..Default::default()
                                },
                            ],
                            status: Some(Status::default()),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// CPU seconds (user + system) of process `pid`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

async fn sql(api: SocketAddr, sql: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("http://{api}/api/v1/sql"))
        .body(sql.to_owned())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["rows"].clone()
}

async fn count(api: SocketAddr) -> i64 {
    sql(api, "SELECT count(*) AS n FROM spans").await[0]["n"]
        .as_i64()
        .unwrap()
}

#[tokio::main]
async fn main() {
    let messages = arg("--messages", 1000);
    let spans = arg("--spans", 512);
    // The mock cluster keeps at most 5 MiB per partition: spread the
    // backlog so that none of it is dropped before it is consumed.
    let partitions = arg("--partitions", 32) as i32;
    let total = (messages * spans) as i64;

    let mock;
    let brokers = match arg_text("--brokers") {
        Some(brokers) => {
            create_topics(
                &brokers,
                &[("otlp_spans", partitions), ("grayscope_dead_letters", 1)],
            )
            .await;
            brokers
        }
        None => {
            mock = MockCluster::new(1).unwrap();
            mock.create_topic("otlp_spans", partitions, 1).unwrap();
            mock.create_topic("grayscope_dead_letters", 1, 1).unwrap();
            mock.bootstrap_servers()
        }
    };
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut bytes = 0;
    let mut deliveries = Vec::new();
    for m in 0..messages {
        let payload = message(m, spans);
        bytes += payload.len();
        let key = m.to_be_bytes();
        let record = FutureRecord::to("otlp_spans")
            .key(&key[..])
            .payload(&payload);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in deliveries {
        delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    println!(
        "backlog: {messages} messages x {spans} spans = {total} spans, {:.1} MiB otlp_proto, {partitions} partitions",
        bytes as f64 / (1 << 20) as f64
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grayscope.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[otlp]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             [api]\naddr = \"127.0.0.1:0\"\n[sql]\npostgres_addr = \"127.0.0.1:0\"\nflight_addr = \"127.0.0.1:0\"\n[kafka]\nbrokers = {:?}\ngroup_id = \"bench-{}\"\ninitial_offset = \"earliest\"\n\
             [[kafka.topics]]\ntopic = \"otlp_spans\"\nsignal = \"traces\"\n",
            dir.path().join("data"),
            brokers,
            std::process::id()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_grayscope"))
        .args(["serve", "--config"])
        .arg(&config)
        .env(
            "GRAYSCOPE_LOG",
            std::env::var("GRAYSCOPE_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find(|l| l.as_ref().is_ok_and(|l| l.starts_with("listening ")))
        .unwrap()
        .unwrap();
    let api: SocketAddr = line
        .split_whitespace()
        .find_map(|p| p.strip_prefix("api="))
        .unwrap()
        .parse()
        .unwrap();

    let own_start = cpu_seconds("self");
    let mut first: Option<(Instant, i64, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_report = Instant::now();
    let (end, server_cpu) = loop {
        let n = count(api).await;
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n, cpu_seconds(&pid)));
        }
        if n >= total {
            break (Instant::now(), cpu_seconds(&pid));
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let kafka = sql(
                api,
                "SELECT paused, pauses, backpressure_retries, in_flight_bytes, dead_letters FROM system.kafka",
            )
            .await;
            let store = sql(
                api,
                "SELECT memory_bytes, rejected_appends, flushes FROM system.store",
            )
            .await;
            println!("  {n} spans stored; {kafka} {store}");
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {total} spans stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let broker_cpu = cpu_seconds("self") - own_start;
    let (start, at_start, cpu_at_start) = first.unwrap();
    let spans_timed = (total - at_start) as f64;
    let seconds = end.duration_since(start).as_secs_f64();
    let cpu = server_cpu - cpu_at_start;
    println!(
        "stored durably: {:.0} spans/s wall ({spans_timed} spans in {seconds:.2} s); \
         server CPU {cpu:.2} s = {:.0} spans per CPU-second; \
         broker + poller (this process) CPU {broker_cpu:.2} s",
        spans_timed / seconds,
        spans_timed / cpu
    );
    let _ = child.kill();
    let _ = child.wait();
}
