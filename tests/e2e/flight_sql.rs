//! Arrow Flight SQL, driven by clients nobody here wrote: the ADBC Flight
//! SQL driver (`adbc-driver-flightsql`, the Go driver Grafana's FlightSQL
//! datasource also builds on) and `pyarrow.flight`, through
//! `tests/python/flight_sql_client.py`.
//!
//! The telemetry comes in through OTLP from the OpenTelemetry SDK, as in
//! the other end-to-end tests; the answers read through Flight SQL must be
//! exactly what was sent.

use std::path::PathBuf;

use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    Span as _, SpanId, SpanKind, Status, TraceFlags, TraceId, Tracer as _, TracerProvider as _,
};
use opentelemetry_sdk::logs::{InMemoryLogExporter, LogBatch, LogExporter as _, SdkLoggerProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanExporter as _};
use serde_json::{Value, json};

use super::harness::{Protocol, Server};
use super::parquet_readers::python;
use super::telemetry::{ScriptedIds, at, log_exporter, resource, span_exporter};

const READER_TOKEN: &str = "reader-0123456789abcdef";
const COLLECTOR_TOKEN: &str = "collector-0123456789abcdef";

/// Runs the steps with the ADBC driver (and pyarrow.flight) against `uri`;
/// one result per step, `{"ok": …}` or `{"error": {"status", …}}`.
async fn client(uri: &str, db_kwargs: Value, steps: Value) -> Vec<Value> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/flight_sql_client.py");
    let mut child = tokio::process::Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let request = json!({ "uri": uri, "db_kwargs": db_kwargs, "steps": steps });
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, request.to_string().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the Flight SQL client finished within 60 s")
        .unwrap();
    assert!(
        output.status.success(),
        "the Flight SQL client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stdout));
    })
}

fn ok(result: &Value) -> &Value {
    result
        .get("ok")
        .unwrap_or_else(|| panic!("expected success, got {result}"))
}

/// The ADBC status code of a failed step, and its message.
fn refused(result: &Value) -> (&str, &str) {
    let error = result
        .get("error")
        .unwrap_or_else(|| panic!("expected a refusal, got {result}"));
    (
        error["status"].as_str().unwrap_or_default(),
        error["message"].as_str().unwrap_or_default(),
    )
}

fn grpc_uri(server: &Server) -> String {
    format!("grpc://{}", server.flight)
}

/// A trace id unique per `n`, its last two bytes the gray flag.
fn flagged_trace_id(n: u32, flag: u16) -> TraceId {
    let mut bytes = [0x5a; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[14..].copy_from_slice(&flag.to_be_bytes());
    TraceId::from_bytes(bytes)
}

/// Sends, through OTLP/gRPC: 100 baseline server spans of 1..=100 ms, 2 of
/// them errors; 20 canary server spans of 10..=200 ms, 5 of them errors;
/// 5 slow baseline client spans (not requests: the queries filter them
/// out). Then 2 baseline and 3 canary log records in those traces.
async fn populate(server: &Server) {
    let mut trace_ids = Vec::new();
    let mut spans: Vec<(u16, SpanKind, u64, bool)> = Vec::new();
    for i in 0..100_u64 {
        spans.push((
            0x0000,
            SpanKind::Server,
            (i + 1) * 1_000_000,
            i == 10 || i == 50,
        ));
    }
    for i in 0..20_u64 {
        spans.push((0x0002, SpanKind::Server, (i + 1) * 10_000_000, i % 4 == 3));
    }
    for _ in 0..5 {
        spans.push((0x0000, SpanKind::Client, 1_000_000_000, false));
    }
    for (n, (flag, ..)) in spans.iter().enumerate() {
        trace_ids.push(flagged_trace_id(n as u32, *flag));
    }
    let span_ids = (0..spans.len() as u64)
        .map(|n| SpanId::from_bytes((n + 1).to_be_bytes()))
        .collect();
    let memory = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .with_id_generator(ScriptedIds::new(trace_ids.clone(), span_ids))
        .build();
    let tracer = provider.tracer("flight-sql-test");
    for (n, (_, kind, duration, error)) in spans.into_iter().enumerate() {
        let start = n as u64 * 1_000_000;
        let mut span = tracer
            .span_builder("GET /cart")
            .with_kind(kind)
            .with_start_time(at(start))
            .with_attributes([KeyValue::new("http.route", "/cart")])
            .start(&tracer);
        if error {
            span.set_status(Status::error("timeout"));
        }
        span.end_with_timestamp(at(start + duration));
    }
    let mut exporter = span_exporter(server, Protocol::Grpc);
    exporter.set_resource(&resource("checkout"));
    exporter
        .export(memory.get_finished_spans().unwrap())
        .await
        .unwrap();

    let memory = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource("checkout"))
        .with_simple_exporter(memory.clone())
        .build();
    let logger = provider.logger("flight-sql-test");
    // Traces 0 and 1 are baseline, 100..103 canary. Not sampled: nothing
    // waits in the trace join's hold window.
    for n in [0_usize, 1, 100, 101, 102] {
        let mut record = logger.create_log_record();
        record.set_timestamp(at(n as u64 * 1_000_000));
        record.set_severity_number(Severity::Error);
        record.set_body(AnyValue::from(format!("redis timeout after {n} ms")));
        record.set_trace_context(
            trace_ids[n],
            SpanId::from_bytes([1; 8]),
            Some(TraceFlags::default()),
        );
        logger.emit(record);
    }
    let emitted = memory.get_emitted_logs().unwrap();
    let batch: Vec<_> = emitted
        .iter()
        .map(|log| (&log.record, &log.instrumentation))
        .collect();
    let mut exporter = log_exporter(server, Protocol::Grpc);
    exporter.set_resource(&emitted[0].resource);
    exporter.export(LogBatch::new(&batch)).await.unwrap();
}

