//! JSON-lines log messages → an OTLP logs request.
//!
//! Services that log to Kafka directly write one JSON object per log
//! record, usually one per message. Each non-empty line of a message is one
//! record; the fields below are read under any of their usual names, and
//! every other field becomes an attribute (nested objects flattened with
//! dots, arrays as JSON text):
//!
//! | record part | fields |
//! |---|---|
//! | time | `time`, `timestamp`, `@timestamp`, `ts`: RFC 3339 text, or a number of seconds, milliseconds, microseconds or nanoseconds since the epoch (told apart by size) |
//! | severity | `level`, `severity`, `severity_text`, `lvl`: a name (`debug`, `INFO`, `warning`, …) or an OTLP severity number |
//! | body | `message`, `msg`, `body`, `log`; without any, the whole line |
//! | trace and span id | `trace_id`, `traceId`, `trace.id`; `span_id`, `spanId`, `span.id`: hex |
//! | resource | `service.name`, `service`, `service_name`; `service.version`, `version`; the members of a `resource` object |
//! | attributes | the members of an `attributes` object, and every other field |
//!
//! A line that is not a JSON object, or whose ids are not hex, makes the
//! whole message undecodable: it goes to the dead-letter topic.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

const TIME: [&str; 4] = ["time", "timestamp", "@timestamp", "ts"];
const SEVERITY: [&str; 4] = ["level", "severity", "severity_text", "lvl"];
const BODY: [&str; 4] = ["message", "msg", "body", "log"];
const TRACE_ID: [&str; 3] = ["trace_id", "traceId", "trace.id"];
const SPAN_ID: [&str; 3] = ["span_id", "spanId", "span.id"];
const SERVICE_NAME: [&str; 3] = ["service.name", "service", "service_name"];
const SERVICE_VERSION: [&str; 2] = ["service.version", "version"];

/// Decodes a message of JSON lines into a logs request, one resource per
/// record.
pub(crate) fn decode(payload: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut resource_logs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let record = record(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        resource_logs.push(record);
    }
    if resource_logs.is_empty() {
        return Err("no JSON object in the message".to_owned());
    }
    Ok(ExportLogsServiceRequest { resource_logs })
}

fn record(line: &str) -> Result<ResourceLogs, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object".to_owned());
    };
    let mut record = LogRecord::default();
    if let Some(time) = take(&mut fields, &TIME) {
        record.time_unix_nano = time_nanos(&time).ok_or("unreadable time")?;
    }
    if let Some(severity) = take(&mut fields, &SEVERITY) {
        let (number, text) = severity_of(&severity);
        record.severity_number = number;
        record.severity_text = text;
    }
    if let Some(id) = take(&mut fields, &TRACE_ID) {
        record.trace_id = hex_id(&id, 16).ok_or("trace id is not 32 hex digits")?;
    }
    if let Some(id) = take(&mut fields, &SPAN_ID) {
        record.span_id = hex_id(&id, 8).ok_or("span id is not 16 hex digits")?;
    }
    let mut resource = Vec::new();
    if let Some(name) = take(&mut fields, &SERVICE_NAME) {
        resource.push(key_value("service.name", &name));
    }
    if let Some(version) = take(&mut fields, &SERVICE_VERSION) {
        resource.push(key_value("service.version", &version));
    }
    if let Some(Value::Object(members)) = fields.remove("resource") {
        flatten("", members, &mut resource);
    }
    let body = take(&mut fields, &BODY);
    record.body = Some(match body {
        Some(Value::String(text)) => string_value(text),
        Some(other) => string_value(other.to_string()),
        None => string_value(line.to_owned()),
    });
    if let Some(Value::Object(members)) = fields.remove("attributes") {
        flatten("", members, &mut record.attributes);
    }
    flatten("", fields, &mut record.attributes);
    Ok(ResourceLogs {
        resource: Some(Resource {
            attributes: resource,
            ..Default::default()
        }),
        scope_logs: vec![ScopeLogs {
            log_records: vec![record],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Removes and returns the first field present under any of `names`.
fn take(fields: &mut Map<String, Value>, names: &[&str]) -> Option<Value> {
    names.iter().find_map(|name| fields.remove(*name))
}

fn string_value(text: String) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(text)),
    }
}

fn any_value(value: &Value) -> AnyValue {
    let value = match value {
        Value::String(text) => any_value::Value::StringValue(text.clone()),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => any_value::Value::StringValue(other.to_string()),
    };
    AnyValue { value: Some(value) }
}

fn key_value(key: &str, value: &Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(any_value(value)),
        ..Default::default()
    }
}

/// Appends `members` as attributes, nested objects flattened with dots;
/// nulls are left out.
fn flatten(prefix: &str, members: Map<String, Value>, out: &mut Vec<KeyValue>) {
    for (key, value) in members {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Null => {}
            Value::Object(inner) => flatten(&key, inner, out),
            value => out.push(key_value(&key, &value)),
        }
    }
}

