//! `ExportTraceServiceRequest` (read in place) → the `spans` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Builder, Int64Builder, StringBuilder, StructArray, TimestampNanosecondBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use grayscope_core::schema::spans;

use super::attributes::{
    AttributesBuilder, append_attributes, attributes_builder, check_text, value_text,
};
use super::columns::{
    IdColumn, ListOffsets, ProvenanceColumns, timestamp_builder, valid_span_id, valid_trace_id,
};
use super::resource::{ResourceInfo, ScopeInfo};
use super::{ConvertError, Converted, Rejections, nanos};
use crate::label::{Labeler, Labels, SpanLabels};
use crate::wire::{Event, Link, RawKeyValue, RawValue, Repeated, Span, TraceRequest, Value};

/// Converts a trace export request into a `spans` batch; `labels` are the
/// request's labels (`Labels::of`). With rules configured, each span
/// is labelled here, from the attributes read for its columns.
pub fn convert_spans(
    request: &TraceRequest,
    labeler: &Labeler,
    labels: &Labels,
) -> Result<Converted, ConvertError> {
    let capacity = request.record_count();
    let mut columns = SpanColumns::with_capacity(capacity);
    let mut rejections = Rejections::default();
    let mut scratch = String::new();
    let mut attributes = Vec::new();
    let mut by_rules = labels
        .spans_in_conversion()
        .then(|| SpanLabels::new(labeler));

    for resource_spans in request.try_resources() {
        let resource_spans = resource_spans?;
        let resource = ResourceInfo::new(resource_spans.resource)?;
        if let Some(by_rules) = &mut by_rules {
            by_rules.resource(resource_spans.resource.attributes);
        }
        for scope_spans in resource_spans.scope_spans.try_iter() {
            let scope_spans = scope_spans?;
            let scope = ScopeInfo::new(scope_spans.scope)?;
            for span in scope_spans.spans.try_iter() {
                let span = span?;
                // Read once, used for the promoted columns, the map and
                // the rules.
                span.attributes.read_raw(&mut attributes)?;
                span.events.validate()?;
                span.links.validate()?;
                if let Err(reason) = validate(&span) {
                    check_text(&attributes)?;
                    rejections.reject(|| format!("span {:?}: {reason}", span.name));
                    continue;
                }
                let version = resource.version.as_deref();
                let label = match &mut by_rules {
                    Some(by_rules) => {
                        let id =
                            by_rules.label(span.trace_id, span.start_time_unix_nano, &attributes);
                        (&**labeler.name(id), version)
                    }
                    // Without rules, its flag: a trace request's labels
                    // are by flag, and the index is not read.
                    None => labels.record(labeler, 0, span.trace_id, version),
                };
                columns.append(&span, &attributes, &resource, &scope, label, &mut scratch);
            }
        }
    }
    let mut converted = rejections.into_converted(columns.finish()?)?;
    converted.sightings = by_rules.map(SpanLabels::into_sightings).unwrap_or_default();
    Ok(converted)
}

