//! Gray cohorts end to end: spans labelled by flag, then rules (first
//! match), then `baseline`; log records and metric exemplars taking their
//! trace's cohort — at ingest when their spans came first or within the
//! hold window, through the query-time views otherwise; rules reloaded
//! without a restart; `grayscope trace-id new/decode`.
//!
//! Spans and logs come from the OpenTelemetry SDK through the
//! `opentelemetry-otlp` exporters. The Rust SDK records no exemplars (its
//! exemplar fields are crate-private and always empty), so data points with
//! exemplars are sent with the OTLP/gRPC client generated in
//! `opentelemetry-proto`, as a Collector or another SDK would send them.

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanKind, TraceFlags, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Array, Context, KeyValue, Value};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, Histogram, HistogramDataPoint, Metric, ResourceMetrics,
    ScopeMetrics, exemplar, metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{InMemoryLogExporter, LogBatch, LogExporter as _, SdkLoggerProvider};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor,
};
use serde_json::{Value as Json, json};

use super::harness::{Protocol, Server, binary};
use super::telemetry::{
    ScriptedIds, T0_NS, at, log_exporter, resource, span_exporter, span_id, trace_id,
};

const RULES: &str = r#"
[[cohorts]]
name = "gray-a"
rule = '(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3")'
[[cohorts]]
name = "beta"
rule = 'baggage.group == "beta"'
[[cohorts]]
name = "south"
rule = 'geo == "华南"'

[gray_flags]
"0x0003" = "gray-b"
"#;

fn hex(id: TraceId) -> String {
    format!("{id:032x}")
}

/// What the OpenTelemetry contrib baggage span processors (Java, Python,
/// JavaScript, .NET, Go) do: copy each baggage entry onto the span under its
/// own key.
#[derive(Debug)]
struct BaggageSpanProcessor;

impl SpanProcessor for BaggageSpanProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        for (key, (value, _)) in cx.baggage().iter() {
            span.set_attribute(KeyValue::new(key.clone(), value.clone()));
        }
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// One server span per trace, with these attributes and this baggage.
struct Request {
    trace: TraceId,
    attributes: Vec<KeyValue>,
    baggage: Vec<KeyValue>,
}

fn request(trace: TraceId, attributes: Vec<KeyValue>) -> Request {
    Request {
        trace,
        attributes,
        baggage: vec![],
    }
}

/// Makes the spans with the SDK.
fn spans(requests: &[Request]) -> Vec<SpanData> {
    let memory = InMemorySpanExporter::default();
    let ids = ScriptedIds::new(
        requests.iter().map(|r| r.trace).collect(),
        (0..requests.len()).map(|i| span_id(i as u8 + 1)).collect(),
    );
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BaggageSpanProcessor)
        .with_simple_exporter(memory.clone())
        .with_id_generator(ids)
        .build();
    let tracer = provider.tracer("checkout-instrumentation");
    for (i, r) in requests.iter().enumerate() {
        let cx = Context::new().with_baggage(r.baggage.clone());
        let mut span = tracer
            .span_builder("POST /checkout")
            .with_kind(SpanKind::Server)
            .with_start_time(at(i as u64 * 1_000))
            .with_attributes(r.attributes.clone())
            .start_with_context(&tracer, &cx);
        span.end_with_timestamp(at(i as u64 * 1_000 + 500));
    }
    let spans = memory.get_finished_spans().expect("finished spans");
    assert_eq!(spans.len(), requests.len());
    spans
}

async fn export_spans(server: &Server, requests: &[Request]) {
    let mut exporter = span_exporter(server, Protocol::Grpc);
    exporter.set_resource(&resource("checkout"));
    exporter.export(spans(requests)).await.expect("span export");
}

