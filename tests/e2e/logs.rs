//! Log records from the OpenTelemetry SDK, exported over every protocol,
//! come back from SQL with their ids, severities, bodies and cohorts.

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::TraceFlags;
use opentelemetry::{Key, StringValue};
use opentelemetry_sdk::logs::{InMemoryLogExporter, LogBatch, LogExporter as _, SdkLoggerProvider};
use serde_json::json;

use super::harness::{Protocol, Server};
use super::telemetry::{T0_NS, at, log_exporter, resource, span_id, trace_id};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn export_logs(server: &Server, protocol: Protocol, service: &str, seed: u8) {
    let memory = InMemoryLogExporter::default();
    let provider = SdkLoggerProvider::builder()
        .with_resource(resource(service))
        .with_simple_exporter(memory.clone())
        .build();
    let logger = provider.logger("checkout-logs");

    let mut login = logger.create_log_record();
    login.set_timestamp(at(1_000));
    login.set_observed_timestamp(at(2_000));
    login.set_severity_number(Severity::Info);
    login.set_severity_text("INFO");
    login.set_body(AnyValue::from("user 42 logged in"));
    login.add_attribute("user.id", 42_i64);
    login.add_attribute("path", "/login");
    login.set_trace_context(
        trace_id(seed, 0x0002),
        span_id(seed),
        Some(TraceFlags::SAMPLED),
    );
    logger.emit(login);

    let mut failure = logger.create_log_record();
    failure.set_timestamp(at(3_000));
    failure.set_severity_number(Severity::Error);
    failure.set_severity_text("ERROR");
    failure.set_event_name("checkout.failed");
    failure.set_body(AnyValue::Map(Box::new(
        [
            (
                Key::from("reason"),
                AnyValue::String(StringValue::from("timeout")),
            ),
            (Key::from("attempts"), AnyValue::Int(3)),
        ]
        .into_iter()
        .collect(),
    )));
    failure.set_trace_context(trace_id(seed, 0x0001), span_id(seed + 1), None);
    logger.emit(failure);

    let mut plain = logger.create_log_record();
    plain.set_timestamp(at(4_000));
    plain.set_severity_number(Severity::Warn);
    plain.set_body(AnyValue::from("disk 91% full"));
    logger.emit(plain);

    let emitted = memory.get_emitted_logs().expect("emitted logs");
    assert_eq!(emitted.len(), 3);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_over_every_protocol_come_back_exactly() {
    let server = Server::start();
    for (i, protocol) in Protocol::ALL.into_iter().enumerate() {
        let seed = 0x20 * (i as u8 + 1);
        let service = format!("payments-{}", protocol.name());
        export_logs(&server, protocol, &service, seed).await;

        let rows = server
            .sql(&format!(
                "SELECT CAST(time AS BIGINT) AS t, CAST(observed_time AS BIGINT) AS observed,
                        trace_id, span_id, severity_number, severity_text, body, event_name,
                        attributes, scope_name, cohort, version, service, template_id
                 FROM logs WHERE service = '{service}' ORDER BY time"
            ))
            .await;
        assert_eq!(rows.len(), 3, "{protocol:?}: {rows:#?}");

        let login = &rows[0];
        assert_eq!(login["t"], json!(T0_NS + 1_000), "{protocol:?}");
        assert_eq!(login["observed"], json!(T0_NS + 2_000));
        assert_eq!(
            login["trace_id"],
            json!(hex(&[&[seed; 14][..], &[0, 2]].concat()))
        );
        assert_eq!(login["span_id"], json!(hex(&[seed; 8])));
        assert_eq!(login["severity_number"], json!(9));
        assert_eq!(login["severity_text"], json!("INFO"));
        assert_eq!(login["body"], json!("user 42 logged in"));
        assert_eq!(login["event_name"], json!(null));
        assert_eq!(
            login["attributes"],
            json!({"user.id": "42", "path": "/login"})
        );
        assert_eq!(login["scope_name"], json!("checkout-logs"));
        assert_eq!(login["cohort"], json!("canary"));
        assert_eq!(login["version"], json!("2.1.0"));

        let failure = &rows[1];
        assert_eq!(failure["severity_number"], json!(17));
        assert_eq!(failure["severity_text"], json!("ERROR"));
        assert_eq!(failure["event_name"], json!("checkout.failed"));
        assert_eq!(failure["cohort"], json!("staging"));
        let body: serde_json::Value =
            serde_json::from_str(failure["body"].as_str().expect("text body")).unwrap();
        assert_eq!(body, json!({"reason": "timeout", "attempts": 3}));

        let plain = &rows[2];
        assert_eq!(plain["severity_number"], json!(13));
        assert_eq!(plain["severity_text"], json!(null));
        assert_eq!(plain["trace_id"], json!(null));
        assert_eq!(plain["span_id"], json!(null));
        assert_eq!(plain["cohort"], json!("baseline"));
        assert_eq!(plain["body"], json!("disk 91% full"));
    }
    assert_eq!(server.count("SELECT count(*) AS n FROM logs").await, 9);
}
