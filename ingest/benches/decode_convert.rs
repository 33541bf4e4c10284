//! OTLP decode + convert throughput on one core.
//!
//! `cargo bench -p grayscope-ingest --bench decode_convert`
//!
//! A realistic payload: one export request of 512 spans (or log records)
//! from one service, each span with 10 attributes, as an SDK's batch
//! processor sends it. Measures `decode_and_convert`, the exact function
//! the receivers call: protobuf (or JSON) decoding, validation, cohort
//! labelling and building the Arrow batch. After criterion, the same inputs
//! are timed again, interleaved, by wall clock and by the thread's CPU time
//! (the per-core figure on a machine shared with other work).
//!
//! A filter (`-- cohorts`, `-- mining`, `-- decode_convert`) selects the
//! criterion group and the summary printed after it.
//!
//! `-- repeat` does nothing but convert the protobuf spans and log
//! requests a fixed number of times each, for counting instructions, which
//! other work on the machine does not disturb the way it disturbs time;
//! `-- repeat cohorts` converts the `cohorts` group's requests without
//! rules, and `-- repeat cohorts rule5` with its rule (`-- sizes` prints the
//! memory each column of a converted request holds, per record):
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='grayscope_ingest::convert::spans::convert_spans' \
//!     target/release/deps/decode_convert-<hash> --bench repeat
//! ```
//!
//! The `cohorts` group measures what cohort rules add: the same requests
//! (spans with 4 more attributes that rules read — `geo`, `isp`,
//! `device.type`, `tls.version` — and log records) converted without rules
//! and with the 5-clause rule of `core/benches/rule_eval.rs`, and the
//! labelling pass alone. After criterion, interleaved repetitions print the
//! ratio of the two by CPU time, measured in the same run.
//!
//! The `mining` group measures what log template mining adds (the other
//! groups pass no miner, so their figures stay comparable): log requests
//! converted without mining, with the default miner, and with the miner and
//! 5 `[[log_rules]]`, on the one-template bodies of the other groups and on
//! a mix of 16 kinds of event (text with addresses, durations, ids, paths;
//! key-value list bodies, which are mined as their JSON text); and
//! `LogMining::mine` alone. The miner is warmed up first, as a running
//! server's is. After criterion, interleaved repetitions print ns/record and
//! the ratios.

// criterion's macros generate undocumented items; a failed conversion
// should abort the benchmark loudly.
#![allow(missing_docs, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use grayscope_core::config::CohortConfig;
use grayscope_ingest::mining::LogMiningBuilder;
use grayscope_ingest::{Encoding, Labeler, LogMining, Signal, decode_and_convert};
use grayscope_patterns::{MinerConfig, RuleSet};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use prost::Message as _;

mod common;

use common::{BATCH, kv, logs_request, spans_request, text, thread_cpu_ns};

/// The 5-clause rule of `core/benches/rule_eval.rs`.
const RULE: &str = r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3") OR http.response.status_code >= 500"#;

fn rules_labeler() -> Labeler {
    Labeler::with_rules(
        &[CohortConfig::new("gray-a", RULE).expect("rule")],
        &BTreeMap::new(),
    )
}

/// `spans_request` with the attributes the rule reads on every span,
/// varied so that 142 of the 512 spans (28%) match.
fn cohort_spans_request() -> ExportTraceServiceRequest {
    let mut request = spans_request();
    let geos = ["华南", "华北", "华东"];
    let isps = ["移动", "联通", "电信"];
    let devices = ["iOS", "Android", "Windows", "macOS"];
    let tls = ["1.2", "1.3", "1.10"];
    for (i, span) in request.resource_spans[0].scope_spans[0]
        .spans
        .iter_mut()
        .enumerate()
    {
        span.attributes.extend([
            text("geo", geos[i % 3]),
            text("isp", isps[i / 3 % 3]),
            text("device.type", devices[i % 4]),
            text("tls.version", tls[i / 4 % 3]),
        ]);
    }
    request
}

