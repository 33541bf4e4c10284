//! The bytes on disk: segment names, segment headers, record frames and the
//! payloads (an Arrow IPC stream, or a source the appender can rebuild the
//! batch from). The layout is described in the [`wal`](super) module docs;
//! this file is the only place that knows it.

use std::io::Cursor;
use std::ops::RangeInclusive;

use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use grayscope_core::Table;

use super::{Lsn, Rebuild};

/// First eight bytes of every segment.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"GRAYWAL\n";
/// The format this build writes.
pub(super) const FORMAT_VERSION: u32 = 3;
/// The formats this build reads: version 1 had only IPC records, and its
/// kind byte is always 0; versions 1 and 2 have no end markers, and their
/// segments end where the file does. One reader serves all three.
pub(super) const READABLE_VERSIONS: RangeInclusive<u32> = 1..=FORMAT_VERSION;
/// Length of the segment header; records start here.
pub(super) const SEGMENT_HEADER_LEN: usize = 32;
/// First four bytes of every record header; lets recovery find the next
/// record after a damaged header.
pub(super) const RECORD_MARKER: [u8; 4] = *b"GREC";
/// Length of a record header.
pub(super) const RECORD_HEADER_LEN: usize = 32;
/// First four bytes of an end marker, written after every commit group.
pub(super) const END_MARKER: [u8; 4] = *b"GEND";
/// Length of an end marker.
pub(super) const END_MARKER_LEN: usize = 32;
/// Records (and so every header) start at multiples of this.
pub(super) const ALIGN: usize = 8;
/// Where payload padding is taken from.
const ZEROS: [u8; ALIGN] = [0; ALIGN];
/// Suffix of a segment file.
pub(super) const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of a segment being created; never holds acknowledged data.
pub(super) const TEMP_SUFFIX: &str = ".wal.tmp";
/// Suffix of a truncated segment kept to be overwritten as a later one;
/// never holds data that is still needed.
pub(super) const FREE_SUFFIX: &str = ".wal.free";

/// The file name of the segment whose first record has `first_lsn`:
/// zero-padded so that names sort in LSN order.
pub(super) fn segment_file_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{SEGMENT_SUFFIX}")
}

/// The first LSN named by a segment file name, if `name` is one.
pub(super) fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a new segment.
pub(super) fn segment_header(first_lsn: Lsn) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The name a truncated segment is kept under until it is reused.
pub(super) fn free_file_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{FREE_SUFFIX}")
}

/// What a segment header says, once its magic and checksum are right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    pub(super) version: u32,
    pub(super) first_lsn: Lsn,
}

/// Parses a segment header; `None` if it is short, has the wrong magic or
/// fails its checksum.
pub(super) fn parse_segment_header(bytes: &[u8]) -> Option<SegmentHeader> {
    let header = bytes.get(..SEGMENT_HEADER_LEN)?;
    if header[0..8] != SEGMENT_MAGIC || crc32c::crc32c(&header[0..28]) != read_u32(header, 28) {
        return None;
    }
    Some(SegmentHeader {
        version: read_u32(header, 8),
        first_lsn: read_u64(header, 16),
    })
}

/// The end marker written after a commit group: the segment's records
/// end here, and the next record will have `next_lsn`. The next group is
/// written over it.
pub(super) fn end_marker(segment_first_lsn: Lsn, next_lsn: Lsn) -> [u8; END_MARKER_LEN] {
    let mut marker = [0u8; END_MARKER_LEN];
    marker[0..4].copy_from_slice(&END_MARKER);
    marker[8..16].copy_from_slice(&segment_first_lsn.to_le_bytes());
    marker[16..24].copy_from_slice(&next_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&marker[8..32]);
    marker[4..8].copy_from_slice(&crc.to_le_bytes());
    marker
}

/// What an intact end marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct EndMarker {
    /// The first LSN of the segment it was written to: a marker left
    /// behind by an earlier use of a recycled file names another segment.
    pub(super) segment_first_lsn: Lsn,
    pub(super) next_lsn: Lsn,
}

/// Parses the end marker at the start of `bytes`; `None` if `bytes` is
/// shorter than a marker, the magic is wrong or the checksum fails.
pub(super) fn parse_end_marker(bytes: &[u8]) -> Option<EndMarker> {
    let marker = bytes.get(..END_MARKER_LEN)?;
    if marker[0..4] != END_MARKER || crc32c::crc32c(&marker[8..32]) != read_u32(marker, 4) {
        return None;
    }
    Some(EndMarker {
        segment_first_lsn: read_u64(marker, 8),
        next_lsn: read_u64(marker, 16),
    })
}

