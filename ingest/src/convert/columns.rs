//! Column-building pieces shared by the converters.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, ListArray, NullBufferBuilder, StringArray, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::Field;
use arrow::error::ArrowError;

use super::attributes::{AttributesBuilder, append_attributes, attributes_builder};
use super::resource::{ResourceInfo, ScopeInfo};
use super::text::Text;
use crate::wire::RawKeyValue;

/// A builder of `Timestamp(ns, "UTC")` values.
pub(crate) fn timestamp_builder(capacity: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(capacity).with_timezone("UTC")
}

/// The two lowercase hex digits of every byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

/// Lowercase hex of the first 16 bytes of `bytes`, written into `buf`.
#[inline]
fn hex_digits<'a>(bytes: &[u8], buf: &'a mut [u8; 32]) -> &'a [u8] {
    let bytes = &bytes[..bytes.len().min(16)];
    for (pair, byte) in buf.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    &buf[..2 * bytes.len()]
}

/// Lowercase hex of an id of at most 16 bytes, written into `buf`.
pub(crate) fn hex<'a>(bytes: &[u8], buf: &'a mut [u8; 32]) -> &'a str {
    // Only ASCII hex digits were written.
    std::str::from_utf8(hex_digits(bytes, buf)).unwrap_or_default()
}

/// A column of ids (trace, span) in lowercase hex, written without a
/// UTF-8 check each: the column is checked once when it is finished.
pub(crate) struct IdColumn {
    text: Text,
    valid: NullBufferBuilder,
}

impl IdColumn {
    /// Room for `rows` ids of `id_len` bytes.
    pub(crate) fn with_capacity(rows: usize, id_len: usize) -> Self {
        IdColumn {
            text: Text::with_capacity(rows, rows * 2 * id_len),
            valid: NullBufferBuilder::new(rows),
        }
    }

    /// Appends `id` in hex (its first 16 bytes).
    #[inline]
    pub(crate) fn append(&mut self, id: &[u8]) {
        let mut buf = [0u8; 32];
        self.text.push(hex_digits(id, &mut buf));
        self.valid.append_non_null();
    }

    /// Appends `id`, or a null when it is empty.
    #[inline]
    pub(crate) fn append_or_null(&mut self, id: &[u8]) {
        if id.is_empty() {
            self.text.push(&[]);
            self.valid.append_null();
        } else {
            self.append(id);
        }
    }

    pub(crate) fn finish(mut self) -> Result<StringArray, ArrowError> {
        self.text.finish(self.valid.finish(), ("id", "hex"))
    }
}

/// Whether `id` is a valid trace id (16 bytes, not all zero).
pub(crate) fn valid_trace_id(id: &[u8]) -> bool {
    id.len() == 16 && id.iter().any(|b| *b != 0)
}

/// Whether `id` is a valid span id (8 bytes, not all zero).
pub(crate) fn valid_span_id(id: &[u8]) -> bool {
    id.len() == 8 && id.iter().any(|b| *b != 0)
}

/// The trailing columns every table shares: attributes, resource, scope,
/// cohort and version.
pub(crate) struct ProvenanceColumns {
    attributes: AttributesBuilder,
    resource_attributes: AttributesBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: AttributesBuilder,
    cohort: StringBuilder,
    version: StringBuilder,
}

impl ProvenanceColumns {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ProvenanceColumns {
            attributes: attributes_builder(capacity),
            resource_attributes: attributes_builder(capacity),
            scope_name: StringBuilder::with_capacity(capacity, capacity * 16),
            scope_version: StringBuilder::with_capacity(capacity, capacity * 8),
            scope_attributes: attributes_builder(capacity),
            cohort: StringBuilder::with_capacity(capacity, capacity * 8),
            version: StringBuilder::with_capacity(capacity, capacity * 8),
        }
    }

    /// Appends the provenance of one row, with its cohort and version.
    pub(crate) fn append<'a>(
        &mut self,
        attributes: impl IntoIterator<Item = RawKeyValue<'a>>,
        resource: &ResourceInfo<'_>,
        scope: &ScopeInfo<'_>,
        (cohort, version): (&str, Option<&str>),
        scratch: &mut String,
    ) {
        append_attributes(&mut self.attributes, attributes, scratch);
        self.resource_attributes.block(&resource.attributes);
        self.resource_attributes.close_row();
        self.scope_name.append_option(scope.name);
        self.scope_version.append_option(scope.version);
        self.scope_attributes.block(&scope.attributes);
        self.scope_attributes.close_row();
        self.cohort.append_value(cohort);
        self.version.append_option(version);
    }

    /// The finished columns, in schema order.
    pub(crate) fn finish(mut self) -> Result<[ArrayRef; 7], ArrowError> {
        Ok([
            Arc::new(self.attributes.finish()?),
            Arc::new(self.resource_attributes.finish()?),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            Arc::new(self.scope_attributes.finish()?),
            Arc::new(self.cohort.finish()),
            Arc::new(self.version.finish()),
        ])
    }
}

/// Offsets and validity of a list column whose items are built elsewhere
/// (as the child columns of a struct).
pub(crate) struct ListOffsets {
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    items: i32,
}

impl ListOffsets {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut offsets = Vec::with_capacity(capacity + 1);
        offsets.push(0);
        ListOffsets {
            offsets,
            nulls: NullBufferBuilder::new(capacity),
            items: 0,
        }
    }

    /// Counts one item appended to the child columns.
    pub(crate) fn push_item(&mut self) {
        self.items += 1;
    }

    /// Ends the current row; `valid = false` makes it null.
    pub(crate) fn close_row(&mut self, valid: bool) {
        self.offsets.push(self.items);
        self.nulls.append(valid);
    }

    /// The list column over `values`, whose items are `item`.
    pub(crate) fn finish(mut self, item: Field, values: ArrayRef) -> ArrayRef {
        Arc::new(ListArray::new(
            Arc::new(item),
            OffsetBuffer::new(self.offsets.into()),
            values,
            self.nulls.finish(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Array as _;

    use super::*;

    #[test]
    fn ids_are_lowercase_hex() {
        let mut buf = [0u8; 32];
        assert_eq!(hex(&[0xab, 0x01, 0xff], &mut buf), "ab01ff");
        assert_eq!(hex(&[], &mut buf), "");
        assert!(valid_trace_id(&[1; 16]));
        assert!(!valid_trace_id(&[0; 16]));
        assert!(!valid_trace_id(&[1; 15]));
        assert!(valid_span_id(&[1; 8]));
        assert!(!valid_span_id(&[0; 8]));
    }

    #[test]
    fn id_columns_hold_lowercase_hex_or_null() {
        let mut ids = IdColumn::with_capacity(1, 8);
        ids.append(&[0xab, 0x01, 0xff]);
        ids.append_or_null(&[]);
        ids.append_or_null(&[0x0f; 20]);
        ids.append(&[]);
        let ids = ids.finish().unwrap();
        assert_eq!(ids.value(0), "ab01ff");
        assert!(ids.is_null(1));
        // At most 16 bytes are written, as `hex` writes them.
        assert_eq!(ids.value(2), "0f".repeat(16));
        assert!(ids.is_valid(3));
        assert_eq!(ids.value(3), "");
    }
}
