//! The error type of `grayscope-sinks`.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while keeping or delivering signals.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The outbox (or a cursor file) could not be read or written.
    #[error("signal outbox {}", path.display())]
    Outbox {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the outbox that is not a signal record (not the torn last
    /// line of a crash, which is dropped).
    #[error("signal outbox {}: line {line} is damaged: {reason}", path.display())]
    DamagedOutbox {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A destination could not be set up (bad URL, client options).
    #[error("cannot set up the {what} destination: {reason}")]
    Setup {
        /// Which destination.
        what: String,
        /// Why.
        reason: String,
    },
    /// This is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}
