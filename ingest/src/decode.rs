//! Bytes → OTLP messages, in either wire encoding.

use std::fmt;

use prost::Message;
use serde::de::DeserializeOwned;

/// The two OTLP payload encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`, and always on gRPC).
    Protobuf,
    /// OTLP JSON (`application/json`): protobuf's JSON mapping with
    /// lowerCamelCase names, hex trace and span ids, and 64-bit integers as
    /// strings or numbers.
    Json,
}

impl Encoding {
    /// The HTTP content type of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// The encoding named by an HTTP `Content-Type`, ignoring parameters
    /// such as `charset`.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf")
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "OTLP JSON",
        })
    }
}

/// Decodes one message.
pub(crate) fn decode<M>(
    encoding: Encoding,
    bytes: &[u8],
) -> Result<M, Box<dyn std::error::Error + Send + Sync>>
where
    M: Message + Default + DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => Ok(M::decode(bytes)?),
        Encoding::Json => Ok(serde_json::from_slice(bytes)?),
    }
}

/// Encodes one message.
pub(crate) fn encode<M>(encoding: Encoding, message: &M) -> Vec<u8>
where
    M: Message + serde::Serialize,
{
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        // Serialising plain data structs to JSON cannot fail.
        Encoding::Json => serde_json::to_vec(message).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_by_essence() {
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type("Application/X-Protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::from_content_type("text/plain"), None);
        assert_eq!(Encoding::from_content_type(""), None);
    }
}
