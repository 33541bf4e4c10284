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
//!
//! Which cohort a flag names is a [`GrayFlagMap`]: `0x0001` staging and
//! `0x0002` canary are built in and cannot be remapped (every router and
//! every grayscope must agree on them); other values are mapped by the
//! configuration's `[gray_flags]` table (`"0x0003" = "gray-b"`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

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

    /// Whether this flag is one of the values with a fixed meaning: none,
    /// staging, canary.
    pub fn is_built_in(self) -> bool {
        self.0 <= GrayFlag::CANARY.0
    }
}

/// `0x0002`: always four lowercase hex digits.
impl fmt::Display for GrayFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// Reads `0x3`, `0x0003` or `0X0003` (one to four hex digits after `0x`).
/// Flags are always written in hex, as they appear at the end of a trace id;
/// a bare number is refused so that `"10"` cannot mean two things.
impl FromStr for GrayFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<GrayFlag, String> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .ok_or_else(|| {
                format!("gray flag {text:?} must be written in hex with 0x, e.g. \"0x0003\"")
            })?;
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "gray flag {text:?} must be 1 to 4 hex digits after 0x (0x0000 to 0xffff)"
            ));
        }
        u16::from_str_radix(digits, 16)
            .map(GrayFlag)
            .map_err(|e| format!("gray flag {text:?}: {e}"))
    }
}

impl serde::Serialize for GrayFlag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for GrayFlag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<GrayFlag, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which cohort each gray flag names: the built-in `0x0001` staging and
/// `0x0002` canary, plus the configuration's `[gray_flags]`.
///
/// ```
/// use std::collections::BTreeMap;
/// use grayscope_core::gray_flag::{GrayFlag, GrayFlagMap};
///
/// let configured = BTreeMap::from([(GrayFlag(3), "gray-b".to_owned())]);
/// let flags = GrayFlagMap::new(&configured);
/// assert_eq!(flags.cohort(GrayFlag(3)), Some("gray-b"));
/// assert_eq!(flags.cohort(GrayFlag::CANARY), Some("canary"));
/// assert_eq!(flags.cohort(GrayFlag(4)), None); // unmapped: rules decide
/// assert_eq!(flags.flag_of("gray-b"), Some(GrayFlag(3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrayFlagMap {
    configured: BTreeMap<GrayFlag, String>,
}

impl GrayFlagMap {
    /// The built-in flags plus `configured`. Entries for the built-in values
    /// (`0x0000`, `0x0001`, `0x0002`) are ignored here; configuration
    /// validation rejects them with a reason.
    pub fn new(configured: &BTreeMap<GrayFlag, String>) -> GrayFlagMap {
        GrayFlagMap {
            configured: configured
                .iter()
                .filter(|(flag, _)| !flag.is_built_in())
                .map(|(flag, name)| (*flag, name.clone()))
                .collect(),
        }
    }

    /// The cohort `flag` names, or `None` when it names none (`0x0000`, or a
    /// value nobody configured): then the cohort rules decide.
    pub fn cohort(&self, flag: GrayFlag) -> Option<&str> {
        flag.cohort()
            .or_else(|| self.configured.get(&flag).map(String::as_str))
    }

    /// The cohort of a binary trace id by its flag alone.
    pub fn cohort_of_trace_id(&self, trace_id: &[u8]) -> Option<&str> {
        self.cohort(GrayFlag::from_trace_id(trace_id))
    }

    /// The flag that routes requests to `cohort`: `staging`, `canary`, or a
    /// configured name (the lowest flag, if several map to it). `none`
    /// names [`GrayFlag::NONE`].
    pub fn flag_of(&self, cohort: &str) -> Option<GrayFlag> {
        match cohort {
            "none" => Some(GrayFlag::NONE),
            cohort::STAGING => Some(GrayFlag::STAGING),
            cohort::CANARY => Some(GrayFlag::CANARY),
            name => self
                .configured
                .iter()
                .find(|(_, configured)| configured.as_str() == name)
                .map(|(flag, _)| *flag),
        }
    }

