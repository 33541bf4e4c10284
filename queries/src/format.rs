//! Query results on the wire: JSON, CSV or Arrow IPC stream.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Serialize;

use crate::engine::QueryResult;
use crate::error::{Error, Result};

/// A result encoding, chosen by the client's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `application/json`: `{"columns": [...], "rows": [{..}, ..]}`.
    Json,
    /// `text/csv`: a header line, then one line per row; nested values
    /// (maps, lists) rendered as text.
    Csv,
    /// `application/vnd.apache.arrow.stream`: the Arrow IPC stream format,
    /// schema included.
    ArrowStream,
}

impl OutputFormat {
    /// The content type of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Json => "application/json",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::ArrowStream => "application/vnd.apache.arrow.stream",
        }
    }

    /// The first format an `Accept` header names that we serve; JSON when
    /// it names none (or is absent).
    pub fn from_accept(accept: &str) -> OutputFormat {
        for media in accept.split(',') {
            let essence = media.split(';').next().unwrap_or_default().trim();
            match essence.to_ascii_lowercase().as_str() {
                "text/csv" => return OutputFormat::Csv,
                "application/vnd.apache.arrow.stream" => return OutputFormat::ArrowStream,
                "application/json" => return OutputFormat::Json,
                _ => {}
            }
        }
        OutputFormat::Json
    }

    /// Encodes a whole result.
    pub fn encode(self, result: &QueryResult) -> Result<Vec<u8>> {
        let encoded = match self {
            OutputFormat::Json => encode_json(result),
            OutputFormat::Csv => encode_csv(result),
            OutputFormat::ArrowStream => encode_arrow(result),
        };
        encoded.map_err(|source| Error::Encode {
            format: match self {
                OutputFormat::Json => "JSON",
                OutputFormat::Csv => "CSV",
                OutputFormat::ArrowStream => "Arrow IPC",
            },
            source,
        })
    }
}

#[derive(Serialize)]
struct JsonColumn<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    data_type: String,
}

fn encode_json(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let columns: Vec<JsonColumn<'_>> = result
        .schema
        .fields()
        .iter()
        .map(|f| JsonColumn {
            name: f.name(),
            data_type: f.data_type().to_string(),
        })
        .collect();
    let mut rows = Vec::new();
    {
        let mut writer = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::JsonArray>(&mut rows);
        for batch in &result.batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    if rows.is_empty() {
        rows.extend_from_slice(b"[]");
    }
    let mut out = Vec::with_capacity(rows.len() + 256);
    out.extend_from_slice(b"{\"columns\":");
    serde_json::to_writer(&mut out, &columns).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    out.extend_from_slice(b",\"rows\":");
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!(",\"row_count\":{}}}", result.num_rows()).as_bytes());
    Ok(out)
}

fn encode_csv(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let schema = Arc::new(Schema::new(
        result
            .schema
            .fields()
            .iter()
            .map(|f| {
                if is_nested(f.data_type()) {
                    Field::new(f.name(), DataType::Utf8, true)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect::<Vec<_>>(),
    ));
    let mut out = Vec::new();
    {
        let mut writer = arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        if result.batches.is_empty() {
            writer.write(&RecordBatch::new_empty(schema.clone()))?;
        }
        for batch in &result.batches {
            let columns = batch
                .columns()
                .iter()
                .map(|column| {
                    if is_nested(column.data_type()) {
                        render_as_text(column)
                    } else {
                        Ok(column.clone())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        }
    }
    Ok(out)
}

fn is_nested(data_type: &DataType) -> bool {
    data_type.is_nested() || matches!(data_type, DataType::Map(_, _))
}

/// Renders a column as text, as the pretty printer shows it.
pub(crate) fn render_as_text(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let options = FormatOptions::default();
    let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
    let mut builder = StringBuilder::with_capacity(column.len(), column.len() * 16);
    for row in 0..column.len() {
        if column.is_null(row) {
            builder.append_null();
        } else {
            builder.append_value(formatter.value(row).to_string());
        }
    }
    Ok(Arc::new(builder.finish()))
}

fn encode_arrow(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)?;
        for batch in &result.batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, MapBuilder, StringArray};

    fn sample() -> QueryResult {
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        map.keys().append_value("k");
        map.values().append_value("v");
        map.append(true).unwrap();
        map.append(true).unwrap();
        let map = map.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("attrs", map.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("a,b"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(map),
            ],
        )
        .unwrap();
        QueryResult {
            schema,
            batches: vec![batch],
        }
    }

    #[test]
    fn accept_headers_pick_the_format() {
        assert_eq!(OutputFormat::from_accept("text/csv"), OutputFormat::Csv);
        assert_eq!(
            OutputFormat::from_accept("application/vnd.apache.arrow.stream, */*"),
            OutputFormat::ArrowStream
        );
        assert_eq!(OutputFormat::from_accept("*/*"), OutputFormat::Json);
        assert_eq!(OutputFormat::from_accept(""), OutputFormat::Json);
    }

    #[test]
    fn json_has_columns_rows_and_explicit_nulls() {
        let json: serde_json::Value =
            serde_json::from_slice(&OutputFormat::Json.encode(&sample()).unwrap()).unwrap();
        assert_eq!(json["columns"][0]["name"], "name");
        assert_eq!(json["row_count"], 2);
        assert_eq!(json["rows"][0]["name"], "a,b");
        assert_eq!(json["rows"][1]["name"], serde_json::Value::Null);
        assert_eq!(json["rows"][1]["n"], 2);
        assert_eq!(json["rows"][0]["attrs"]["k"], "v");
    }

    #[test]
    fn csv_quotes_and_renders_nested_values() {
        let csv = String::from_utf8(OutputFormat::Csv.encode(&sample()).unwrap()).unwrap();
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(lines[0], "name,n,attrs");
        assert_eq!(lines[1], "\"a,b\",1,{k: v}");
        assert_eq!(lines[2], ",2,{}");
    }

    #[test]
    fn arrow_stream_round_trips() {
        let bytes = OutputFormat::ArrowStream.encode(&sample()).unwrap();
        let reader = arrow::ipc::reader::StreamReader::try_new(&bytes[..], None).unwrap();
        let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(batches[0], sample().batches[0]);
    }

    #[test]
    fn empty_results_keep_their_columns() {
        let mut result = sample();
        result.batches.clear();
        let csv = String::from_utf8(OutputFormat::Csv.encode(&result).unwrap()).unwrap();
        assert_eq!(csv.trim(), "name,n,attrs");
        let json: serde_json::Value =
            serde_json::from_slice(&OutputFormat::Json.encode(&result).unwrap()).unwrap();
        assert_eq!(json["rows"], serde_json::json!([]));
        assert_eq!(json["columns"].as_array().unwrap().len(), 3);
    }
}