/// One log record per trace id (sampled, with its attributes), the `i`-th
/// at `T0 + i µs + 100 ns`.
async fn export_logs(
    server: &Server,
    protocol: Protocol,
    traces: &[(TraceId, Vec<(&'static str, &'static str)>)],
) {
    let memory = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource("checkout"))
        .with_simple_exporter(memory.clone())
        .build();
    let logger = provider.logger("checkout-logs");
    for (i, (trace, attributes)) in traces.iter().enumerate() {
        let mut record = logger.create_log_record();
        record.set_timestamp(at(i as u64 * 1_000 + 100));
        record.set_severity_number(Severity::Info);
        record.set_body(format!("order {i} reserved").into());
        for (k, v) in attributes {
            record.add_attribute(*k, *v);
        }
        record.set_trace_context(*trace, span_id(0xee), Some(TraceFlags::SAMPLED));
        logger.emit(record);
    }
    let emitted = memory.get_emitted_logs().expect("emitted logs");
    let batch: Vec<_> = emitted
        .iter()
        .map(|log| (&log.record, &log.instrumentation))
        .collect();
    let mut exporter = log_exporter(server, protocol);
    exporter.set_resource(&emitted[0].resource);
    exporter
        .export(LogBatch::new(&batch))
        .await
        .unwrap_or_else(|e| panic!("log export over {protocol:?} failed: {e}"));
}

