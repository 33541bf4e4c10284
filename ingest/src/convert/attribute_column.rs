//! The builder of `Map<Utf8, Utf8>` attribute columns.
//!
//! Arrow's `MapBuilder` appends entry by entry. Every record of a resource
//! carries the same resource attributes (and every record of a scope the
//! same scope attributes), so those are rendered once per resource, into
//! an [`AttributeBlock`], and copied into each row with one copy of their
//! bytes. Record attributes come unchecked
//! ([`RawKeyValue`](crate::wire::RawKeyValue)): their text is checked to
//! be UTF-8 once, over the whole column, when the column is finished, and
//! text that is not refuses the request as the reader would have.

use std::sync::Arc;

use arrow::array::{MapArray, NullBufferBuilder, StructArray};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use grayscope_core::schema::attributes_type;

use super::text::Text;

/// Attribute entries rendered once, to be copied into many rows.
#[derive(Debug, Clone)]
pub(crate) struct AttributeBlock {
    keys: Text,
    values: Text,
    /// Whether each value is set (an empty `AnyValue` is a null value).
    set: Vec<bool>,
}

impl Default for AttributeBlock {
    fn default() -> Self {
        AttributeBlock {
            keys: Text::with_capacity(0, 0),
            values: Text::with_capacity(0, 0),
            set: Vec::new(),
        }
    }
}

impl AttributeBlock {
    /// Appends an entry; `None` is a null value.
    pub(crate) fn push(&mut self, key: &str, value: Option<&str>) {
        self.keys.push(key.as_bytes());
        self.values.push(value.unwrap_or_default().as_bytes());
        self.set.push(value.is_some());
    }
}

/// Builder of one attribute map column: entries are appended to the open
/// row, and [`AttributesBuilder::close_row`] ends it. Rows are never null.
pub(crate) struct AttributesBuilder {
    /// Entry offsets of the rows; starts with 0.
    rows: Vec<i32>,
    keys: Text,
    values: Text,
    values_set: NullBufferBuilder,
    /// How many rows the column is expected to hold.
    expected_rows: usize,
}

/// Bytes reserved per key or value.
const TEXT_BYTES: usize = 16;

impl AttributesBuilder {
    /// A builder for `rows` rows of about `entries_per_row` entries.
    pub(crate) fn with_capacity(rows: usize, entries_per_row: usize) -> Self {
        let entries = rows * entries_per_row;
        let mut row_offsets = Vec::with_capacity(rows + 1);
        row_offsets.push(0);
        AttributesBuilder {
            rows: row_offsets,
            keys: Text::with_capacity(entries, entries * TEXT_BYTES),
            values: Text::with_capacity(entries, entries * TEXT_BYTES),
            values_set: NullBufferBuilder::new(entries),
            expected_rows: rows,
        }
    }

    /// Appends an entry to the open row; `None` is a null value. The text
    /// is checked to be UTF-8 when the column is finished.
    #[inline]
    pub(crate) fn entry(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.keys.push(key);
        self.values.push(value.unwrap_or_default());
        self.values_set.append(value.is_some());
    }

    /// Appends the entries of `block` to the open row.
    pub(crate) fn block(&mut self, block: &AttributeBlock) {
        self.keys.extend(&block.keys);
        self.values.extend(&block.values);
        if block.set.iter().all(|set| *set) {
            self.values_set.append_n_non_nulls(block.set.len());
        } else {
            for set in &block.set {
                self.values_set.append(*set);
            }
        }
    }

    /// Ends the open row. After the first, room is made for the expected
    /// rows, taking the first as their measure: the records of one request
    /// tend to carry the same attributes.
    pub(crate) fn close_row(&mut self) {
        let entries = i32::try_from(self.keys.len()).unwrap_or(i32::MAX);
        self.rows.push(entries);
        if self.rows.len() == 2 {
            let rest = self.expected_rows.saturating_sub(1);
            let entries = self.keys.len().saturating_mul(rest);
            self.keys
                .reserve(entries, self.keys.byte_len().saturating_mul(rest));
            self.values
                .reserve(entries, self.values.byte_len().saturating_mul(rest));
        }
    }

