//! The bytes on disk: segment names, segment headers, record frames and the
//! Arrow IPC payload. The layout is described in the [`wal`](super) module
//! docs; this file is the only place that knows it.

use std::io::Cursor;

use arrow::error::ArrowError;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use grayscope_core::Table;

use super::Lsn;

/// First eight bytes of every segment.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"GRAYWAL\n";
/// The format this build writes and reads.
pub(super) const FORMAT_VERSION: u32 = 1;
/// Length of the segment header; records start here.
pub(super) const SEGMENT_HEADER_LEN: usize = 32;
/// First four bytes of every record header; lets recovery find the next
/// record after a damaged header.
pub(super) const RECORD_MARKER: [u8; 4] = *b"GREC";
/// Length of a record header.
pub(super) const RECORD_HEADER_LEN: usize = 32;
/// Records (and so every header) start at multiples of this.
pub(super) const ALIGN: usize = 8;
/// Suffix of a segment file.
pub(super) const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of a segment being created; never holds acknowledged data.
pub(super) const TEMP_SUFFIX: &str = ".wal.tmp";

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

/// One record, encoded on the appender's side: everything but the LSN,
/// which the committer assigns in write order.
#[derive(Debug)]
pub(super) struct EncodedRecord {
    /// The table.
    pub(super) table: Table,
    /// The IPC stream followed by zero padding to [`ALIGN`].
    pub(super) payload: Vec<u8>,
    /// Length of the IPC stream, without the padding.
    pub(super) payload_len: u32,
    /// CRC32C of `payload`, padding included.
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
        let payload_len = u32::try_from(payload.len()).map_err(|_| {
            ArrowError::InvalidArgumentError(format!(
                "a write-ahead log record holds at most 4 GiB, this batch encodes to {} bytes",
                payload.len()
            ))
        })?;
        payload.resize(padded(payload.len()), 0);
        let payload_crc = crc32c::crc32c(&payload);
        Ok(EncodedRecord {
            table,
            payload,
            payload_len,
            payload_crc,
        })
    }

    /// Bytes this record takes on disk, header included.
    pub(super) fn disk_len(&self) -> usize {
        RECORD_HEADER_LEN + self.payload.len()
    }

    /// The record header for this record at `lsn`.
    pub(super) fn header(&self, lsn: Lsn) -> [u8; RECORD_HEADER_LEN] {
        record_header(lsn, self.table, self.payload_len, self.payload_crc)
    }
}

/// Builds a record header.
pub(super) fn record_header(
    lsn: Lsn,
    table: Table,
    payload_len: u32,
    payload_crc: u32,
) -> [u8; RECORD_HEADER_LEN] {
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[0..4].copy_from_slice(&RECORD_MARKER);
    header[8..12].copy_from_slice(&payload_len.to_le_bytes());
    header[12] = table_id(table);
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
        lsn: read_u64(header, 16),
        payload_crc: read_u32(header, 24),
    })
}

/// Decodes a record payload (without padding) back into its batch.
pub(super) fn decode_payload(payload: &[u8]) -> Result<RecordBatch, ArrowError> {
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
    fn record_header_round_trips_and_rejects_any_flipped_byte() {
        let header = record_header(u64::MAX - 1, Table::Logs, 123_456, 0xdead_beef);
        let parsed = parse_record_header(&header).unwrap();
        assert_eq!(parsed.lsn, u64::MAX - 1);
        assert_eq!(parsed.table, Some(Table::Logs));
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
    fn payload_is_padded_checksummed_and_decodes_to_the_batch() {
        let batch = RecordBatch::new_empty(Table::Metrics.schema());
        let record = EncodedRecord::encode(Table::Metrics, &batch).unwrap();
        assert_eq!(record.payload.len() % ALIGN, 0);
        assert_eq!(record.payload_crc, crc32c::crc32c(&record.payload));
        let decoded = decode_payload(&record.payload[..record.payload_len as usize]).unwrap();
        assert_eq!(decoded, batch);
        assert!(decode_payload(&record.payload[..record.payload_len as usize / 2]).is_err());
    }
}
