//! Writing segments straight to the disk (`O_DIRECT`), past the page cache.
//!
//! With [`SyncPolicy::EveryCommit`](super::SyncPolicy) every commit waits
//! for the disk anyway, so the page cache buys the log nothing: each
//! buffered `write` only copied the group into page-cache pages, which the
//! `fdatasync` then wrote out. That copy was the costliest part of the
//! committer (13.5 % of the server's CPU, flat out; `copy_folio_from_iter_atomic`):
//! a log that grows faster than flushes retire it keeps landing on pages
//! the kernel has just allocated, each one fresh memory to the machine.
//!
//! Direct writes must start and end on block boundaries, from memory
//! aligned the same way. The committer's groups end anywhere, so
//! [`DirectWrites`] keeps the bytes of the block where the records end (the
//! *tail*) and writes each group from the start of that block: the tail
//! again, then the group, then zeros to the block's end. The zeros lie
//! behind the group's end marker, where recovery stops reading, like the
//! stale bytes of a recycled file. The group is gathered into one aligned
//! buffer that lives as long as the committer, so its pages are touched
//! once.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The unit of a direct write: offsets, lengths and the buffer's address
/// are multiples of it. 4 KiB is a multiple of every logical block size
/// Linux disks have (512 or 4096 bytes).
pub(super) const BLOCK: usize = 4096;

/// The most memory kept for gathering groups between writes. A record
/// larger than a commit group is written alone; the buffer it needed is
/// given back afterwards.
const KEEP_BUFFER: usize = 8 << 20;

/// Opens a segment file for direct writes, or `None` when the file system
/// refuses them (`EINVAL`, as tmpfs does).
pub(super) fn open(path: &Path, create: bool) -> io::Result<Option<File>> {
    let mut options = OpenOptions::new();
    options.write(true).custom_flags(libc::O_DIRECT);
    if create {
        options.create(true).truncate(true);
    }
    match options.open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error) if refused(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether `error` is the kernel refusing direct I/O (on this file system,
/// or at this alignment) rather than a failure of the disk.
pub(super) fn refused(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EINVAL)
}

/// The state of direct writes to one segment.
#[derive(Debug, Default)]
pub(super) struct DirectWrites {
    /// The segment's bytes from the start of the block in which its records
    /// end, up to where they end (fewer than [`BLOCK`]).
    tail: Vec<u8>,
    /// Where groups are gathered; the aligned window is found inside it.
    buffer: Vec<u8>,
}

impl DirectWrites {
    /// Writes `slices` at `end`, where the segment's records end (and, for
    /// a new segment, `end` is 0), and notes that the records now end at
    /// `end + records_len`: what follows them in `slices` (the end marker)
    /// is overwritten by the next write.
    pub(super) fn write(
        &mut self,
        file: &File,
        end: u64,
        slices: &[IoSlice<'_>],
        records_len: u64,
    ) -> io::Result<()> {
        let block = BLOCK as u64;
        let block_start = end - end % block;
        if self.tail.len() as u64 != end - block_start {
            return Err(io::Error::other(
                "internal error: the log's tail block does not match its end",
            ));
        }
        let data_len = self.tail.len() + slices.iter().map(|s| s.len()).sum::<usize>();
        let padded = data_len.div_ceil(BLOCK) * BLOCK;
        if self.buffer.len() < padded + BLOCK {
            self.buffer.resize(padded + BLOCK, 0);
        }
        let start = (BLOCK - self.buffer.as_ptr().addr() % BLOCK) % BLOCK;
        let out = &mut self.buffer[start..start + padded];
        let mut at = 0;
        for piece in std::iter::once(&self.tail[..]).chain(slices.iter().map(|s| &**s)) {
            out[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        }
        out[at..].fill(0);
        file.write_all_at(out, block_start)?;

        let new_end = end + records_len;
        let from = usize::try_from(new_end - new_end % block - block_start).unwrap_or(usize::MAX);
        let to = usize::try_from(new_end - block_start).unwrap_or(usize::MAX);
        let tail = out.get(from..to).ok_or_else(|| {
            io::Error::other("internal error: the records end beyond what was written")
        })?;
        self.tail.clear();
        self.tail.extend_from_slice(tail);
        if self.buffer.len() > KEEP_BUFFER {
            self.buffer = Vec::new();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes groups of every length around the block size and checks the
    /// file holds exactly the records, each group's marker overwritten by
    /// the next group, the last one's followed by zeros to its block's end.
    #[test]
    fn groups_of_any_length_land_where_buffered_writes_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let Some(file) = open(&path, true).unwrap() else {
            eprintln!("skipped: the file system of the temporary directory refuses O_DIRECT");
            return;
        };
        let mut writes = DirectWrites::default();
        let mut expected: Vec<u8> = Vec::new();
        let mut end = 0u64;
        for (n, len) in [32, 1, 4063, 4064, 4095, 4096, 4097, 9000, 7, 12_288]
            .into_iter()
            .enumerate()
        {
            let records: Vec<u8> = (0..len).map(|i| (i * 7 + n) as u8 | 1).collect();
            let marker = [0xEE; 32];
            writes
                .write(
                    &file,
                    end,
                    &[IoSlice::new(&records), IoSlice::new(&marker)],
                    len as u64,
                )
                .unwrap();
            expected.extend_from_slice(&records);
            end += len as u64;
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len() % BLOCK, 0, "group {n}");
            assert_eq!(&on_disk[..expected.len()], &expected[..], "group {n}");
            let after = &on_disk[expected.len()..];
            assert_eq!(&after[..32], &marker, "group {n}: the marker follows");
            assert!(after[32..].iter().all(|&b| b == 0), "group {n}: then zeros");
        }
    }

    #[test]
    fn a_tail_that_does_not_match_the_end_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let Some(file) = open(&path, true).unwrap() else {
            return;
        };
        let mut writes = DirectWrites::default();
        let error = writes
            .write(&file, 100, &[IoSlice::new(b"x")], 1)
            .unwrap_err();
        assert!(error.to_string().contains("tail block"), "{error}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
