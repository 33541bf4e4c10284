//! The trace-id gray flag: which environment a request was routed to.
//!
//! A router that colours a request (sends it to a canary or staging fleet)
//! writes the environment into the **last two bytes** of the 16-byte W3C trace
//! id, big-endian: `0x0001` staging, `0x0002` canary, `0x0000` none. Every
//! span, log and exemplar of that trace then carries the flag, so grayscope
//! can label the record without any attribute.
//!
//! [`GrayFlag::encode_trace_id`] builds such an id: 6 bytes of milliseconds
//! since the Unix epoch (so ids sort by time, as in UUIDv7), 8 bytes of
//! randomness, 2 bytes of flag. The result is never all zeros, so it is a
//! valid W3C trace id. Because the low bytes are not random, a router must
//! not set the W3C `random` trace flag on such ids.

use std::fmt;

use crate::cohort;
use crate::error::{Error, Result};

/// The environment flag carried by the last two bytes of a trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrayFlag(pub u16);

impl GrayFlag {
    /// No environment: the request took the ordinary path.
    pub const NONE: GrayFlag = GrayFlag(0x0000);
    /// The request was routed to staging.
    pub const STAGING: GrayFlag = GrayFlag(0x0001);
    /// The request was routed to the canary.
    pub const CANARY: GrayFlag = GrayFlag(0x0002);

    /// Reads the flag of a binary trace id. Anything that is not a 16-byte id
    /// (an empty id, a malformed one) carries no flag.
    pub fn from_trace_id(trace_id: &[u8]) -> GrayFlag {
        match trace_id {
            [.., hi, lo] if trace_id.len() == 16 => GrayFlag(u16::from_be_bytes([*hi, *lo])),
            _ => GrayFlag::NONE,
        }
    }

    /// The cohort a flag names by itself: staging and canary. Other non-zero
    /// values are left to the configuration's flag mapping.
    pub fn cohort(self) -> Option<&'static str> {
        match self {
            GrayFlag::STAGING => Some(cohort::STAGING),
            GrayFlag::CANARY => Some(cohort::CANARY),
            _ => None,
        }
    }

    /// Builds a trace id carrying this flag from a timestamp (milliseconds
    /// since the Unix epoch; only the low 48 bits are kept) and 8 bytes of
    /// randomness.
    pub fn encode_trace_id(self, unix_millis: u64, random: [u8; 8]) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
        id[6..14].copy_from_slice(&random);
        id[14..].copy_from_slice(&self.0.to_be_bytes());
        if id == [0u8; 16] {
            // All zeros is the W3C "invalid" id; nudge one random bit.
            id[13] = 1;
        }
        id
    }

    /// The milliseconds since the epoch stored by [`Self::encode_trace_id`].
    /// Meaningful only for ids that were built that way.
    pub fn encoded_unix_millis(trace_id: &[u8; 16]) -> u64 {
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&trace_id[..6]);
        u64::from_be_bytes(millis)
    }
}

impl fmt::Display for GrayFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// Parses a 32-digit hex trace id (either case) into its 16 bytes.
pub fn parse_trace_id_hex(input: &str) -> Result<[u8; 16]> {
    let invalid = |reason| Error::InvalidTraceId {
        input: input.to_owned(),
        reason,
    };
    let digits = input.trim().as_bytes();
    if digits.len() != 32 {
        return Err(invalid("expected 32 hex digits"));
    }
    let mut id = [0u8; 16];
    for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = hex_value(pair[0]).ok_or_else(|| invalid("not a hex digit"))?;
        let lo = hex_value(pair[1]).ok_or_else(|| invalid("not a hex digit"))?;
        *byte = hi << 4 | lo;
    }
    if id == [0u8; 16] {
        return Err(invalid("all-zero trace ids are invalid"));
    }
    Ok(id)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_is_read_from_the_last_two_bytes() {
        let mut id = [0xab_u8; 16];
        id[14] = 0x00;
        id[15] = 0x01;
        assert_eq!(GrayFlag::from_trace_id(&id), GrayFlag::STAGING);
        id[15] = 0x02;
        assert_eq!(GrayFlag::from_trace_id(&id), GrayFlag::CANARY);
        id[14] = 0x01;
        assert_eq!(GrayFlag::from_trace_id(&id), GrayFlag(0x0102));
        assert_eq!(GrayFlag(0x0102).cohort(), None);
    }

    #[test]
    fn ids_of_the_wrong_length_carry_no_flag() {
        assert_eq!(GrayFlag::from_trace_id(&[]), GrayFlag::NONE);
        assert_eq!(GrayFlag::from_trace_id(&[0, 2]), GrayFlag::NONE);
        assert_eq!(GrayFlag::from_trace_id(&[2; 17]), GrayFlag::NONE);
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let id = GrayFlag::CANARY.encode_trace_id(1_764_000_000_123, [7; 8]);
        assert_eq!(GrayFlag::from_trace_id(&id), GrayFlag::CANARY);
        assert_eq!(GrayFlag::encoded_unix_millis(&id), 1_764_000_000_123);
        assert_eq!(&id[6..14], &[7; 8]);
    }

    #[test]
    fn encoding_never_yields_the_invalid_all_zero_id() {
        let id = GrayFlag::NONE.encode_trace_id(0, [0; 8]);
        assert_ne!(id, [0; 16]);
    }

    #[test]
    fn hex_ids_parse_in_either_case_and_reject_garbage() {
        let id = parse_trace_id_hex("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(id[0], 0x5b);
        assert_eq!(id[15], 0x0c);
        assert!(parse_trace_id_hex("5b8e").is_err());
        assert!(parse_trace_id_hex("zz8efff798038103d269b633813fc60c").is_err());
        assert!(parse_trace_id_hex("00000000000000000000000000000000").is_err());
    }
}
