//! `ExportLogsServiceRequest` (read in place) → the `logs` table.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, Int32Builder, ListBuilder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use grayscope_core::schema::logs;
use grayscope_patterns::{RuleHits, TemplateId};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as ProtoValue};

use super::attributes::{check_text, value_text};
use super::columns::{
    IdColumn, ProvenanceColumns, hex, timestamp_builder, valid_span_id, valid_trace_id,
};
use super::resource::{ResourceInfo, ScopeInfo};
use super::{ConvertError, Converted, Rejections, nanos};
use crate::label::{Labeler, Labels};
use crate::mining::LogMining;
use crate::wire::{LogRecord, LogsRequest, RawKeyValue, Value, WireError};

/// Converts a logs export request into a `logs` batch; `labels` are the
/// request's labels from [`Labeler::label_logs`]. With `mining`, each body
/// (a string as sent, any other value as the JSON text of the `body`
/// column) gets its template and the rules it matches; without, the
/// template columns are null and the rule lists empty.
pub fn convert_logs(
    request: &LogsRequest,
    labeler: &Labeler,
    labels: &Labels,
    mining: Option<&LogMining>,
) -> Result<Converted, ConvertError> {
    let capacity = request.record_count();
    let received = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut columns = LogColumns::with_capacity(capacity, mining, received);
    let mut rejections = Rejections::default();
    let mut scratch = String::new();
    let mut attributes = Vec::new();
    let mut index = 0;

    for resource_logs in request.try_resources() {
        let resource_logs = resource_logs?;
        let resource = ResourceInfo::new(resource_logs.resource)?;
        for scope_logs in resource_logs.scope_logs.try_iter() {
            let scope_logs = scope_logs?;
            let scope = ScopeInfo::new(scope_logs.scope)?;
            for record in scope_logs.log_records.try_iter() {
                let record = record?;
                record.attributes.read_raw(&mut attributes)?;
                // A nested body is decoded (and so checked) once, here.
                let nested = nested_body(record.body)?;
                let record = LogRecord {
                    body: nested
                        .as_ref()
                        .map_or(record.body, |body| Value::from_proto(Some(body))),
                    ..record
                };
                index += 1;
                if let Err(reason) = validate(&record) {
                    check_text(&attributes)?;
                    rejections.reject(|| format!("log record: {reason}"));
                    continue;
                }
                let label = labels.record(
                    labeler,
                    index - 1,
                    record.trace_id,
                    resource.version.as_deref(),
                );
                columns.append(&record, &attributes, &resource, &scope, label, &mut scratch);
            }
        }
    }
    Ok(rejections.into_converted(columns.finish()?)?)
}

fn validate(record: &LogRecord<'_>) -> Result<(), String> {
    // Ids are optional on logs, but when present they must be well formed.
    if !record.trace_id.is_empty() && !valid_trace_id(record.trace_id) {
        return Err(format!(
            "trace_id must be empty or 16 bytes and not all zero, got {} bytes",
            record.trace_id.len()
        ));
    }
    if !record.span_id.is_empty() && !valid_span_id(record.span_id) {
        return Err(format!(
            "span_id must be empty or 8 bytes and not all zero, got {} bytes",
            record.span_id.len()
        ));
    }
    Ok(())
}

struct LogColumns<'m> {
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    trace_id: IdColumn,
    span_id: IdColumn,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    service: StringBuilder,
    event_name: StringBuilder,
    template_id: StringBuilder,
    template: StringBuilder,
    rules: ListBuilder<StringBuilder>,
    provenance: ProvenanceColumns,
    /// The miner, and the buffer for the rules each body matches.
    mining: Option<(&'m LogMining, RuleHits)>,
    /// When the request arrived: the time of records that carry none.
    received: u64,
}