/// Nanoseconds since the epoch of a time field.
fn time_nanos(value: &Value) -> Option<u64> {
    match value {
        Value::String(text) => match chrono::DateTime::parse_from_rfc3339(text.trim()) {
            Ok(time) => u64::try_from(time.timestamp_nanos_opt()?).ok(),
            Err(_) => text.trim().parse::<f64>().ok().and_then(epoch_nanos),
        },
        Value::Number(n) => n.as_f64().and_then(epoch_nanos),
        _ => None,
    }
}

/// An epoch number in seconds, milliseconds, microseconds or nanoseconds,
/// told apart by size (seconds until the year 5138).
fn epoch_nanos(number: f64) -> Option<u64> {
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    let scale = if number < 1e11 {
        1e9
    } else if number < 1e14 {
        1e6
    } else if number < 1e17 {
        1e3
    } else {
        1.0
    };
    let nanos = number * scale;
    (nanos < u64::MAX as f64).then_some(nanos as u64)
}

/// OTLP's severity number and text for a severity field.
fn severity_of(value: &Value) -> (i32, String) {
    match value {
        Value::Number(n) => {
            let number = n.as_i64().filter(|n| (1..=24).contains(n)).unwrap_or(0) as i32;
            (number, String::new())
        }
        Value::String(text) => {
            let number = match text.trim().to_ascii_lowercase().as_str() {
                "trace" | "finest" | "finer" => 1,
                "debug" | "fine" | "dbg" => 5,
                "info" | "information" | "informational" | "notice" => 9,
                "warn" | "warning" => 13,
                "error" | "err" | "severe" => 17,
                "fatal" | "critical" | "crit" | "panic" | "alert" | "emerg" | "emergency" => 21,
                _ => 0,
            };
            (number, text.clone())
        }
        other => (0, other.to_string()),
    }
}

/// The bytes of a hex id of `len` bytes; an empty string is no id.
fn hex_id(value: &Value, len: usize) -> Option<Vec<u8>> {
    let Value::String(text) = value else {
        return None;
    };
    if text.is_empty() {
        return Some(Vec::new());
    }
    let bytes = hex::decode(text).ok()?;
    (bytes.len() == len).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &Option<AnyValue>) -> String {
        match value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_structured_line_maps_to_a_log_record() {
        let line = r#"{"time":"2026-05-01T12:00:00.5Z","level":"WARN","msg":"payment timeout after 30ms","service":"checkout","version":"2.1.0","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","http":{"route":"/pay","status_code":504},"geo":"华南"}"#;
        let request = decode(line.as_bytes()).unwrap();
        let resource = &request.resource_logs[0];
        let record = &resource.scope_logs[0].log_records[0];
        assert_eq!(record.time_unix_nano, 1_777_636_800_500_000_000);
        assert_eq!(
            (record.severity_number, record.severity_text.as_str()),
            (13, "WARN")
        );
        assert_eq!(text(&record.body), "payment timeout after 30ms");
        assert_eq!(
            hex::encode(&record.trace_id),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(hex::encode(&record.span_id), "b7ad6b7169203331");
        let resource: Vec<_> = resource
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(|kv| (kv.key.as_str(), text(&kv.value)))
            .collect();
        assert_eq!(
            resource,
            [
                ("service.name", "checkout".to_owned()),
                ("service.version", "2.1.0".to_owned())
            ]
        );
        let mut attributes: Vec<_> = record.attributes.iter().map(|kv| kv.key.as_str()).collect();
        attributes.sort_unstable();
        assert_eq!(attributes, ["geo", "http.route", "http.status_code"]);
    }

    #[test]
    fn epoch_numbers_of_any_unit() {
        for value in [
            "1777636800",
            "1777636800000",
            "1777636800000000",
            "1777636800000000000",
        ] {
            let line = format!(r#"{{"ts":{value},"msg":"x"}}"#);
            let request = decode(line.as_bytes()).unwrap();
            let record = &request.resource_logs[0].scope_logs[0].log_records[0];
            assert_eq!(record.time_unix_nano, 1_777_636_800_000_000_000, "{value}");
        }
    }

    #[test]
    fn several_lines_are_several_records_and_a_line_without_message_is_its_body() {
        let request = decode(b"{\"msg\":\"a\"}\n\n{\"event\":\"b\"}\n").unwrap();
        assert_eq!(request.resource_logs.len(), 2);
        let second = &request.resource_logs[1].scope_logs[0].log_records[0];
        assert_eq!(text(&second.body), r#"{"event":"b"}"#);
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        for (payload, expected) in [
            (&b"{\"msg\":\"ok\"}\nnot json"[..], "line 2"),
            (b"[1,2]", "not a JSON object"),
            (b"{\"trace_id\":\"xyz\"}", "trace id"),
            (b"{\"time\":true}", "time"),
            (b"", "no JSON object"),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let error = decode(payload).unwrap_err();
            assert!(error.contains(expected), "{payload:?}: {error}");
        }
    }
}