/// What a record's payload holds (byte 13 of its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PayloadKind {
    /// An Arrow IPC stream of the batch itself.
    Batch,
    /// The batch's source: bytes that the [`Rebuild`] given to
    /// [`Wal::open`](super::Wal::open) turns back into the batch.
    Source,
}

impl PayloadKind {
    fn id(self) -> u8 {
        match self {
            PayloadKind::Batch => 0,
            PayloadKind::Source => 1,
        }
    }

    fn from_id(id: u8) -> Option<PayloadKind> {
        match id {
            0 => Some(PayloadKind::Batch),
            1 => Some(PayloadKind::Source),
            _ => None,
        }
    }
}

/// One record, encoded on the appender's side: everything but the LSN,
/// which the committer assigns in write order.
#[derive(Debug)]
pub(super) struct EncodedRecord {
    /// The table.
    pub(super) table: Table,
    /// What `payload` holds.
    pub(super) kind: PayloadKind,
    /// The payload, in pieces written one after the other, without the
    /// padding (written as a separate slice).
    pub(super) payload: Vec<Bytes>,
    /// Total length of `payload`.
    pub(super) payload_len: u32,
    /// CRC32C of `payload` followed by its padding.
    pub(super) payload_crc: u32,
}

impl EncodedRecord {
    /// Encodes `batch` as an IPC stream (schema + one batch) and checksums it.
    pub(super) fn encode(table: Table, batch: &RecordBatch) -> Result<Self, ArrowError> {
        // The IPC body is about the size of the arrays' buffers; reserving
        // it up front avoids regrowing a large Vec several times.
        let mut payload = Vec::with_capacity(batch.get_array_memory_size() / 2 + 4096);
        {
            let mut writer = StreamWriter::try_new(&mut payload, &batch.schema())?;
            writer.write(batch)?;
            writer.finish()?;
        }
        Self::new(table, PayloadKind::Batch, vec![Bytes::from(payload)])
    }

    /// A record holding `source`, the bytes (in pieces, concatenated) a
    /// batch of `table` is rebuilt from; checksummed, not copied.
    pub(super) fn source(table: Table, source: Vec<Bytes>) -> Result<Self, ArrowError> {
        Self::new(table, PayloadKind::Source, source)
    }

    fn new(table: Table, kind: PayloadKind, payload: Vec<Bytes>) -> Result<Self, ArrowError> {
        let total: usize = payload.iter().map(Bytes::len).sum();
        let payload_len = u32::try_from(total).map_err(|_| {
            ArrowError::InvalidArgumentError(format!(
                "a write-ahead log record holds at most 4 GiB, this one has {total} bytes"
            ))
        })?;
        let crc = payload
            .iter()
            .fold(0, |crc, piece| crc32c::crc32c_append(crc, piece));
        let payload_crc = crc32c::crc32c_append(crc, &ZEROS[..padding(total)]);
        Ok(EncodedRecord {
            table,
            kind,
            payload,
            payload_len,
            payload_crc,
        })
    }

    /// The zeros written after the payload.
    pub(super) fn padding(&self) -> &'static [u8] {
        &ZEROS[..padding(self.payload_len as usize)]
    }

    /// Bytes this record takes on disk, header included.
    pub(super) fn disk_len(&self) -> usize {
        RECORD_HEADER_LEN + padded(self.payload_len as usize)
    }

    /// The record header for this record at `lsn`.
    pub(super) fn header(&self, lsn: Lsn) -> [u8; RECORD_HEADER_LEN] {
        record_header(
            lsn,
            self.table,
            self.kind,
            self.payload_len,
            self.payload_crc,
        )
    }
}

/// Builds a record header.
pub(super) fn record_header(
    lsn: Lsn,
    table: Table,
    kind: PayloadKind,
    payload_len: u32,
    payload_crc: u32,
) -> [u8; RECORD_HEADER_LEN] {
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(&RECORD_MARKER);
    header[8..12].copy_from_slice(&payload_len.to_le_bytes());
    header[12] = table_id(table);
    header[13] = kind.id();
    header[16..24].copy_from_slice(&lsn.to_le_bytes());
    header[24..28].copy_from_slice(&payload_crc.to_le_bytes());
    let crc = crc32c::crc32c(&header[8..32]);
    header[4..8].copy_from_slice(&crc.to_le_bytes());
    header
}