fn validate(span: &Span<'_>) -> Result<(), String> {
    if !valid_trace_id(span.trace_id) {
        return Err(format!(
            "trace_id must be 16 bytes and not all zero, got {} bytes",
            span.trace_id.len()
        ));
    }
    if !valid_span_id(span.span_id) {
        return Err(format!(
            "span_id must be 8 bytes and not all zero, got {} bytes",
            span.span_id.len()
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Err(format!(
            "parent_span_id must be empty or 8 bytes, got {} bytes",
            span.parent_span_id.len()
        ));
    }
    for link in span.links.iter() {
        if !valid_trace_id(link.trace_id) || !valid_span_id(link.span_id) {
            return Err("a link has an invalid trace_id or span_id".to_owned());
        }
    }
    Ok(())
}

fn kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

fn status_name(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

/// Attributes promoted to their own columns, found in one pass.
#[derive(Default)]
struct Promoted<'a> {
    http_route: Option<RawValue<'a>>,
    http_method: Option<RawValue<'a>>,
    http_status_code: Option<RawValue<'a>>,
    rpc_method: Option<RawValue<'a>>,
    peer_service: Option<RawValue<'a>>,
}

impl<'a> Promoted<'a> {
    fn scan(attributes: &[RawKeyValue<'a>]) -> Self {
        let mut promoted = Promoted::default();
        for attribute in attributes {
            let kv = attribute.value;
            match attribute.key {
                b"http.route" => promoted.http_route = Some(kv),
                // The stable semantic conventions win over the legacy names.
                b"http.request.method" => promoted.http_method = Some(kv),
                b"http.method" => {
                    promoted.http_method.get_or_insert(kv);
                }
                b"http.response.status_code" => promoted.http_status_code = Some(kv),
                b"http.status_code" => {
                    promoted.http_status_code.get_or_insert(kv);
                }
                b"rpc.method" => promoted.rpc_method = Some(kv),
                b"peer.service" => promoted.peer_service = Some(kv),
                b"server.address" => {
                    promoted.peer_service.get_or_insert(kv);
                }
                _ => {}
            }
        }
        promoted
    }
}

/// The text of a promoted value. Text that is not UTF-8 is left null: the
/// attribute's column refuses the request when it is finished.
fn promoted_text<'a>(value: RawValue<'a>, scratch: &'a mut String) -> Option<&'a str> {
    match value {
        RawValue::Text(text) => std::str::from_utf8(text).ok(),
        RawValue::Other(value) => value_text(value, scratch),
    }
}

fn append_text(builder: &mut StringBuilder, value: Option<RawValue<'_>>, scratch: &mut String) {
    builder.append_option(value.and_then(|value| promoted_text(value, scratch)));
}

struct SpanColumns {
    time: TimestampNanosecondBuilder,
    end_time: TimestampNanosecondBuilder,
    duration_ns: Int64Builder,
    trace_id: IdColumn,
    span_id: IdColumn,
    parent_span_id: IdColumn,
    trace_state: StringBuilder,
    service: StringBuilder,
    name: StringBuilder,
    kind: StringBuilder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    http_route: StringBuilder,
    http_method: StringBuilder,
    http_status_code: Int32Builder,
    rpc_method: StringBuilder,
    peer_service: StringBuilder,
    events: EventColumns,
    links: LinkColumns,
    provenance: ProvenanceColumns,
}

impl SpanColumns {
    fn with_capacity(n: usize) -> Self {
        let text = |bytes_per_row| StringBuilder::with_capacity(n, n * bytes_per_row);
        SpanColumns {
            time: timestamp_builder(n),
            end_time: timestamp_builder(n),
            duration_ns: Int64Builder::with_capacity(n),
            trace_id: IdColumn::with_capacity(n, 16),
            span_id: IdColumn::with_capacity(n, 8),
            parent_span_id: IdColumn::with_capacity(n, 8),
            trace_state: text(0),
            service: text(16),
            name: text(24),
            kind: text(8),
            status_code: text(5),
            status_message: text(0),
            http_route: text(16),
            http_method: text(4),
            http_status_code: Int32Builder::with_capacity(n),
            rpc_method: text(0),
            peer_service: text(0),
            events: EventColumns::with_capacity(n),
            links: LinkColumns::with_capacity(n),
            provenance: ProvenanceColumns::with_capacity(n),
        }
    }

    fn append(
        &mut self,
        span: &Span<'_>,
        attributes: &[RawKeyValue<'_>],
        resource: &ResourceInfo<'_>,
        scope: &ScopeInfo<'_>,
        label: (&str, Option<&str>),
        scratch: &mut String,
    ) {
        let start = nanos(span.start_time_unix_nano);
        let end = nanos(span.end_time_unix_nano);
        self.time.append_value(start);
        self.end_time.append_value(end);
        self.duration_ns
            .append_value(end.saturating_sub(start).max(0));
        self.trace_id.append(span.trace_id);
        self.span_id.append(span.span_id);
        self.parent_span_id.append_or_null(span.parent_span_id);
        self.trace_state
            .append_option(Some(span.trace_state).filter(|s| !s.is_empty()));
        self.service.append_value(&resource.service);
        self.name.append_value(span.name);
        self.kind.append_value(kind_name(span.kind));
        let status = span.status;
        self.status_code
            .append_value(status_name(status.map(|s| s.code).unwrap_or_default()));
        self.status_message
            .append_option(status.map(|s| s.message).filter(|m| !m.is_empty()));

        let promoted = Promoted::scan(attributes);
        append_text(&mut self.http_route, promoted.http_route, scratch);
        append_text(&mut self.http_method, promoted.http_method, scratch);
        self.http_status_code
            .append_option(promoted.http_status_code.and_then(|value| match value {
                RawValue::Other(Value::Int(code)) => i32::try_from(code).ok(),
                // Some instrumentations send it as text.
                value => promoted_text(value, scratch).and_then(|code| code.parse().ok()),
            }));
        append_text(&mut self.rpc_method, promoted.rpc_method, scratch);
        append_text(&mut self.peer_service, promoted.peer_service, scratch);

        self.events.append(span.events, scratch);
        self.links.append(span.links, scratch);
        self.provenance
            .append(attributes.iter().copied(), resource, scope, label, scratch);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.end_time.finish()),
            Arc::new(self.duration_ns.finish()),
            Arc::new(self.trace_id.finish()?),
            Arc::new(self.span_id.finish()?),
            Arc::new(self.parent_span_id.finish()?),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.http_route.finish()),
            Arc::new(self.http_method.finish()),
            Arc::new(self.http_status_code.finish()),
            Arc::new(self.rpc_method.finish()),
            Arc::new(self.peer_service.finish()),
            self.events.finish()?,
            self.links.finish()?,
        ];
        columns.extend(self.provenance.finish()?);
        RecordBatch::try_new(spans::schema(), columns)
    }
}

/// The `events` column: a list of (time, name, attributes) per span.
struct EventColumns {
    offsets: ListOffsets,
    time: TimestampNanosecondBuilder,
    name: StringBuilder,
    attributes: AttributesBuilder,
}

impl EventColumns {
    fn with_capacity(n: usize) -> Self {
        EventColumns {
            offsets: ListOffsets::with_capacity(n),
            time: timestamp_builder(0),
            name: StringBuilder::new(),
            attributes: attributes_builder(0),
        }
    }

    fn append(&mut self, events: Repeated<'_, Event<'_>>, scratch: &mut String) {
        for event in events.iter() {
            self.time.append_value(nanos(event.time_unix_nano));
            self.name.append_value(event.name);
            append_attributes(
                &mut self.attributes,
                event.attributes.iter().map(RawKeyValue::from),
                scratch,
            );
            self.offsets.push_item();
        }
        self.offsets.close_row(true);
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let items = StructArray::try_new(
            spans::event_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.name.finish()),
                Arc::new(self.attributes.finish()?),
            ],
            None,
        )?;
        Ok(self.offsets.finish(spans::event_item(), Arc::new(items)))
    }
}

