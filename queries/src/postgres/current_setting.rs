//! `current_setting(name)`: the server settings PostgreSQL clients read.
//! Grafana's table and column pickers ask for `search_path` to put the
//! tables a bare name finds first. The settings are fixed: the session is
//! shared and `SET` of anything but per-connection options is refused.

use std::sync::Arc;

use datafusion::arrow::array::{Array as _, ArrayRef, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The settings clients ask for, as PostgreSQL names and writes them.
const SETTINGS: &[(&str, &str)] = &[
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("timezone", "UTC"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("default_transaction_read_only", "on"),
    ("transaction_read_only", "on"),
    ("max_identifier_length", "63"),
];

fn setting(name: &str) -> Result<&'static str> {
    SETTINGS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            DataFusionError::Execution(format!("unrecognized configuration parameter \"{name}\""))
        })
}

/// The `current_setting(text) → text` function.
pub fn udf() -> ScalarUDF {
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let [name] = args else {
                return Err(DataFusionError::Plan(
                    "current_setting takes one argument: the setting's name".to_owned(),
                ));
            };
            let rows = match name {
                ColumnarValue::Array(array) => array.len(),
                ColumnarValue::Scalar(_) => 1,
            };
            let names = cast(&name.to_array(rows)?, &DataType::Utf8)?;
            let names = names
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| DataFusionError::Internal("names not text".to_owned()))?;
            let values = names
                .iter()
                .map(|name| name.map(setting).transpose())
                .collect::<Result<StringArray>>()?;
            let values: ArrayRef = Arc::new(values);
            Ok(match name {
                ColumnarValue::Scalar(_) => ColumnarValue::Scalar(
                    datafusion::scalar::ScalarValue::try_from_array(&values, 0)?,
                ),
                ColumnarValue::Array(_) => ColumnarValue::Array(values),
            })
        }),
    )
}
