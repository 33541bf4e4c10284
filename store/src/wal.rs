//! The write-ahead log: what the store acknowledged is on disk first.
//!
//! Every accepted batch is appended to the log as one record and made durable
//! before [`Wal::append`] returns, so that whatever kills the process —
//! SIGKILL at any instruction, or power loss after the fsync — an acknowledged
//! batch is found again by [`Wal::open`]. Concurrent appends share one write
//! and one fsync (group commit).
//!
//! # How an append travels
//!
//! 1. [`Wal::append`] encodes the batch as an Arrow IPC stream and checksums
//!    it on the caller's side (inline for small batches, on tokio's blocking
//!    pool for large ones), then sends it over a bounded channel. A full
//!    channel makes the caller wait: back-pressure, never a drop.
//!    [`Wal::append_source`] logs the batch's *source* instead — bytes the
//!    caller already holds (in pieces, written one after the other) and can
//!    rebuild the batch from, such as the OTLP request it was converted
//!    from — which costs no encoding and, for spans, about half the bytes
//!    of IPC. Recovery hands those to the [`Rebuild`] in [`WalOptions`].
//! 2. One committer thread owns the segment file. It takes everything pending
//!    (up to [`WalOptions::max_group_bytes`]), assigns LSNs in order, writes
//!    the whole group with one `writev`, and — with
//!    [`SyncPolicy::EveryCommit`] — one `fdatasync`. With that policy the
//!    group goes straight to the disk (`O_DIRECT`, one `pwrite` of whole
//!    blocks: `wal/direct.rs`) unless [`WalOptions::direct_io`] is off or
//!    the file system refuses it.
//! 3. It then calls [`Apply::apply`] for each record in LSN order (the store
//!    inserts into its memtables there, so a memtable always holds a
//!    contiguous LSN prefix) and only then answers the appenders.
//!
//! If a write or fsync fails, every append of that group fails, none is
//! applied, and the log refuses all further appends until it is reopened:
//! after a failed fsync the kernel may already have dropped the dirty pages,
//! so retrying the fsync would report success for data that is gone (the
//! PostgreSQL "fsyncgate" lesson). Reopening recovers what is really on disk.
//!
//! With [`SyncPolicy::Interval`] an append returns after `write(2)`; a
//! background thread fsyncs every interval. A crash of the process loses
//! nothing (the data is in the page cache), power loss loses at most the last
//! interval.
//!
//! # On disk
//!
//! A directory of segment files `<first-lsn>.wal`, the LSN zero-padded to 20
//! digits so that names sort in LSN order, plus a `LOCK` file that one writer
//! at a time holds (`flock`). All integers are little-endian; CRCs are CRC32C
//! (Castagnoli).
//!
//! ```text
//! segment  = segment-header record* [end-marker stale-bytes]
//! segment-header (32 bytes):
//!    0  magic        8  "GRAYWAL\n"
//!    8  version      4  3
//!   12  reserved     4  0
//!   16  first_lsn    8  = the number in the file name
//!   24  reserved     4  0
//!   28  crc          4  CRC32C of bytes 0..28
//! record = record-header payload padding
//! record-header (32 bytes, at an offset that is a multiple of 8):
//!    0  marker       4  "GREC"
//!    4  header_crc   4  CRC32C of bytes 8..32 of this header
//!    8  payload_len  4  length of the IPC stream
//!   12  table        1  1 spans, 2 logs, 3 metrics
//!   13  kind         1  0 batch, 1 source (always 0 in version 1)
//!   14  reserved     2  0
//!   16  lsn          8
//!   24  payload_crc  4  CRC32C of payload + padding
//!   28  reserved     4  0
//! payload = batch | source
//! batch   = an Arrow IPC stream: the schema message, one record batch, end of stream
//! source  = bytes only the appender's Rebuild understands
//! padding = zeros up to the next multiple of 8
//! end-marker (32 bytes, right after the last record):
//!    0  marker       4  "GEND"
//!    4  crc          4  CRC32C of bytes 8..32 of this marker
//!    8  segment      8  the segment's first_lsn
//!   16  next_lsn     8  the LSN the next record will have
//!   24  reserved     8  0
//! stale-bytes = whatever an earlier use of the file left (nothing in a new file),
//!               or zeros to the end of the block after a direct write
//! ```
//!
//! Version 2 added the kind byte, version 3 the end marker; this build reads
//! versions 1 to 3. Each commit group is written with the end marker behind
//! it, over the previous group's marker, so only the last one survives.
//!
//! The header has its own checksum, separate from the payload's, so that a
//! length is trusted only when its header is intact: a damaged payload then
//! costs exactly its record, and a damaged header is passed over by scanning
//! (8 bytes at a time) for the next intact header with a higher LSN (or an
//! end marker of the segment), instead of jumping by a length that may itself
//! be garbage. The fixed marker makes that scan cheap and unlikely to match
//! by chance (a match must also pass a 32-bit CRC and carry an LSN above the
//! last one). Alignment keeps IPC buffers 8-byte aligned in the file, for a
//! future zero-copy replay.
//!
//! A new segment is written as `<first-lsn>.wal.tmp` (header, end marker,
//! fsync), or over a free segment (see below), renamed into place, and the
//! directory is fsynced; a leftover `.tmp` never holds records and is
//! deleted on open. The committer starts a
//! new segment when the current one has reached [`WalOptions::segment_size`],
//! and on every open: nothing is ever appended after bytes that a crash may
//! have torn.
//!
//! # Recycling
//!
//! A truncated segment is not deleted but renamed `<first-lsn>.wal.free`
//! (up to [`WalOptions::recycle_segments`] of them), and the next new segment
//! is written over one: header and end marker at its start, fsync, rename to
//! `<new-first-lsn>.wal`, directory fsync. Deleting a 64 MiB file makes the
//! file system discard its blocks, which can hold the disk, and every commit
//! waiting on an fsync, for tens of milliseconds; overwriting blocks that are
//! already allocated also spares each commit's fsync the journalling of new
//! blocks. The old records behind the new header cannot be mistaken for new
//! ones: their LSNs are all below the segment's first LSN, and old end
//! markers name another segment. Recovery never reads a `.free` file.
//!
//! # Recovery
//!
//! [`Wal::open`] reads the segments in LSN order and returns every intact
//! record in a [`Recovery`], with every damaged byte range reported as a
//! [`Damage`] (and logged) — never silently skipped:
//!
//! - a segment ends cleanly at its end marker, or (versions 1 and 2, or a
//!   group whose marker was never written) where the file ends after a
//!   whole record; if intact records of the segment follow the marker (a
//!   power loss kept the end of an unacknowledged group but not its start),
//!   they are read and the gap is a [`DamageKind::BadRecordHeader`];
//! - a record cut off by the end of the file, or damage behind which nothing
//!   intact follows, not even the end marker (a write cut short, perhaps
//!   over the old bytes of a reused file), is a [`DamageKind::TornTail`];
//! - a record whose header is intact but whose payload fails its checksum is
//!   a [`DamageKind::ChecksumMismatch`], and reading goes on right after it;
//! - a damaged record header is a [`DamageKind::BadRecordHeader`] covering
//!   the bytes up to the next intact record;
//! - a damaged segment header is a [`DamageKind::BadSegmentHeader`] of its
//!   32 bytes; the records behind it are still read;
//! - an intact record whose IPC stream does not decode, or whose source its
//!   [`Rebuild`] refuses, is a [`DamageKind::Undecodable`].
//!
//! A segment with a valid header of a format version this build does not
//! read stops the open with [`Error::UnsupportedWalVersion`], and a source
//! record found without a [`Rebuild`] stops it with
//! [`Error::WalNeedsRebuild`], rather than skipping data. LSNs continue
//! above the highest LSN found in any readable record header or segment
//! name, so an LSN is never reused; they may skip values across a recovery.

