//! What the write-ahead log keeps of a protobuf span export: the request as
//! it arrived and the labels ingest gave its rows, instead of the converted
//! batch (`Store::append_source`).
//!
//! The request is about half the bytes of the batch's Arrow IPC and is
//! already in memory, so logging it saves the encoding and half of the
//! disk traffic of every acknowledged span. Recovery converts it again
//! ([`SourceRebuild`]): conversion is a pure function of the request's
//! bytes, except for the labels, which depend on the `[[cohorts]]` rules of
//! the moment; those are logged beside the request, so a replay after a
//! restart with other rules gives back exactly the rows that were
//! acknowledged.
//!
//! ```text
//! source  = header labels body
//! header  (8 bytes):
//!    0  version        1  1
//!    1  signal         1  1 traces
//!    2  encoding       1  0 protobuf
//!    3  reserved       1  0
//!    4  labels_len     4  length of `labels`, little-endian
//! labels  = run*, one per stretch of consecutive rows with the same labels
//! run     = rows (u32) cohort_len (u16) cohort version_len (u16, 0xFFFF: null) version
//! body    = the export request's protobuf, as received
//! ```
//!
//! Log records and metrics are logged as Arrow IPC: their conversion also
//! depends on the trace join, the template miner's state and the time of
//! arrival, which a restart does not keep.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use arrow::record_batch::RecordBatch;
use bytes::{BufMut as _, Bytes, BytesMut};
use grayscope_core::Table;
use grayscope_store::wal::Rebuild;

use crate::convert::DecodedRequest;
use crate::decode::Encoding;
use crate::label::{Labeler, Labels};
use crate::signal::Signal;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 8;
const TRACES: u8 = 1;
const PROTOBUF: u8 = 0;
const NULL_VERSION: u16 = u16::MAX;

/// The log's source for `batch`, converted from the protobuf trace export
/// `body`: a small header with the rows' labels, then `body` itself (not
/// copied). `None` when the labels do not fit the format (a cohort or
/// version of 64 KiB or more); the batch is then logged as IPC.
pub(crate) fn span_source(batch: &RecordBatch, body: Bytes) -> Option<Vec<Bytes>> {
    let cohorts = string_column(batch, "cohort")?;
    let versions = string_column(batch, "version")?;
    let mut labels = BytesMut::with_capacity(64);
    let mut row = 0;
    while row < batch.num_rows() {
        let cohort = cohorts.value(row);
        let version = versions.is_valid(row).then(|| versions.value(row));
        let mut end = row + 1;
        while end < batch.num_rows()
            && cohorts.value(end) == cohort
            && versions.is_valid(end) == version.is_some()
            && version.is_none_or(|v| versions.value(end) == v)
        {
            end += 1;
        }
        labels.put_u32_le(u32::try_from(end - row).ok()?);
        put_text(&mut labels, Some(cohort))?;
        put_text(&mut labels, version)?;
        row = end;
    }
    let mut header = BytesMut::with_capacity(HEADER_LEN + labels.len());
    header.put_slice(&[VERSION, TRACES, PROTOBUF, 0]);
    header.put_u32_le(u32::try_from(labels.len()).ok()?);
    header.put_slice(&labels);
    Some(vec![header.freeze(), body])
}

/// Rebuilds the batches of logged sources during recovery, converting
/// with `labeler` and then restoring the logged labels.
#[derive(Debug, Clone)]
pub struct SourceRebuild {
    labeler: Labeler,
}

impl SourceRebuild {
    /// A rebuild that converts with `labeler` (the server's, from its
    /// configuration; its rules do not change the rebuilt rows).
    pub fn new(labeler: Labeler) -> SourceRebuild {
        SourceRebuild { labeler }
    }

    /// As the store takes it.
    pub fn shared(labeler: Labeler) -> Arc<dyn Rebuild> {
        Arc::new(SourceRebuild::new(labeler))
    }
}