    /// The column, typed as [`attributes_type`].
    pub(crate) fn finish(mut self) -> Result<MapArray, ArrowError> {
        let DataType::Map(entries_field, sorted) = attributes_type() else {
            return Err(ArrowError::SchemaError(
                "attribute columns are maps".to_owned(),
            ));
        };
        let DataType::Struct(fields) = entries_field.data_type().clone() else {
            return Err(ArrowError::SchemaError(
                "map entries are structs".to_owned(),
            ));
        };
        if i32::try_from(self.keys.len()).is_err() {
            return Err(ArrowError::OffsetOverflowError(self.keys.len()));
        }
        let keys = self.keys.finish(None, ("KeyValue", "key"))?;
        let values = self
            .values
            .finish(self.values_set.finish(), ("KeyValue", "value"))?;
        let entries = StructArray::try_new(fields, vec![Arc::new(keys), Arc::new(values)], None)?;
        MapArray::try_new(
            entries_field,
            OffsetBuffer::new(ScalarBuffer::from(self.rows)),
            entries,
            None,
            sorted,
        )
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, MapBuilder, MapFieldNames, StringBuilder};
    use grayscope_core::schema::{MAP_ENTRIES, MAP_KEYS, MAP_VALUES};

    use super::*;

    type Entries<'a> = &'a [(&'a str, Option<&'a str>)];

    /// The same rows built by arrow's `MapBuilder`, entry by entry.
    fn reference(rows: &[Vec<(&str, Option<&str>)>]) -> MapArray {
        let names = MapFieldNames {
            entry: MAP_ENTRIES.to_owned(),
            key: MAP_KEYS.to_owned(),
            value: MAP_VALUES.to_owned(),
        };
        let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
        for row in rows {
            for (key, value) in row {
                builder.keys().append_value(key);
                builder.values().append_option(*value);
            }
            builder.append(true).unwrap();
        }
        builder.finish()
    }

    #[test]
    fn blocks_and_entries_build_what_map_builder_builds() {
        let resource: Entries = &[("service.name", Some("checkout")), ("empty", None)];
        let scope: Entries = &[("lib", Some("axum"))];
        let mut resource_block = AttributeBlock::default();
        for (key, value) in resource {
            resource_block.push(key, *value);
        }
        let mut scope_block = AttributeBlock::default();
        for (key, value) in scope {
            scope_block.push(key, *value);
        }

        let own: [Entries; 3] = [
            &[("http.route", Some("/cart")), ("n", Some("1"))],
            &[],
            &[("é", Some("ü")), ("gone", None)],
        ];
        let mut builder = AttributesBuilder::with_capacity(1, 1);
        let mut rows = Vec::new();
        for (i, entries) in own.iter().enumerate() {
            let mut row = Vec::new();
            for (key, value) in *entries {
                builder.entry(key.as_bytes(), value.map(str::as_bytes));
                row.push((*key, *value));
            }
            builder.block(&resource_block);
            row.extend_from_slice(resource);
            if i != 1 {
                builder.block(&scope_block);
                row.extend_from_slice(scope);
            }
            builder.close_row();
            rows.push(row);
        }
        // A row with nothing at all.
        builder.close_row();
        rows.push(Vec::new());

        let built = builder.finish().unwrap();
        assert_eq!(built.data_type(), &attributes_type());
        assert_eq!(built, reference(&rows));
        assert_eq!(built.len(), 4);
        assert_eq!(built.value_length(0), 5);
        assert_eq!(built.value_length(3), 0);
    }

    #[test]
    fn an_empty_column_finishes() {
        let built = AttributesBuilder::with_capacity(0, 0).finish().unwrap();
        assert_eq!(built.len(), 0);
        assert_eq!(built, reference(&[]));
    }
}
