//! The miner's configuration: what a user may write under `[patterns]`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Configuration of a [`crate::Miner`].
///
/// Every field has a default that works across very different log sources
/// (measured on the Loghub samples, see `BENCHMARKS-patterns.md`); nothing
/// here is meant to be tuned per source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinerConfig {
    /// Most live templates kept in memory. Past it, the least recently used
    /// template is evicted (counted in [`crate::MinerStats::evictions`]).
    /// Default: 20 000.
    pub max_templates: usize,
    /// Most lineage records (old template id → the template that replaced
    /// it) kept; the oldest are dropped first. Default: 20 000.
    pub max_lineage: usize,
    /// Lines with more tokens than this are cut after this many tokens and
    /// end in one `<*>` (counted in [`crate::MinerStats::truncated_lines`]).
    /// Default: 256.
    pub max_tokens: usize,
    /// Only this many leading bytes of a line are read; longer lines are
    /// truncated (and counted). Default: 65 536.
    pub max_line_bytes: usize,
    /// A single token longer than this many bytes is treated as a variable
    /// (blobs, base64, serialized payloads). Default: 128.
    pub max_token_bytes: usize,
    /// Two lines of the same shape (token count, punctuation, spacing) are
    /// versions of one template only if more than this share of their
    /// constant words are equal, between 0 and 1. Default: 0.5 (more than
    /// half).
    pub similarity_threshold: f64,
    /// A position where lines otherwise alike hold different plain words
    /// becomes `<*>` only once this many distinct words were seen there.
    /// Words with digits, addresses and the like are variables at once; this
    /// keeps `session opened` and `session closed` apart while `user alice`,
    /// `user bob`, … merge. Default: 4.
    pub min_distinct_values: usize,
    /// Leading tokens used as keys of the prefix tree under the token-count
    /// level. Default: 3.
    pub tree_depth: usize,
    /// A line that matches no template is compared with at most this many of
    /// the newest templates of its token count, bounding the work a stream
    /// of never-repeating lines can cause. Default: 1 024.
    pub max_merge_candidates: usize,
    /// Entries in the cache from a line's masked text (by a 128-bit
    /// fingerprint, 32 bytes an entry) to its template; it only saves work,
    /// results are the same without it. When full it is cleared. Default:
    /// 65 536.
    pub cache_capacity: usize,
    /// Recognise JSON object bodies and logfmt bodies and mine them on keys
    /// and value shapes. Default: true.
    pub structured: bool,
    /// Mine a multi-line body (a stack trace, a message with details) on its
    /// first non-empty line, followed by one `<*>` standing for the rest, so
    /// an exception is one template however deep its trace. JSON objects are
    /// always read whole. Default: true.
    pub first_line_only: bool,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            max_templates: 20_000,
            max_lineage: 20_000,
            max_tokens: 256,
            max_line_bytes: 64 * 1024,
            max_token_bytes: 128,
            similarity_threshold: 0.5,
            min_distinct_values: 4,
            tree_depth: 3,
            max_merge_candidates: 1024,
            cache_capacity: 65_536,
            structured: true,
            first_line_only: true,
        }
    }
}

impl MinerConfig {
    /// Checks every field; `Miner::new` clamps what this rejects, so call it
    /// when loading a user's configuration to report mistakes instead.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.max_templates == 0 {
            return bad("max_templates", "must be at least 1");
        }
        if self.max_tokens < 2 || self.max_tokens > 4096 {
            return bad("max_tokens", "must be between 2 and 4096");
        }
        if self.max_line_bytes < 16 {
            return bad("max_line_bytes", "must be at least 16");
        }
        if self.max_token_bytes < 8 {
            return bad("max_token_bytes", "must be at least 8");
        }
        if !(0.0..=1.0).contains(&self.similarity_threshold) {
            return bad("similarity_threshold", "must be between 0 and 1");
        }
        if self.min_distinct_values < 2 {
            return bad("min_distinct_values", "must be at least 2");
        }
        if self.tree_depth > 16 {
            return bad("tree_depth", "must be at most 16");
        }
        Ok(())
    }

    /// The configuration with every out-of-range field moved to the nearest
    /// valid value.
    pub(crate) fn clamped(&self) -> MinerConfig {
        let mut c = self.clone();
        c.max_templates = c.max_templates.max(1);
        c.max_tokens = c.max_tokens.clamp(2, 4096);
        c.max_line_bytes = c.max_line_bytes.max(16);
        c.max_token_bytes = c.max_token_bytes.max(8);
        c.similarity_threshold = if c.similarity_threshold.is_nan() {
            0.5
        } else {
            c.similarity_threshold.clamp(0.0, 1.0)
        };
        c.min_distinct_values = c.min_distinct_values.max(2);
        c.tree_depth = c.tree_depth.min(16);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_unknown_fields_are_rejected() {
        MinerConfig::default().validate().unwrap();
        let c: MinerConfig = serde_json::from_str(r#"{"max_templates": 5}"#).unwrap();
        assert_eq!(c.max_templates, 5);
        assert_eq!(c.max_tokens, MinerConfig::default().max_tokens);
        assert!(serde_json::from_str::<MinerConfig>(r#"{"max_templatez": 5}"#).is_err());
    }

    #[test]
    fn validate_names_the_field_and_clamp_fixes_it() {
        let c = MinerConfig {
            similarity_threshold: 1.5,
            ..MinerConfig::default()
        };
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("similarity_threshold"), "{err}");
        c.clamped().validate().unwrap();
    }
}