impl Rebuild for SourceRebuild {
    fn rebuild(&self, table: Table, source: &[u8]) -> Result<RecordBatch, String> {
        let header = source
            .get(..HEADER_LEN)
            .ok_or("a logged source shorter than its header")?;
        if header[0] != VERSION {
            return Err(format!("logged source version {} is not 1", header[0]));
        }
        if header[1] != TRACES || header[2] != PROTOBUF || table != Table::Spans {
            return Err(format!(
                "a logged source of signal {} and encoding {} for table {table}",
                header[1], header[2]
            ));
        }
        let labels_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let labels = source
            .get(HEADER_LEN..HEADER_LEN + labels_len)
            .ok_or("a logged source cut inside its labels")?;
        let body = Bytes::copy_from_slice(&source[HEADER_LEN + labels_len..]);

        let request = DecodedRequest::decode(Signal::Traces, Encoding::Protobuf, body)
            .map_err(|error| error.to_string())?;
        let labels_now = Labels::of(&request, &self.labeler);
        let converted = request
            .convert(&self.labeler, &labels_now, None)
            .map_err(|error| error.to_string())?;
        restore_labels(converted.batch, labels)
    }
}

/// `batch` with its `cohort` and `version` columns rebuilt from the logged
/// label runs.
fn restore_labels(batch: RecordBatch, mut labels: &[u8]) -> Result<RecordBatch, String> {
    let rows = batch.num_rows();
    let mut cohorts = StringBuilder::with_capacity(rows, rows * 8);
    let mut versions = StringBuilder::with_capacity(rows, rows * 8);
    let mut seen = 0usize;
    while !labels.is_empty() {
        let run = take(&mut labels, 4)?;
        let run = u32::from_le_bytes([run[0], run[1], run[2], run[3]]) as usize;
        let cohort = take_text(&mut labels)?.ok_or("a logged label run without a cohort")?;
        let version = take_text(&mut labels)?;
        seen += run;
        if seen > rows {
            break;
        }
        for _ in 0..run {
            cohorts.append_value(cohort);
            versions.append_option(version);
        }
    }
    if seen != rows {
        return Err(format!(
            "the logged labels cover {seen} rows, the request converts to {rows}"
        ));
    }
    let schema = batch.schema();
    let mut columns = batch.columns().to_vec();
    for (name, column) in [("cohort", cohorts.finish()), ("version", versions.finish())] {
        let at = schema.index_of(name).map_err(|error| error.to_string())?;
        columns[at] = Arc::new(column) as ArrayRef;
    }
    RecordBatch::try_new(schema, columns).map_err(|error| error.to_string())
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch
        .column_by_name(name)?
        .as_any()
        .downcast_ref::<StringArray>()
}

/// Appends a length-prefixed text; `None` if it is too long for the format.
fn put_text(out: &mut BytesMut, text: Option<&str>) -> Option<()> {
    match text {
        None => out.put_u16_le(NULL_VERSION),
        Some(text) => {
            let len = u16::try_from(text.len())
                .ok()
                .filter(|&len| len != NULL_VERSION)?;
            out.put_u16_le(len);
            out.put_slice(text.as_bytes());
        }
    }
    Some(())
}

fn take<'a>(input: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if input.len() < len {
        return Err("logged labels cut short".to_owned());
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