const L1_QUERY: &str = "SELECT cohort, count(*) AS requests,
        round(avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END), 4) AS error_rate,
        round(percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) / 1e6, 3) AS p99_ms
    FROM spans WHERE kind = 'server' GROUP BY cohort ORDER BY cohort";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adbc_reads_exact_answers_and_the_catalog() {
    let server = Server::start();
    populate(&server).await;

    let results = client(
        &grpc_uri(&server),
        json!({}),
        json!([
            { "query": L1_QUERY },
            {
                "query": "SELECT count(*) AS n FROM spans WHERE cohort = ? AND duration_ns > ?",
                "params": ["canary", 100_000_000],
            },
            { "query": "SELECT cohort, count(*) AS n FROM logs GROUP BY cohort ORDER BY cohort" },
            { "batches": "SELECT value FROM generate_series(1, 300000)" },
            { "get_objects": { "depth": "all", "db_schema": "public" } },
            // As Grafana's FlightSQL datasource lists tables.
            {
                "get_objects": {
                    "depth": "tables", "table_name": "span%", "table_types": ["BASE TABLE"],
                },
            },
            { "table_schema": "spans", "catalog": "grayscope", "db_schema": "public" },
            { "table_types": true },
        ]),
    )
    .await;

    // Percentiles interpolate: 99.01 ms between 99 and 100; 198.1 ms
    // between 190 and 200.
    assert_eq!(
        ok(&results[0]),
        &json!([
            {"cohort": "baseline", "requests": 100, "error_rate": 0.02, "p99_ms": 99.01},
            {"cohort": "canary", "requests": 20, "error_rate": 0.25, "p99_ms": 198.1},
        ])
    );
    // Canary spans over 100 ms: 110, 120, …, 200.
    assert_eq!(ok(&results[1]), &json!([{"n": 10}]));
    assert_eq!(
        ok(&results[2]),
        &json!([{"cohort": "baseline", "n": 2}, {"cohort": "canary", "n": 3}])
    );
    // Streamed in many messages, every row there.
    let streamed = ok(&results[3]);
    assert_eq!(streamed["rows"], json!(300_000));
    assert!(streamed["batches"].as_u64().unwrap() > 1, "{streamed}");

    let spans_schema = grayscope_core::Table::Spans.schema();
    let span_columns: Vec<&str> = spans_schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let objects = ok(&results[4]).as_array().unwrap();
    let spans = objects
        .iter()
        .find(|o| o[2] == "spans")
        .unwrap_or_else(|| panic!("no spans table in {objects:?}"));
    assert_eq!(
        spans,
        &json!(["grayscope", "public", "spans", "BASE TABLE", span_columns])
    );
    let public: Vec<&str> = objects.iter().map(|o| o[2].as_str().unwrap()).collect();
    for table in ["spans", "logs", "metrics", "templates"] {
        assert!(public.contains(&table), "{table} missing from {public:?}");
    }
    assert!(objects.iter().all(|o| o[1] == "public"), "{objects:?}");
    // A table name pattern and table types narrow the listing.
    let matching: Vec<&Value> = ok(&results[5])
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o[2])
        .collect();
    assert_eq!(matching, [&json!("spans")]);

    let schema = ok(&results[6]).as_array().unwrap();
    let names: Vec<&str> = schema.iter().map(|f| f[0].as_str().unwrap()).collect();
    assert_eq!(names, span_columns);
    let type_of = |name: &str| schema.iter().find(|f| f[0] == name).unwrap()[1].clone();
    assert_eq!(type_of("duration_ns"), json!("int64"));
    assert_eq!(type_of("trace_id"), json!("string"));
    assert_eq!(type_of("time"), json!("timestamp[ns, tz=UTC]"));

    assert_eq!(ok(&results[7]), &json!(["BASE TABLE", "VIEW"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_refused_and_bad_sql_is_the_clients_to_fix() {
    let server = Server::start();
    let copy_target = server.data_dir().join("copied.parquet");
    let results = client(
        &grpc_uri(&server),
        json!({}),
        json!([
            { "query": "CREATE TABLE t (a INT)" },
            { "query": "INSERT INTO spans SELECT * FROM spans" },
            { "query": format!("COPY (SELECT 1 AS a) TO '{}'", copy_target.display()) },
            { "query": "DROP TABLE spans" },
            { "query": "SELEC 1" },
            { "query": "SELECT nope FROM spans" },
            { "query": "SELECT count(*) AS n FROM spans" },
        ]),
    )
    .await;
    for result in &results[..4] {
        let (status, message) = refused(result);
        // PERMISSION_DENIED is UNAUTHORIZED in ADBC's vocabulary.
        assert_eq!(status, "UNAUTHORIZED", "{result}");
        assert!(message.contains("read-only"), "{message}");
    }
    assert!(
        !copy_target.exists(),
        "COPY wrote {}",
        copy_target.display()
    );
    for (result, needle) in [(&results[4], "SELEC"), (&results[5], "nope")] {
        let (status, message) = refused(result);
        assert_eq!(status, "INVALID_ARGUMENT", "{result}");
        assert!(message.contains(needle), "{message}");
    }
    // Still serving on the same connection.
    assert_eq!(ok(&results[6]), &json!([{"n": 0}]));
}

fn auth_tables() -> String {
    format!(
        "[[auth.tokens]]\nname = \"reader\"\ntoken = \"{READER_TOKEN}\"\nroles = [\"query\"]\n\
         [[auth.tokens]]\nname = \"collector\"\ntoken = \"{COLLECTOR_TOKEN}\"\nroles = [\"ingest\"]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_needs_a_token_with_the_query_role() {
    let server = Server::start_with_config(&auth_tables());
    let uri = grpc_uri(&server);
    let header =
        |token: &str| json!({ "adbc.flight.sql.authorization_header": format!("Bearer {token}") });
    let query = json!([{ "query": "SELECT 1 AS one" }, { "table_types": true }]);

    for (db_kwargs, expected) in [
        (json!({}), "UNAUTHENTICATED"),
        (header("wrong-0123456789abcdef"), "UNAUTHENTICATED"),
        (header(COLLECTOR_TOKEN), "UNAUTHORIZED"),
        (
            json!({ "username": "grafana", "password": "wrong-0123456789abcdef" }),
            "UNAUTHENTICATED",
        ),
        (
            json!({ "username": "grafana", "password": COLLECTOR_TOKEN }),
            "UNAUTHORIZED",
        ),
    ] {
        let results = client(&uri, db_kwargs.clone(), query.clone()).await;
        for result in &results {
            let (status, message) = refused(result);
            assert_eq!(status, expected, "{db_kwargs}: {result}");
            assert!(!message.contains(READER_TOKEN), "{message}");
        }
    }

    // The bearer header, or a basic login (any user name, the token as
    // password) through the Flight handshake.
    for db_kwargs in [
        header(READER_TOKEN),
        json!({ "username": "grafana", "password": READER_TOKEN }),
    ] {
        let results = client(&uri, db_kwargs.clone(), query.clone()).await;
        assert_eq!(ok(&results[0]), &json!([{"one": 1}]), "{db_kwargs}");
        assert_eq!(
            ok(&results[1]),
            &json!(["BASE TABLE", "VIEW"]),
            "{db_kwargs}"
        );
    }

    // pyarrow's basic-token handshake hands back the bearer header.
    let results = client(
        &uri,
        header(READER_TOKEN),
        json!([
            { "basic_handshake": { "user": "anyone", "password": READER_TOKEN } },
            { "basic_handshake": { "user": "anyone", "password": "wrong-0123456789abcdef" } },
        ]),
    )
    .await;
    assert_eq!(
        ok(&results[0]),
        &json!(["authorization", format!("Bearer {READER_TOKEN}")])
    );
    let error = &results[1]["error"];
    assert_eq!(
        error["type"],
        json!("FlightUnauthenticatedError"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_the_configured_certificate_only_to_tls_clients() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start_with_config(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
    let tls_uri = format!("grpc+tls://localhost:{}", server.flight.port());
    let query = json!([{ "query": "SELECT 1 AS one" }]);

    let results = client(
        &tls_uri,
        json!({ "adbc.flight.sql.client_option.tls_root_certs": cert_pem }),
        query.clone(),
    )
    .await;
    assert_eq!(ok(&results[0]), &json!([{"one": 1}]));

    // A client that does not trust the certificate, and one that does not
    // speak TLS, get nothing.
    let results = client(&tls_uri, json!({}), query.clone()).await;
    let (_, message) = refused(&results[0]);
    assert!(message.contains("certificate"), "{message}");
    let results = client(&grpc_uri(&server), json!({}), query).await;
    refused(&results[0]);
}
