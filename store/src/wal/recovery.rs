//! Reading a WAL directory back: every intact record, every damaged range.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    ALIGN, END_MARKER, END_MARKER_LEN, EndMarker, FREE_SUFFIX, PayloadKind, READABLE_VERSIONS,
    RECORD_HEADER_LEN, RECORD_MARKER, SEGMENT_HEADER_LEN, TEMP_SUFFIX, decode_payload,
    parse_end_marker, parse_record_header, parse_segment_file_name, parse_segment_header,
};
use super::{
    Damage, DamageKind, FORMAT_VERSION, Lsn, Rebuild, RecoveredRecord, Recovery, sync_dir,
};
use crate::error::{Error, Result};

/// A segment file that stays on disk after recovery.
#[derive(Debug, Clone)]
pub(super) struct SegmentFile {
    /// The LSN in its name: no record in it has a lower one, and every record
    /// of the previous segment has a lower one.
    pub(super) first_lsn: Lsn,
    pub(super) path: PathBuf,
    pub(super) bytes: u64,
}

/// What [`recover`] found.
#[derive(Debug)]
pub(super) struct Recovered {
    pub(super) recovery: Recovery,
    /// Segments to keep, in LSN order.
    pub(super) segments: Vec<SegmentFile>,
    /// Undamaged segments without a single record: they carry nothing, and
    /// are deleted once the new segment exists.
    pub(super) empty: Vec<PathBuf>,
    /// Truncated segments kept for reuse (`.wal.free`), oldest first.
    pub(super) free: Vec<PathBuf>,
    /// The highest LSN that any readable record header or segment name
    /// carries; new LSNs start above it, so no LSN is ever reused and no
    /// new segment name collides with an old one.
    pub(super) high_lsn: Lsn,
}

/// Reads every segment of `dir` in LSN order, rebuilding source records
/// with `rebuild`. Leftover temporary segment files (a crash while creating
/// a segment; they never hold records) are deleted; truncated segments kept
/// for reuse are listed, not read.
pub(super) fn recover(dir: &Path, rebuild: Option<Arc<dyn Rebuild>>) -> Result<Recovered> {
    let open_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::OpenWal { path, source }
    };
    let mut found = Vec::new();
    let mut free = Vec::new();
    let mut removed_temp = false;
    for entry in fs::read_dir(dir).map_err(open_error(dir))? {
        let entry = entry.map_err(open_error(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMP_SUFFIX) {
            fs::remove_file(entry.path()).map_err(open_error(&entry.path()))?;
            removed_temp = true;
        } else if name.ends_with(FREE_SUFFIX) {
            free.push(entry.path());
        } else if let Some(first_lsn) = parse_segment_file_name(name) {
            found.push((first_lsn, entry.path()));
        }
    }
    if removed_temp {
        sync_dir(dir).map_err(open_error(dir))?;
    }
    found.sort();
    free.sort();

    let mut scan = Scan {
        rebuild,
        ..Scan::default()
    };
    let mut segments = Vec::new();
    let mut empty = Vec::new();
    for (first_lsn, path) in found {
        let data = fs::read(&path).map_err(open_error(&path))?;
        // What a killed process wrote may still be only in the page cache;
        // once replayed it counts as durable, so make it so.
        fs::File::open(&path)
            .and_then(|file| file.sync_all())
            .map_err(open_error(&path))?;
        let outcome = scan.segment(&path, first_lsn, &data)?;
        if outcome.clean_and_empty {
            empty.push(path);
        } else {
            segments.push(SegmentFile {
                first_lsn,
                path,
                bytes: data.len() as u64,
            });
        }
    }
    Ok(Recovered {
        recovery: Recovery {
            records: scan.records,
            damage: scan.damage,
        },
        segments,
        empty,
        free,
        high_lsn: scan.high_lsn,
    })
}