mod committer;
mod direct;
mod format;
mod recovery;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use grayscope_core::Table;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use committer::{Committer, Message, Pending, Shared};
use format::{EncodedRecord, FORMAT_VERSION};

/// A log sequence number: assigned by the WAL in write order, strictly
/// increasing, also across restarts. The first record of a new log has
/// LSN 1; 0 means "none".
pub type Lsn = u64;

/// How appends are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync every commit group before its appends return. Acknowledged
    /// data survives power loss. The default.
    EveryCommit,
    /// An append returns after `write(2)`; a background thread fsyncs every
    /// interval. Acknowledged data survives a process crash but power loss
    /// may lose up to one interval of it.
    Interval(Duration),
}

/// Turns the source of a batch, logged by [`Wal::append_source`], back into
/// the batch; recovery calls it for every source record it replays.
///
/// It must give back exactly the batch that was appended with the source,
/// also after a restart with another configuration, and must not depend on
/// state that a restart loses.
pub trait Rebuild: Send + Sync + 'static {
    /// The batch of `table` that `source` was logged for, or why it cannot
    /// be rebuilt (the record is then reported as damage).
    fn rebuild(&self, table: Table, source: &[u8]) -> std::result::Result<RecordBatch, String>;
}

impl fmt::Debug for dyn Rebuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rebuild")
    }
}

