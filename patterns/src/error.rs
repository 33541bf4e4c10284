//! The crate's one error type.

use std::path::PathBuf;

/// Result with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can fail in `grayscope-patterns`.
///
/// Variants name the action that failed; the cause travels in
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user log rule has an empty or duplicate name.
    #[error("log rule #{index} has an invalid name {name:?}: {reason}")]
    InvalidRuleName {
        /// Position of the rule in the list given to [`crate::RuleSet::new`].
        index: usize,
        /// The offending name.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A user log rule's pattern does not compile.
    #[error("log rule {name:?} has an invalid pattern {pattern:?}")]
    InvalidRulePattern {
        /// The rule's name.
        name: String,
        /// The rule's pattern as written.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: Box<regex_automata::meta::BuildError>,
    },
    /// The rules compile one by one but not together (e.g. the combined
    /// automaton is too large).
    #[error("cannot compile the {count} log rules into one automaton")]
    BuildRuleSet {
        /// Number of rules.
        count: usize,
        /// What the regex compiler said.
        #[source]
        source: Box<regex_automata::meta::BuildError>,
    },
    /// A miner configuration value is out of range.
    #[error("invalid miner configuration: {field} {reason}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the miner state file failed (retrying may help, e.g. after
    /// freeing disk space).
    #[error("cannot write miner state to {path}")]
    SaveState {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding the miner state failed.
    #[error("cannot encode miner state for {path}")]
    EncodeState {
        /// The state file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading the miner state file failed.
    #[error("cannot read miner state from {path}")]
    LoadState {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The miner state file is not valid JSON of the expected shape.
    #[error("miner state in {path} cannot be decoded")]
    DecodeState {
        /// The state file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The miner state file decodes but its content is inconsistent.
    #[error("miner state in {path} is invalid: {reason}")]
    InvalidState {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A bug in this crate, not bad input.
    #[error("internal error in the template miner: {0}")]
    Internal(String),
}