/// The `links` column: a list of (trace_id, span_id, trace_state,
/// attributes) per span.
struct LinkColumns {
    offsets: ListOffsets,
    trace_id: IdColumn,
    span_id: IdColumn,
    trace_state: StringBuilder,
    attributes: AttributesBuilder,
}

impl LinkColumns {
    fn with_capacity(n: usize) -> Self {
        LinkColumns {
            offsets: ListOffsets::with_capacity(n),
            trace_id: IdColumn::with_capacity(0, 16),
            span_id: IdColumn::with_capacity(0, 8),
            trace_state: StringBuilder::new(),
            attributes: attributes_builder(0),
        }
    }

    fn append(&mut self, links: Repeated<'_, Link<'_>>, scratch: &mut String) {
        for link in links.iter() {
            self.trace_id.append(link.trace_id);
            self.span_id.append(link.span_id);
            self.trace_state
                .append_option(Some(link.trace_state).filter(|s| !s.is_empty()));
            append_attributes(
                &mut self.attributes,
                link.attributes.iter().map(RawKeyValue::from),
                scratch,
            );
            self.offsets.push_item();
        }
        self.offsets.close_row(true);
    }

    fn finish(mut self) -> Result<ArrayRef, ArrowError> {
        let items = StructArray::try_new(
            spans::link_fields(),
            vec![
                Arc::new(self.trace_id.finish()?),
                Arc::new(self.span_id.finish()?),
                Arc::new(self.trace_state.finish()),
                Arc::new(self.attributes.finish()?),
            ],
            None,
        )?;
        Ok(self.offsets.finish(spans::link_item(), Arc::new(items)))
    }
}
