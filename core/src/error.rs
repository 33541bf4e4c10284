//! The error type of `grayscope-core`.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the shared vocabulary: reading configuration and
/// decoding identifiers. All of these are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}")]
    ReadConfig {
        /// The file we tried to read.
        path: PathBuf,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// The configuration is not valid TOML or does not fit the schema; the
    /// source names the line, the column and the offending field.
    #[error("invalid configuration{}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    ParseConfig {
        /// The file, when the configuration came from one.
        path: Option<PathBuf>,
        /// The TOML error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A configuration value parsed but makes no sense.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// Dotted path of the field, as written in the file.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A trace id that is not 16 bytes / 32 hex digits.
    #[error("invalid trace id {input:?}: {reason}")]
    InvalidTraceId {
        /// What we were given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
