//! OTLP attribute values → the text form kept in `Map<Utf8, Utf8>` columns.
//!
//! Strings are kept as sent; ints in decimal; doubles in Rust's shortest
//! round-trip form; booleans as `true` / `false`; bytes in base64 (as OTLP
//! JSON writes them); arrays and key-value lists as JSON. An empty value is
//! a null map value.

use std::fmt::Write as _;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::any_value::Value as ProtoValue;

pub(crate) use super::attribute_column::{AttributeBlock, AttributesBuilder};
use crate::wire::{Attributes, KeyValue, Message as _, RawKeyValue, RawValue, Value, WireError};

/// Entries reserved per row of an attribute column.
const ENTRIES_PER_ROW: usize = 8;

/// A builder for `capacity` rows of attribute maps.
pub(crate) fn attributes_builder(capacity: usize) -> AttributesBuilder {
    AttributesBuilder::with_capacity(capacity, ENTRIES_PER_ROW)
}

/// Appends one map row holding `attributes`.
pub(crate) fn append_attributes<'a>(
    builder: &mut AttributesBuilder,
    attributes: impl IntoIterator<Item = RawKeyValue<'a>>,
    scratch: &mut String,
) {
    for attribute in attributes {
        let value = match attribute.value {
            RawValue::Text(text) => Some(text),
            RawValue::Other(value) => value_text(value, scratch).map(str::as_bytes),
        };
        builder.entry(attribute.key, value);
    }
    builder.close_row();
}

/// `attributes` rendered once, to be copied into the rows of every record
/// they belong to (a resource's or a scope's).
pub(crate) fn attribute_block(attributes: &[KeyValue<'_>], scratch: &mut String) -> AttributeBlock {
    let mut block = AttributeBlock::default();
    for attribute in attributes {
        block.push(attribute.key, value_text(attribute.value, scratch));
    }
    block
}

/// Checks that the text of attributes read by [`Attributes::read_raw`] is
/// UTF-8: for a record that is refused rather than stored, whose column
/// would have checked it. A request with such text is refused whole,
/// whichever of its records holds it.
pub(crate) fn check_text(attributes: &[RawKeyValue<'_>]) -> Result<(), WireError> {
    for attribute in attributes {
        let damage = |field| WireError::Utf8 {
            message: "KeyValue",
            field,
        };
        std::str::from_utf8(attribute.key).map_err(|_| damage("key"))?;
        if let RawValue::Text(text) = attribute.value {
            std::str::from_utf8(text).map_err(|_| damage("value"))?;
        }
    }
    Ok(())
}

/// Reads a list of attributes into `into` (cleared first), checking each
/// as it goes.
pub(crate) fn read_attributes<'a>(
    attributes: Attributes<'a>,
    into: &mut Vec<KeyValue<'a>>,
) -> Result<(), WireError> {
    into.clear();
    for attribute in attributes.try_iter() {
        let attribute = attribute?;
        attribute.value.validate()?;
        into.push(attribute);
    }
    Ok(())
}

/// The text of a value: borrowed for strings, written into `scratch`
/// otherwise. `None` for an empty value.
pub(crate) fn value_text<'a>(value: Value<'a>, scratch: &'a mut String) -> Option<&'a str> {
    if let Value::String(text) = value {
        return Some(text);
    }
    scratch.clear();
    match value {
        Value::Empty => return None,
        Value::String(_) => {}
        Value::Bool(b) => scratch.push_str(if b { "true" } else { "false" }),
        Value::Int(i) => scratch.push_str(itoa::Buffer::new().format(i)),
        Value::Double(d) => write_double(d, scratch),
        Value::Bytes(bytes) => {
            base64::engine::general_purpose::STANDARD.encode_string(bytes, scratch)
        }
        Value::Array(_) | Value::Kvlist(_) => {
            let nested = value.nested()?;
            write_json(&nested, scratch)
        }
    }
    Some(scratch)
}

/// The value of the first attribute named `key` (absent or empty alike:
/// [`Value::Empty`]).
pub(crate) fn find<'a>(attributes: &[KeyValue<'a>], key: &str) -> Value<'a> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value)
        .unwrap_or_default()
}