/// Scans one segment's bytes as [`recover`] does, without touching files.
#[cfg(test)]
pub(super) fn scan_segment(path: &Path, first_lsn: Lsn, data: &[u8]) -> Result<Recovery> {
    let mut scan = Scan::default();
    scan.segment(path, first_lsn, data)?;
    Ok(Recovery {
        records: scan.records,
        damage: scan.damage,
    })
}

#[derive(Default)]
struct Scan {
    rebuild: Option<Arc<dyn Rebuild>>,
    records: Vec<RecoveredRecord>,
    damage: Vec<Damage>,
    /// LSN of the last record whose header was intact; the next one must
    /// be higher.
    last_lsn: Lsn,
    high_lsn: Lsn,
}

struct SegmentOutcome {
    clean_and_empty: bool,
}

impl Scan {
    fn segment(&mut self, path: &Path, first_lsn: Lsn, data: &[u8]) -> Result<SegmentOutcome> {
        self.high_lsn = self.high_lsn.max(first_lsn);
        let records_before = self.records.len();
        let damage_before = self.damage.len();
        // Whether the segment ends with an end marker (version 3 on; a
        // damaged header is taken to be of the version this build writes).
        let mut has_end_marker = true;
        match parse_segment_header(data) {
            Some(header) if !READABLE_VERSIONS.contains(&header.version) => {
                // Skipping a whole segment of a format we cannot read would
                // lose data silently; refuse instead.
                return Err(Error::UnsupportedWalVersion {
                    path: path.to_path_buf(),
                    version: header.version,
                    supported: FORMAT_VERSION,
                });
            }
            Some(header) if header.first_lsn == first_lsn => {
                has_end_marker = header.version >= 3;
            }
            _ => {
                // The records carry their own marker, checksum and LSN, so a
                // damaged segment header costs only its own bytes: the scan
                // below still finds every intact record behind it.
                self.report(
                    path,
                    0,
                    data.len().min(SEGMENT_HEADER_LEN),
                    None,
                    DamageKind::BadSegmentHeader,
                );
            }
        }

        let mut pos = SEGMENT_HEADER_LEN;
        // Where the segment's records end: an end marker, or (versions 1 and
        // 2, or a group whose marker was not written) the end of the file.
        let mut end = data.len();
        while pos < data.len() {
            let min_lsn = (self.last_lsn + 1).max(first_lsn);
            let rest = data.len() - pos;
            if let Some(marker) = parse_end_marker(&data[pos..])
                && ends_segment(marker, first_lsn, min_lsn)
            {
                // Behind it are bytes of an earlier use of the file, unless a
                // power loss kept later parts of a group whose start (which
                // overwrote this marker) never reached the disk. Those records
                // were never acknowledged, but are read and the gap reported.
                let after = pos + END_MARKER_LEN;
                match next_valid_header(data, after, min_lsn, first_lsn) {
                    Some(next) => {
                        self.report(path, pos, next - pos, None, DamageKind::BadRecordHeader);
                        pos = next;
                        continue;
                    }
                    None => {
                        end = pos;
                        break;
                    }
                }
            }
            let header = parse_record_header(&data[pos..]).filter(|h| h.lsn >= min_lsn);
            let Some(header) = header else {
                if rest < RECORD_HEADER_LEN {
                    self.report(path, pos, rest, None, DamageKind::TornTail);
                    break;
                }
                match next_valid_header(data, pos + ALIGN, min_lsn, first_lsn) {
                    Some(next) => {
                        self.report(path, pos, next - pos, None, DamageKind::BadRecordHeader);
                        pos = next;
                        continue;
                    }
                    None => {
                        // Nothing intact up to the end, not even the end
                        // marker: the last write was torn (in a reused file,
                        // old bytes follow what it wrote). Without end
                        // markers only zeros (a write that the file system
                        // extended but never filled) say so.
                        let kind = if has_end_marker || data[pos..].iter().all(|&b| b == 0) {
                            DamageKind::TornTail
                        } else {
                            DamageKind::BadRecordHeader
                        };
                        self.report(path, pos, rest, None, kind);
                        break;
                    }
                }
            };
            self.high_lsn = self.high_lsn.max(header.lsn);
            let len = header.disk_len();
            if len > rest {
                self.report(path, pos, rest, Some(header.lsn), DamageKind::TornTail);
                break;
            }
            // The header checksum vouches for the length, so a damaged
            // payload costs exactly this record.
            self.last_lsn = header.lsn;
            let padded_payload = &data[pos + RECORD_HEADER_LEN..pos + len];
            if crc32c::crc32c(padded_payload) != header.payload_crc {
                if has_end_marker
                    && next_valid_header(data, pos + len, header.lsn + 1, first_lsn).is_none()
                {
                    // Nothing intact follows, not even the end marker: the
                    // write of this record was cut short, over old bytes.
                    self.report(path, pos, rest, Some(header.lsn), DamageKind::TornTail);
                    break;
                }
                self.report(
                    path,
                    pos,
                    len,
                    Some(header.lsn),
                    DamageKind::ChecksumMismatch,
                );
            } else {
                let payload = &padded_payload[..header.payload_len as usize];
                if header.kind == Some(PayloadKind::Source) && self.rebuild.is_none() {
                    // Reporting it as damage would let the log be truncated
                    // behind it: refuse to open instead.
                    return Err(Error::WalNeedsRebuild {
                        path: path.to_path_buf(),
                        lsn: header.lsn,
                    });
                }
                let decoded = match (header.table, header.kind) {
                    (Some(table), Some(kind)) => {
                        decode_payload(kind, table, payload, self.rebuild.as_deref())
                            .map(|batch| (table, batch))
                    }
                    (None, _) => Err("a table id this build does not know".to_owned()),
                    (_, None) => Err("a payload kind this build does not know".to_owned()),
                };
                match decoded {
                    Ok((table, batch)) => self.records.push(RecoveredRecord {
                        lsn: header.lsn,
                        table,
                        batch,
                    }),
                    Err(reason) => {
                        tracing::warn!(
                            segment = %path.display(),
                            lsn = header.lsn,
                            %reason,
                            "write-ahead log record does not decode"
                        );
                        self.report(path, pos, len, Some(header.lsn), DamageKind::Undecodable);
                    }
                }
            }
            pos += len;
        }
        Ok(SegmentOutcome {
            clean_and_empty: self.records.len() == records_before
                && self.damage.len() == damage_before
                && end == SEGMENT_HEADER_LEN,
        })
    }

