//! What the ingest benches share: the export requests they convert (one
//! service's batch of spans or log records, as an SDK's batch processor
//! sends it), and the clock they time them by.

// Each bench uses a different subset.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// Records per request.
pub const BATCH: usize = 512;

pub fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

pub fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

pub fn resource() -> Resource {
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

pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "opentelemetry-instrumentation-axum".to_owned(),
        version: "0.33.0".to_owned(),
        ..Default::default()
    }
}

/// A distinct id per seed; seed 0 would give the invalid all-zero id.
pub fn id(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    bytes.extend_from_slice(&seed.wrapping_mul(0xc2b2_ae3d_27d4_eb4f).to_be_bytes());
    bytes.truncate(len);
    bytes
}

/// One export request of [`BATCH`] spans: the first request of
/// [`spans_request_from`].
pub fn spans_request() -> ExportTraceServiceRequest {
    spans_request_from(0)
}

/// [`BATCH`] spans numbered from `first` (ids and start times follow the
/// number, 1 ms apart), so that consecutive requests hold distinct spans.
pub fn spans_request_from(first: u64) -> ExportTraceServiceRequest {
    let routes = ["/cart", "/checkout", "/api/v1/items/{id}", "/health"];
    let spans = (0..BATCH as u64)
        .map(|i| {
            let n = first + i;
            let start = 1_764_000_000_000_000_000 + n * 1_000_000;
            Span {
                trace_id: id(n / 4 + 1, 16),
                span_id: id(n + 1_000_000, 8),
                parent_span_id: if n.is_multiple_of(4) {
                    vec![]
                } else {
                    id(n - 1 + 1_000_000, 8)
                },
                name: format!("GET {}", routes[(i % 4) as usize]),
                kind: if i % 4 == 0 { 2 } else { 3 },
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000 + n % 977 * 7_919,
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
                    kv("http.response.body.size", Value::IntValue(1532 + n as i64)),
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

/// One export request of [`BATCH`] log records: the first request of
/// [`logs_request_from`].
pub fn logs_request() -> ExportLogsServiceRequest {
    logs_request_from(0)
}

/// [`BATCH`] log records numbered from `first`, like [`spans_request_from`].
pub fn logs_request_from(first: u64) -> ExportLogsServiceRequest {
    let log_records = (first..first + BATCH as u64)
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
            trace_id: id(i / 4 + 1, 16),
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

/// CPU time this thread has run so far, in nanoseconds, from the
/// scheduler's accounting (not tick-granular): on a machine shared with
/// other work, the figure per core.
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
