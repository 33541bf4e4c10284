//! The fields of one protobuf message, walked in place.

use prost::encoding::{DecodeContext, WireType, skip_field};

/// Why a request's protobuf could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Malformed protobuf: a truncated message, a bad varint or key.
    #[error("{0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A known field with the wrong wire type.
    #[error("{message}.{field}: invalid wire type {found:?} (expected {expected:?})")]
    WireType {
        /// The message being read.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// What the schema says.
        expected: WireType,
        /// What the bytes say.
        found: WireType,
    },
    /// A field key that is not one: tag 0, or an unknown wire type.
    #[error("invalid field key (tag 0 or unknown wire type)")]
    Key,
    /// A varint longer than ten bytes, or overflowing 64 bits.
    #[error("invalid varint")]
    Varint,
    /// A length past the end of its message.
    #[error("a field runs past the end of its message (truncated request?)")]
    Truncated,
    /// A string field that is not UTF-8.
    #[error("{message}.{field}: invalid string value: data is not UTF-8 encoded")]
    Utf8 {
        /// The message being read.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
}

/// One field's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Where a field sits in the schema, for error messages.
pub(crate) type At = (&'static str, &'static str);

impl<'a> Field<'a> {
    fn wire_type(self) -> WireType {
        match self {
            Field::Varint(_) => WireType::Varint,
            Field::Fixed64(_) => WireType::SixtyFourBit,
            Field::Fixed32(_) => WireType::ThirtyTwoBit,
            Field::Bytes(_) => WireType::LengthDelimited,
        }
    }

    fn mismatch(self, at: At, expected: WireType) -> WireError {
        WireError::WireType {
            message: at.0,
            field: at.1,
            expected,
            found: self.wire_type(),
        }
    }

    /// A `bytes` or embedded message field.
    #[inline]
    pub(crate) fn bytes(self, at: At) -> Result<&'a [u8], WireError> {
        match self {
            Field::Bytes(bytes) => Ok(bytes),
            _ => Err(self.mismatch(at, WireType::LengthDelimited)),
        }
    }

    /// A `string` field.
    #[inline]
    pub(crate) fn string(self, at: At) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(at)?).map_err(|_| WireError::Utf8 {
            message: at.0,
            field: at.1,
        })
    }

    /// A varint field (`int32`, `int64`, `uint32`, `bool`, enums).
    #[inline]
    pub(crate) fn varint(self, at: At) -> Result<u64, WireError> {
        match self {
            Field::Varint(v) => Ok(v),
            _ => Err(self.mismatch(at, WireType::Varint)),
        }
    }

    /// A `fixed64` or `double` field.
    #[inline]
    pub(crate) fn fixed64(self, at: At) -> Result<u64, WireError> {
        match self {
            Field::Fixed64(v) => Ok(v),
            _ => Err(self.mismatch(at, WireType::SixtyFourBit)),
        }
    }

    /// A `fixed32` field.
    #[inline]
    pub(crate) fn fixed32(self, at: At) -> Result<u32, WireError> {
        match self {
            Field::Fixed32(v) => Ok(v),
            _ => Err(self.mismatch(at, WireType::ThirtyTwoBit)),
        }
    }

    /// An `int32` or enum field: protobuf sends negative values as 64-bit
    /// varints, and prost keeps the low 32 bits.
    #[inline]
    pub(crate) fn int32(self, at: At) -> Result<i32, WireError> {
        self.varint(at).map(|v| v as i32)
    }
}

/// The fields of a message in order, each with the offset it starts at.
/// Groups (a deprecated encoding no OTLP field uses) are skipped.
pub(crate) struct Fields<'a> {
    message: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(message: &'a [u8]) -> Self {
        Fields {
            message,
            rest: message,
        }
    }

    /// Offset of the next field in the message.
    #[inline]
    pub(crate) fn offset(&self) -> usize {
        self.message.len() - self.rest.len()
    }

    /// Passes over the fields that follow as long as they are
    /// length-delimited fields of `tag` (below 16, so that their key is one
    /// byte): the rest of a run of one repeated field, as encoders write
    /// it. Stops before anything else, including a field that runs past
    /// the end, which the next read then reports.
    #[inline]
    pub(crate) fn skip_run(&mut self, tag: u32) {
        let Ok(key) = u8::try_from(tag << 3 | 2) else {
            return;
        };
        if key >= 0x80 {
            return;
        }
        while let [first, tail @ ..] = self.rest
            && *first == key
        {
            let mut rest = tail;
            let Ok(len) = varint(&mut rest) else { return };
            let Some(rest) = usize::try_from(len).ok().and_then(|len| rest.get(len..)) else {
                return;
            };
            self.rest = rest;
        }
    }

    #[inline(always)]
    fn read(&mut self) -> Result<Option<(u32, Field<'a>)>, WireError> {
        loop {
            if self.rest.is_empty() {
                return Ok(None);
            }
            let key = varint(&mut self.rest)?;
            let tag = u32::try_from(key >> 3).map_err(|_| WireError::Key)?;
            if tag == 0 {
                return Err(WireError::Key);
            }
            let field = match key & 0x07 {
                0 => Field::Varint(varint(&mut self.rest)?),
                1 => {
                    let (bytes, rest) = split(self.rest, 8)?;
                    self.rest = rest;
                    Field::Fixed64(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
                }
                2 => {
                    let len = varint(&mut self.rest)?;
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    let (bytes, rest) = split(self.rest, len)?;
                    self.rest = rest;
                    Field::Bytes(bytes)
                }
                5 => {
                    let (bytes, rest) = split(self.rest, 4)?;
                    self.rest = rest;
                    Field::Fixed32(u32::from_le_bytes(bytes.try_into().unwrap_or_default()))
                }
                3 => {
                    // A group: prost walks it (and bounds its nesting).
                    skip_field(
                        WireType::StartGroup,
                        tag,
                        &mut self.rest,
                        DecodeContext::default(),
                    )?;
                    continue;
                }
                _ => return Err(WireError::Key),
            };
            return Ok(Some((tag, field)));
        }
    }
}