fn bench(c: &mut Criterion) {
    let labeler = Labeler::new();
    let spans = spans_request();
    let spans_proto = Bytes::from(spans.encode_to_vec());
    let spans_json = Bytes::from(serde_json::to_vec(&spans).expect("json"));
    let logs = logs_request();
    let logs_proto = Bytes::from(logs.encode_to_vec());

    let mut group = c.benchmark_group("decode_convert");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("spans_protobuf_512x10attrs", |b| {
        b.iter(|| {
            let out = decode_and_convert(
                Signal::Traces,
                Encoding::Protobuf,
                black_box(spans_proto.clone()),
                &labeler,
                None,
            )
            .expect("convert");
            assert_eq!(out.batch.num_rows(), BATCH);
            out
        })
    });
    group.bench_function("spans_json_512x10attrs", |b| {
        b.iter(|| {
            decode_and_convert(
                Signal::Traces,
                Encoding::Json,
                black_box(spans_json.clone()),
                &labeler,
                None,
            )
            .expect("convert")
        })
    });
    group.bench_function("logs_protobuf_512x5attrs", |b| {
        b.iter(|| {
            let out = decode_and_convert(
                Signal::Logs,
                Encoding::Protobuf,
                black_box(logs_proto.clone()),
                &labeler,
                None,
            )
            .expect("convert");
            assert_eq!(out.batch.num_rows(), BATCH);
            out
        })
    });
    group.finish();
}

fn cohorts(c: &mut Criterion) {
    let plain = Labeler::new();
    let rules = rules_labeler();
    let spans = cohort_spans_request();
    let spans_proto = Bytes::from(spans.encode_to_vec());
    let logs_proto = Bytes::from(logs_request().encode_to_vec());

    let mut group = c.benchmark_group("cohorts");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, labeler) in [("no_rules", &plain), ("rule5", &rules)] {
        group.bench_function(format!("spans_protobuf_512x14attrs/{name}"), |b| {
            b.iter(|| {
                decode_and_convert(
                    Signal::Traces,
                    Encoding::Protobuf,
                    black_box(spans_proto.clone()),
                    labeler,
                    None,
                )
                .expect("convert")
            })
        });
        group.bench_function(format!("logs_protobuf_512x5attrs/{name}"), |b| {
            b.iter(|| {
                decode_and_convert(
                    Signal::Logs,
                    Encoding::Protobuf,
                    black_box(logs_proto.clone()),
                    labeler,
                    None,
                )
                .expect("convert")
            })
        });
    }
    group.finish();
}

/// Nanoseconds per record of `f` on one request, `runs` times.
fn timings(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..20 {
                f();
            }
            start.elapsed().as_nanos() as f64 / (20 * BATCH) as f64
        })
        .collect()
}

/// The `decode_convert` group once more, interleaved, by wall clock and by
/// this thread's CPU time: on a machine shared with other work, the CPU
/// time is the figure per core (wall clock counts the time other
/// processes held the core).
#[allow(clippy::print_stdout, clippy::cast_precision_loss)] // a bench reports on the terminal
fn throughput_summary() {
    let labeler = Labeler::new();
    let spans = spans_request();
    let spans_proto = Bytes::from(spans.encode_to_vec());
    let spans_json = Bytes::from(serde_json::to_vec(&spans).expect("json"));
    let logs_proto = Bytes::from(logs_request().encode_to_vec());
    let variants = [
        (
            "spans protobuf",
            Signal::Traces,
            Encoding::Protobuf,
            &spans_proto,
        ),
        ("spans json", Signal::Traces, Encoding::Json, &spans_json),
        (
            "logs protobuf",
            Signal::Logs,
            Encoding::Protobuf,
            &logs_proto,
        ),
    ];
    const REPETITIONS: usize = 15;
    let mut walls = vec![Vec::new(); variants.len()];
    let mut cpu_ns = vec![0u64; variants.len()];
    for _ in 0..REPETITIONS {
        for (k, (_, signal, encoding, body)) in variants.iter().enumerate() {
            let cpu0 = thread_cpu_ns();
            walls[k].extend(timings(1, || {
                black_box(
                    decode_and_convert(*signal, *encoding, (*body).clone(), &labeler, None)
                        .expect("convert"),
                );
            }));
            cpu_ns[k] += thread_cpu_ns().saturating_sub(cpu0);
        }
    }
    println!(
        "\ndecode_convert: one thread, {REPETITIONS} interleaved repetitions of 20 requests x 512 records"
    );
    println!(
        "{:<16} {:>16} {:>16} {:>18} {:>12}",
        "input", "best wall rec/s", "median wall rec/s", "rec per CPU-second", "CPU ns/rec"
    );
    for (k, (name, ..)) in variants.iter().enumerate() {
        let wall = &mut walls[k];
        wall.sort_by(f64::total_cmp);
        let records = (REPETITIONS * 20 * BATCH) as f64;
        let cpu_per_record = cpu_ns[k] as f64 / records;
        println!(
            "{name:<16} {:>16.0} {:>16.0} {:>18.0} {:>12.1}",
            1e9 / wall[0],
            1e9 / wall[wall.len() / 2],
            1e9 / cpu_per_record.max(1e-9),
            cpu_per_record
        );
    }
}

