//! What is read in place is what prost decodes, field for field; what
//! prost refuses is never read wrongly.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue as ProtoKeyValue, KeyValueList,
    any_value::Value as ProtoValue,
};
use opentelemetry_proto::tonic::logs::v1 as plogs;
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1 as ptrace;
use proptest::prelude::*;
use proptest::sample::select;
use prost::Message as _;

use super::*;
use crate::{Encoding, Labeler, Signal};

// ---- back to prost's structs, for comparison ----

fn value(value: Value<'_>) -> Option<AnyValue> {
    let value = match value {
        Value::Empty => return None,
        Value::String(s) => ProtoValue::StringValue(s.to_owned()),
        Value::Bool(b) => ProtoValue::BoolValue(b),
        Value::Int(i) => ProtoValue::IntValue(i),
        Value::Double(d) => ProtoValue::DoubleValue(d),
        Value::Bytes(b) => ProtoValue::BytesValue(b.to_vec()),
        Value::Array(_) | Value::Kvlist(_) => value.nested()?.into_owned(),
    };
    Some(AnyValue { value: Some(value) })
}

fn attributes(list: Attributes<'_>) -> Vec<ProtoKeyValue> {
    list.iter()
        .map(|kv| ProtoKeyValue {
            key: kv.key.to_owned(),
            value: value(kv.value),
            ..Default::default()
        })
        .collect()
}

fn resource(resource: Resource<'_>) -> Option<ProtoResource> {
    Some(ProtoResource {
        attributes: attributes(resource.attributes),
        ..Default::default()
    })
}

fn scope(scope: Scope<'_>) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: scope.name.to_owned(),
        version: scope.version.to_owned(),
        attributes: attributes(scope.attributes),
        ..Default::default()
    })
}

fn span(span: Span<'_>) -> ptrace::Span {
    ptrace::Span {
        trace_id: span.trace_id.to_vec(),
        span_id: span.span_id.to_vec(),
        trace_state: span.trace_state.to_owned(),
        parent_span_id: span.parent_span_id.to_vec(),
        flags: span.flags,
        name: span.name.to_owned(),
        kind: span.kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: attributes(span.attributes),
        events: span
            .events
            .iter()
            .map(|e| ptrace::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.to_owned(),
                attributes: attributes(e.attributes),
                ..Default::default()
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|l| ptrace::span::Link {
                trace_id: l.trace_id.to_vec(),
                span_id: l.span_id.to_vec(),
                trace_state: l.trace_state.to_owned(),
                attributes: attributes(l.attributes),
                ..Default::default()
            })
            .collect(),
        status: span.status.map(|s| ptrace::Status {
            message: s.message.to_owned(),
            code: s.code,
        }),
        ..Default::default()
    }
}