/// Settings of a [`Wal`].
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// When appends are fsynced. Default: [`SyncPolicy::EveryCommit`].
    pub sync: SyncPolicy,
    /// Start a new segment once the current one holds this many bytes
    /// (a segment is deleted whole, so this is the granularity of
    /// [`Wal::truncate_before`]). Default: 64 MiB.
    pub segment_size: u64,
    /// Most bytes written by one commit group; a larger single record is
    /// written alone. Default: 4 MiB.
    pub max_group_bytes: usize,
    /// Appends that may wait for the committer before
    /// [`Wal::append`] itself waits (back-pressure). Default: 256.
    pub queue_capacity: usize,
    /// The lowest LSN new appends may get. The store passes one past the
    /// highest LSN its Parquet parts cover, so that a log directory that
    /// was lost or wiped never hands out numbers the parts already claim.
    /// Default: 1.
    pub min_next_lsn: Lsn,
    /// Rebuilds the batches of source records during recovery. A log that
    /// holds source records does not open without one. Default: none.
    pub rebuild: Option<Arc<dyn Rebuild>>,
    /// Truncated segments kept (renamed `<lsn>.wal.free`) to be overwritten
    /// as new segments instead of being deleted; the rest are deleted.
    /// Costs up to this many times `segment_size` of disk. Default: 4.
    pub recycle_segments: usize,
    /// With [`SyncPolicy::EveryCommit`], write segments with `O_DIRECT`,
    /// past the page cache (see `wal/direct.rs`); a file system that
    /// refuses it (tmpfs) gets buffered writes. Default: true.
    pub direct_io: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            sync: SyncPolicy::EveryCommit,
            segment_size: 64 << 20,
            max_group_bytes: 4 << 20,
            queue_capacity: 256,
            min_next_lsn: 1,
            rebuild: None,
            recycle_segments: 4,
            direct_io: true,
        }
    }
}

/// What the WAL calls once a record is durable (per the [`SyncPolicy`]) and
/// before its append returns.
///
/// Called on the committer thread, one record at a time, in LSN order.
/// It holds up every later append, so it must be quick, must not block on
/// anything that waits for an append, and must not call the [`Wal`].
/// Not called during recovery: [`Recovery::records`] are the caller's to
/// replay.
pub trait Apply: Send + Sync + 'static {
    /// `batch` of `table` was durably logged as `lsn`.
    fn apply(&self, lsn: Lsn, table: Table, batch: RecordBatch);
}

impl<F> Apply for F
where
    F: Fn(Lsn, Table, RecordBatch) + Send + Sync + 'static,
{
    fn apply(&self, lsn: Lsn, table: Table, batch: RecordBatch) {
        self(lsn, table, batch)
    }
}

/// One intact record found by [`Wal::open`].
#[derive(Debug, Clone)]
pub struct RecoveredRecord {
    /// Its LSN.
    pub lsn: Lsn,
    /// Its table.
    pub table: Table,
    /// The batch, as appended.
    pub batch: RecordBatch,
}

/// Why a byte range of a segment could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// The file ends inside a record, or (format version 3 on) nothing
    /// intact follows the range, not even the segment's end marker: a write
    /// that a crash cut short. The range reaches to the end of the file.
    TornTail,
    /// An intact header, but the payload fails its checksum. Exactly this
    /// record is skipped.
    ChecksumMismatch,
    /// A record header with the wrong marker, a failed checksum or an LSN
    /// out of order. The range reaches to the next intact record (or the end
    /// of the segment).
    BadRecordHeader,
    /// The segment header is short or damaged. The records behind it are
    /// still read.
    BadSegmentHeader,
    /// The record's checksums pass but its payload does not decode: an IPC
    /// stream that does not read, a source that the [`Rebuild`] refuses, or
    /// a table id or payload kind this build does not know.
    Undecodable,
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DamageKind::TornTail => "torn tail",
            DamageKind::ChecksumMismatch => "checksum mismatch",
            DamageKind::BadRecordHeader => "bad record header",
            DamageKind::BadSegmentHeader => "bad segment header",
            DamageKind::Undecodable => "undecodable payload",
        })
    }
}