/// What rules add, measured in the same run: each variant over 30
/// interleaved repetitions, by wall clock (min and median) and by this
/// thread's CPU time (the total over all repetitions, which other work on
/// the machine does not inflate the way it inflates wall clock). The
/// ratios are of the CPU times.
#[allow(clippy::print_stdout, clippy::cast_precision_loss)] // a bench reports on the terminal
fn summary() {
    const REPETITIONS: usize = 30;
    let plain = Labeler::new();
    let rules = rules_labeler();
    let spans = cohort_spans_request();
    let spans_proto = Bytes::from(spans.encode_to_vec());
    let logs_proto = Bytes::from(logs_request().encode_to_vec());
    let convert = |signal, body: &Bytes, labeler: &Labeler| {
        black_box(
            decode_and_convert(signal, Encoding::Protobuf, body.clone(), labeler, None)
                .expect("convert"),
        );
    };
    let names = [
        "spans no_rules",
        "spans rule5",
        "logs no_rules",
        "logs rule5",
    ];
    let mut walls = vec![Vec::new(); names.len()];
    let mut cpu_ns = vec![0u64; names.len()];
    let mut measure = |k: usize, f: &mut dyn FnMut()| {
        let cpu0 = thread_cpu_ns();
        walls[k].extend(timings(1, f));
        cpu_ns[k] += thread_cpu_ns().saturating_sub(cpu0);
    };
    for _ in 0..REPETITIONS {
        measure(0, &mut || convert(Signal::Traces, &spans_proto, &plain));
        measure(1, &mut || convert(Signal::Traces, &spans_proto, &rules));
        measure(2, &mut || convert(Signal::Logs, &logs_proto, &plain));
        measure(3, &mut || convert(Signal::Logs, &logs_proto, &rules));
    }
    println!(
        "\ncohorts: ns/record over {REPETITIONS} interleaved repetitions of 20 requests x 512 records"
    );
    println!(
        "{:<26} {:>10} {:>12} {:>10}",
        "variant", "wall min", "wall median", "CPU"
    );
    let records = (REPETITIONS * 20 * BATCH) as f64;
    let mut cpu = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let wall = &mut walls[k];
        wall.sort_by(f64::total_cmp);
        cpu.push(cpu_ns[k] as f64 / records);
        println!(
            "{name:<26} {:>10.1} {:>12.1} {:>10.1}",
            wall[0],
            wall[wall.len() / 2],
            cpu[k]
        );
    }
    println!(
        "spans: rule5 / no_rules = {:.3} by CPU time (labelling adds {:.1}%, {:+.0} ns/record)",
        cpu[1] / cpu[0],
        (cpu[1] / cpu[0] - 1.0) * 100.0,
        cpu[1] - cpu[0]
    );
    println!(
        "logs:  rule5 / no_rules = {:.3} by CPU time (labelling adds {:.1}%, {:+.0} ns/record)",
        cpu[3] / cpu[2],
        (cpu[3] / cpu[2] - 1.0) * 100.0,
        cpu[3] - cpu[2]
    );
}