fn traces(request: &TraceRequest) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: request
            .resources()
            .map(|r| ptrace::ResourceSpans {
                resource: resource(r.resource),
                scope_spans: r
                    .scope_spans
                    .iter()
                    .map(|s| ptrace::ScopeSpans {
                        scope: scope(s.scope),
                        spans: s.spans.iter().map(span).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

fn logs(request: &LogsRequest) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: request
            .resources()
            .map(|r| plogs::ResourceLogs {
                resource: resource(r.resource),
                scope_logs: r
                    .scope_logs
                    .iter()
                    .map(|s| plogs::ScopeLogs {
                        scope: scope(s.scope),
                        log_records: s
                            .log_records
                            .iter()
                            .map(|l| plogs::LogRecord {
                                time_unix_nano: l.time_unix_nano,
                                observed_time_unix_nano: l.observed_time_unix_nano,
                                severity_number: l.severity_number,
                                severity_text: l.severity_text.to_owned(),
                                body: value(l.body),
                                attributes: attributes(l.attributes),
                                flags: l.flags,
                                trace_id: l.trace_id.to_vec(),
                                span_id: l.span_id.to_vec(),
                                event_name: l.event_name.to_owned(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
    }
}

/// prost's view with what this reader does not keep (dropped counts,
/// schema URLs, link flags, string table indexes) and what it cannot tell apart (an empty value
/// and an absent one; no resource and an empty one) made equal.
fn normalized_traces(mut request: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    for r in &mut request.resource_spans {
        r.schema_url.clear();
        normalize_resource(&mut r.resource);
        for s in &mut r.scope_spans {
            s.schema_url.clear();
            normalize_scope(&mut s.scope);
            for span in &mut s.spans {
                span.dropped_attributes_count = 0;
                span.dropped_events_count = 0;
                span.dropped_links_count = 0;
                normalize_list(&mut span.attributes);
                for e in &mut span.events {
                    e.dropped_attributes_count = 0;
                    normalize_list(&mut e.attributes);
                }
                for l in &mut span.links {
                    l.dropped_attributes_count = 0;
                    l.flags = 0;
                    normalize_list(&mut l.attributes);
                }
            }
        }
    }
    request
}

fn normalized_logs(mut request: ExportLogsServiceRequest) -> ExportLogsServiceRequest {
    for r in &mut request.resource_logs {
        r.schema_url.clear();
        normalize_resource(&mut r.resource);
        for s in &mut r.scope_logs {
            s.schema_url.clear();
            normalize_scope(&mut s.scope);
            for l in &mut s.log_records {
                l.dropped_attributes_count = 0;
                normalize_value(&mut l.body);
                normalize_list(&mut l.attributes);
            }
        }
    }
    request
}

fn normalize_resource(resource: &mut Option<ProtoResource>) {
    let r = resource.get_or_insert_with(Default::default);
    r.dropped_attributes_count = 0;
    r.entity_refs.clear();
    normalize_list(&mut r.attributes);
}

fn normalize_scope(scope: &mut Option<InstrumentationScope>) {
    let s = scope.get_or_insert_with(Default::default);
    s.dropped_attributes_count = 0;
    normalize_list(&mut s.attributes);
}

fn normalize_list(list: &mut [ProtoKeyValue]) {
    for kv in list {
        // Profiles only.
        kv.key_strindex = 0;
        normalize_value(&mut kv.value);
    }
}

fn normalize_value(value: &mut Option<AnyValue>) {
    // A string table index (profiles only) is read as no value.
    let empty = |v: &AnyValue| matches!(v.value, None | Some(ProtoValue::StringValueStrindex(_)));
    if value.as_ref().is_some_and(empty) {
        *value = None;
    }
}

// ---- generated requests ----

fn any_value() -> impl Strategy<Value = Option<AnyValue>> {
    let scalar = prop_oneof![
        "[a-zé华 ]{0,8}".prop_map(ProtoValue::StringValue),
        any::<bool>().prop_map(ProtoValue::BoolValue),
        any::<i64>().prop_map(ProtoValue::IntValue),
        (-1e9f64..1e9).prop_map(ProtoValue::DoubleValue),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(ProtoValue::BytesValue),
    ];
    let nested = scalar.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|values| {
                ProtoValue::ArrayValue(ArrayValue {
                    values: values
                        .into_iter()
                        .map(|v| AnyValue { value: Some(v) })
                        .collect(),
                })
            }),
            prop::collection::vec(("[a-c]", inner), 0..3).prop_map(|pairs| {
                ProtoValue::KvlistValue(KeyValueList {
                    values: pairs
                        .into_iter()
                        .map(|(key, v)| ProtoKeyValue {
                            key,
                            value: Some(AnyValue { value: Some(v) }),
                            ..Default::default()
                        })
                        .collect(),
                })
            }),
        ]
    });
    prop_oneof![
        6 => nested.prop_map(|v| Some(AnyValue { value: Some(v) })),
        1 => Just(Some(AnyValue { value: None })),
        1 => Just(None),
    ]
}

fn key_values() -> impl Strategy<Value = Vec<ProtoKeyValue>> {
    prop::collection::vec(
        (
            select(&["http.route", "k", "service.name", ""][..]),
            any_value(),
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(key, value)| ProtoKeyValue {
                key: key.to_owned(),
                value,
                ..Default::default()
            })
            .collect()
    })
}

fn id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), len),
        1 => prop::collection::vec(any::<u8>(), 0..20),
    ]
}