impl<'m> LogColumns<'m> {
    fn with_capacity(n: usize, mining: Option<&'m LogMining>, received: u64) -> Self {
        let text = |bytes_per_row| StringBuilder::with_capacity(n, n * bytes_per_row);
        LogColumns {
            time: timestamp_builder(n),
            observed_time: timestamp_builder(n),
            trace_id: IdColumn::with_capacity(n, 16),
            span_id: IdColumn::with_capacity(n, 8),
            severity_number: Int32Builder::with_capacity(n),
            severity_text: text(5),
            body: text(96),
            service: text(16),
            event_name: text(0),
            template_id: text(16),
            template: text(64),
            rules: ListBuilder::with_capacity(StringBuilder::new(), n).with_field(Field::new(
                logs::RULES_ITEM,
                DataType::Utf8,
                false,
            )),
            provenance: ProvenanceColumns::with_capacity(n),
            mining: mining.map(|m| (m, m.rule_hits())),
            received,
        }
    }

    fn append(
        &mut self,
        record: &LogRecord<'_>,
        attributes: &[RawKeyValue<'_>],
        resource: &ResourceInfo<'_>,
        scope: &ScopeInfo<'_>,
        label: (&str, Option<&str>),
        scratch: &mut String,
    ) {
        let mut id = [0u8; 32];
        let time = [
            record.time_unix_nano,
            record.observed_time_unix_nano,
            self.received,
        ]
        .into_iter()
        .find(|t| *t != 0)
        .unwrap_or_default();
        self.time.append_value(nanos(time));
        self.observed_time.append_option(
            Some(record.observed_time_unix_nano)
                .filter(|t| *t != 0)
                .map(nanos),
        );
        self.trace_id.append_or_null(record.trace_id);
        self.span_id.append_or_null(record.span_id);
        self.severity_number.append_value(record.severity_number);
        self.severity_text
            .append_option(Some(record.severity_text).filter(|s| !s.is_empty()));
        let body = value_text(record.body, scratch);
        self.body.append_option(body);
        match (body, &mut self.mining) {
            (Some(body), Some((mining, hits))) => {
                let mined = mining.mine(body, time, hits);
                self.template_id
                    .append_value(template_id_text(mined.template_id, &mut id));
                self.template.append_value(&*mined.template);
                let names = self.rules.values();
                for name in mining.rules().names_of(hits) {
                    names.append_value(name);
                }
            }
            _ => {
                self.template_id.append_null();
                self.template.append_null();
            }
        }
        self.rules.append(true);
        self.service.append_value(&resource.service);
        self.event_name
            .append_option(Some(record.event_name).filter(|s| !s.is_empty()));
        self.provenance
            .append(attributes.iter().copied(), resource, scope, label, scratch);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.observed_time.finish()),
            Arc::new(self.trace_id.finish()?),
            Arc::new(self.span_id.finish()?),
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.template_id.finish()),
            Arc::new(self.template.finish()),
            Arc::new(self.rules.finish()),
        ];
        columns.extend(self.provenance.finish()?);
        RecordBatch::try_new(logs::schema(), columns)
    }
}

/// A key-value list or array body, decoded, with its key-value lists (at
/// any depth) in key order; `None` for other bodies, an error for one that
/// does not decode. OTLP key-value lists
/// are maps, and SDKs send them in their map's order, which for a hash map
/// differs from process to process: sorted, one event has one `body` text,
/// hence one template, on every instance. Decoders bound the nesting depth,
/// so the recursion is bounded.
fn nested_body(body: Value<'_>) -> Result<Option<AnyValue>, WireError> {
    let Some(nested) = body.try_nested()? else {
        return Ok(None);
    };
    let mut body = AnyValue {
        value: Some(nested.into_owned()),
    };
    sort_kvlists(&mut body);
    Ok(Some(body))
}

fn sort_kvlists(value: &mut AnyValue) {
    match &mut value.value {
        Some(ProtoValue::KvlistValue(list)) => {
            // Stable: repeated keys keep their order.
            list.values.sort_by(|a, b| a.key.cmp(&b.key));
            for kv in &mut list.values {
                if let Some(value) = &mut kv.value {
                    sort_kvlists(value);
                }
            }
        }
        Some(ProtoValue::ArrayValue(array)) => array.values.iter_mut().for_each(sort_kvlists),
        _ => {}
    }
}

/// A template id as its 16 lowercase hex digits, written into `buf`
/// (what `TemplateId`'s `Display` writes, without allocating).
fn template_id_text(id: TemplateId, buf: &mut [u8; 32]) -> &str {
    hex(&id.as_u64().to_be_bytes(), buf)
}