/// Bodies of 16 kinds of event, with their variables varied by `i`.
fn mixed_body(i: u64) -> Value {
    let n = i / 16;
    let text = |s: String| Value::StringValue(s);
    match i % 16 {
        0 => text(format!(
            "GET /api/v1/orders/{} 200 in {}ms",
            10_000 + n,
            n % 300 + 1
        )),
        1 => text(format!(
            "connection from 10.{}.{}.{}:{} accepted",
            n % 256,
            n * 7 % 256,
            n * 13 % 256,
            30_000 + n % 20_000
        )),
        2 => text(format!(
            "payment {:08x}-{:04x}-4{:03x}-a{:03x}-{:012x} authorised for EUR {}.{:02}",
            n * 2_654_435_761 % 0xffff_ffff,
            n % 0xffff,
            n % 0xfff,
            n * 3 % 0xfff,
            n * 11_400_714_819_323_198_485 % 0xffff_ffff_ffff,
            n % 500,
            n % 100
        )),
        3 => text(format!(
            "timeout after {}s waiting for redis at redis-{}.cache.internal:6379",
            n % 30 + 1,
            n % 4
        )),
        4 => text(format!(
            "user {} logged in from {} using {}",
            ["alice", "bob", "carol", "dave", "erin", "frank"][(n % 6) as usize],
            ["web", "ios", "android"][(n % 3) as usize],
            ["password", "sso"][(n % 2) as usize]
        )),
        5 => text(format!(
            "cache miss for key product:{}:price, fetching from db",
            n * 31 % 100_000
        )),
        6 => text(format!(
            "retrying request to http://inventory.internal:8080/v2/stock/{} (attempt {} of 5)",
            n % 9_999,
            n % 5 + 1
        )),
        7 => text(format!(
            "level=warn msg=\"slow query\" table=orders duration={}ms rows={}",
            n % 900 + 100,
            n % 5_000
        )),
        8 => text(format!(
            "wrote {} bytes to /var/lib/app/spool/{}.dat",
            n * 4_096 % 1_048_576,
            n
        )),
        9 => text(format!(
            "container checkout-{} OOMKilled (exit code 137) after {}m",
            n % 20,
            n % 60
        )),
        10 => text(format!(
            "circuit breaker for pricing-service opened after {} failures",
            n % 10 + 3
        )),
        11 => text(format!(
            "job {} finished: {} ok, {} failed, took {}.{}s",
            n,
            n % 1_000,
            n % 7,
            n % 60,
            n % 10
        )),
        12 => text(format!(
            "TLS handshake with 2001:db8::{:x} failed: certificate expired",
            n % 0xffff
        )),
        13 => text(format!(
            "scheduled {} tasks on worker-{} (queue depth {})",
            n % 64,
            n % 8,
            n % 1_000
        )),
        14 => Value::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
            values: vec![
                text_kv("event", "order.shipped"),
                kv("order_id", Value::IntValue(500_000 + n as i64)),
                text_kv("carrier", ["dhl", "ups", "fedex"][(n % 3) as usize]),
            ],
        }),
        _ => text(format!(
            "health check ok ({} goroutines, heap {} MiB)",
            n % 500 + 20,
            n % 900 + 64
        )),
    }
}

fn text_kv(key: &str, value: &str) -> KeyValue {
    text(key, value)
}

/// `logs_request` with the bodies of `mixed_body`.
fn mixed_logs_request() -> ExportLogsServiceRequest {
    let mut request = logs_request();
    for (i, record) in request.resource_logs[0].scope_logs[0]
        .log_records
        .iter_mut()
        .enumerate()
    {
        record.body = Some(AnyValue {
            value: Some(mixed_body(i as u64)),
        });
    }
    request
}

/// Five rules of the kinds an SRE writes.
fn rules5() -> RuleSet {
    let rules: Vec<(String, String)> = [
        ("redis_timeout", "timeout.*redis"),
        ("oom", "(?i)oomkilled"),
        ("http_5xx", r"\b5\d\d\b"),
        ("tls", "(?i)tls handshake.*failed"),
        ("breaker", "circuit breaker .* opened"),
    ]
    .iter()
    .map(|(n, p)| (n.to_string(), p.to_string()))
    .collect();
    RuleSet::new(&rules).expect("rules")
}

