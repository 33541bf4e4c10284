//! `[patterns]` and `[[log_rules]]`: how log bodies are reduced to templates
//! at ingest, and which named patterns each record is tagged with.
//!
//! ```toml
//! [patterns]
//! max_templates = 20000
//!
//! [[log_rules]]              # in order; a record gets every rule it matches
//! name = "redis_timeout"
//! pattern = "timeout.*redis"
//! [[log_rules]]
//! name = "oom"
//! pattern = "(?i)oomkilled"
//! ```
//!
//! The fields of [`PatternsConfig`] mirror the template miner's settings
//! (`grayscope_patterns::MinerConfig`, whose crate this one may not depend
//! on); ingest maps one onto the other and validates ranges and rule
//! patterns with the miner's own checks when the configuration is loaded, so
//! `grayscope check-config` reports them. The defaults are the miner's,
//! measured across very different log sources; nothing here is meant to be
//! tuned per source.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{ConfigDuration, invalid};
use crate::error::Result;

/// Longest rule name, in bytes.
const MAX_RULE_NAME_LEN: usize = 128;

/// `[patterns]`: the log template miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatternsConfig {
    /// Most templates kept in memory. Past it, the least recently used
    /// template is evicted (its id stays in stored rows, but the
    /// `templates` table forgets it). Default 20000.
    pub max_templates: usize,
    /// Most lineage records (old template id → the template that replaced
    /// it) kept; the oldest are dropped first. Default 20000.
    pub max_lineage: usize,
    /// Bodies with more tokens than this are cut after this many tokens and
    /// end in one `<*>`. Between 2 and 4096. Default 256.
    pub max_tokens: usize,
    /// Only this many leading bytes of a body are mined; longer bodies are
    /// truncated (the `body` column keeps them whole). At least 16.
    /// Default 65536.
    pub max_line_bytes: usize,
    /// A single token longer than this many bytes is a variable (blobs,
    /// base64, serialized payloads). At least 8. Default 128.
    pub max_token_bytes: usize,
    /// Two bodies of the same shape (token count, punctuation, spacing) are
    /// versions of one template only if more than this share of their
    /// constant words are equal, between 0 and 1. Default 0.5.
    pub similarity_threshold: f64,
    /// A position where bodies otherwise alike hold different plain words
    /// becomes `<*>` only once this many distinct words were seen there
    /// (words with digits, addresses and the like are variables at once).
    /// At least 2. Default 4.
    pub min_distinct_values: usize,
    /// Leading tokens used as keys of the miner's prefix tree, at most 16.
    /// Default 3.
    pub tree_depth: usize,
    /// A body that matches no template is compared with at most this many
    /// of the newest templates of its token count. Default 1024.
    pub max_merge_candidates: usize,
    /// Entries of the cache from a body's masked text to its template (32
    /// bytes each); it only saves work. 0 disables it. Default 65536.
    pub cache_capacity: usize,
    /// Mine JSON object and logfmt bodies on their keys and value shapes
    /// (a key-value list body arrives as JSON text). Default true.
    pub structured: bool,
    /// Mine a multi-line body (a stack trace) on its first non-empty line
    /// followed by one `<*>`, so an exception is one template however deep
    /// its trace. Default true.
    pub first_line_only: bool,
    /// How often the miner's state (templates, counts, lineage) is written
    /// to `<data_dir>/patterns/miner.json` when it changed; it is also
    /// written at shutdown. Ids do not depend on it (they are hashes of the
    /// template text), lineage and counts do. Default `30s`.
    pub save_interval: ConfigDuration,
}

impl Default for PatternsConfig {
    fn default() -> Self {
        PatternsConfig {
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
            save_interval: ConfigDuration::from_secs(30),
        }
    }
}

impl PatternsConfig {
    /// Checks what is not the miner's to check (the miner's own ranges are
    /// checked by ingest, with the miner's validation).
    pub(crate) fn validate(&self) -> Result<()> {
        if self.save_interval.get().is_zero() {
            return Err(invalid("patterns.save_interval", "must not be zero"));
        }
        Ok(())
    }
}