/// A record header whose marker and checksum are right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordHeader {
    pub(super) lsn: Lsn,
    /// `None` for a table id this build does not know.
    pub(super) table: Option<Table>,
    /// `None` for a payload kind this build does not know.
    pub(super) kind: Option<PayloadKind>,
    pub(super) payload_len: u32,
    pub(super) payload_crc: u32,
}

impl RecordHeader {
    /// Bytes the record takes on disk, header and padding included.
    pub(super) fn disk_len(&self) -> usize {
        RECORD_HEADER_LEN + padded(self.payload_len as usize)
    }
}

/// Parses the record header at the start of `bytes`; `None` if `bytes` is
/// shorter than a header, the marker is wrong or the checksum fails.
pub(super) fn parse_record_header(bytes: &[u8]) -> Option<RecordHeader> {
    let header = bytes.get(..RECORD_HEADER_LEN)?;
    if header[0..4] != RECORD_MARKER || crc32c::crc32c(&header[8..32]) != read_u32(header, 4) {
        return None;
    }
    Some(RecordHeader {
        payload_len: read_u32(header, 8),
        table: table_from_id(header[12]),
        kind: PayloadKind::from_id(header[13]),
        lsn: read_u64(header, 16),
        payload_crc: read_u32(header, 24),
    })
}

/// Turns a record payload (without padding) back into its batch: decodes
/// an IPC stream, or hands a source to `rebuild`. The error says why not.
pub(super) fn decode_payload(
    kind: PayloadKind,
    table: Table,
    payload: &[u8],
    rebuild: Option<&dyn Rebuild>,
) -> Result<RecordBatch, String> {
    match kind {
        PayloadKind::Batch => decode_ipc(payload).map_err(|error| error.to_string()),
        PayloadKind::Source => match rebuild {
            Some(rebuild) => rebuild.rebuild(table, payload),
            None => Err("a source record, and the log was opened without a rebuild".to_owned()),
        },
    }
}

/// Decodes an IPC stream of one batch.
fn decode_ipc(payload: &[u8]) -> Result<RecordBatch, ArrowError> {
    let mut reader = StreamReader::try_new(Cursor::new(payload), None)?;
    let batch = reader
        .next()
        .ok_or_else(|| ArrowError::IpcError("the IPC stream holds no batch".to_owned()))??;
    if reader.next().is_some() {
        return Err(ArrowError::IpcError(
            "the IPC stream holds more than one batch".to_owned(),
        ));
    }
    Ok(batch)
}