fn a_span() -> impl Strategy<Value = ptrace::Span> {
    (
        (id(16), id(8), id(8), "[a-z=,]{0,6}", "[a-zA-Z /]{0,10}"),
        (
            any::<u32>(),
            -1i32..7,
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
        ),
        key_values(),
        prop::collection::vec((any::<u64>(), "[a-z]{0,5}", key_values()), 0..2),
        prop::collection::vec((id(16), id(8), "[a-z]{0,3}", key_values()), 0..2),
        prop::option::of(("[a-z ]{0,6}", 0i32..3)),
    )
        .prop_map(|(ids, numbers, attributes, events, links, status)| {
            let (trace_id, span_id, parent_span_id, trace_state, name) = ids;
            let (flags, kind, start, end, dropped) = numbers;
            ptrace::Span {
                trace_id,
                span_id,
                parent_span_id,
                trace_state,
                name,
                flags,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: dropped,
                events: events
                    .into_iter()
                    .map(|(time_unix_nano, name, attributes)| ptrace::span::Event {
                        time_unix_nano,
                        name,
                        attributes,
                        dropped_attributes_count: dropped,
                    })
                    .collect(),
                links: links
                    .into_iter()
                    .map(
                        |(trace_id, span_id, trace_state, attributes)| ptrace::span::Link {
                            trace_id,
                            span_id,
                            trace_state,
                            attributes,
                            flags,
                            ..Default::default()
                        },
                    )
                    .collect(),
                status: status.map(|(message, code)| ptrace::Status { message, code }),
                ..Default::default()
            }
        })
}

fn a_scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    prop::option::of(("[a-z]{0,4}", "[0-9.]{0,4}", key_values())).prop_map(|scope| {
        scope.map(|(name, version, attributes)| InstrumentationScope {
            name,
            version,
            attributes,
            dropped_attributes_count: 2,
        })
    })
}

fn a_resource() -> impl Strategy<Value = Option<ProtoResource>> {
    prop::option::of(key_values()).prop_map(|attributes| {
        attributes.map(|attributes| ProtoResource {
            attributes,
            ..Default::default()
        })
    })
}

fn a_trace_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    prop::collection::vec(
        (
            a_resource(),
            prop::collection::vec((a_scope(), prop::collection::vec(a_span(), 0..4)), 0..3),
        ),
        0..3,
    )
    .prop_map(|resources| ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(resource, scopes)| ptrace::ResourceSpans {
                resource,
                scope_spans: scopes
                    .into_iter()
                    .map(|(scope, spans)| ptrace::ScopeSpans {
                        scope,
                        spans,
                        schema_url: "s".to_owned(),
                    })
                    .collect(),
                schema_url: "r".to_owned(),
            })
            .collect(),
    })
}

fn a_log_record() -> impl Strategy<Value = plogs::LogRecord> {
    (
        (any::<u64>(), any::<u64>(), -1i32..25, "[A-Z]{0,5}"),
        any_value(),
        key_values(),
        (any::<u32>(), id(16), id(8), "[a-z.]{0,6}"),
    )
        .prop_map(|(times, body, attributes, ids)| {
            let (time_unix_nano, observed_time_unix_nano, severity_number, severity_text) = times;
            let (flags, trace_id, span_id, event_name) = ids;
            plogs::LogRecord {
                time_unix_nano,
                observed_time_unix_nano,
                severity_number,
                severity_text,
                body,
                attributes,
                dropped_attributes_count: 1,
                flags,
                trace_id,
                span_id,
                event_name,
            }
        })
}

