//! The error type of `grayscope-store`.

use std::path::PathBuf;
use std::sync::Arc;

use grayscope_core::Table;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A batch whose schema is not the table's. This is a bug in the caller
    /// (ingest builds batches from the shared schema), not bad user input.
    #[error("internal error: batch for table {table} does not have the table's schema")]
    SchemaMismatch {
        /// The table the batch was meant for.
        table: Table,
    },
    /// The write-ahead log directory could not be opened, listed, read or
    /// prepared for writing.
    #[error("cannot open the write-ahead log at {}", path.display())]
    OpenWal {
        /// The file or directory that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process (or another `Wal` in this one) holds the directory.
    #[error("the write-ahead log at {} is in use by another writer", path.display())]
    WalLocked {
        /// The WAL directory.
        path: PathBuf,
    },
    /// A segment was written by a format version this build cannot read.
    /// Nothing was skipped: open the directory with the matching build.
    #[error("write-ahead log segment {} has format version {version}, this build reads 1 to {supported}", path.display())]
    UnsupportedWalVersion {
        /// The segment.
        path: PathBuf,
        /// The version in its header.
        version: u32,
        /// The newest version this build reads (and the one it writes).
        supported: u32,
    },
    /// The log holds a record that only the appender's
    /// [`Rebuild`](crate::wal::Rebuild) can read, and none was given.
    /// Nothing was skipped: open the store as the server does.
    #[error("write-ahead log segment {} holds a source record (LSN {lsn}) and the log was opened without a way to rebuild it", path.display())]
    WalNeedsRebuild {
        /// The segment.
        path: PathBuf,
        /// The record's LSN.
        lsn: u64,
    },
    /// A batch could not be encoded as an Arrow IPC record. A bug, not bad
    /// input: batches come from the table schemas.
    #[error("internal error: cannot encode a {table} batch for the write-ahead log")]
    EncodeWal {
        /// The batch's table.
        table: Table,
        /// The Arrow error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// Writing a commit group (or creating a segment) failed. The records of
    /// that group were not acknowledged; the log refuses appends until reopened.
    #[error("cannot write to the write-ahead log segment {}", path.display())]
    WriteWal {
        /// The segment.
        path: PathBuf,
        /// The I/O error, shared by every append of the group.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// fsync of a segment failed. The records of that group were not
    /// acknowledged; the log refuses appends until reopened, because after a
    /// failed fsync the kernel may have dropped the dirty pages.
    #[error("cannot fsync the write-ahead log segment {}", path.display())]
    SyncWal {
        /// The segment.
        path: PathBuf,
        /// The I/O error, shared by every append of the group.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An earlier write or fsync failed, so this append was refused. Reopen
    /// the log (which recovers what is intact) to write again.
    #[error("the write-ahead log refuses appends after a failed write or fsync of {}; reopen it", path.display())]
    WalPoisoned {
        /// The segment whose write or fsync failed.
        path: PathBuf,
        /// The original failure.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The log was closed (or its committer stopped) before the append was
    /// written. The append was not acknowledged.
    #[error("the write-ahead log is closed")]
    WalClosed,
    /// Writing a Parquet part failed; the memtable stays in memory and in
    /// the write-ahead log, and the flush is retried.
    #[error("cannot write the Parquet part {}", path.display())]
    WritePart {
        /// The file or directory that failed.
        path: PathBuf,
        /// The I/O or Parquet error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Parquet part on disk could not be read.
    #[error("cannot read the Parquet part {}: {reason}", path.display())]
    ReadPart {
        /// The part.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A store directory could not be created or listed.
    #[error("cannot use the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The memtables hold `memory_limit` bytes: flushes have not kept up.
    /// Nothing was written; the caller should retry after `retry_after`.
    #[error(
        "the store is over its memory limit ({used} of {limit} bytes in memtables); retry later"
    )]
    Backpressure {
        /// Bytes held by memtables.
        used: usize,
        /// The configured limit.
        limit: usize,
        /// A hint for when to retry.
        retry_after: std::time::Duration,
    },
    /// The store is shutting down.
    #[error("the store is closed")]
    Closed,
    /// A background thread (a compaction's) could not be started.
    #[error("cannot start a background thread")]
    SpawnThread {
        /// The error from the operating system.
        #[source]
        source: std::io::Error,
    },
    /// Deleting segments behind a flush failed.
    #[error("cannot delete the write-ahead log segment {}", path.display())]
    TruncateWal {
        /// The segment (or directory) that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