    fn report(
        &mut self,
        path: &Path,
        offset: usize,
        bytes: usize,
        lsn: Option<Lsn>,
        kind: DamageKind,
    ) {
        self.damage.push(Damage {
            segment: path.to_path_buf(),
            offset: offset as u64,
            bytes: bytes as u64,
            lsn,
            kind,
        });
    }
}

/// Whether `marker`, found where the next record of the segment starting at
/// `first_lsn` would be, ends that segment. A marker names its segment, so
/// one left by an earlier use of a recycled file never does.
fn ends_segment(marker: EndMarker, first_lsn: Lsn, min_lsn: Lsn) -> bool {
    marker.segment_first_lsn == first_lsn && marker.next_lsn >= min_lsn
}

/// The offset of the next intact record header whose LSN is at least
/// `min_lsn`, or end marker that ends the segment starting at `first_lsn`,
/// at or after `from` (which is aligned).
fn next_valid_header(data: &[u8], from: usize, min_lsn: Lsn, first_lsn: Lsn) -> Option<usize> {
    let mut pos = from;
    while pos + RECORD_HEADER_LEN.min(END_MARKER_LEN) <= data.len() {
        let magic = &data[pos..pos + 4];
        if (magic == RECORD_MARKER
            && parse_record_header(&data[pos..]).is_some_and(|h| h.lsn >= min_lsn))
            || (magic == END_MARKER
                && parse_end_marker(&data[pos..])
                    .is_some_and(|m| ends_segment(m, first_lsn, min_lsn)))
        {
            return Some(pos);
        }
        pos += ALIGN;
    }
    None
}