/// A byte range that recovery could not read and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the range starts in it.
    pub offset: u64,
    /// How many bytes were skipped.
    pub bytes: u64,
    /// The LSN of the lost record, when its header was still readable.
    pub lsn: Option<Lsn>,
    /// What was wrong.
    pub kind: DamageKind,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} bytes at offset {} skipped ({})",
            self.segment.display(),
            self.bytes,
            self.offset,
            self.kind
        )?;
        if let Some(lsn) = self.lsn {
            write!(f, ", lsn {lsn}")?;
        }
        Ok(())
    }
}

/// What [`Wal::open`] read back.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Every intact record, in LSN order.
    pub records: Vec<RecoveredRecord>,
    /// Every byte range that was skipped, in file and offset order.
    pub damage: Vec<Damage>,
}

/// Figures of a [`Wal`], for `system` tables and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of all segments: headers, records and end markers, to the end
    /// of the block with direct writes (a reused file may be longer; free
    /// segments are not counted).
    pub bytes_on_disk: u64,
    /// Segment files, the one being written included.
    pub segments: usize,
    /// The highest LSN assigned (written, perhaps not yet durable); after
    /// open, the highest recovered one.
    pub last_lsn: Lsn,
    /// Every LSN up to this one is durable (fsynced).
    pub durable_lsn: Lsn,
    /// Commit groups written since open.
    pub commit_groups: u64,
    /// fsyncs of segment files since open (commits, interval flushes,
    /// rotations and new segment headers; not directory fsyncs).
    pub fsyncs: u64,
    /// Record bytes written since open, headers included.
    pub appended_bytes: u64,
    /// Records written since open.
    pub appended_records: u64,
    /// Truncated segment files waiting to be reused.
    pub free_segments: usize,
    /// Segments started by overwriting a truncated one, since open.
    pub recycled_segments: u64,
    /// Records recovered by open.
    pub recovered_records: u64,
    /// Damaged ranges reported by open.
    pub damaged_ranges: u64,
    /// Whether a write or fsync failed, so the log refuses appends.
    pub poisoned: bool,
}

/// Batches encoding to more than about this many bytes are encoded on
/// tokio's blocking pool rather than on the calling worker (about 50 µs of
/// copying and checksumming).
const INLINE_ENCODE_BYTES: usize = 256 << 10;

/// The write-ahead log. Cheap to clone; clones share the log.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

// Fields drop in declaration order: the sender first, which lets the
// committer drain and stop, then the thread handle, which waits for it.
struct Inner {
    sender: mpsc::Sender<Message>,
    shared: Arc<Shared>,
    committer: CommitterThread,
}

/// Joins the committer when the last handle goes away without
/// [`Wal::close`], so that the directory is released (and what was written
/// fsynced) by the time the drop returns: a process that drops its store
/// and opens it again must find it unlocked.
struct CommitterThread(Mutex<Option<std::thread::JoinHandle<()>>>);

