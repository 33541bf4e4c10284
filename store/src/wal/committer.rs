//! The committer thread (group commit, segment rotation) and the interval
//! flusher, with the state they share with [`Wal`](super::Wal) handles.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, oneshot};

use super::direct::{self, DirectWrites};
use super::format::{
    END_MARKER_LEN, EncodedRecord, SEGMENT_HEADER_LEN, TEMP_SUFFIX, end_marker, free_file_name,
    segment_file_name, segment_header,
};
use super::recovery::SegmentFile;
use super::{Apply, Lsn, SyncPolicy, WalOptions, WalStats, sync_dir};
use crate::error::{Error, Result};

/// What a [`Wal`](super::Wal) handle sends to the committer.
pub(super) enum Message {
    /// Write, sync, apply, then answer.
    Append(Pending),
    /// Drain what was sent before, fsync, stop.
    Close(oneshot::Sender<Result<()>>),
}

/// One append waiting for its commit group.
pub(super) struct Pending {
    pub(super) record: EncodedRecord,
    pub(super) batch: RecordBatch,
    pub(super) reply: oneshot::Sender<Result<Lsn>>,
}

/// State shared by the handles, the committer and the flusher.
pub(super) struct Shared {
    pub(super) dir: PathBuf,
    options: WalOptions,
    /// Every segment on disk in LSN order; the last is being written.
    segments: Mutex<Vec<SegmentFile>>,
    /// Truncated segment files kept to be overwritten as new segments,
    /// oldest first; at most [`WalOptions::recycle_segments`].
    free: Mutex<Vec<PathBuf>>,
    /// Segments started by overwriting a free one, since open.
    recycled_segments: AtomicU64,
    /// Whether new segments are written with `O_DIRECT`: wanted (see
    /// [`WalOptions::direct_io`]) and not refused by the file system yet.
    direct_io: AtomicBool,
    /// Set once, by the first failed write or fsync.
    poison: OnceLock<(PathBuf, Arc<io::Error>)>,
    /// What the interval flusher syncs: set when a segment is created.
    written: Mutex<Option<Written>>,
    last_lsn: AtomicU64,
    durable_lsn: AtomicU64,
    commit_groups: AtomicU64,
    fsyncs: AtomicU64,
    appended_bytes: AtomicU64,
    appended_records: AtomicU64,
    recovered_records: u64,
    damaged_ranges: u64,
    #[cfg(test)]
    pub(super) faults: Faults,
}

/// The segment being written and the last LSN written to it.
struct Written {
    file: Arc<File>,
    path: PathBuf,
    lsn: Lsn,
}