/// A histogram point whose exemplars reference `traces`.
async fn export_exemplars(server: &Server, traces: &[TraceId]) {
    let text = |k: &str, v: &str| ProtoKeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        key_strindex: 0,
    };
    let exemplars = traces
        .iter()
        .enumerate()
        .map(|(i, t)| Exemplar {
            time_unix_nano: T0_NS + i as u64,
            value: Some(exemplar::Value::AsDouble(10.0 + i as f64)),
            trace_id: t.to_bytes().to_vec(),
            span_id: vec![0xee; 8],
            ..Default::default()
        })
        .collect();
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(ProtoResource {
                attributes: vec![
                    text("service.name", "checkout"),
                    text("service.version", "2.1.0"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "http.server.request.duration".into(),
                    unit: "ms".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        data_points: vec![HistogramDataPoint {
                            start_time_unix_nano: T0_NS,
                            time_unix_nano: T0_NS + 60_000_000_000,
                            count: traces.len() as u64,
                            sum: Some(100.0),
                            bucket_counts: vec![traces.len() as u64],
                            exemplars,
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut client = MetricsServiceClient::connect(server.grpc_url())
        .await
        .expect("connect");
    let response = client.export(request).await.expect("metrics export");
    assert_eq!(response.into_inner().partial_success, None);
}

/// `trace_id → column` over the rows of `sql`.
async fn by_trace(server: &Server, sql: &str, column: &str) -> Vec<(String, Json)> {
    let mut rows: Vec<(String, Json)> = server
        .sql(sql)
        .await
        .into_iter()
        .map(|row| {
            (
                row["trace_id"].as_str().unwrap_or_default().to_owned(),
                row[column].clone(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

async fn admin(server: &Server) -> Json {
    reqwest::get(server.api_url("/api/v1/admin/cohorts"))
        .await
        .expect("admin endpoint")
        .json()
        .await
        .expect("JSON")
}

/// Polls `check` until it holds; fails after 30 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn trace_id_new(env: &str, config: Option<&std::path::Path>) -> TraceId {
    let mut command = Command::new(binary());
    command.args(["trace-id", "new", "--env", env]);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = command.output().expect("run trace-id new");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    TraceId::from_hex(text.trim()).expect("a hex trace id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_logs_and_exemplars_get_their_traces_cohort() {
    let server =
        Server::start_with_config(&format!("{RULES}\n[trace_join]\nhold_window = \"8s\"\n"));
    let geo = |isp: &'static str| vec![KeyValue::new("geo", "华南"), KeyValue::new("isp", isp)];
    let a = trace_id(0x11, 0);
    let b = trace_id(0x12, 0);
    let c = trace_id(0x13, 0);
    let d = trace_id(0x14, 0);
    let e = trace_id(0x15, 0x0002);
    let f = trace_id(0x16, 0x0003);
    let g = trace_id(0x17, 0);
    let h = trace_id_new("canary", None);
    let i = trace_id(0x18, 0);
    let late = trace_id(0x19, 0);

    export_spans(
        &server,
        &[
            request(a, geo("移动")),
            request(
                b,
                vec![
                    KeyValue::new("device.type", "iOS"),
                    KeyValue::new("tls.version", "1.10"),
                ],
            ),
            Request {
                trace: c,
                attributes: vec![],
                baggage: vec![KeyValue::new("group", "beta")],
            },
            request(d, geo("联通")),
            request(e, geo("移动")),
            request(f, vec![]),
            request(g, vec![]),
            request(h, vec![]),
            request(
                i,
                vec![KeyValue::new(
                    "http.request.header.baggage",
                    Value::Array(Array::String(vec!["tier=gold, group=beta".into()])),
                )],
            ),
        ],
    )
    .await;

    let want_spans = [
        (a, "gray-a"), // also matches "south": the first rule wins
        (b, "gray-a"), // "1.10" >= "1.3" as versions
        (c, "beta"),   // baggage copied onto the span under its own key
        (d, "south"),
        (e, "canary"), // the flag beats the rules
        (f, "gray-b"), // a configured flag
        (g, "baseline"),
        (h, "canary"), // an id from `trace-id new --env canary`
        (i, "beta"),   // a captured W3C baggage header
    ];
    let mut want: Vec<(String, Json)> = want_spans
        .iter()
        .map(|(t, c)| (hex(*t), json!(c)))
        .collect();
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        by_trace(&server, "SELECT trace_id, cohort FROM spans", "cohort").await,
        want
    );

    // A log record whose span has not come yet is held until it does.
    let held = tokio::spawn(export_log_over_grpc(server.grpc_url(), late));
    eventually("the log record to be held", || async {
        admin(&server).await["trace_join"]["stats"]["held_requests"] == json!(1)
    })
    .await;
    export_spans(&server, &[request(late, geo("移动"))]).await;
    tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("the held export is answered once its span is stored")
        .unwrap();
    assert_eq!(
        admin(&server).await["trace_join"]["stats"]["expired_total"],
        json!(0)
    );

    // Logs after their spans, over HTTP; one whose own attributes match a
    // rule keeps that rule's cohort.
    let after: Vec<(TraceId, Vec<(&str, &str)>)> = [a, b, c, d, e, f, g, h, i]
        .into_iter()
        .map(|t| (t, vec![]))
        .collect();
    export_logs(&server, Protocol::HttpProtobuf, &after).await;
    export_logs(
        &server,
        Protocol::HttpJson,
        &[(g, vec![("device.type", "iOS"), ("tls.version", "1.3")])],
    )
    .await;

    let logs = server
        .sql("SELECT trace_id, cohort, version, attributes['device.type'] AS device FROM logs")
        .await;
    assert_eq!(logs.len(), 11, "{logs:#?}");
    for row in &logs {
        let trace = row["trace_id"].as_str().unwrap();
        // The iOS record matches a rule itself; the held one joined its
        // trace once the span came.
        let want = if row["device"] == json!("iOS") || trace == hex(late) {
            "gray-a"
        } else {
            want_spans
                .iter()
                .find(|(t, _)| hex(*t) == trace)
                .map(|(_, c)| *c)
                .unwrap()
        };
        assert_eq!(row["cohort"], json!(want), "{row:?}");
        assert_eq!(row["version"], json!("2.1.0"));
    }

    // Exemplars take their trace's cohort at ingest.
    export_exemplars(&server, &[a, c, e, f, g]).await;
    let exemplars = by_trace(
        &server,
        "SELECT e['trace_id'] AS trace_id, e['cohort'] AS cohort \
         FROM (SELECT unnest(exemplars) AS e FROM metrics)",
        "cohort",
    )
    .await;
    let mut want: Vec<(String, Json)> = [
        (a, "gray-a"),
        (c, "beta"),
        (e, "canary"),
        (f, "gray-b"),
        (g, "baseline"),
    ]
    .iter()
    .map(|(t, c)| (hex(*t), json!(c)))
    .collect();
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(exemplars, want);
    // The data point itself matches no rule.
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM metrics WHERE cohort = 'baseline'")
            .await,
        1
    );
    // And the views agree with what ingest stored.
    assert_eq!(
        server
            .count("SELECT count(*) AS n FROM logs_with_trace_cohort WHERE cohort <> ingest_cohort")
            .await,
        0
    );
}

/// One sampled log record of `trace`, exported over gRPC to `endpoint`.
async fn export_log_over_grpc(endpoint: String, trace: TraceId) {
    let memory = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource("checkout"))
        .with_simple_exporter(memory.clone())
        .build();
    let logger = provider.logger("checkout-logs");
    let mut record = logger.create_log_record();
    record.set_timestamp(at(50_000));
    record.set_body("payment started".into());
    record.set_trace_context(trace, span_id(0xee), Some(TraceFlags::SAMPLED));
    logger.emit(record);
    let emitted = memory.get_emitted_logs().expect("emitted logs");
    let batch: Vec<_> = emitted
        .iter()
        .map(|log| (&log.record, &log.instrumentation))
        .collect();
    let mut exporter = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .expect("log exporter");
    exporter.set_resource(&emitted[0].resource);
    exporter
        .export(LogBatch::new(&batch))
        .await
        .expect("log export");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_window_misses_the_views_join() {
    let server =
        Server::start_with_config(&format!("{RULES}\n[trace_join]\nhold_window = \"1s\"\n"));
    let v = trace_id(0x21, 0);
    let w = trace_id(0x22, 0);

    // Before any span of v: each export waits the window out, then stores
    // what its own rules say.
    export_logs(&server, Protocol::Grpc, &[(v, vec![])]).await;
    export_exemplars(&server, &[v]).await;
    assert!(admin(&server).await["trace_join"]["stats"]["expired_total"].as_u64() >= Some(2));

    export_spans(
        &server,
        &[
            request(
                v,
                vec![KeyValue::new("geo", "华南"), KeyValue::new("isp", "移动")],
            ),
            request(w, vec![]),
        ],
    )
    .await;
    // After the span: joined at ingest.
    export_logs(&server, Protocol::HttpProtobuf, &[(w, vec![]), (v, vec![])]).await;

    let rows = server
        .sql(&format!(
            "SELECT l.cohort AS stored, j.cohort AS joined, j.ingest_cohort, j.version \
             FROM logs l JOIN logs_with_trace_cohort j ON l.time = j.time AND l.trace_id = j.trace_id \
             WHERE l.trace_id = '{}' ORDER BY l.cohort",
            hex(v)
        ))
        .await;
    assert_eq!(
        rows,
        vec![
            json!({"stored": "baseline", "joined": "gray-a", "ingest_cohort": "baseline", "version": "2.1.0"}),
            json!({"stored": "gray-a", "joined": "gray-a", "ingest_cohort": "gray-a", "version": "2.1.0"}),
        ]
        .into_iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect::<Vec<_>>()
    );
    let w_logs = server
        .sql(&format!(
            "SELECT cohort FROM logs_with_trace_cohort WHERE trace_id = '{}'",
            hex(w)
        ))
        .await;
    assert_eq!(w_logs[0]["cohort"], json!("baseline"));

    let exemplar = server
        .sql(&format!(
            "SELECT cohort, ingest_cohort, name, point_cohort FROM exemplars_with_trace_cohort WHERE trace_id = '{}'",
            hex(v)
        ))
        .await;
    assert_eq!(
        exemplar,
        vec![
            json!({"cohort": "gray-a", "ingest_cohort": "baseline",
                    "name": "http.server.request.duration", "point_cohort": "baseline"})
            .as_object()
            .unwrap()
            .clone()
        ]
    );
    let traces = server
        .sql(&format!(
            "SELECT cohort, version, labelled_spans FROM trace_cohorts WHERE trace_id = '{}'",
            hex(v)
        ))
        .await;
    assert_eq!(traces[0]["cohort"], json!("gray-a"));
    assert_eq!(traces[0]["labelled_spans"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloaded_rules_label_new_records_only() {
    let tables = |rule: &str| format!("[[cohorts]]\nname = \"gray-a\"\nrule = '{rule}'\n");
    let server = Server::start_with_config(&tables(r#"geo == "华南""#));
    let south = || vec![KeyValue::new("geo", "华南")];
    let first = trace_id(0x31, 0);
    export_spans(&server, &[request(first, south())]).await;

    // Over the admin endpoint.
    std::fs::write(
        &server.config_path,
        server.config_text(&tables(r#"geo == "华北""#)),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let response = client
        .post(server.api_url("/api/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["cohorts"][0]["rule"], json!(r#"geo == "华北""#));
    let second = trace_id(0x32, 0);
    let north = trace_id(0x33, 0);
    export_spans(
        &server,
        &[
            request(second, south()),
            request(north, vec![KeyValue::new("geo", "华北")]),
        ],
    )
    .await;

    // A bad rule is refused with its position; the rules in use stay.
    std::fs::write(
        &server.config_path,
        server.config_text("[[cohorts]]\nname = \"gray-z\"\nrule = 'geo = \"华南\"'\n"),
    )
    .unwrap();
    let response = client
        .post(server.api_url("/api/v1/admin/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Json = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("cohort \"gray-z\": invalid rule: line 1, column 5"),
        "{message}"
    );
    assert_eq!(admin(&server).await["cohorts"][0]["name"], json!("gray-a"));

    // On SIGHUP.
    std::fs::write(
        &server.config_path,
        server.config_text("[[cohorts]]\nname = \"gray-c\"\nrule = 'geo == \"华南\"'\n"),
    )
    .unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    eventually("SIGHUP to reload the rules", || async {
        admin(&server).await["cohorts"][0]["name"] == json!("gray-c")
    })
    .await;
    let third = trace_id(0x34, 0);
    export_spans(&server, &[request(third, south())]).await;

    let mut want: Vec<(String, Json)> = [
        (first, "gray-a"),
        (second, "baseline"),
        (north, "gray-a"),
        (third, "gray-c"),
    ]
    .iter()
    .map(|(t, c)| (hex(*t), json!(c)))
    .collect();
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        by_trace(&server, "SELECT trace_id, cohort FROM spans", "cohort").await,
        want
    );
}

#[test]
fn trace_id_new_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("grayscope.toml");
    std::fs::write(&config, "[gray_flags]\n\"0x0003\" = \"gray-b\"\n").unwrap();

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let canary = trace_id_new("canary", None);
    let bytes = canary.to_bytes();
    assert_eq!(&bytes[14..], &[0, 2]);
    let millis = u64::from_be_bytes([
        0, 0, bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5],
    ]);
    assert!(
        millis >= before && millis < before + 60_000,
        "{millis} vs {before}"
    );
    assert_ne!(trace_id_new("canary", None), canary, "ids are random");
    assert_eq!(&trace_id_new("staging", None).to_bytes()[14..], &[0, 1]);
    assert_eq!(&trace_id_new("none", None).to_bytes()[14..], &[0, 0]);
    let gray_b = trace_id_new("gray-b", Some(&config));
    assert_eq!(&gray_b.to_bytes()[14..], &[0, 3]);

    let decode = |args: &[&str]| {
        let output = Command::new(binary())
            .args(["trace-id", "decode"])
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, _) = decode(&[&hex(canary)]);
    assert_eq!(code, Some(0));
    assert!(out.contains("flag      0x0002"), "{out}");
    assert!(out.contains("cohort    canary (built-in flag)"), "{out}");
    let (_, out, _) = decode(&[&format!("00-{}-00f067aa0ba902b7-01", hex(gray_b)), "--json"]);
    let json: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(json["flag"], json!("0x0003"));
    assert_eq!(json["cohort"], json!("gray-b"));
    assert_eq!(json["trace_id"], json!(hex(gray_b)));
    let (_, out, _) = decode(&["5b8efff798038103d269b633813f0000"]);
    assert!(
        out.contains("the cohort rules decide, else baseline"),
        "{out}"
    );
    let (_, out, _) = decode(&["0000000000010203040506070809000a"]);
    assert!(out.contains("time      1970-01-01T00:00:00.001Z"), "{out}");
    assert!(out.contains("0x000a is not in [gray_flags]"), "{out}");

    // Bad input: exit code 2 with a reason.
    let (code, _, err) = decode(&["xyz"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid trace id"), "{err}");
    let output = Command::new(binary())
        .args(["trace-id", "new", "--env", "gray-q"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("names no gray flag"));
}
