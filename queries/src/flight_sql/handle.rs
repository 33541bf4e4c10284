//! Prepared statement handles.
//!
//! The server keeps no state per prepared statement: the handle a client
//! gets back carries the statement's SQL and, once parameters are bound
//! (DoPut), their values as an Arrow IPC stream of one row. A handle tells
//! the client nothing it did not send, and a restart or another instance
//! behind a load balancer can run it.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use datafusion::scalar::ScalarValue;
use prost::Message as _;
use tonic::Status;

/// What a prepared statement handle holds.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PreparedHandle {
    /// The statement, with `?` already numbered into `$n`.
    #[prost(string, tag = "1")]
    pub sql: String,
    /// The bound parameter row as an Arrow IPC stream; empty when unbound.
    #[prost(bytes = "vec", tag = "2")]
    pub parameters: Vec<u8>,
}

impl PreparedHandle {
    /// The handle as the client sees it.
    pub fn encode(&self) -> Bytes {
        self.encode_to_vec().into()
    }

    /// A handle a client sent back.
    pub fn decode(bytes: &[u8]) -> Result<PreparedHandle, Status> {
        <PreparedHandle as prost::Message>::decode(bytes)
            .map_err(|_| Status::invalid_argument("not a prepared statement handle of this server"))
    }

    /// Binds the parameters of `batches` (one row in all: queries run once).
    pub fn bind(self, batches: &[RecordBatch]) -> Result<PreparedHandle, Status> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
            return Ok(PreparedHandle {
                parameters: Vec::new(),
                ..self
            });
        };
        if rows > 1 {
            return Err(Status::invalid_argument(format!(
                "{rows} parameter rows were bound; a query takes one row of parameters"
            )));
        }
        let mut parameters = Vec::new();
        let mut writer = StreamWriter::try_new(&mut parameters, &batch.schema())
            .map_err(|e| Status::invalid_argument(format!("cannot encode the parameters: {e}")))?;
        writer
            .write(batch)
            .and_then(|()| writer.finish())
            .map_err(|e| Status::invalid_argument(format!("cannot encode the parameters: {e}")))?;
        drop(writer);
        Ok(PreparedHandle { parameters, ..self })
    }

    /// The bound values, `$1` first.
    pub fn parameter_values(&self) -> Result<Vec<ScalarValue>, Status> {
        if self.parameters.is_empty() {
            return Ok(Vec::new());
        }
        let bad = |e: &dyn std::fmt::Display| {
            Status::invalid_argument(format!("the handle's parameters do not decode: {e}"))
        };
        let reader =
            StreamReader::try_new(self.parameters.as_slice(), None).map_err(|e| bad(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(&e))?;
            if batch.num_rows() == 0 {
                continue;
            }
            return batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, 0).map_err(|e| bad(&e)))
                .collect();
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn a_handle_carries_its_sql_and_bound_row() {
        let handle = PreparedHandle {
            sql: "SELECT $1, $2".into(),
            parameters: Vec::new(),
        };
        let batch = RecordBatch::try_from_iter([
            (
                "0",
                Arc::new(StringArray::from(vec!["canary"])) as arrow::array::ArrayRef,
            ),
            ("1", Arc::new(Int64Array::from(vec![7]))),
        ])
        .unwrap();
        let bound = handle.bind(&[batch]).unwrap();
        let decoded = PreparedHandle::decode(&bound.encode()).unwrap();
        assert_eq!(decoded.sql, "SELECT $1, $2");
        assert_eq!(
            decoded.parameter_values().unwrap(),
            vec![ScalarValue::from("canary"), ScalarValue::Int64(Some(7))]
        );
    }

    #[test]
    fn more_than_one_parameter_row_is_refused() {
        let batch = RecordBatch::try_from_iter([(
            "0",
            Arc::new(Int64Array::from(vec![1, 2])) as arrow::array::ArrayRef,
        )])
        .unwrap();
        let handle = PreparedHandle {
            sql: "SELECT $1".into(),
            parameters: Vec::new(),
        };
        let status = handle.bind(&[batch]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn garbage_is_not_a_handle() {
        let status = PreparedHandle::decode(b"\xff\xff\xff").unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
