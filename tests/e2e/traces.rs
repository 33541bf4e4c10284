//! Spans from the OpenTelemetry SDK, exported over gRPC, HTTP/protobuf and
//! HTTP/JSON, come back from SQL exactly as they were made.

use opentelemetry::trace::{
    Link, Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanExporter as _};
use serde_json::json;

use super::harness::{Protocol, Server};
use super::telemetry::{ScriptedIds, T0_NS, at, resource, span_exporter, span_id, trace_id};

/// Makes a checkout trace with the SDK: a canary server span with a client
/// child, and a baseline server span linking to it. Returns the spans.
fn checkout_spans(seed: u8) -> Vec<opentelemetry_sdk::trace::SpanData> {
    let memory = InMemorySpanExporter::default();
    let ids = ScriptedIds::new(
        vec![trace_id(seed, 0x0002), trace_id(seed + 1, 0x0000)],
        vec![span_id(seed), span_id(seed + 1), span_id(seed + 2)],
    );
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .with_id_generator(ids)
        .build();
    let tracer = provider.tracer("checkout-instrumentation");

    let mut root = tracer
        .span_builder("GET /cart")
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes([
            KeyValue::new("http.route", "/cart"),
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 504_i64),
            KeyValue::new("user.tier", "gold"),
            KeyValue::new("retry.count", 3_i64),
            KeyValue::new("cache.hit", true),
            KeyValue::new("ratio", 0.25),
            KeyValue::new(
                "tags",
                Value::Array(Array::String(vec!["a".into(), "b".into()])),
            ),
            KeyValue::new("geo", "华南"),
        ])
        .start(&tracer);
    root.add_event_with_timestamp(
        "exception",
        at(1_000_000),
        vec![KeyValue::new("exception.type", "TimeoutError")],
    );
    root.set_status(Status::error("cart service timeout"));
    let root_context = root.span_context().clone();

    let parent = Context::current().with_remote_span_context(root_context.clone());
    let mut child = tracer
        .span_builder("redis GET")
        .with_kind(SpanKind::Client)
        .with_start_time(at(2_000_000))
        .with_attributes([
            KeyValue::new("peer.service", "redis"),
            KeyValue::new("db.system.name", "redis"),
        ])
        .start_with_context(&tracer, &parent);
    child.end_with_timestamp(at(5_000_000));
    root.end_with_timestamp(at(12_345_678));

    let mut health = tracer
        .span_builder("GET /health")
        .with_kind(SpanKind::Server)
        .with_start_time(at(20_000_000))
        .with_links(vec![Link::with_context(root_context)])
        .start_with_context(&tracer, &Context::new());
    health.set_status(Status::Ok);
    health.end_with_timestamp(at(21_000_000));

    let spans = memory.get_finished_spans().expect("finished spans");
    assert_eq!(spans.len(), 3);
    spans
}

