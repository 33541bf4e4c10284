//! The Parquet parts grayscope writes are readable by tools nobody here
//! wrote: pyarrow and DuckDB (from PyPI, installed by `scripts/test`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanExporter as _};
use serde_json::json;

use super::harness::{Protocol, Server};
use super::telemetry::{ScriptedIds, at, resource, span_exporter, span_id, trace_id};

/// The Python that has pyarrow and duckdb: `GRAYSCOPE_PYTHON` as
/// `scripts/test` sets it, else the repository's test venv.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("GRAYSCOPE_PYTHON") {
        return python.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with pyarrow and duckdb: run scripts/test (it creates target/venv), or set GRAYSCOPE_PYTHON"
    );
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_and_duckdb_read_the_parts_with_their_schema() {
    let server = Server::start_with_config("[store]\nflush_interval = \"1s\"\n");

    let memory = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(memory.clone())
        .with_id_generator(ScriptedIds::new(
            vec![trace_id(0x61, 0x0002), trace_id(0x62, 0x0000)],
            vec![span_id(0x61), span_id(0x62)],
        ))
        .build();
    let tracer = provider.tracer("parquet-test");
    for name in ["GET /cart", "GET /health"] {
        let mut span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_start_time(at(0))
            .with_attributes([KeyValue::new("http.route", name.trim_start_matches("GET "))])
            .start(&tracer);
        span.end_with_timestamp(at(1_000_000));
    }
    let mut exporter = span_exporter(&server, Protocol::Grpc);
    exporter.set_resource(&resource("shop"));
    exporter
        .export(memory.get_finished_spans().unwrap())
        .await
        .unwrap();

    // Wait (with a deadline) for the flush that makes the spans a part.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server
        .count("SELECT count(*) AS n FROM system.parts WHERE table_name = 'spans'")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "no part was flushed within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let output = tokio::process::Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/read_parts.py"))
        .arg(server.data_dir())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let spans = &read["spans"];
    assert_eq!(spans["pyarrow_rows"], json!(2), "{read}");
    assert_eq!(spans["duckdb_rows"], json!(2));
    assert_eq!(
        spans["trace_ids"],
        json!([
            "61616161616161616161616161610002",
            "62626262626262626262626262620000"
        ])
    );
    assert_eq!(spans["cohorts"], json!({"baseline": 1, "canary": 1}));
    assert_eq!(spans["cart_routes"], json!(["/cart"]));

    // Every column of the table, with the type Arrow gave it.
    let columns = spans["columns"].as_object().unwrap();
    let schema = grayscope_core::Table::Spans.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for name in &names {
        assert!(
            columns.contains_key(*name),
            "pyarrow lost column {name}: {columns:?}"
        );
    }
    // pyarrow also reads the hive-style directories as partition columns.
    let mut extra: Vec<&str> = columns
        .keys()
        .map(String::as_str)
        .filter(|c| !names.contains(c))
        .collect();
    extra.sort();
    assert_eq!(extra, vec!["date", "hour"]);
    assert_eq!(columns["time"], json!("timestamp[ns, tz=UTC]"));
    assert_eq!(columns["duration_ns"], json!("int64"));
    assert_eq!(columns["trace_id"], json!("string"));
    assert!(
        columns["attributes"]
            .as_str()
            .unwrap()
            .starts_with("map<string")
    );
}