/// A default miner (with `rules`) that has seen `requests` once, as a
/// running server's miner has.
fn warm_mining(rules: RuleSet, requests: &[&Bytes]) -> LogMining {
    let mining = LogMiningBuilder::new(MinerConfig::default(), rules).in_memory();
    let labeler = Labeler::new();
    for body in requests {
        decode_and_convert(
            Signal::Logs,
            Encoding::Protobuf,
            (*body).clone(),
            &labeler,
            Some(&mining),
        )
        .expect("convert");
    }
    mining
}

/// Every body of `request` as the text that is mined.
fn body_texts(request: &ExportLogsServiceRequest) -> Vec<String> {
    request.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(Value::StringValue(s)) => s.clone(),
            // What the converter writes for a key-value list body.
            Some(Value::KvlistValue(list)) => {
                let object: serde_json::Map<String, serde_json::Value> = list
                    .values
                    .iter()
                    .map(|kv| {
                        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) => serde_json::json!(s),
                            Some(Value::IntValue(i)) => serde_json::json!(i),
                            _ => serde_json::Value::Null,
                        };
                        (kv.key.clone(), value)
                    })
                    .collect();
                serde_json::Value::Object(object).to_string()
            }
            _ => String::new(),
        })
        .collect()
}

fn mining(c: &mut Criterion) {
    let labeler = Labeler::new();
    let same = Bytes::from(logs_request().encode_to_vec());
    let mixed_request = mixed_logs_request();
    let mixed = Bytes::from(mixed_request.encode_to_vec());
    let plain = warm_mining(RuleSet::new(&[]).expect("rules"), &[&same, &mixed]);
    let ruled = warm_mining(rules5(), &[&same, &mixed]);

    let mut group = c.benchmark_group("mining");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (input, body) in [("one_template", &same), ("mixed16", &mixed)] {
        for (name, mining) in [
            ("no_mining", None),
            ("mining", Some(&plain)),
            ("mining_rules5", Some(&ruled)),
        ] {
            group.bench_function(format!("logs_protobuf_512x5attrs_{input}/{name}"), |b| {
                b.iter(|| {
                    decode_and_convert(
                        Signal::Logs,
                        Encoding::Protobuf,
                        black_box(body.clone()),
                        &labeler,
                        mining,
                    )
                    .expect("convert")
                })
            });
        }
    }
    let texts = body_texts(&mixed_request);
    let mut hits = ruled.rule_hits();
    group.bench_function("mine_only_mixed16/rules5", |b| {
        b.iter(|| {
            for text in &texts {
                black_box(ruled.mine(black_box(text), 1, &mut hits));
            }
        })
    });
    group.finish();
}

/// Min and median ns/record of each mining variant over 15 interleaved
/// repetitions, and what mining adds, measured in the same run.
#[allow(clippy::print_stdout)] // a bench reports on the terminal
fn mining_summary() {
    let labeler = Labeler::new();
    let same = Bytes::from(logs_request().encode_to_vec());
    let mixed_request = mixed_logs_request();
    let mixed = Bytes::from(mixed_request.encode_to_vec());
    let plain = warm_mining(RuleSet::new(&[]).expect("rules"), &[&same, &mixed]);
    let ruled = warm_mining(rules5(), &[&same, &mixed]);
    let texts = body_texts(&mixed_request);
    let mut hits = ruled.rule_hits();
    let convert = |body: &Bytes, mining: Option<&LogMining>| {
        black_box(
            decode_and_convert(
                Signal::Logs,
                Encoding::Protobuf,
                body.clone(),
                &labeler,
                mining,
            )
            .expect("convert"),
        );
    };
    let mut table: Vec<(&str, Vec<f64>)> = vec![
        ("one_template no_mining", vec![]),
        ("one_template mining", vec![]),
        ("one_template rules5", vec![]),
        ("mixed16 no_mining", vec![]),
        ("mixed16 mining", vec![]),
        ("mixed16 rules5", vec![]),
        ("mixed16 mine() only", vec![]),
    ];
    for _ in 0..15 {
        table[0].1.extend(timings(1, || convert(&same, None)));
        table[1]
            .1
            .extend(timings(1, || convert(&same, Some(&plain))));
        table[2]
            .1
            .extend(timings(1, || convert(&same, Some(&ruled))));
        table[3].1.extend(timings(1, || convert(&mixed, None)));
        table[4]
            .1
            .extend(timings(1, || convert(&mixed, Some(&plain))));
        table[5]
            .1
            .extend(timings(1, || convert(&mixed, Some(&ruled))));
        table[6].1.extend(timings(1, || {
            for text in &texts {
                black_box(ruled.mine(black_box(text), 1, &mut hits));
            }
        }));
    }
    println!("\nmining: ns/record over 15 interleaved repetitions of 20 requests x 512 records");
    println!("{:<26} {:>10} {:>10}", "variant", "min", "median");
    let mut mins = Vec::new();
    for (name, values) in &mut table {
        values.sort_by(f64::total_cmp);
        let (min, median) = (values[0], values[values.len() / 2]);
        mins.push(min);
        println!("{name:<26} {min:>10.1} {median:>10.1}");
    }
    for (input, base) in [("one_template", 0), ("mixed16", 3)] {
        println!(
            "{input}: mining / no_mining = {:.3} (+{:.0} ns/record); with 5 rules = {:.3} (+{:.0} ns/record)",
            mins[base + 1] / mins[base],
            mins[base + 1] - mins[base],
            mins[base + 2] / mins[base],
            mins[base + 2] - mins[base],
        );
    }
}

