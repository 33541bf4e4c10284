//! Trickled write-back for the big files the store writes: Parquet parts,
//! from flushes and merges.
//!
//! Left alone, the pages of a part stay dirty in the page cache until the
//! part's final fsync, which then hands the disk tens of megabytes at once.
//! Every write-ahead-log commit that arrives meanwhile queues its
//! `fdatasync` behind that burst, and ingest's acknowledgements wait with
//! it. [`WriteBack`] sends a part's pages to the disk as it is written, a
//! chunk at a time, and waits for each chunk before writing on: the disk
//! never holds more than one chunk of a part ahead of the log.
//!
//! `python3 benches/fsync_latency.py --dir target` measures this: while
//! another thread writes 16 MiB files, a 300 KiB log commit's p99 was 19–21
//! ms with one fsync per file and 6–8 ms with 256 KiB chunks. (An ad-hoc
//! timing of that writer: 340–375 MB/s in chunks, 575–620 MB/s whole;
//! flushes and merges need a few MB/s.)
//!
//! Only Linux has `sync_file_range(2)`; elsewhere [`WriteBack`] is a plain
//! file and the final fsync does all the work, as before.

use std::fs::File;
use std::io::{self, Write};

/// How many bytes of a part are written before they are sent to the disk
/// and waited for.
pub const CHUNK: u64 = 256 * 1024;

/// A file written front to back whose pages go to the disk [`CHUNK`] by
/// [`CHUNK`] as they are written. It makes nothing durable: its owner still
/// fsyncs the file when done, which then has at most a chunk left to write.
pub struct WriteBack {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes already sent to the disk and waited for.
    sent: u64,
}

impl WriteBack {
    /// Wraps a file opened for writing at its start.
    pub fn new(file: File) -> WriteBack {
        WriteBack {
            file,
            written: 0,
            sent: 0,
        }
    }

    /// The file, for its fsync.
    pub fn into_inner(self) -> File {
        self.file
    }
}

impl Write for WriteBack {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        while self.written - self.sent >= CHUNK {
            write_and_wait(&self.file, self.sent, CHUNK)?;
            self.sent += CHUNK;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts write-back of `len` bytes of `file` from `offset` and waits for
/// it (and for any write-back of that range already under way).
#[cfg(target_os = "linux")]
fn write_and_wait(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: the descriptor belongs to `file`, which the borrow keeps open
    // for the whole call; sync_file_range reads and writes none of our
    // memory.
    #[allow(unsafe_code)]
    let status = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn write_and_wait(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_byte_in_order_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part");
        let mut out = WriteBack::new(File::create(&path).unwrap());
        let data: Vec<u8> = (0..(CHUNK as usize * 3 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        for piece in data.chunks(10_000) {
            out.write_all(piece).unwrap();
        }
        assert_eq!(out.sent, CHUNK * 3, "three whole chunks were sent");
        out.into_inner().sync_all().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
}