/// Reads one varint, as protobuf encodes them: at most ten bytes, the
/// tenth carrying one bit.
#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let bytes = *buf;
    if let Some(&first) = bytes.first()
        && first < 0x80
    {
        *buf = &bytes[1..];
        return Ok(u64::from(first));
    }
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            if i == 9 && byte > 1 {
                break;
            }
            *buf = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(if bytes.len() < 10 && bytes.iter().all(|b| *b >= 0x80) {
        WireError::Truncated
    } else {
        WireError::Varint
    })
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), WireError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        match self.read() {
            Ok(field) => field.map(Ok),
            Err(e) => {
                // Stop after an error.
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

fn split(bytes: &[u8], len: usize) -> Result<(&[u8], &[u8]), WireError> {
    if len > bytes.len() {
        return Err(WireError::Truncated);
    }
    Ok(bytes.split_at(len))
}

/// Where the occurrences of one repeated field lie in a message: from the
/// start of the first to the end of the last (encoders write them
/// together, so this is usually exactly them).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stretch {
    start: usize,
    end: usize,
}

impl Stretch {
    /// Widens the stretch to the field at `start..end`.
    #[inline]
    pub(crate) fn add(&mut self, start: usize, end: usize) {
        if self.start == self.end {
            self.start = start;
        }
        self.end = end;
    }

    /// The bytes of `message` it covers.
    #[inline]
    pub(crate) fn of<'a>(&self, message: &'a [u8]) -> &'a [u8] {
        message.get(self.start..self.end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_type_is_read_and_groups_are_skipped() {
        // field 1 varint 150, field 2 fixed64, field 3 bytes "hi",
        // field 4 group holding a varint, field 5 fixed32.
        let mut bytes = vec![0x08, 0x96, 0x01, 0x11];
        bytes.extend(7u64.to_le_bytes());
        bytes.extend([0x1a, 0x02, b'h', b'i', 0x23, 0x08, 0x01, 0x24, 0x2d]);
        bytes.extend(9u32.to_le_bytes());
        let fields: Vec<(u32, String)> = Fields::new(&bytes)
            .map(|f| {
                let (tag, field) = f.unwrap();
                (tag, format!("{field:?}"))
            })
            .collect();
        assert_eq!(
            fields,
            [
                (1, "Varint(150)".to_owned()),
                (2, "Fixed64(7)".to_owned()),
                (3, "Bytes([104, 105])".to_owned()),
                (5, "Fixed32(9)".to_owned()),
            ]
        );
    }

    #[test]
    fn varints_read_as_prost_reads_them() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = Vec::new();
            prost::encoding::encode_varint(value, &mut bytes);
            let mut buf = &bytes[..];
            assert_eq!(varint(&mut buf).unwrap(), value);
            assert!(buf.is_empty());
        }
        // Eleven bytes, a tenth byte above 1, and a cut varint are errors.
        assert!(varint(&mut &[0xff; 11][..]).is_err());
        let mut ten = vec![0xff; 9];
        ten.push(0x02);
        assert!(varint(&mut &ten[..]).is_err());
        assert!(matches!(
            varint(&mut &[0x80, 0x80][..]),
            Err(WireError::Truncated)
        ));
    }

    #[test]
    fn a_run_of_one_field_is_passed_over_up_to_anything_else() {
        // Field 9 three times, then field 1; then field 9 cut short.
        let mut bytes = vec![0x4a, 0x01, b'a', 0x4a, 0x00, 0x4a, 0x02, b'b', b'c'];
        bytes.extend([0x0a, 0x01, b'x', 0x4a, 0x05, b'y']);
        let mut fields = Fields::new(&bytes);
        fields.next().unwrap().unwrap();
        fields.skip_run(9);
        assert_eq!(fields.offset(), 9);
        assert!(matches!(fields.next(), Some(Ok((1, Field::Bytes(b"x"))))));
        // The damaged field is left for the next read to report.
        fields.skip_run(9);
        assert_eq!(fields.offset(), 12);
        assert!(matches!(fields.next(), Some(Err(WireError::Truncated))));
        // Tags of 16 and up have two-byte keys: no run is skipped.
        let mut fields = Fields::new(&[0x82, 0x01, 0x00]);
        fields.skip_run(16);
        assert_eq!(fields.offset(), 0);
    }

    #[test]
    fn a_truncated_field_is_an_error_and_ends_the_walk() {
        let bytes = [0x1a, 0x05, b'h', b'i'];
        let mut fields = Fields::new(&bytes);
        assert!(matches!(fields.next(), Some(Err(WireError::Truncated))));
        assert!(fields.next().is_none());
    }

    #[test]
    fn accessors_check_the_wire_type_and_utf8() {
        let at = ("Span", "name");
        assert!(Field::Varint(1).string(at).is_err());
        let error = Field::Bytes(&[0xff, 0xfe]).string(at).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Span.name: invalid string value: data is not UTF-8 encoded"
        );
        assert_eq!(Field::Bytes(b"ok").string(at).unwrap(), "ok");
        // Negative int32s travel as ten-byte varints.
        let mut negative = Vec::new();
        prost::encoding::int32::encode(1, &-2, &mut negative);
        let (_, field) = Fields::new(&negative).next().unwrap().unwrap();
        assert_eq!(negative.len(), 11);
        assert_eq!(field.int32(at).unwrap(), -2);
    }
}