async fn export(server: &Server, protocol: Protocol, service: &str, seed: u8) {
    let mut exporter = span_exporter(server, protocol);
    exporter.set_resource(&resource(service));
    exporter
        .export(checkout_spans(seed))
        .await
        .unwrap_or_else(|e| panic!("export over {protocol:?} failed: {e}"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_over_every_protocol_come_back_exactly() {
    let server = Server::start();
    for (i, protocol) in Protocol::ALL.into_iter().enumerate() {
        let seed = 0x10 * (i as u8 + 1);
        let service = format!("checkout-{}", protocol.name());
        export(&server, protocol, &service, seed).await;

        // Visible as soon as the export returned.
        let rows = server
            .sql(&format!(
                "SELECT trace_id, span_id, parent_span_id, name, kind, status_code, status_message,
                        CAST(time AS BIGINT) AS start_ns, CAST(end_time AS BIGINT) AS end_ns, duration_ns,
                        http_route, http_method, http_status_code, peer_service,
                        attributes, resource_attributes, scope_name, cohort, version, service,
                        events, CAST(events[1]['time'] AS BIGINT) AS event_ns, links
                 FROM spans WHERE service = '{service}' ORDER BY time"
            ))
            .await;
        assert_eq!(rows.len(), 3, "{protocol:?}: {rows:#?}");
        let canary_trace = hex(&[&[seed; 14][..], &[0, 2]].concat());
        let baseline_trace = hex(&[&[seed + 1; 14][..], &[0, 0]].concat());

        let root = &rows[0];
        assert_eq!(root["trace_id"], json!(canary_trace), "{protocol:?}");
        assert_eq!(root["span_id"], json!(hex(&[seed; 8])));
        assert_eq!(root["parent_span_id"], json!(null));
        assert_eq!(root["name"], json!("GET /cart"));
        assert_eq!(root["kind"], json!("server"));
        assert_eq!(root["status_code"], json!("error"));
        assert_eq!(root["status_message"], json!("cart service timeout"));
        assert_eq!(root["start_ns"], json!(T0_NS));
        assert_eq!(root["end_ns"], json!(T0_NS + 12_345_678));
        assert_eq!(root["duration_ns"], json!(12_345_678));
        assert_eq!(root["http_route"], json!("/cart"));
        assert_eq!(root["http_method"], json!("GET"));
        assert_eq!(root["http_status_code"], json!(504));
        assert_eq!(root["cohort"], json!("canary"));
        assert_eq!(root["version"], json!("2.1.0"));
        assert_eq!(root["service"], json!(service));
        assert_eq!(root["scope_name"], json!("checkout-instrumentation"));
        assert_eq!(
            root["attributes"],
            json!({
                "http.route": "/cart",
                "http.request.method": "GET",
                "http.response.status_code": "504",
                "user.tier": "gold",
                "retry.count": "3",
                "cache.hit": "true",
                "ratio": "0.25",
                "tags": "[\"a\",\"b\"]",
                "geo": "华南",
            })
        );
        assert_eq!(root["resource_attributes"]["service.name"], json!(service));
        assert_eq!(
            root["resource_attributes"]["deployment.environment.name"],
            json!("test")
        );
        assert_eq!(root["events"][0]["name"], json!("exception"));
        assert_eq!(
            root["events"][0]["attributes"],
            json!({"exception.type": "TimeoutError"})
        );
        assert_eq!(root["event_ns"], json!(T0_NS + 1_000_000));
        assert_eq!(root["links"], json!([]));

        let child = &rows[1];
        assert_eq!(child["trace_id"], json!(canary_trace));
        assert_eq!(child["parent_span_id"], json!(hex(&[seed; 8])));
        assert_eq!(child["span_id"], json!(hex(&[seed + 1; 8])));
        assert_eq!(child["kind"], json!("client"));
        assert_eq!(child["status_code"], json!("unset"));
        assert_eq!(child["peer_service"], json!("redis"));
        assert_eq!(child["duration_ns"], json!(3_000_000));
        assert_eq!(child["cohort"], json!("canary"));

        let health = &rows[2];
        assert_eq!(health["trace_id"], json!(baseline_trace));
        assert_eq!(health["status_code"], json!("ok"));
        assert_eq!(health["cohort"], json!("baseline"));
        assert_eq!(health["http_route"], json!(null));
        assert_eq!(health["links"][0]["trace_id"], json!(canary_trace));
        assert_eq!(health["links"][0]["span_id"], json!(hex(&[seed; 8])));
    }

    // Every protocol's spans, and only those, are in the table.
    assert_eq!(server.count("SELECT count(*) AS n FROM spans").await, 9);
    let cohorts = server
        .sql("SELECT cohort, count(*) AS n FROM spans GROUP BY cohort ORDER BY cohort")
        .await;
    assert_eq!(
        cohorts,
        vec![
            json!({"cohort": "baseline", "n": 3})
                .as_object()
                .unwrap()
                .clone(),
            json!({"cohort": "canary", "n": 6})
                .as_object()
                .unwrap()
                .clone(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_ids_match_as_lowercase_hex_text() {
    let server = Server::start();
    export(&server, Protocol::Grpc, "search", 0xab).await;
    let trace = hex(&[&[0xab; 14][..], &[0, 2]].concat());
    let n = server
        .count(&format!(
            "SELECT count(*) AS n FROM spans WHERE trace_id = '{trace}'"
        ))
        .await;
    assert_eq!(n, 2);
    let n = server
        .count(&format!(
            "SELECT count(*) AS n FROM spans WHERE trace_id = lower('{}')",
            trace.to_uppercase()
        ))
        .await;
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_compressed_exports_are_accepted() {
    let server = Server::start();
    for protocol in Protocol::ALL {
        let builder = opentelemetry_otlp::SpanExporter::builder();
        use opentelemetry_otlp::{
            Compression, WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
        };
        let mut exporter = match protocol {
            Protocol::Grpc => builder
                .with_tonic()
                .with_compression(Compression::Gzip)
                .with_endpoint(server.grpc_url())
                .build(),
            Protocol::HttpProtobuf | Protocol::HttpJson => builder
                .with_http()
                .with_compression(Compression::Gzip)
                .with_protocol(if protocol == Protocol::HttpJson {
                    opentelemetry_otlp::Protocol::HttpJson
                } else {
                    opentelemetry_otlp::Protocol::HttpBinary
                })
                .with_endpoint(server.otlp_http_url("/v1/traces"))
                .build(),
        }
        .unwrap();
        let service = format!("gzip-{}", protocol.name());
        exporter.set_resource(&resource(&service));
        exporter.export(checkout_spans(0x30)).await.unwrap();
        let n = server
            .count(&format!(
                "SELECT count(*) AS n FROM spans WHERE service = '{service}'"
            ))
            .await;
        assert_eq!(n, 3, "{protocol:?}");
    }
}