fn take_text<'a>(input: &mut &'a [u8]) -> Result<Option<&'a str>, String> {
    let len = take(input, 2)?;
    let len = u16::from_le_bytes([len[0], len[1]]);
    if len == NULL_VERSION {
        return Ok(None);
    }
    let text = take(input, usize::from(len))?;
    std::str::from_utf8(text)
        .map(Some)
        .map_err(|_| "a logged label is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use grayscope_core::config::CohortConfig;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    use super::*;
    use crate::pipeline::decode_and_convert;

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_owned())),
            }),
            ..Default::default()
        }
    }

    fn span(trace_last: u8, flag: u8, region: &str) -> Span {
        let mut trace_id = vec![7u8; 16];
        trace_id[13] = trace_last;
        // The gray flag is the last two bytes.
        trace_id[14] = 0;
        trace_id[15] = flag;
        Span {
            trace_id,
            span_id: vec![trace_last.max(1); 8],
            name: format!("GET /{region}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(trace_last),
            end_time_unix_nano: 1_700_000_000_002_000_000,
            attributes: vec![text("region", region)],
            ..Default::default()
        }
    }

    fn resource(service: &str, version: Option<&str>, spans: Vec<Span>) -> ResourceSpans {
        let mut attributes = vec![text("service.name", service)];
        attributes.extend(version.map(|v| text("service.version", v)));
        ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Rows labelled by a rule, by the gray flag and by neither, with and
    /// without a version, and one span rejected for its short trace id.
    fn request() -> Bytes {
        let mut rejected = span(9, 0, "eu");
        rejected.trace_id.truncate(3);
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                resource(
                    "checkout",
                    Some("2.1.0"),
                    vec![span(1, 0, "eu"), span(2, 0, "eu"), span(3, 2, "us")],
                ),
                resource(
                    "cart",
                    None,
                    vec![span(4, 0, "us"), rejected, span(5, 0, "eu")],
                ),
            ],
        };
        Bytes::from(request.encode_to_vec())
    }

    fn labeler_with_eu_rule() -> Labeler {
        let rule = CohortConfig::new("gray-eu", r#"region == "eu""#).unwrap();
        Labeler::with_rules(&[rule], &BTreeMap::new())
    }

    fn converted(body: &Bytes) -> RecordBatch {
        let labeler = labeler_with_eu_rule();
        let converted = decode_and_convert(
            Signal::Traces,
            Encoding::Protobuf,
            body.clone(),
            &labeler,
            None,
        )
        .unwrap();
        assert_eq!(converted.rejected, 1);
        converted.batch
    }

    fn concat(pieces: &[Bytes]) -> Vec<u8> {
        pieces.concat()
    }

    #[test]
    fn a_span_source_rebuilds_the_same_rows_under_other_rules() {
        let body = request();
        let batch = converted(&body);
        let cohorts = string_column(&batch, "cohort").unwrap();
        let cohorts: Vec<&str> = cohorts.iter().map(Option::unwrap).collect();
        assert_eq!(
            cohorts,
            ["gray-eu", "gray-eu", "canary", "baseline", "gray-eu"]
        );

        let source = span_source(&batch, body.clone()).unwrap();
        assert_eq!(source[1], body, "the request is logged as it came");
        // Restarted without the rule: the logged labels still win.
        let rebuild = SourceRebuild::new(Labeler::new());
        let rebuilt = rebuild.rebuild(Table::Spans, &concat(&source)).unwrap();
        assert_eq!(rebuilt, batch);
    }

    #[test]
    fn a_damaged_or_foreign_source_is_refused_with_a_reason() {
        let body = request();
        let batch = converted(&body);
        let source = concat(&span_source(&batch, body).unwrap());
        let rebuild = SourceRebuild::new(labeler_with_eu_rule());
        let refused = |bytes: &[u8], table: Table| rebuild.rebuild(table, bytes).unwrap_err();

        assert!(refused(&source[..5], Table::Spans).contains("header"));
        assert!(refused(&source, Table::Logs).contains("table logs"));
        let mut newer = source.clone();
        newer[0] = 2;
        assert!(refused(&newer, Table::Spans).contains("version 2"));
        // Labels for one row fewer than the request converts to.
        let mut short = source.clone();
        short[HEADER_LEN] -= 1;
        assert!(
            refused(&short, Table::Spans).contains("cover"),
            "{}",
            refused(&short, Table::Spans)
        );
        // Labels cut inside.
        let mut cut = source.clone();
        cut[4] = 3;
        assert!(rebuild.rebuild(Table::Spans, &cut).is_err());
    }

    #[test]
    fn an_empty_batch_logs_no_label_runs() {
        let empty = RecordBatch::new_empty(Table::Spans.schema());
        let source = span_source(&empty, Bytes::new()).unwrap();
        assert_eq!(source[0].len(), HEADER_LEN);
    }
}