/// Whether the summary of group `name` should run: with no filter on the
/// command line, or a filter that names the group (`-- cohorts`,
/// `-- mining`, `-- cohorts/spans`). Numbers are taken for option values
/// (`--sample-size 10`), not filters.
fn wanted(name: &str) -> bool {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-') && a.parse::<f64>().is_err());
    filter.is_none_or(|f| f.contains(name) || name.contains(f.as_str()))
}

/// Conversions per input in `-- repeat`.
const REPEATS: usize = 40;

/// The `-- repeat` mode: each protobuf input converted [`REPEATS`] times.
fn repeat() {
    let args: Vec<String> = std::env::args().collect();
    let has = |word: &str| args.iter().any(|arg| arg == word);
    let labeler = if has("rule5") {
        rules_labeler()
    } else {
        Labeler::new()
    };
    let spans = if has("cohorts") {
        cohort_spans_request()
    } else {
        spans_request()
    };
    let spans = Bytes::from(spans.encode_to_vec());
    let logs = Bytes::from(logs_request().encode_to_vec());
    for (signal, body) in [(Signal::Traces, &spans), (Signal::Logs, &logs)] {
        for _ in 0..REPEATS {
            black_box(
                decode_and_convert(signal, Encoding::Protobuf, body.clone(), &labeler, None)
                    .expect("convert"),
            );
        }
    }
}

/// The `-- sizes` mode: the memory each column of a converted request
/// holds (buffers' capacity, as the store counts it), per record.
#[allow(clippy::print_stdout, clippy::cast_precision_loss)] // a bench reports on the terminal
fn sizes() {
    let spans = Bytes::from(spans_request().encode_to_vec());
    let logs = Bytes::from(logs_request().encode_to_vec());
    for (signal, body) in [(Signal::Traces, spans), (Signal::Logs, logs)] {
        let protobuf = body.len();
        let converted = decode_and_convert(signal, Encoding::Protobuf, body, &Labeler::new(), None)
            .expect("convert");
        let batch = &converted.batch;
        let rows = batch.num_rows().max(1) as f64;
        println!(
            "{signal:?}: {:.1} protobuf bytes and {:.1} bytes in memory per record",
            protobuf as f64 / rows,
            batch.get_array_memory_size() as f64 / rows
        );
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            println!(
                "  {:>8.1}  {}",
                column.get_array_memory_size() as f64 / rows,
                field.name()
            );
        }
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "repeat") {
        repeat();
        return;
    }
    if std::env::args().any(|arg| arg == "sizes") {
        sizes();
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    cohorts(&mut c);
    mining(&mut c);
    c.final_summary();
    if wanted("decode_convert") {
        throughput_summary();
    }
    if wanted("cohorts") {
        summary();
    }
    if wanted("mining") {
        mining_summary();
    }
}