impl CommitterThread {
    fn take(&self) -> Option<std::thread::JoinHandle<()>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Drop for CommitterThread {
    fn drop(&mut self) {
        if let Some(thread) = self.take()
            // Apply may hold the last handle; a thread cannot join itself.
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.shared.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Wal {
    /// Opens the log in `dir` (creating the directory if needed), reads back
    /// every intact record, starts a fresh segment and the committer thread.
    ///
    /// Blocking file I/O: call it at startup or from `spawn_blocking`.
    /// Fails if another writer holds the directory, if a segment has a format
    /// version this build does not read, or on I/O errors; damage inside
    /// segments is not an error but is reported in [`Recovery::damage`].
    pub fn open(dir: &Path, options: WalOptions, apply: Arc<dyn Apply>) -> Result<(Wal, Recovery)> {
        let open_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::OpenWal { path, source }
        };
        std::fs::create_dir_all(dir).map_err(open_error(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(open_error(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::WalLocked {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::OpenWal {
                    path: lock_path,
                    source,
                });
            }
        }

        let mut recovered = recovery::recover(dir, options.rebuild.clone())?;
        // More free segments than now wanted (a smaller setting than the
        // last run's): the oldest go.
        let surplus = recovered
            .free
            .len()
            .saturating_sub(options.recycle_segments);
        for path in recovered.free.drain(..surplus) {
            std::fs::remove_file(&path).map_err(open_error(&path))?;
        }
        for damage in &recovered.recovery.damage {
            tracing::warn!(%damage, "write-ahead log damage skipped during recovery");
        }
        let last_recovered = recovered
            .recovery
            .records
            .last()
            .map_or(0, |record| record.lsn);
        let next_lsn = (recovered.high_lsn + 1).max(options.min_next_lsn);
        let shared = Arc::new(Shared::new(
            dir.to_path_buf(),
            options.clone(),
            recovered.segments,
            recovered.free,
            last_recovered,
            recovered.recovery.records.len() as u64,
            recovered.recovery.damage.len() as u64,
        ));
        let committer = Committer::start(shared.clone(), next_lsn, apply, lock)?;
        // The new segment is durable, so undamaged empty ones can go.
        for path in &recovered.empty {
            std::fs::remove_file(path).map_err(open_error(path))?;
        }
        if !recovered.empty.is_empty() {
            sync_dir(dir).map_err(open_error(dir))?;
        }
        tracing::info!(
            dir = %dir.display(),
            records = recovered.recovery.records.len(),
            damaged_ranges = recovered.recovery.damage.len(),
            next_lsn,
            "write-ahead log opened"
        );

        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let thread = committer.spawn(receiver)?;
        let wal = Wal {
            inner: Arc::new(Inner {
                sender,
                shared,
                committer: CommitterThread(Mutex::new(Some(thread))),
            }),
        };
        Ok((wal, recovered.recovery))
    }

    /// Appends `batch` to `table`'s log. Resolves with the record's LSN once
    /// the record is durable per the [`SyncPolicy`] and has been passed to
    /// [`Apply::apply`]; an error means the append was not acknowledged.
    ///
    /// Dropping the future after the record reached the committer does not
    /// take the record back: it may still be written and applied.
    pub async fn append(&self, table: Table, batch: RecordBatch) -> Result<Lsn> {
        self.inner.shared.check_poisoned()?;
        let (record, batch) = if batch.get_array_memory_size() <= INLINE_ENCODE_BYTES {
            (encode(table, &batch)?, batch)
        } else {
            tokio::task::spawn_blocking(move || encode(table, &batch).map(|record| (record, batch)))
                .await
                .map_err(|_| Error::WalClosed)??
        };
        self.commit(record, batch).await
    }

    /// Like [`Wal::append`], but logs `source` instead of encoding `batch`:
    /// recovery gets the batch back from the [`WalOptions::rebuild`] of the
    /// open that reads it. The caller promises that it gives back `batch`.
    pub async fn append_source(
        &self,
        table: Table,
        batch: RecordBatch,
        source: Vec<Bytes>,
    ) -> Result<Lsn> {
        self.inner.shared.check_poisoned()?;
        let record = EncodedRecord::source(table, source)
            .map_err(|source| Error::EncodeWal { table, source })?;
        self.commit(record, batch).await
    }

    /// Hands a record to the committer and waits for its answer.
    async fn commit(&self, record: EncodedRecord, batch: RecordBatch) -> Result<Lsn> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .sender
            .send(Message::Append(Pending {
                record,
                batch,
                reply,
            }))
            .await
            .map_err(|_| Error::WalClosed)?;
        answer.await.map_err(|_| Error::WalClosed)?
    }

    /// Drops every segment all of whose records have an LSN below `lsn`
    /// (never the segment being written): kept for reuse while fewer than
    /// [`WalOptions::recycle_segments`] wait, deleted otherwise. The store
    /// calls it once everything below `lsn` is in Parquet parts.
    ///
    /// Blocking file I/O (one rename or unlink per segment and a directory
    /// fsync).
    pub fn truncate_before(&self, lsn: Lsn) -> Result<()> {
        self.inner.shared.truncate_before(lsn)
    }

    /// The log's figures now.
    pub fn stats(&self) -> WalStats {
        self.inner.shared.stats()
    }

    /// Writes and fsyncs every append sent before this call, stops the
    /// committer and releases the directory. Appends sent afterwards, also
    /// through clones, fail with [`Error::WalClosed`].
    ///
    /// Dropping the last handle without `close` does the same, blocking the
    /// dropping thread until the final fsync is done.
    pub async fn close(self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        let result = match self.inner.sender.send(Message::Close(reply)).await {
            Ok(()) => answer.await.unwrap_or(Err(Error::WalClosed)),
            // Closed already, through a clone.
            Err(_) => Ok(()),
        };
        if let Some(thread) = self.inner.committer.take() {
            // Joining waits until the thread has released the LOCK file, so
            // the directory can be reopened as soon as this returns.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }
}

fn encode(table: Table, batch: &RecordBatch) -> Result<EncodedRecord> {
    EncodedRecord::encode(table, batch).map_err(|source| Error::EncodeWal { table, source })
}

/// fsyncs a directory, so that files created, renamed or deleted in it are.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