/// `len` rounded up to [`ALIGN`].
pub(super) fn padded(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// The zeros that follow a payload of `len` bytes.
fn padding(len: usize) -> usize {
    padded(len) - len
}

fn table_id(table: Table) -> u8 {
    match table {
        Table::Spans => 1,
        Table::Logs => 2,
        Table::Metrics => 3,
        Table::Verdicts => 4,
    }
}

fn table_from_id(id: u8) -> Option<Table> {
    match id {
        1 => Some(Table::Spans),
        2 => Some(Table::Logs),
        3 => Some(Table::Metrics),
        4 => Some(Table::Verdicts),
        _ => None,
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_in_lsn_order_and_parse_back() {
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert!(segment_file_name(9) < segment_file_name(10));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(
            parse_segment_file_name("00000000000000000042.wal.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("42.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.wal"), None);
    }

    #[test]
    fn segment_header_round_trips_and_rejects_any_flipped_byte() {
        let header = segment_header(7);
        assert_eq!(
            parse_segment_header(&header),
            Some(SegmentHeader {
                version: FORMAT_VERSION,
                first_lsn: 7
            })
        );
        for at in 0..SEGMENT_HEADER_LEN {
            let mut bad = header;
            bad[at] ^= 0x10;
            assert_eq!(parse_segment_header(&bad), None, "byte {at}");
        }
        assert_eq!(parse_segment_header(&header[..31]), None);
    }

    #[test]
    fn end_marker_round_trips_and_rejects_any_flipped_byte() {
        let marker = end_marker(7, 12);
        assert_eq!(
            parse_end_marker(&marker),
            Some(EndMarker {
                segment_first_lsn: 7,
                next_lsn: 12
            })
        );
        assert_eq!(marker.len() % ALIGN, 0);
        // Neither kind of header reads as the other.
        assert_eq!(parse_record_header(&marker), None);
        assert_eq!(
            parse_end_marker(&record_header(7, Table::Spans, PayloadKind::Batch, 8, 1)),
            None
        );
        for at in 0..END_MARKER_LEN {
            let mut bad = marker;
            bad[at] ^= 0x04;
            assert_eq!(parse_end_marker(&bad), None, "byte {at}");
        }
        assert_eq!(parse_end_marker(&marker[..31]), None);
    }

    #[test]
    fn free_names_are_not_segment_names() {
        assert_eq!(free_file_name(42), "00000000000000000042.wal.free");
        assert_eq!(parse_segment_file_name(&free_file_name(42)), None);
    }

    #[test]
    fn record_header_round_trips_and_rejects_any_flipped_byte() {
        let header = record_header(
            u64::MAX - 1,
            Table::Logs,
            PayloadKind::Source,
            123_456,
            0xdead_beef,
        );
        let parsed = parse_record_header(&header).unwrap();
        assert_eq!(parsed.lsn, u64::MAX - 1);
        assert_eq!(parsed.table, Some(Table::Logs));
        assert_eq!(parsed.kind, Some(PayloadKind::Source));
        assert_eq!(parsed.payload_len, 123_456);
        assert_eq!(parsed.payload_crc, 0xdead_beef);
        assert_eq!(parsed.disk_len(), RECORD_HEADER_LEN + 123_456);
        for at in 0..RECORD_HEADER_LEN {
            let mut bad = header;
            bad[at] ^= 0x01;
            assert_eq!(parse_record_header(&bad), None, "byte {at}");
        }
    }

    #[test]
    fn a_version_1_header_reads_as_a_batch_record() {
        // Version 1 wrote zeros where the kind byte now is.
        let header = record_header(9, Table::Spans, PayloadKind::Batch, 8, 1);
        assert_eq!(header[13], 0);
        assert_eq!(
            parse_record_header(&header).unwrap().kind,
            Some(PayloadKind::Batch)
        );
        assert!(READABLE_VERSIONS.contains(&1));
    }

    #[test]
    fn a_batch_payload_checksums_its_padding_and_decodes_to_the_batch() {
        let batch = RecordBatch::new_empty(Table::Metrics.schema());
        let record = EncodedRecord::encode(Table::Metrics, &batch).unwrap();
        let on_disk = [&record.payload[0][..], record.padding()].concat();
        assert_eq!(on_disk.len() % ALIGN, 0);
        assert_eq!(record.disk_len(), RECORD_HEADER_LEN + on_disk.len());
        assert_eq!(record.payload_crc, crc32c::crc32c(&on_disk));
        let decoded =
            decode_payload(PayloadKind::Batch, Table::Metrics, &record.payload[0], None).unwrap();
        assert_eq!(decoded, batch);
        let half = &record.payload[0][..record.payload_len as usize / 2];
        assert!(decode_payload(PayloadKind::Batch, Table::Metrics, half, None).is_err());
    }

    #[test]
    fn a_source_payload_is_kept_as_given_and_only_its_rebuild_reads_it() {
        struct Echo;
        impl Rebuild for Echo {
            fn rebuild(&self, table: Table, source: &[u8]) -> Result<RecordBatch, String> {
                match source {
                    b"abc" => Ok(RecordBatch::new_empty(table.schema())),
                    _ => Err("not abc".to_owned()),
                }
            }
        }
        let source = vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
        let record = EncodedRecord::source(Table::Spans, source.clone()).unwrap();
        assert_eq!(record.payload, source);
        assert_eq!(record.disk_len(), RECORD_HEADER_LEN + 8);
        assert_eq!(record.padding(), &[0u8; 5][..]);
        assert_eq!(record.payload_crc, crc32c::crc32c(b"abc\0\0\0\0\0"));
        let rebuilt = decode_payload(
            PayloadKind::Source,
            Table::Spans,
            b"abc",
            Some(&Echo as &dyn Rebuild),
        )
        .unwrap();
        assert_eq!(rebuilt.schema(), Table::Spans.schema());
        let refused = decode_payload(
            PayloadKind::Source,
            Table::Spans,
            b"abd",
            Some(&Echo as &dyn Rebuild),
        );
        assert_eq!(refused.unwrap_err(), "not abc");
        assert!(decode_payload(PayloadKind::Source, Table::Spans, b"abc", None).is_err());
    }
}
