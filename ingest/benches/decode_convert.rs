//! OTLP decode + convert throughput on one core.
//!
//! `cargo bench -p grayscope-ingest --bench decode_convert`
//!
//! A realistic payload: one export request of 512 spans (or log records)
//! from one service, each span with 10 attributes, as an SDK's batch
//! processor sends it. Measures `decode_and_convert`, the exact function
//! the receivers call: protobuf (or JSON) decoding, validation, cohort
//! labelling and building the Arrow batch.

// criterion's macros generate undocumented items; a failed conversion
// should abort the benchmark loudly.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use grayscope_ingest::{Encoding, Labeler, Signal, decode_and_convert};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;

const BATCH: usize = 512;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

fn resource() -> Resource {
    Resource {
        attributes: vec![
            text("service.name", "checkout"),
            text("service.version", "2.14.1"),
            text("service.instance.id", "checkout-7d9f8b6c5-x2x4q"),
            text("deployment.environment.name", "production"),
            text("host.name", "node-17.eu-west-1.internal"),
            text("telemetry.sdk.language", "rust"),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "opentelemetry-instrumentation-axum".to_owned(),
        version: "0.33.0".to_owned(),
        ..Default::default()
    }
}

fn id(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    bytes.extend_from_slice(&seed.wrapping_mul(0xc2b2_ae3d_27d4_eb4f).to_be_bytes());
    bytes.truncate(len);
    bytes
}

fn spans_request() -> ExportTraceServiceRequest {
    let routes = ["/cart", "/checkout", "/api/v1/items/{id}", "/health"];
    let spans = (0..BATCH as u64)
        .map(|i| {
            let start = 1_764_000_000_000_000_000 + i * 1_000_000;
            Span {
                trace_id: id(i / 4, 16),
                span_id: id(i + 1_000_000, 8),
                parent_span_id: if i % 4 == 0 {
                    vec![]
                } else {
                    id(i - 1 + 1_000_000, 8)
                },
                name: format!("GET {}", routes[(i % 4) as usize]),
                kind: if i % 4 == 0 { 2 } else { 3 },
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000 + i * 7_919,
                attributes: vec![
                    text("http.route", routes[(i % 4) as usize]),
                    text("http.request.method", "GET"),
                    kv("http.response.status_code", Value::IntValue(200)),
                    text("url.scheme", "https"),
                    text("server.address", "checkout.internal"),
                    kv("server.port", Value::IntValue(8443)),
                    text("network.protocol.version", "1.1"),
                    text(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
                    ),
                    text("client.address", "10.12.4.211"),
                    kv("http.response.body.size", Value::IntValue(1532 + i as i64)),
                ],
                status: Some(Status::default()),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs_request() -> ExportLogsServiceRequest {
    let log_records = (0..BATCH as u64)
        .map(|i| LogRecord {
            time_unix_nano: 1_764_000_000_000_000_000 + i * 1_000_000,
            observed_time_unix_nano: 1_764_000_000_000_000_000 + i * 1_000_000 + 50_000,
            severity_number: 9,
            severity_text: "INFO".to_owned(),
            body: Some(AnyValue {
                value: Some(Value::StringValue(format!(
                    "order {} reserved {} items in {}ms for user {}",
                    100_000 + i,
                    i % 7 + 1,
                    i % 90 + 3,
                    i * 31 % 10_000
                ))),
            }),
            attributes: vec![
                text("code.function.name", "reserve_items"),
                text("code.file.path", "src/orders/reserve.rs"),
                kv("code.line.number", Value::IntValue(212)),
                text("thread.name", "tokio-runtime-worker"),
                text("order.channel", "web"),
            ],
            trace_id: id(i / 4, 16),
            span_id: id(i + 1_000_000, 8),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let labeler = Labeler::new();
    let spans = spans_request();
    let spans_proto = spans.encode_to_vec();
    let spans_json = serde_json::to_vec(&spans).expect("json");
    let logs = logs_request();
    let logs_proto = logs.encode_to_vec();

    let mut group = c.benchmark_group("decode_convert");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("spans_protobuf_512x10attrs", |b| {
        b.iter(|| {
            let out = decode_and_convert(
                Signal::Traces,
                Encoding::Protobuf,
                black_box(&spans_proto),
                &labeler,
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
                black_box(&spans_json),
                &labeler,
            )
            .expect("convert")
        })
    });
    group.bench_function("logs_protobuf_512x5attrs", |b| {
        b.iter(|| {
            let out = decode_and_convert(
                Signal::Logs,
                Encoding::Protobuf,
                black_box(&logs_proto),
                &labeler,
            )
            .expect("convert");
            assert_eq!(out.batch.num_rows(), BATCH);
            out
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
