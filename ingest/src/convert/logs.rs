//! `ExportLogsServiceRequest` → the `logs` table.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{ArrayRef, Int32Builder, StringBuilder, TimestampNanosecondBuilder};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use grayscope_core::schema::logs;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::attributes::value_text;
use super::columns::{ProvenanceColumns, hex, timestamp_builder, valid_span_id, valid_trace_id};
use super::resource::{ResourceInfo, ScopeInfo};
use super::{Converted, Rejections, nanos};
use crate::label::{Labeler, Labels};

/// Converts a logs export request into a `logs` batch; `labels` are the
/// request's labels from [`Labeler::label_logs`].
pub fn convert_logs(
    request: &ExportLogsServiceRequest,
    labeler: &Labeler,
    labels: &Labels,
) -> Result<Converted, ArrowError> {
    let capacity = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    let received = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut columns = LogColumns::with_capacity(capacity);
    let mut rejections = Rejections::default();
    let mut scratch = String::new();
    let mut index = 0;

    for resource_logs in &request.resource_logs {
        let resource = ResourceInfo::new(resource_logs.resource.as_ref());
        for scope_logs in &resource_logs.scope_logs {
            let scope = ScopeInfo::new(scope_logs.scope.as_ref());
            for record in &scope_logs.log_records {
                index += 1;
                if let Err(reason) = validate(record) {
                    rejections.reject(|| format!("log record: {reason}"));
                    continue;
                }
                let label = labels.record(labeler, index - 1, resource.version.as_deref());
                columns.append(record, received, &resource, &scope, label, &mut scratch);
            }
        }
    }
    Ok(rejections.into_converted(columns.finish()?))
}

fn validate(record: &LogRecord) -> Result<(), String> {
    // Ids are optional on logs, but when present they must be well formed.
    if !record.trace_id.is_empty() && !valid_trace_id(&record.trace_id) {
        return Err(format!(
            "trace_id must be empty or 16 bytes and not all zero, got {} bytes",
            record.trace_id.len()
        ));
    }
    if !record.span_id.is_empty() && !valid_span_id(&record.span_id) {
        return Err(format!(
            "span_id must be empty or 8 bytes and not all zero, got {} bytes",
            record.span_id.len()
        ));
    }
    Ok(())
}

struct LogColumns {
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    service: StringBuilder,
    event_name: StringBuilder,
    template_id: StringBuilder,
    template: StringBuilder,
    provenance: ProvenanceColumns,
}

impl LogColumns {
    fn with_capacity(n: usize) -> Self {
        let text = |bytes_per_row| StringBuilder::with_capacity(n, n * bytes_per_row);
        LogColumns {
            time: timestamp_builder(n),
            observed_time: timestamp_builder(n),
            trace_id: text(32),
            span_id: text(16),
            severity_number: Int32Builder::with_capacity(n),
            severity_text: text(5),
            body: text(96),
            service: text(16),
            event_name: text(0),
            template_id: text(0),
            template: text(0),
            provenance: ProvenanceColumns::with_capacity(n),
        }
    }

    fn append(
        &mut self,
        record: &LogRecord,
        received: u64,
        resource: &ResourceInfo<'_>,
        scope: &ScopeInfo<'_>,
        label: (&str, Option<&str>),
        scratch: &mut String,
    ) {
        let mut id = [0u8; 32];
        let time = [
            record.time_unix_nano,
            record.observed_time_unix_nano,
            received,
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
        if record.trace_id.is_empty() {
            self.trace_id.append_null();
        } else {
            self.trace_id.append_value(hex(&record.trace_id, &mut id));
        }
        if record.span_id.is_empty() {
            self.span_id.append_null();
        } else {
            self.span_id.append_value(hex(&record.span_id, &mut id));
        }
        self.severity_number.append_value(record.severity_number);
        self.severity_text
            .append_option(Some(record.severity_text.as_str()).filter(|s| !s.is_empty()));
        self.body
            .append_option(value_text(record.body.as_ref(), scratch));
        self.service.append_value(&resource.service);
        self.event_name
            .append_option(Some(record.event_name.as_str()).filter(|s| !s.is_empty()));
        self.template_id.append_null();
        self.template.append_null();
        self.provenance
            .append(&record.attributes, resource, scope, label, scratch);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.observed_time.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.service.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.template_id.finish()),
            Arc::new(self.template.finish()),
        ];
        columns.extend(self.provenance.finish());
        RecordBatch::try_new(logs::schema(), columns)
    }
}
