//! Strings laid end to end as bytes, for the converter's own column
//! builders: appended without a UTF-8 check each, checked once over the
//! whole column when it is finished.

use arrow::array::StringArray;
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::error::ArrowError;

use crate::wire::{At, WireError};

/// The most a builder reserves at once, in bytes per buffer: a first row
/// far larger than the rest must not reserve memory for many like it.
const MAX_RESERVE: usize = 8 << 20;

/// Strings laid end to end, with their offsets (Arrow's `Utf8` layout).
#[derive(Debug, Clone)]
pub(crate) struct Text {
    bytes: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is string `i`; starts with 0.
    offsets: Vec<i32>,
}

impl Text {
    pub(crate) fn with_capacity(strings: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(strings + 1);
        offsets.push(0);
        Text {
            bytes: Vec::with_capacity(bytes),
            offsets,
        }
    }

    /// Room for `strings` more strings of `bytes` in all, up to
    /// [`MAX_RESERVE`] bytes.
    pub(crate) fn reserve(&mut self, strings: usize, bytes: usize) {
        self.offsets.reserve(strings.min(MAX_RESERVE / 4));
        self.bytes.reserve(bytes.min(MAX_RESERVE));
    }

    /// How many strings it holds.
    pub(crate) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The offset after the last byte. Beyond `i32::MAX` bytes the offsets
    /// are wrong, and [`Text::finish`] refuses the column.
    fn end(&self) -> i32 {
        i32::try_from(self.bytes.len()).unwrap_or(i32::MAX)
    }

    /// How many bytes it holds.
    pub(crate) fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends one string.
    #[inline]
    pub(crate) fn push(&mut self, text: &[u8]) {
        self.bytes.extend_from_slice(text);
        self.offsets.push(self.end());
    }

    /// Appends every string of `other`.
    pub(crate) fn extend(&mut self, other: &Text) {
        let base = self.end();
        self.bytes.extend_from_slice(&other.bytes);
        self.offsets
            .extend(other.offsets[1..].iter().map(|o| base.saturating_add(*o)));
    }

    /// The strings as a column, with `nulls`; `at` names the field they
    /// were read from in the error when they are not UTF-8.
    pub(crate) fn finish(
        self,
        nulls: Option<NullBuffer>,
        at: At,
    ) -> Result<StringArray, ArrowError> {
        if i32::try_from(self.bytes.len()).is_err() {
            return Err(ArrowError::OffsetOverflowError(self.bytes.len()));
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        let bytes = Buffer::from_vec(self.bytes);
        // Checks the whole buffer is UTF-8 and every offset a boundary.
        StringArray::try_new(offsets.clone(), bytes.clone(), nulls).map_err(|error| {
            let text = std::str::from_utf8(bytes.as_slice());
            let whole = text.is_ok_and(|text| {
                offsets
                    .iter()
                    .all(|o| text.is_char_boundary(usize::try_from(*o).unwrap_or(usize::MAX)))
            });
            if whole {
                error
            } else {
                ArrowError::ExternalError(Box::new(WireError::Utf8 {
                    message: at.0,
                    field: at.1,
                }))
            }
        })
    }
}
