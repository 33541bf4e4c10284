//! The error type of `grayscope-store`.

use grayscope_core::Table;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when writing to the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A batch whose schema is not the table's. This is a bug in the caller
    /// (ingest builds batches from the shared schema), not bad user input.
    #[error("internal error: batch for table {table} does not have the table's schema")]
    SchemaMismatch {
        /// The table the batch was meant for.
        table: Table,
    },
}