fn write_double(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let _ = write!(out, "{d}");
    }
}

/// Writes an array or key-value list (or any nested value) as JSON.
fn write_json(value: &ProtoValue, out: &mut String) {
    match value {
        ProtoValue::StringValue(s) => write_json_string(s, out),
        ProtoValue::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        ProtoValue::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        ProtoValue::DoubleValue(d) if d.is_finite() => {
            let _ = write!(out, "{d}");
        }
        ProtoValue::DoubleValue(d) => {
            let mut text = String::new();
            write_double(*d, &mut text);
            write_json_string(&text, out);
        }
        ProtoValue::BytesValue(bytes) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            write_json_string(&encoded, out);
        }
        ProtoValue::ArrayValue(array) => {
            out.push('[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match &item.value {
                    Some(v) => write_json(v, out),
                    None => out.push_str("null"),
                }
            }
            out.push(']');
        }
        ProtoValue::KvlistValue(list) => {
            out.push('{');
            for (i, kv) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&kv.key, out);
                out.push(':');
                match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(v) => write_json(v, out),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
        ProtoValue::StringValueStrindex(_) => out.push_str("null"),
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
    use prost::Message as _;

    use ProtoValue as Value;

    fn text(value: Value) -> Option<String> {
        let any = AnyValue { value: Some(value) };
        let mut scratch = String::new();
        let from_proto =
            value_text(crate::wire::Value::from_proto(Some(&any)), &mut scratch).map(str::to_owned);
        // Read in place from its encoding, the value renders the same.
        let encoded = any.encode_to_vec();
        let wire = <crate::wire::Value as crate::wire::Message>::parse(&encoded).unwrap();
        assert_eq!(
            value_text(wire, &mut scratch).map(str::to_owned),
            from_proto
        );
        from_proto
    }

    #[test]
    fn scalar_values_render_as_documented() {
        assert_eq!(text(Value::StringValue("a b".into())).unwrap(), "a b");
        assert_eq!(text(Value::BoolValue(true)).unwrap(), "true");
        assert_eq!(text(Value::IntValue(-42)).unwrap(), "-42");
        assert_eq!(text(Value::DoubleValue(0.25)).unwrap(), "0.25");
        assert_eq!(text(Value::DoubleValue(3.0)).unwrap(), "3");
        assert_eq!(text(Value::DoubleValue(f64::NAN)).unwrap(), "NaN");
        assert_eq!(text(Value::BytesValue(vec![0, 1, 2])).unwrap(), "AAEC");
        assert_eq!(
            value_text(crate::wire::Value::from_proto(None), &mut String::new()),
            None
        );
        assert_eq!(
            value_text(
                crate::wire::Value::from_proto(Some(&AnyValue { value: None })),
                &mut String::new()
            ),
            None
        );
    }

    #[test]
    fn nested_values_render_as_json() {
        let list = Value::KvlistValue(KeyValueList {
            values: vec![
                KeyValue {
                    key: "q\"k".into(),
                    value: Some(AnyValue {
                        value: Some(Value::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue {
                                    value: Some(Value::IntValue(1)),
                                },
                                AnyValue {
                                    value: Some(Value::StringValue("x\n".into())),
                                },
                                AnyValue { value: None },
                            ],
                        })),
                    }),
                    key_strindex: 0,
                },
                KeyValue {
                    key: "b".into(),
                    value: Some(AnyValue {
                        value: Some(Value::BoolValue(false)),
                    }),
                    key_strindex: 0,
                },
            ],
        });
        let json = text(list).unwrap();
        assert_eq!(json, r#"{"q\"k":[1,"x\n",null],"b":false}"#);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["b"], serde_json::Value::Bool(false));
    }
}