/// Failures that tests inject into the next write or fsync.
#[cfg(test)]
#[derive(Default)]
pub(super) struct Faults {
    pub(super) fail_write: std::sync::atomic::AtomicBool,
    pub(super) fail_sync: std::sync::atomic::AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic (plain values), so a
    // poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(
        dir: PathBuf,
        options: WalOptions,
        segments: Vec<SegmentFile>,
        free: Vec<PathBuf>,
        last_lsn: Lsn,
        recovered_records: u64,
        damaged_ranges: u64,
    ) -> Shared {
        let direct_io = options.direct_io && options.sync == SyncPolicy::EveryCommit;
        Shared {
            dir,
            options,
            segments: Mutex::new(segments),
            free: Mutex::new(free),
            recycled_segments: AtomicU64::new(0),
            direct_io: AtomicBool::new(direct_io),
            poison: OnceLock::new(),
            written: Mutex::new(None),
            last_lsn: AtomicU64::new(last_lsn),
            // Recovery fsynced every segment it kept.
            durable_lsn: AtomicU64::new(last_lsn),
            commit_groups: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            appended_bytes: AtomicU64::new(0),
            appended_records: AtomicU64::new(0),
            recovered_records,
            damaged_ranges,
            #[cfg(test)]
            faults: Faults::default(),
        }
    }

    /// Fails if an earlier write or fsync failed.
    pub(super) fn check_poisoned(&self) -> Result<()> {
        match self.poison.get() {
            Some((path, source)) => Err(Error::WalPoisoned {
                path: path.clone(),
                source: source.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&self, path: &Path, error: Arc<io::Error>) {
        tracing::error!(
            segment = %path.display(),
            %error,
            "write-ahead log write or fsync failed; refusing appends until reopened"
        );
        let _ = self.poison.set((path.to_path_buf(), error));
    }

    /// fsyncs a segment file (data and size: `fdatasync`).
    fn sync_file(&self, file: &File) -> io::Result<()> {
        #[cfg(test)]
        if self.faults.fail_sync.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected fsync failure"));
        }
        file.sync_data()?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The interval flusher's work: fsync what was written since last time.
    fn sync_written(&self) {
        if self.poison.get().is_some() {
            return;
        }
        let Some((file, path, lsn)) = lock(&self.written)
            .as_ref()
            .map(|w| (w.file.clone(), w.path.clone(), w.lsn))
        else {
            return;
        };
        if lsn <= self.durable_lsn.load(Ordering::Acquire) {
            return;
        }
        match self.sync_file(&file) {
            Ok(()) => {
                self.durable_lsn.fetch_max(lsn, Ordering::AcqRel);
            }
            // Appends up to `lsn` were acknowledged already (that is the
            // policy's loss window); later ones must not be.
            Err(error) => self.poison(&path, Arc::new(error)),
        }
    }

    pub(super) fn truncate_before(&self, lsn: Lsn) -> Result<()> {
        // Files are renamed or unlinked outside the lock, which the
        // committer takes on every commit.
        let victims: Vec<SegmentFile> = {
            let mut segments = lock(&self.segments);
            // A segment's records all have LSNs below the next segment's
            // first LSN; the last segment is being written and always stays.
            let covered = segments
                .windows(2)
                .take_while(|pair| pair[1].first_lsn <= lsn)
                .count();
            segments.drain(..covered).collect()
        };
        let mut failure = None;
        let (mut kept, mut deleted) = (0, 0);
        for (done, victim) in victims.iter().enumerate() {
            match self.retire(victim) {
                Ok(true) => kept += 1,
                Ok(false) => deleted += 1,
                Err(source) => {
                    // Still on disk: keep it listed, in LSN order.
                    lock(&self.segments).splice(0..0, victims[done..].iter().cloned());
                    failure = Some(Error::TruncateWal {
                        path: victim.path.clone(),
                        source,
                    });
                    break;
                }
            }
        }
        if kept + deleted > 0 {
            tracing::debug!(
                kept_for_reuse = kept,
                deleted,
                before_lsn = lsn,
                "write-ahead log segments truncated"
            );
            sync_dir(&self.dir).map_err(|source| Error::TruncateWal {
                path: self.dir.clone(),
                source,
            })?;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Takes a truncated segment off the log: renamed to be reused while
    /// fewer than [`WalOptions::recycle_segments`] wait (`Ok(true)`),
    /// deleted otherwise. Deleting a large file can keep the disk busy for
    /// tens of milliseconds (it discards the blocks), and commits queue
    /// behind it; reusing it also makes later commits overwrite blocks the
    /// file system already allocated.
    fn retire(&self, segment: &SegmentFile) -> io::Result<bool> {
        let mut free = lock(&self.free);
        if free.len() < self.options.recycle_segments {
            let target = self.dir.join(free_file_name(segment.first_lsn));
            match fs::rename(&segment.path, &target) {
                Ok(()) => {
                    free.push(target);
                    return Ok(true);
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(error) => return Err(error),
            }
        }
        drop(free);
        match fs::remove_file(&segment.path) {
            Ok(()) => Ok(false),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub(super) fn stats(&self) -> WalStats {
        let (bytes_on_disk, segments) = {
            let segments = lock(&self.segments);
            (segments.iter().map(|s| s.bytes).sum(), segments.len())
        };
        WalStats {
            bytes_on_disk,
            segments,
            last_lsn: self.last_lsn.load(Ordering::Acquire),
            durable_lsn: self.durable_lsn.load(Ordering::Acquire),
            commit_groups: self.commit_groups.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            appended_bytes: self.appended_bytes.load(Ordering::Relaxed),
            appended_records: self.appended_records.load(Ordering::Relaxed),
            free_segments: lock(&self.free).len(),
            recycled_segments: self.recycled_segments.load(Ordering::Relaxed),
            recovered_records: self.recovered_records,
            damaged_ranges: self.damaged_ranges,
            poisoned: self.poison.get().is_some(),
        }
    }

    /// Creates the segment whose first record will be `first_lsn`: its
    /// header and an end marker written and fsynced under another name,
    /// renamed into place, directory fsynced. Overwrites a free segment if
    /// one waits, else writes a new file. Returns the path, the file, and
    /// the state of its direct writes if it is written with `O_DIRECT`.
    fn create_segment(&self, first_lsn: Lsn) -> io::Result<(PathBuf, File, Option<DirectWrites>)> {
        let name = segment_file_name(first_lsn);
        let path = self.dir.join(&name);
        if path.exists() {
            // Recovery starts LSNs above every segment name; this is a bug,
            // and renaming over the file would destroy records.
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "internal error: the new segment's name is taken",
            ));
        }
        let mut start = Vec::with_capacity(SEGMENT_HEADER_LEN + END_MARKER_LEN);
        start.extend_from_slice(&segment_header(first_lsn));
        start.extend_from_slice(&end_marker(first_lsn, first_lsn));
        // A free file keeps its old records behind the new header: their
        // LSNs are below `first_lsn`, and recovery stops at the marker.
        // While it has its `.free` name, recovery never reads it.
        let free = lock(&self.free).pop();
        let recycled = match free {
            Some(free) => match self.start_file(&free, false, &start) {
                Ok((file, direct)) => Some((free, file, direct)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => None,
                Err(error) => return Err(error),
            },
            None => None,
        };
        let (temp, file, direct) = match recycled {
            Some(recycled) => {
                self.recycled_segments.fetch_add(1, Ordering::Relaxed);
                recycled
            }
            None => {
                let temp = self
                    .dir
                    .join(format!("{}{TEMP_SUFFIX}", first_lsn_digits(&name)));
                let (file, direct) = self.start_file(&temp, true, &start)?;
                (temp, file, direct)
            }
        };
        self.sync_file(&file)?;
        fs::rename(&temp, &path)?;
        sync_dir(&self.dir)?;
        Ok((path, file, direct))
    }

    /// Opens (or creates) the file at `path` and writes `start`, the
    /// segment's header and first end marker, at its beginning: directly if
    /// direct I/O is wanted and the file system takes it, else through the
    /// page cache (and then for every later segment too).
    fn start_file(
        &self,
        path: &Path,
        create: bool,
        start: &[u8],
    ) -> io::Result<(File, Option<DirectWrites>)> {
        if self.direct_io.load(Ordering::Relaxed) {
            if let Some(file) = direct::open(path, create)? {
                let mut writes = DirectWrites::default();
                match writes.write(&file, 0, &[IoSlice::new(start)], SEGMENT_HEADER_LEN as u64) {
                    Ok(()) => return Ok((file, Some(writes))),
                    Err(error) if direct::refused(&error) => {}
                    Err(error) => return Err(error),
                }
            }
            self.direct_io.store(false, Ordering::Relaxed);
            tracing::warn!(
                dir = %self.dir.display(),
                "the file system refuses direct I/O; the write-ahead log writes through the page cache"
            );
        }
        let mut options = OpenOptions::new();
        options.write(true);
        if create {
            options.create(true).truncate(true);
        }
        let mut file = options.open(path)?;
        file.write_all(start)?;
        Ok((file, None))
    }
}

/// The bytes a segment whose end marker ends at `end` takes on disk:
/// direct writes fill whole blocks.
fn on_disk(end: u64, direct: bool) -> u64 {
    if direct {
        end.next_multiple_of(direct::BLOCK as u64)
    } else {
        end
    }
}

fn first_lsn_digits(segment_name: &str) -> &str {
    segment_name
        .strip_suffix(super::format::SEGMENT_SUFFIX)
        .unwrap_or(segment_name)
}

/// Which step of a commit failed.
enum Step {
    Write,
    Sync,
}

/// The owner of the segment being written. Runs on its own thread.
pub(super) struct Committer {
    shared: Arc<Shared>,
    apply: Arc<dyn Apply>,
    file: Arc<File>,
    path: PathBuf,
    /// How `file` is written when it was opened with `O_DIRECT`.
    direct: Option<DirectWrites>,
    /// The first LSN of the segment being written.
    segment_first_lsn: Lsn,
    /// Where the segment's records end, and its end marker starts: the
    /// next commit group is written here.
    file_bytes: u64,
    next_lsn: Lsn,
    /// Held (flocked) for the committer's lifetime.
    _lock: File,
}

impl Committer {
    /// Creates the first segment, starting at `next_lsn`.
    pub(super) fn start(
        shared: Arc<Shared>,
        next_lsn: Lsn,
        apply: Arc<dyn Apply>,
        lock_file: File,
    ) -> Result<Committer> {
        let (path, file, direct) =
            shared
                .create_segment(next_lsn)
                .map_err(|source| Error::OpenWal {
                    path: shared.dir.join(segment_file_name(next_lsn)),
                    source,
                })?;
        let file = Arc::new(file);
        lock(&shared.segments).push(SegmentFile {
            first_lsn: next_lsn,
            path: path.clone(),
            bytes: on_disk(
                (SEGMENT_HEADER_LEN + END_MARKER_LEN) as u64,
                direct.is_some(),
            ),
        });
        *lock(&shared.written) = Some(Written {
            file: file.clone(),
            path: path.clone(),
            lsn: shared.last_lsn.load(Ordering::Acquire),
        });
        Ok(Committer {
            shared,
            apply,
            file,
            path,
            direct,
            segment_first_lsn: next_lsn,
            file_bytes: SEGMENT_HEADER_LEN as u64,
            next_lsn,
            _lock: lock_file,
        })
    }

    /// Starts the committer thread (and the flusher thread of
    /// [`SyncPolicy::Interval`]).
    pub(super) fn spawn(self, receiver: mpsc::Receiver<Message>) -> Result<JoinHandle<()>> {
        let dir = self.shared.dir.clone();
        let spawn_error = |source| Error::OpenWal { path: dir, source };
        let flusher = match self.shared.options.sync {
            SyncPolicy::EveryCommit => None,
            SyncPolicy::Interval(every) => match Flusher::start(self.shared.clone(), every) {
                Ok(flusher) => Some(flusher),
                Err(source) => return Err(spawn_error(source)),
            },
        };
        thread::Builder::new()
            .name("grayscope-wal".to_owned())
            .spawn(move || self.run(receiver, flusher))
            .map_err(spawn_error)
    }

    fn run(mut self, mut receiver: mpsc::Receiver<Message>, flusher: Option<Flusher>) {
        let max_group_bytes = self.shared.options.max_group_bytes;
        let mut carry: Option<Pending> = None;
        let close = loop {
            let mut group = Vec::new();
            let mut group_bytes = 0;
            let mut close = None;
            match carry
                .take()
                .map(Message::Append)
                .or_else(|| receiver.blocking_recv())
            {
                Some(Message::Append(pending)) => {
                    group_bytes += pending.record.disk_len();
                    group.push(pending);
                }
                Some(Message::Close(reply)) => close = Some(reply),
                // Every handle is gone without a close.
                None => break None,
            }
            // Everything that queued up while the last group was being
            // written and synced goes into this one.
            while close.is_none() && group_bytes < max_group_bytes {
                match receiver.try_recv() {
                    Ok(Message::Append(pending)) => {
                        if group_bytes + pending.record.disk_len() > max_group_bytes {
                            carry = Some(pending);
                            break;
                        }
                        group_bytes += pending.record.disk_len();
                        group.push(pending);
                    }
                    Ok(Message::Close(reply)) => close = Some(reply),
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit(group);
            }
            if close.is_some() {
                break close;
            }
        };
        receiver.close();
        while let Ok(message) = receiver.try_recv() {
            match message {
                Message::Append(pending) => {
                    let _ = pending.reply.send(Err(Error::WalClosed));
                }
                Message::Close(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        if let Some(flusher) = flusher {
            flusher.stop();
        }
        let result = self.finish();
        match close {
            Some(reply) => {
                let _ = reply.send(result);
            }
            None => {
                if let Err(error) = result {
                    tracing::error!(%error, "write-ahead log could not be synced when dropped");
                }
            }
        }
    }

    /// Writes, syncs, applies and answers one commit group.
    fn commit(&mut self, group: Vec<Pending>) {
        if self.shared.poison.get().is_some() {
            for pending in group {
                let refused = self.shared.check_poisoned().map(|()| 0);
                let _ = pending.reply.send(refused);
            }
            return;
        }
        // A segment holds at least one record, however small segment_size.
        if self.file_bytes >= self.shared.options.segment_size
            && self.file_bytes > SEGMENT_HEADER_LEN as u64
            && let Err((step, path, error)) = self.rotate()
        {
            return self.fail(group, step, &path, error);
        }

        let first_lsn = self.next_lsn;
        let headers: Vec<_> = (first_lsn..)
            .zip(&group)
            .map(|(lsn, pending)| pending.record.header(lsn))
            .collect();
        let mut slices = Vec::with_capacity(group.len() * 4);
        for (header, pending) in headers.iter().zip(&group) {
            slices.push(IoSlice::new(header));
            slices.extend(
                pending
                    .record
                    .payload
                    .iter()
                    .map(|piece| IoSlice::new(piece)),
            );
            let padding = pending.record.padding();
            if !padding.is_empty() {
                slices.push(IoSlice::new(padding));
            }
        }
        let marker = end_marker(self.segment_first_lsn, first_lsn + group.len() as u64);
        slices.push(IoSlice::new(&marker));
        let group_bytes: u64 = group.iter().map(|p| p.record.disk_len() as u64).sum();
        if let Err(error) = self.write_all(&mut slices, group_bytes) {
            let path = self.path.clone();
            return self.fail(group, Step::Write, &path, error);
        }
        drop(slices);

        let count = group.len() as u64;
        let last_lsn = first_lsn + count - 1;
        self.next_lsn += count;
        self.file_bytes += group_bytes;
        if let Some(segment) = lock(&self.shared.segments).last_mut() {
            segment.bytes = on_disk(
                self.file_bytes + END_MARKER_LEN as u64,
                self.direct.is_some(),
            );
        }
        self.shared.last_lsn.store(last_lsn, Ordering::Release);
        self.shared.commit_groups.fetch_add(1, Ordering::Relaxed);
        self.shared
            .appended_bytes
            .fetch_add(group_bytes, Ordering::Relaxed);
        self.shared
            .appended_records
            .fetch_add(count, Ordering::Relaxed);

        match self.shared.options.sync {
            SyncPolicy::EveryCommit => {
                if let Err(error) = self.shared.sync_file(&self.file) {
                    let path = self.path.clone();
                    return self.fail(group, Step::Sync, &path, error);
                }
                self.shared
                    .durable_lsn
                    .fetch_max(last_lsn, Ordering::AcqRel);
            }
            SyncPolicy::Interval(_) => {
                if let Some(written) = lock(&self.shared.written).as_mut() {
                    written.lsn = last_lsn;
                }
            }
        }

        let mut replies = Vec::with_capacity(group.len());
        for (lsn, pending) in (first_lsn..).zip(group) {
            self.apply.apply(lsn, pending.record.table, pending.batch);
            replies.push((lsn, pending.reply));
        }
        for (lsn, reply) in replies {
            let _ = reply.send(Ok(lsn));
        }
    }

    /// Poisons the log and fails every append of the group.
    fn fail(&self, group: Vec<Pending>, step: Step, path: &Path, error: io::Error) {
        let source = Arc::new(error);
        self.shared.poison(path, source.clone());
        for pending in group {
            let path = path.to_path_buf();
            let source = source.clone();
            let _ = pending.reply.send(Err(match step {
                Step::Write => Error::WriteWal { path, source },
                Step::Sync => Error::SyncWal { path, source },
            }));
        }
    }

    /// Writes `slices` where the segment's records end, over its end marker
    /// (and, in a recycled file, over what an earlier use left there);
    /// `records_len` of their bytes are records, the rest the end marker.
    fn write_all(&mut self, mut slices: &mut [IoSlice<'_>], records_len: u64) -> io::Result<()> {
        #[cfg(test)]
        if self.shared.faults.fail_write.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected write failure"));
        }
        if let Some(direct) = &mut self.direct {
            return direct.write(&self.file, self.file_bytes, slices, records_len);
        }
        let mut file = &*self.file;
        file.seek(SeekFrom::Start(self.file_bytes))?;
        while !slices.is_empty() {
            match file.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => IoSlice::advance_slices(&mut slices, written),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Moves on to a new segment starting at the next LSN.
    fn rotate(&mut self) -> std::result::Result<(), (Step, PathBuf, io::Error)> {
        let last_lsn = self.next_lsn - 1;
        if self.shared.durable_lsn.load(Ordering::Acquire) < last_lsn {
            // Interval policy: the flusher only ever syncs the newest
            // segment, so the old one's tail is synced before leaving it.
            self.shared
                .sync_file(&self.file)
                .map_err(|error| (Step::Sync, self.path.clone(), error))?;
            self.shared
                .durable_lsn
                .fetch_max(last_lsn, Ordering::AcqRel);
        }
        let (path, file, direct) = self.shared.create_segment(self.next_lsn).map_err(|error| {
            (
                Step::Write,
                self.shared.dir.join(segment_file_name(self.next_lsn)),
                error,
            )
        })?;
        let file = Arc::new(file);
        lock(&self.shared.segments).push(SegmentFile {
            first_lsn: self.next_lsn,
            path: path.clone(),
            bytes: on_disk(
                (SEGMENT_HEADER_LEN + END_MARKER_LEN) as u64,
                direct.is_some(),
            ),
        });
        *lock(&self.shared.written) = Some(Written {
            file: file.clone(),
            path: path.clone(),
            lsn: last_lsn,
        });
        tracing::debug!(segment = %path.display(), "write-ahead log segment started");
        self.file = file;
        self.path = path;
        self.direct = direct;
        self.segment_first_lsn = self.next_lsn;
        self.file_bytes = SEGMENT_HEADER_LEN as u64;
        Ok(())
    }

    /// The final fsync of a close (or of the last handle going away).
    fn finish(&self) -> Result<()> {
        self.shared.check_poisoned()?;
        let last_lsn = self.next_lsn - 1;
        if self.shared.durable_lsn.load(Ordering::Acquire) < last_lsn {
            self.shared
                .sync_file(&self.file)
                .map_err(|source| Error::SyncWal {
                    path: self.path.clone(),
                    source: Arc::new(source),
                })?;
            self.shared
                .durable_lsn
                .fetch_max(last_lsn, Ordering::AcqRel);
        }
        Ok(())
    }
}

/// The background fsync of [`SyncPolicy::Interval`].
struct Flusher {
    stop: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Flusher {
    fn start(shared: Arc<Shared>, every: Duration) -> io::Result<Flusher> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("grayscope-wal-flush".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    shared.sync_written();
                }
            })?;
        Ok(Flusher { stop, thread })
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}
