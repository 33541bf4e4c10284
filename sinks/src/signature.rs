//! The webhook signature: HMAC-SHA256 over `"<timestamp>.<body>"`, sent as
//! `X-Grayscope-Signature: sha256=<hex>` with `X-Grayscope-Timestamp:
//! <unix seconds>`. Binding the timestamp into the MAC lets a receiver
//! refuse replays older than its tolerance; docs/signals.md shows how to
//! verify it in a few languages.

use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// Header with `sha256=<lowercase hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "x-grayscope-signature";
/// Header with the Unix time (seconds) the signature was made at.
pub const TIMESTAMP_HEADER: &str = "x-grayscope-timestamp";
/// Header with the signal's id (`<rollout>/<cohort>/<sequence>`).
pub const ID_HEADER: &str = "x-grayscope-signal-id";
/// Header with the attempt number, from 1.
pub const ATTEMPT_HEADER: &str = "x-grayscope-attempt";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The timestamp header is not a number.
    #[error("the timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is further from now than the tolerance.
    #[error("the timestamp is {0} s away from now")]
    Stale(i64),
    /// The header is not `sha256=<hex>`.
    #[error("the signature is not sha256=<hex>")]
    Malformed,
    /// The MAC does not match.
    #[error("the signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Grayscope-Signature` value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Checks a received signature as a router should: the MAC in constant
/// time, and the timestamp within `tolerance_secs` of `now_secs`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now_secs.saturating_sub(at);
    if skew.abs() > tolerance_secs {
        return Err(SignatureError::Stale(skew));
    }
    let tag = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Malformed)?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"a/canary/1"}"#;
        let signature = sign(b"s3cret", 1_700_000_000, body);
        assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
        assert_eq!(
            verify(
                b"s3cret",
                "1700000000",
                &signature,
                body,
                1_700_000_010,
                300
            ),
            Ok(())
        );
        let bad = |secret: &[u8], ts: &str, sig: &str, body: &[u8]| {
            verify(secret, ts, sig, body, 1_700_000_010, 300).unwrap_err()
        };
        assert_eq!(
            bad(b"other", "1700000000", &signature, body),
            SignatureError::Mismatch
        );
        assert_eq!(
            bad(b"s3cret", "1700000001", &signature, body),
            SignatureError::Mismatch
        );
        assert_eq!(
            bad(b"s3cret", "1700000000", &signature, b"{}"),
            SignatureError::Mismatch
        );
        assert_eq!(
            bad(b"s3cret", "1699990000", &signature, body),
            SignatureError::Stale(10_010)
        );
        assert_eq!(
            bad(b"s3cret", "soon", &signature, body),
            SignatureError::BadTimestamp
        );
        assert_eq!(
            bad(b"s3cret", "1700000000", "md5=00", body),
            SignatureError::Malformed
        );
    }

    #[test]
    fn the_documented_example_holds() {
        // docs/signals.md quotes this vector; keep them in step.
        assert_eq!(
            sign(
                b"change me",
                1_764_172_860,
                br#"{"id":"checkout-v2/canary/7"}"#
            ),
            "sha256=".to_owned()
                + &hex::encode(
                    mac(
                        b"change me",
                        "1764172860",
                        br#"{"id":"checkout-v2/canary/7"}"#
                    )
                    .finalize()
                    .into_bytes()
                )
        );
    }
}