    /// Every flag that names a cohort, built-in ones first, in flag order.
    pub fn iter(&self) -> impl Iterator<Item = (GrayFlag, &str)> {
        [
            (GrayFlag::STAGING, cohort::STAGING),
            (GrayFlag::CANARY, cohort::CANARY),
        ]
        .into_iter()
        .chain(self.configured.iter().map(|(f, n)| (*f, n.as_str())))
    }
}

/// The 32 lowercase hex digits of a trace id.
pub fn trace_id_hex(trace_id: &[u8; 16]) -> String {
    trace_id.iter().map(|b| format!("{b:02x}")).collect()
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

    #[test]
    fn flags_parse_from_hex_only() {
        assert_eq!("0x0003".parse::<GrayFlag>(), Ok(GrayFlag(3)));
        assert_eq!("0x3".parse::<GrayFlag>(), Ok(GrayFlag(3)));
        assert_eq!("0XFFFF".parse::<GrayFlag>(), Ok(GrayFlag(0xffff)));
        for bad in ["3", "0x", "0x12345", "0xg", "", "x3", " 0x3"] {
            assert!(bad.parse::<GrayFlag>().is_err(), "{bad:?}");
        }
        assert!(
            "10".parse::<GrayFlag>()
                .unwrap_err()
                .contains("hex with 0x")
        );
        assert_eq!(GrayFlag(0xab).to_string(), "0x00ab");
    }

    #[test]
    fn built_in_flags_cannot_be_remapped() {
        let configured = BTreeMap::from([
            (GrayFlag::CANARY, "gray-x".to_owned()),
            (GrayFlag::NONE, "gray-y".to_owned()),
            (GrayFlag(7), "gray-b".to_owned()),
            (GrayFlag(5), "gray-b".to_owned()),
        ]);
        let flags = GrayFlagMap::new(&configured);
        assert_eq!(flags.cohort(GrayFlag::CANARY), Some(cohort::CANARY));
        assert_eq!(flags.cohort(GrayFlag::NONE), None);
        assert_eq!(flags.cohort(GrayFlag(7)), Some("gray-b"));
        assert_eq!(flags.flag_of("gray-b"), Some(GrayFlag(5)));
        assert_eq!(flags.flag_of("none"), Some(GrayFlag::NONE));
        assert_eq!(flags.flag_of("gray-x"), None);
        assert_eq!(flags.iter().count(), 4);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(5000))]

            #[test]
            fn encode_then_decode_round_trips(
                flag in any::<u16>(),
                millis in 0u64..(1 << 48),
                random in any::<[u8; 8]>(),
            ) {
                let id = GrayFlag(flag).encode_trace_id(millis, random);
                prop_assert_ne!(id, [0u8; 16]);
                prop_assert_eq!(GrayFlag::from_trace_id(&id), GrayFlag(flag));
                prop_assert_eq!(GrayFlag::encoded_unix_millis(&id), millis);
                if millis != 0 || random != [0; 8] || flag != 0 {
                    prop_assert_eq!(&id[6..14], &random[..]);
                }
                let hex = trace_id_hex(&id);
                prop_assert_eq!(hex.len(), 32);
                prop_assert_eq!(parse_trace_id_hex(&hex).unwrap(), id);
                prop_assert_eq!(parse_trace_id_hex(&hex.to_uppercase()).unwrap(), id);
                prop_assert_eq!(GrayFlag(flag).to_string().parse::<GrayFlag>(), Ok(GrayFlag(flag)));
            }

            #[test]
            fn millis_beyond_48_bits_keep_their_low_bits(millis in any::<u64>(), random in any::<[u8; 8]>()) {
                let id = GrayFlag::CANARY.encode_trace_id(millis, random);
                prop_assert_eq!(GrayFlag::encoded_unix_millis(&id), millis & ((1 << 48) - 1));
                prop_assert_eq!(GrayFlag::from_trace_id(&id), GrayFlag::CANARY);
            }
        }
    }
}
