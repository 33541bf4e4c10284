//! Real OpenTelemetry clients: the SDK produces the telemetry, the OTLP
//! exporters of `opentelemetry-otlp` send it over each protocol.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_otlp::{Protocol as OtlpProtocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::trace::IdGenerator;

use super::harness::{Protocol, Server};

/// Start of every test's timeline: 2025-11-24T16:00:00Z.
pub const T0_NS: u64 = 1_764_000_000_000_000_000;

/// `T0_NS + offset_ns` as a `SystemTime`.
pub fn at(offset_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(T0_NS + offset_ns)
}

/// A trace id whose last two bytes carry `flag` (0x0002 canary).
pub fn trace_id(seed: u8, flag: u16) -> TraceId {
    let mut bytes = [seed; 16];
    bytes[14..].copy_from_slice(&flag.to_be_bytes());
    TraceId::from_bytes(bytes)
}

/// A span id from a seed.
pub fn span_id(seed: u8) -> SpanId {
    SpanId::from_bytes([seed; 8])
}

/// The resource of a test service.
pub fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attributes([
            opentelemetry::KeyValue::new("service.version", "2.1.0"),
            opentelemetry::KeyValue::new("deployment.environment.name", "test"),
        ])
        .build()
}

/// Hands out the ids a test chose, in order.
#[derive(Debug, Default)]
pub struct ScriptedIds {
    trace_ids: Mutex<VecDeque<TraceId>>,
    span_ids: Mutex<VecDeque<SpanId>>,
}

impl ScriptedIds {
    pub fn new(trace_ids: Vec<TraceId>, span_ids: Vec<SpanId>) -> Self {
        ScriptedIds {
            trace_ids: Mutex::new(trace_ids.into()),
            span_ids: Mutex::new(span_ids.into()),
        }
    }
}

impl IdGenerator for ScriptedIds {
    fn new_trace_id(&self) -> TraceId {
        self.trace_ids
            .lock()
            .unwrap()
            .pop_front()
            .expect("test ran out of scripted trace ids")
    }

    fn new_span_id(&self) -> SpanId {
        self.span_ids
            .lock()
            .unwrap()
            .pop_front()
            .expect("test ran out of scripted span ids")
    }
}

fn otlp_protocol(protocol: Protocol) -> OtlpProtocol {
    match protocol {
        Protocol::HttpJson => OtlpProtocol::HttpJson,
        _ => OtlpProtocol::HttpBinary,
    }
}

/// The OTLP span exporter for `protocol`, pointed at `server`.
pub fn span_exporter(server: &Server, protocol: Protocol) -> opentelemetry_otlp::SpanExporter {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    match protocol {
        Protocol::Grpc => builder
            .with_tonic()
            .with_endpoint(server.grpc_url())
            .build(),
        _ => builder
            .with_http()
            .with_protocol(otlp_protocol(protocol))
            .with_endpoint(server.otlp_http_url("/v1/traces"))
            .build(),
    }
    .expect("span exporter")
}

/// The OTLP log exporter for `protocol`, pointed at `server`.
pub fn log_exporter(server: &Server, protocol: Protocol) -> opentelemetry_otlp::LogExporter {
    let builder = opentelemetry_otlp::LogExporter::builder();
    match protocol {
        Protocol::Grpc => builder
            .with_tonic()
            .with_endpoint(server.grpc_url())
            .build(),
        _ => builder
            .with_http()
            .with_protocol(otlp_protocol(protocol))
            .with_endpoint(server.otlp_http_url("/v1/logs"))
            .build(),
    }
    .expect("log exporter")
}

/// The OTLP metric exporter for `protocol`, pointed at `server`.
pub fn metric_exporter(server: &Server, protocol: Protocol) -> opentelemetry_otlp::MetricExporter {
    let builder = opentelemetry_otlp::MetricExporter::builder();
    match protocol {
        Protocol::Grpc => builder
            .with_tonic()
            .with_temporality(Temporality::Cumulative)
            .with_endpoint(server.grpc_url())
            .build(),
        _ => builder
            .with_http()
            .with_temporality(Temporality::Cumulative)
            .with_protocol(otlp_protocol(protocol))
            .with_endpoint(server.otlp_http_url("/v1/metrics"))
            .build(),
    }
    .expect("metric exporter")
}