fn a_logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    prop::collection::vec(
        (
            a_resource(),
            prop::collection::vec(
                (a_scope(), prop::collection::vec(a_log_record(), 0..4)),
                0..3,
            ),
        ),
        0..3,
    )
    .prop_map(|resources| ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|(resource, scopes)| plogs::ResourceLogs {
                resource,
                scope_logs: scopes
                    .into_iter()
                    .map(|(scope, log_records)| plogs::ScopeLogs {
                        scope,
                        log_records,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    })
}

/// Damage: cut the bytes short, or overwrite one byte.
fn damaged(mut bytes: Vec<u8>, at: usize, byte: u8, cut: bool) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let at = at % bytes.len();
    if cut {
        bytes.truncate(at);
    } else {
        bytes[at] = byte;
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_trace_request_reads_in_place_as_prost_decodes_it(request in a_trace_request()) {
        let encoded = request.encode_to_vec();
        let read = TraceRequest::decode(Bytes::from(encoded.clone())).unwrap();
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        prop_assert_eq!(read.record_count(), spans);
        prop_assert_eq!(
            normalized_traces(traces(&read)),
            normalized_traces(ExportTraceServiceRequest::decode(&encoded[..]).unwrap())
        );
    }

    #[test]
    fn a_logs_request_reads_in_place_as_prost_decodes_it(request in a_logs_request()) {
        let encoded = request.encode_to_vec();
        let read = LogsRequest::decode(Bytes::from(encoded.clone())).unwrap();
        prop_assert_eq!(
            normalized_logs(logs(&read)),
            normalized_logs(ExportLogsServiceRequest::decode(&encoded[..]).unwrap())
        );
    }

    /// Whatever prost accepts after damage is read as prost reads it; what
    /// it refuses may be refused or read, but never panics.
    #[test]
    fn damaged_requests_are_refused_or_read_as_prost_reads_them(
        request in a_trace_request(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = damaged(request.encode_to_vec(), at, byte, cut);
        let read = TraceRequest::decode(Bytes::from(bytes.clone()));
        if let Ok(decoded) = ExportTraceServiceRequest::decode(&bytes[..]) {
            let read = read.unwrap();
            prop_assert_eq!(normalized_traces(traces(&read)), normalized_traces(decoded));
        }
    }

    #[test]
    fn damaged_logs_are_refused_or_read_as_prost_reads_them(
        request in a_logs_request(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = damaged(request.encode_to_vec(), at, byte, cut);
        let read = LogsRequest::decode(Bytes::from(bytes.clone()));
        if let Ok(decoded) = ExportLogsServiceRequest::decode(&bytes[..]) {
            let read = read.unwrap();
            prop_assert_eq!(normalized_logs(logs(&read)), normalized_logs(decoded));
        }
    }
}

fn convert(signal: Signal, body: Bytes) -> crate::Result<crate::convert::Converted> {
    crate::decode_and_convert(signal, Encoding::Protobuf, body, &Labeler::new(), None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The server converts requests without checking them first: damage
    /// is refused when met, exactly when a check of the whole request
    /// refuses it; what prost accepts converts as prost's struct does.
    #[test]
    fn converting_refuses_damage_exactly_when_a_full_check_does(
        request in a_trace_request(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = Bytes::from(damaged(request.encode_to_vec(), at, byte, cut));
        let converted = convert(Signal::Traces, bytes.clone());
        prop_assert_eq!(TraceRequest::decode(bytes.clone()).is_err(), converted.is_err());
        if let Ok(decoded) = ExportTraceServiceRequest::decode(&bytes[..]) {
            let via_prost = convert(Signal::Traces, decoded.encode_to_vec().into()).unwrap();
            prop_assert_eq!(converted.unwrap().batch, via_prost.batch);
        }
    }

    #[test]
    fn converting_logs_refuses_damage_exactly_when_a_full_check_does(
        request in a_logs_request(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = Bytes::from(damaged(request.encode_to_vec(), at, byte, cut));
        prop_assert_eq!(
            LogsRequest::decode(bytes.clone()).is_err(),
            convert(Signal::Logs, bytes).is_err()
        );
    }
}

/// Encoders may split a repeated field around others, and protobuf merges
/// a message sent twice: both read as prost reads them.
#[test]
fn split_repeated_fields_and_concatenated_messages_read_whole() {
    let attribute = |key: &str| ProtoKeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(ProtoValue::IntValue(1)),
        }),
        ..Default::default()
    };
    let first = ptrace::Span {
        trace_id: vec![1; 16],
        name: "first".to_owned(),
        attributes: vec![attribute("a")],
        ..Default::default()
    };
    let second = ptrace::Span {
        span_id: vec![2; 8],
        name: "second".to_owned(),
        attributes: vec![attribute("b"), attribute("c")],
        ..Default::default()
    };
    // One span whose attributes come in two runs, name fields between.
    let span_bytes = [first.encode_to_vec(), second.encode_to_vec()].concat();
    let mut scope_bytes = Vec::new();
    prost::encoding::bytes::encode(2, &span_bytes, &mut scope_bytes);
    let mut resource_bytes = Vec::new();
    prost::encoding::bytes::encode(2, &scope_bytes, &mut resource_bytes);
    let mut body = Vec::new();
    prost::encoding::bytes::encode(1, &resource_bytes, &mut body);
    // And the whole request twice over.
    let body = [body.clone(), body].concat();

    let read = TraceRequest::decode(Bytes::from(body.clone())).unwrap();
    let decoded = ExportTraceServiceRequest::decode(&body[..]).unwrap();
    assert_eq!(read.record_count(), 2);
    assert_eq!(
        decoded.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .len(),
        3
    );
    assert_eq!(normalized_traces(traces(&read)), normalized_traces(decoded));
    let one = read.resources().next().unwrap();
    let span = one
        .scope_spans
        .iter()
        .next()
        .unwrap()
        .spans
        .iter()
        .next()
        .unwrap();
    assert_eq!(span.name, "second");
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key).collect();
    assert_eq!(keys, ["a", "b", "c"]);
}

#[test]
fn bad_strings_and_nested_values_are_refused_with_the_field_named() {
    let span = |name: Vec<u8>| {
        let mut span = Vec::new();
        prost::encoding::bytes::encode(5, &name, &mut span);
        let mut scope = Vec::new();
        prost::encoding::bytes::encode(2, &span, &mut scope);
        let mut resource = Vec::new();
        prost::encoding::bytes::encode(2, &scope, &mut resource);
        let mut body = Vec::new();
        prost::encoding::bytes::encode(1, &resource, &mut body);
        Bytes::from(body)
    };
    assert!(TraceRequest::decode(span(b"GET /".to_vec())).is_ok());
    let error = TraceRequest::decode(span(vec![b'G', 0xff])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Span.name: invalid string value: data is not UTF-8 encoded"
    );
    // The server's path meets it while converting: a client error, naming
    // the field, and no batch.
    let error = convert(Signal::Traces, span(vec![b'G', 0xff])).unwrap_err();
    assert!(matches!(error, crate::Error::Decode { .. }), "{error:?}");
    let message = error.client_message();
    assert!(message.contains("Span.name: invalid string"), "{message}");

    // A key-value list value whose inner key is not UTF-8.
    let mut inner = Vec::new();
    prost::encoding::bytes::encode(1, &vec![0xc3, 0x28], &mut inner);
    let mut list = Vec::new();
    prost::encoding::bytes::encode(1, &inner, &mut list);
    let mut any = Vec::new();
    prost::encoding::bytes::encode(6, &list, &mut any);
    let mut kv = Vec::new();
    prost::encoding::string::encode(1, &"k".to_owned(), &mut kv);
    prost::encoding::bytes::encode(2, &any, &mut kv);
    let mut resource = Vec::new();
    prost::encoding::bytes::encode(1, &kv, &mut resource);
    let mut resource_spans = Vec::new();
    prost::encoding::bytes::encode(1, &resource, &mut resource_spans);
    let mut body = Vec::new();
    prost::encoding::bytes::encode(1, &resource_spans, &mut body);
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());
    assert!(TraceRequest::decode(Bytes::from(body)).is_err());
}

/// Attribute text is checked to be UTF-8 when its column is finished, not
/// as it is read: text that is not is still the client's error, naming the
/// field, whether the record holding it is stored or refused, and when a
/// character is split between two strings.
#[test]
fn attribute_text_that_is_not_utf8_is_refused_with_the_field_named() {
    fn span(trace_id: u8, attributes: Vec<ProtoKeyValue>) -> ptrace::Span {
        ptrace::Span {
            trace_id: vec![trace_id; 16],
            span_id: vec![1; 8],
            name: "GET /".to_owned(),
            attributes,
            ..Default::default()
        }
    }
    fn text(key: &str, value: &str) -> ProtoKeyValue {
        ProtoKeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(ProtoValue::StringValue(value.to_owned())),
            }),
            ..Default::default()
        }
    }
    fn request(spans: Vec<ptrace::Span>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ptrace::ResourceSpans {
                scope_spans: vec![ptrace::ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }
    /// `body` with the first occurrence of `from` replaced by `to`.
    fn patched(body: &[u8], from: &[u8], to: &[u8]) -> Bytes {
        assert_eq!(from.len(), to.len());
        let at = body
            .windows(from.len())
            .position(|w| w == from)
            .expect("the text to damage");
        let mut body = body.to_vec();
        body[at..at + from.len()].copy_from_slice(to);
        Bytes::from(body)
    }
    fn refused(body: Bytes, field: &str) {
        assert!(TraceRequest::decode(body.clone()).is_err());
        let error = convert(Signal::Traces, body).unwrap_err();
        assert!(matches!(error, crate::Error::Decode { .. }), "{error:?}");
        let message = error.client_message();
        assert!(message.contains(field), "{message}");
    }

    let kept = request(vec![span(7, vec![text("kéy", "vàlue")])]);
    assert!(convert(Signal::Traces, Bytes::from(kept.clone())).is_ok());
    // 0xc3 0x28 is not UTF-8.
    refused(
        patched(&kept, "é".as_bytes(), &[0xc3, 0x28]),
        "KeyValue.key",
    );
    refused(
        patched(&kept, "à".as_bytes(), &[0xc3, 0x28]),
        "KeyValue.value",
    );

    // A span refused for its all-zero trace id still has its text checked.
    let refused_span = request(vec![span(7, vec![]), span(0, vec![text("k", "vàlue")])]);
    let converted = convert(Signal::Traces, Bytes::from(refused_span.clone())).unwrap();
    assert_eq!((converted.batch.num_rows(), converted.rejected), (1, 1));
    refused(
        patched(&refused_span, "à".as_bytes(), &[0xc3, 0x28]),
        "KeyValue.value",
    );

    // "é" split between two keys: the column's bytes are UTF-8 end to end,
    // but neither key is.
    let split = request(vec![span(7, vec![text("aé", "1"), text("éb", "2")])]);
    let (first, second) = ("aé".as_bytes(), "éb".as_bytes());
    let body = patched(&split, first, &[b'a', b'a', 0xc3]);
    let body = patched(&body, second, &[0xa9, b'b', b'b']);
    refused(body, "KeyValue.key");

    // Log records alike.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![plogs::ResourceLogs {
            scope_logs: vec![plogs::ScopeLogs {
                log_records: vec![plogs::LogRecord {
                    attributes: vec![text("k", "vàlue")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    assert!(convert(Signal::Logs, Bytes::from(logs.clone())).is_ok());
    let error = convert(Signal::Logs, patched(&logs, "à".as_bytes(), &[0xc3, 0x28])).unwrap_err();
    assert!(
        error.client_message().contains("KeyValue.value"),
        "{error:?}"
    );
}