/// One `[[log_rules]]` entry: a named regular expression; every log record
/// whose body it matches (anywhere) carries the name in its `rules` column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRuleConfig {
    /// The rule's name, as it appears in the `rules` column: letters,
    /// digits, `_`, `-`, `.`, starting with a letter or digit; at most 128
    /// bytes; unique among `[[log_rules]]`.
    pub name: String,
    /// The regular expression, in the syntax of Rust's `regex` crate
    /// (`timeout.*redis`, `(?i)oomkilled`, `\bstatus=5\d\d\b`). All rules
    /// are compiled together into one automaton and each body is scanned
    /// once. A pattern that does not compile is a configuration error
    /// naming the rule.
    pub pattern: String,
}

impl LogRuleConfig {
    /// A rule from its name and pattern (not yet validated).
    pub fn new(name: impl Into<String>, pattern: impl Into<String>) -> LogRuleConfig {
        LogRuleConfig {
            name: name.into(),
            pattern: pattern.into(),
        }
    }
}

/// Checks the names of `[[log_rules]]` (the patterns are compiled by ingest).
pub(crate) fn validate_rules(rules: &[LogRuleConfig]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("log_rules[{i}].name");
        check_rule_name(&rule.name).map_err(|reason| invalid(&field, reason))?;
        if !seen.insert(rule.name.as_str()) {
            return Err(invalid(
                &field,
                format!(
                    "names rule {:?} a second time; join the two patterns with |",
                    rule.name
                ),
            ));
        }
    }
    Ok(())
}

fn check_rule_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a rule name must not be empty".to_owned());
    }
    if name.len() > MAX_RULE_NAME_LEN {
        return Err(format!(
            "rule name {name:?} is longer than {MAX_RULE_NAME_LEN} bytes"
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(char::is_alphanumeric);
    if !first_ok || !chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(format!(
            "rule name {name:?} must start with a letter or digit and contain only letters, digits, '_', '-' and '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn rules_are_an_ordered_list_and_patterns_override_defaults() {
        let config = Config::parse(
            "[patterns]\nmax_templates = 500\nsave_interval = \"5s\"\n\
             [[log_rules]]\nname = \"redis_timeout\"\npattern = \"timeout.*redis\"\n\
             [[log_rules]]\nname = \"oom\"\npattern = \"OOMKilled\"\n",
            None,
        )
        .unwrap();
        assert_eq!(config.patterns.max_templates, 500);
        assert_eq!(config.patterns.save_interval.get().as_secs(), 5);
        assert_eq!(config.patterns.max_tokens, 256);
        let names: Vec<&str> = config.log_rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["redis_timeout", "oom"]);
        assert_eq!(config.log_rules[0].pattern, "timeout.*redis");
    }

    #[test]
    fn bad_rule_names_and_unknown_fields_are_rejected() {
        for (text, want) in [
            (
                "[[log_rules]]\nname = \"a\"\npattern = \"x\"\n[[log_rules]]\nname = \"a\"\npattern = \"y\"\n",
                "`log_rules[1].name` names rule \"a\" a second time",
            ),
            (
                "[[log_rules]]\nname = \"\"\npattern = \"x\"\n",
                "`log_rules[0].name` a rule name must not be empty",
            ),
            (
                "[[log_rules]]\nname = \"has space\"\npattern = \"x\"\n",
                "`log_rules[0].name` rule name \"has space\" must start",
            ),
            (
                "[patterns]\nsave_interval = \"0s\"\n",
                "`patterns.save_interval` must not be zero",
            ),
        ] {
            let err = Config::parse(text, None).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        for text in [
            "[[log_rules]]\nname = \"a\"\npatern = \"x\"\n",
            "[[log_rules]]\nname = \"a\"\n",
            "[patterns]\nmax_templatez = 1\n",
        ] {
            let err = Config::parse(text, None).unwrap_err();
            assert!(
                matches!(err, crate::Error::ParseConfig { .. }),
                "{text:?}: {err}"
            );
        }
    }
}
