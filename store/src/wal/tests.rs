//! Tests of the write-ahead log: replay, LSNs, group commit, damage,
//! truncation, failure semantics, sync policies and a SIGKILL crash loop.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use arrow::array::{Array, StringArray};
use tempfile::TempDir;

use super::format::{
    END_MARKER_LEN, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, end_marker, parse_end_marker,
    parse_record_header, segment_header,
};
use super::recovery::scan_segment;
use super::*;

/// A spans batch of `rows` rows whose `name` column is `tag`.
fn spans(rows: usize, tag: &str) -> RecordBatch {
    let mut json = String::new();
    for i in 0..rows {
        let start = 1_700_000_000_000_000_000i64 + i as i64 * 1_000;
        json.push_str(&format!(
            concat!(
                r#"{{"time":{start},"end_time":{end},"duration_ns":1500,"#,
                r#""trace_id":"{i:032x}","span_id":"{i:016x}","service":"checkout","#,
                r#""name":"{tag}","kind":"server","status_code":"ok","http_route":"/cart","#,
                r#""http_method":"GET","http_status_code":200,"events":[],"links":[],"#,
                r#""attributes":{{"http.route":"/cart","n":"{i}"}},"#,
                r#""resource_attributes":{{"service.name":"checkout"}},"#,
                r#""scope_attributes":{{}},"cohort":"canary","version":"2.14.1"}}"#,
                "\n"
            ),
            start = start,
            end = start + 1500,
            i = i,
            tag = tag,
        ));
    }
    arrow::json::ReaderBuilder::new(Table::Spans.schema())
        .with_batch_size(rows.max(1))
        .build(Cursor::new(json))
        .unwrap()
        .next()
        .map(|batch| batch.unwrap())
        .unwrap_or_else(|| RecordBatch::new_empty(Table::Spans.schema()))
}

/// The `name` of a spans batch's first row.
fn tag(batch: &RecordBatch) -> String {
    let names = batch
        .column_by_name("name")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(!names.is_empty());
    names.value(0).to_owned()
}

/// Records every `apply` call.
#[derive(Default)]
struct Applied(Mutex<Vec<(Lsn, Table, usize)>>);

impl Apply for Applied {
    fn apply(&self, lsn: Lsn, table: Table, batch: RecordBatch) {
        self.0.lock().unwrap().push((lsn, table, batch.num_rows()));
    }
}

impl Applied {
    fn lsns(&self) -> Vec<Lsn> {
        self.0.lock().unwrap().iter().map(|a| a.0).collect()
    }
}

fn open_with(dir: &Path, options: WalOptions) -> (Wal, Recovery, Arc<Applied>) {
    let applied = Arc::new(Applied::default());
    let (wal, recovery) = Wal::open(dir, options, applied.clone()).unwrap();
    (wal, recovery, applied)
}

fn open(dir: &Path) -> (Wal, Recovery, Arc<Applied>) {
    open_with(dir, WalOptions::default())
}

fn small_segments() -> WalOptions {
    WalOptions {
        segment_size: 1,
        ..WalOptions::default()
    }
}

/// The files of `dir` whose names end with `suffix`, sorted (so in LSN
/// order).
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_str().unwrap().ends_with(suffix))
        .collect();
    paths.sort();
    paths
}

/// The segment files of `dir`, in LSN order.
fn segments(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".wal")
}

/// (offset, length) of every record of an undamaged segment, which ends
/// with its end marker.
fn record_ranges(data: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while let Some(header) = parse_record_header(&data[pos..]) {
        ranges.push((pos, header.disk_len()));
        pos += header.disk_len();
    }
    assert!(parse_end_marker(&data[pos..]).is_some(), "no end marker");
    assert_eq!(pos + END_MARKER_LEN, data.len());
    ranges
}

/// The segment files kept for reuse in `dir`.
fn free_segments(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".wal.free")
}

/// Length of a segment without records: its header and end marker.
const EMPTY_SEGMENT_LEN: usize = SEGMENT_HEADER_LEN + END_MARKER_LEN;

/// A new segment's bytes up to the end of its end marker. Written
/// directly, a segment goes on in zeros to the end of that block.
fn segment_bytes(path: &Path) -> Vec<u8> {
    let mut data = std::fs::read(path).unwrap();
    let mut pos = SEGMENT_HEADER_LEN;
    while let Some(header) = parse_record_header(&data[pos..]) {
        pos += header.disk_len();
    }
    assert!(parse_end_marker(&data[pos..]).is_some(), "no end marker");
    let end = pos + END_MARKER_LEN;
    assert!(
        data[end..].iter().all(|&b| b == 0),
        "only zeros follow the end marker"
    );
    data.truncate(end);
    data
}

/// The one segment of `dir` that holds records, with its bytes up to the
/// end of its end marker.
fn only_nonempty_segment(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut found: Vec<_> = segments(dir)
        .into_iter()
        .map(|path| {
            let data = segment_bytes(&path);
            (path, data)
        })
        .filter(|(_, data)| data.len() > EMPTY_SEGMENT_LEN)
        .collect();
    assert_eq!(found.len(), 1);
    found.remove(0)
}

fn first_lsn_of(path: &Path) -> Lsn {
    let name = path.file_name().unwrap().to_str().unwrap();
    format::parse_segment_file_name(name).unwrap()
}

/// Waits for `condition`, failing after a generous deadline.
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn append_then_reopen_replays_every_record_with_its_lsn_table_and_rows() {
    let dir = TempDir::new().unwrap();
    let (wal, recovery, applied) = open(dir.path());
    assert!(recovery.records.is_empty() && recovery.damage.is_empty());

    let appended = vec![
        (Table::Spans, spans(3, "first")),
        (Table::Logs, RecordBatch::new_empty(Table::Logs.schema())),
        (Table::Spans, spans(0, "")),
        (
            Table::Metrics,
            RecordBatch::new_empty(Table::Metrics.schema()),
        ),
        (Table::Spans, spans(200, "last")),
    ];
    let mut lsns = Vec::new();
    for (table, batch) in &appended {
        let lsn = wal.append(*table, batch.clone()).await.unwrap();
        // Applied before the append returned.
        assert_eq!(applied.lsns().last(), Some(&lsn));
        lsns.push(lsn);
    }
    assert_eq!(lsns, vec![1, 2, 3, 4, 5]);
    assert_eq!(applied.lsns(), lsns);
    let stats = wal.stats();
    assert_eq!((stats.last_lsn, stats.durable_lsn), (5, 5));
    assert_eq!(stats.appended_records, 5);
    let segment_len = stats.appended_bytes + EMPTY_SEGMENT_LEN as u64;
    assert_eq!(
        stats.bytes_on_disk,
        std::fs::metadata(&segments(dir.path())[0]).unwrap().len()
    );
    assert!(
        (segment_len..segment_len + 4096).contains(&stats.bytes_on_disk),
        "records and markers, and zeros to the end of a block with direct writes"
    );
    wal.close().await.unwrap();

    let (wal, recovery, applied) = open(dir.path());
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    assert_eq!(recovery.records.len(), appended.len());
    for ((lsn, (table, batch)), record) in lsns.iter().zip(&appended).zip(&recovery.records) {
        assert_eq!(record.lsn, *lsn);
        assert_eq!(record.table, *table);
        assert_eq!(&record.batch, batch);
    }
    assert!(applied.lsns().is_empty(), "replay does not call apply");
    assert_eq!(wal.stats().recovered_records, 5);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn lsns_continue_across_reopens_and_empty_segments_do_not_pile_up() {
    let dir = TempDir::new().unwrap();
    let (wal, _, _) = open(dir.path());
    for i in 0..3 {
        wal.append(Table::Spans, spans(1, &i.to_string()))
            .await
            .unwrap();
    }
    wal.close().await.unwrap();

    let mut last = 3;
    for _ in 0..4 {
        let (wal, recovery, _) = open(dir.path());
        assert_eq!(recovery.records.last().unwrap().lsn, last);
        assert_eq!(wal.stats().last_lsn, last);
        wal.close().await.unwrap();
        // Reopening without appends leaves the segment with the records and
        // one empty segment, not one more each time.
        assert_eq!(segments(dir.path()).len(), 2);
    }
    let (wal, recovery, _) = open(dir.path());
    let lsn = wal
        .append(Table::Logs, RecordBatch::new_empty(Table::Logs.schema()))
        .await
        .unwrap();
    assert!(lsn > last, "{lsn} after {last}");
    last = lsn;
    assert_eq!(recovery.records.len(), 3);
    wal.close().await.unwrap();

    let (wal, recovery, _) = open(dir.path());
    let lsns: Vec<_> = recovery.records.iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, vec![1, 2, 3, last]);
    wal.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_durable_in_order_and_share_fsyncs() {
    const TASKS: usize = 16;
    const EACH: usize = 25;
    let dir = TempDir::new().unwrap();
    let (wal, _, applied) = open(dir.path());
    let before = wal.stats();

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let wal = wal.clone();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for i in 0..EACH {
                let tag = format!("{task}-{i}");
                let lsn = wal.append(Table::Spans, spans(4, &tag)).await.unwrap();
                acked.push((lsn, tag));
            }
            acked
        });
    }
    let mut acked = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        for (lsn, tag) in result.unwrap() {
            assert!(acked.insert(lsn, tag).is_none(), "lsn {lsn} twice");
        }
    }
    let appends = (TASKS * EACH) as u64;
    assert_eq!(acked.len() as u64, appends);

    let stats = wal.stats();
    let fsyncs = stats.fsyncs - before.fsyncs;
    let groups = stats.commit_groups - before.commit_groups;
    assert!(fsyncs < appends, "{fsyncs} fsyncs for {appends} appends");
    assert_eq!(fsyncs, groups, "EveryCommit syncs each group once");
    // apply saw every record exactly once, in LSN order.
    assert_eq!(applied.lsns(), acked.keys().copied().collect::<Vec<_>>());
    assert_eq!(stats.durable_lsn, *acked.keys().last().unwrap());
    wal.close().await.unwrap();

    let (wal, recovery, _) = open(dir.path());
    let recovered: BTreeMap<_, _> = recovery
        .records
        .iter()
        .map(|r| (r.lsn, tag(&r.batch)))
        .collect();
    assert_eq!(recovered, acked);
    wal.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_group_bytes_caps_a_commit_group() {
    let dir = TempDir::new().unwrap();
    let options = WalOptions {
        max_group_bytes: 1,
        ..WalOptions::default()
    };
    let (wal, _, _) = open_with(dir.path(), options);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let wal = wal.clone();
        tasks.spawn(async move {
            for i in 0..5 {
                wal.append(Table::Spans, spans(2, &format!("{task}-{i}")))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    assert_eq!(wal.stats().commit_groups, 40);
    wal.close().await.unwrap();
}

/// Three records in one segment; returns the segment's path and bytes.
async fn three_records(dir: &Path) -> (PathBuf, Vec<u8>) {
    let (wal, _, _) = open(dir);
    for name in ["one", "two", "three"] {
        wal.append(Table::Spans, spans(2, name)).await.unwrap();
    }
    wal.close().await.unwrap();
    only_nonempty_segment(dir)
}

fn tags(recovery: &Recovery) -> Vec<String> {
    recovery.records.iter().map(|r| tag(&r.batch)).collect()
}

#[tokio::test]
async fn a_tail_torn_at_any_byte_of_the_last_record_keeps_everything_before_it() {
    let dir = TempDir::new().unwrap();
    let (path, data) = three_records(dir.path()).await;
    let (last_offset, last_len) = *record_ranges(&data).last().unwrap();
    assert_eq!(last_offset + last_len + END_MARKER_LEN, data.len());

    let first_lsn = first_lsn_of(&path);
    // Whole, the segment ends cleanly at its end marker.
    let whole = scan_segment(&path, first_lsn, &data).unwrap();
    assert_eq!(tags(&whole), ["one", "two", "three"]);
    assert!(whole.damage.is_empty());
    for cut in 0..last_len {
        let recovery = scan_segment(&path, first_lsn, &data[..last_offset + cut]).unwrap();
        assert_eq!(tags(&recovery), ["one", "two"], "cut {cut}");
        if cut == 0 {
            // The file ends cleanly where the record would have started.
            assert!(recovery.damage.is_empty());
        } else {
            assert_eq!(recovery.damage.len(), 1, "cut {cut}");
            let damage = &recovery.damage[0];
            assert_eq!(damage.kind, DamageKind::TornTail, "cut {cut}");
            assert_eq!(damage.offset, last_offset as u64);
            assert_eq!(damage.bytes, cut as u64);
            // Once the header is whole, the lost LSN is known.
            assert_eq!(damage.lsn.is_some(), cut >= RECORD_HEADER_LEN, "cut {cut}");
        }
    }

    // The same through open: the tear is reported, and new appends go to a
    // new segment, never after the torn bytes.
    let cut = last_offset + last_len / 2;
    std::fs::write(&path, &data[..cut]).unwrap();
    let (wal, recovery, _) = open(dir.path());
    assert_eq!(tags(&recovery), ["one", "two"]);
    assert_eq!(recovery.damage.len(), 1);
    assert_eq!(recovery.damage[0].segment, path);
    assert_eq!(wal.stats().damaged_ranges, 1);
    let lsn = wal.append(Table::Spans, spans(1, "four")).await.unwrap();
    assert_eq!(lsn, 4, "the torn record's LSN 3 is not reused");
    wal.close().await.unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        &data[..cut],
        "torn segment untouched"
    );

    let (wal, recovery, _) = open(dir.path());
    assert_eq!(tags(&recovery), ["one", "two", "four"]);
    assert_eq!(recovery.damage.len(), 1);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn a_flipped_byte_anywhere_in_a_middle_record_skips_exactly_that_record() {
    let dir = TempDir::new().unwrap();
    let (path, data) = three_records(dir.path()).await;
    let (offset, len) = record_ranges(&data)[1];
    let first_lsn = first_lsn_of(&path);

    for at in offset..offset + len {
        // Two flips per header byte, one per payload byte (debug builds
        // decode slowly).
        let flips: &[u8] = if at < offset + RECORD_HEADER_LEN {
            &[0x01, 0x80]
        } else {
            &[0x10]
        };
        for &flip in flips {
            let mut bad = data.clone();
            bad[at] ^= flip;
            let recovery = scan_segment(&path, first_lsn, &bad).unwrap();
            assert_eq!(tags(&recovery), ["one", "three"], "byte {at}");
            assert_eq!(recovery.damage.len(), 1, "byte {at}");
            let damage = &recovery.damage[0];
            assert_eq!(
                (damage.offset, damage.bytes),
                (offset as u64, len as u64),
                "byte {at}"
            );
            let expected = if at < offset + RECORD_HEADER_LEN {
                DamageKind::BadRecordHeader
            } else {
                DamageKind::ChecksumMismatch
            };
            assert_eq!(damage.kind, expected, "byte {at}");
        }
    }

    // Through open, with both neighbours intact.
    let mut bad = data.clone();
    bad[offset + len / 2] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let (wal, recovery, _) = open(dir.path());
    assert_eq!(tags(&recovery), ["one", "three"]);
    assert_eq!(recovery.damage.len(), 1);
    assert_eq!(recovery.damage[0].kind, DamageKind::ChecksumMismatch);
    assert_eq!(recovery.damage[0].lsn, Some(2));
    wal.close().await.unwrap();
}

#[tokio::test]
async fn a_damaged_segment_header_is_reported_and_the_next_segments_are_read() {
    let dir = TempDir::new().unwrap();
    let (wal, _, _) = open_with(dir.path(), small_segments());
    for name in ["a", "b", "c"] {
        wal.append(Table::Spans, spans(1, name)).await.unwrap();
    }
    wal.close().await.unwrap();
    let files: Vec<_> = segments(dir.path())
        .into_iter()
        .filter(|path| std::fs::metadata(path).unwrap().len() > EMPTY_SEGMENT_LEN as u64)
        .collect();
    assert_eq!(files.len(), 3, "one record per segment");
    let middle = files[1].clone();
    let original = std::fs::read(&middle).unwrap();

    // A flipped bit in the header: the header's 32 bytes are reported, the
    // record behind it (which has its own checksums) is still read.
    let mut bad = original.clone();
    bad[17] ^= 0x04;
    std::fs::write(&middle, &bad).unwrap();
    let (wal, recovery, _) = open(dir.path());
    assert_eq!(tags(&recovery), ["a", "b", "c"]);
    assert_eq!(recovery.damage.len(), 1);
    let damage = &recovery.damage[0];
    assert_eq!(damage.segment, middle);
    assert_eq!((damage.offset, damage.bytes), (0, 32));
    assert_eq!(damage.kind, DamageKind::BadSegmentHeader);
    wal.close().await.unwrap();

    // A segment that is only a few garbage bytes: reported, the next
    // segment is read.
    std::fs::write(&middle, b"not a wal").unwrap();
    let (wal, recovery, _) = open(dir.path());
    assert_eq!(tags(&recovery), ["a", "c"]);
    assert_eq!(recovery.damage.len(), 1);
    assert_eq!(recovery.damage[0].kind, DamageKind::BadSegmentHeader);
    assert_eq!(recovery.damage[0].bytes, 9);
    wal.close().await.unwrap();

    // A valid header of another format version stops the open: skipping it
    // would drop records silently.
    let mut newer = segment_header(first_lsn_of(&middle));
    newer[8] = FORMAT_VERSION as u8 + 1;
    let crc = crc32c::crc32c(&newer[0..28]);
    newer[28..32].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&middle, [&newer[..], &original[32..]].concat()).unwrap();
    let applied: Arc<dyn Apply> = Arc::new(Applied::default());
    let error = Wal::open(dir.path(), WalOptions::default(), applied).unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedWalVersion { version, .. } if version == FORMAT_VERSION + 1),
        "{error}"
    );
}

#[tokio::test]
async fn direct_and_buffered_writes_make_the_same_segments() {
    let mut logs = Vec::new();
    for direct_io in [true, false] {
        let dir = TempDir::new().unwrap();
        let options = WalOptions {
            direct_io,
            segment_size: 20_000,
            ..WalOptions::default()
        };
        let (wal, _, _) = open_with(dir.path(), options.clone());
        // Records of many sizes, so that groups end anywhere in a block and
        // segments rotate.
        for i in 0..14 {
            wal.append(Table::Spans, spans(i * 7 % 30 + 1, &format!("r{i}")))
                .await
                .unwrap();
        }
        wal.close().await.unwrap();
        let files: Vec<_> = segments(dir.path())
            .iter()
            .map(|path| (path.file_name().unwrap().to_owned(), segment_bytes(path)))
            .collect();
        assert!(files.len() > 2, "segments rotated: {}", files.len());

        let (wal, recovery, _) = open_with(dir.path(), options);
        assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
        let expected: Vec<_> = (0..14).map(|i| format!("r{i}")).collect();
        assert_eq!(tags(&recovery), expected, "direct_io {direct_io}");
        wal.close().await.unwrap();
        logs.push(files);
    }
    assert_eq!(logs[0], logs[1], "the same bytes up to each end marker");
}

#[tokio::test]
async fn truncate_before_deletes_only_segments_wholly_below_the_lsn() {
    let dir = TempDir::new().unwrap();
    let (wal, _, _) = open_with(dir.path(), small_segments());
    for i in 1..=5 {
        let lsn = wal
            .append(Table::Spans, spans(1, &i.to_string()))
            .await
            .unwrap();
        assert_eq!(lsn, i);
    }
    let firsts = |dir: &Path| {
        segments(dir)
            .iter()
            .map(|p| first_lsn_of(p))
            .collect::<Vec<_>>()
    };
    assert_eq!(firsts(dir.path()), [1, 2, 3, 4, 5]);

    wal.truncate_before(3).unwrap();
    assert_eq!(firsts(dir.path()), [3, 4, 5], "lsn 3 is not below 3");
    wal.truncate_before(3).unwrap();
    assert_eq!(firsts(dir.path()), [3, 4, 5]);
    assert_eq!(wal.stats().segments, 3);

    wal.truncate_before(1_000).unwrap();
    assert_eq!(firsts(dir.path()), [5], "the segment being written stays");
    let stats = wal.stats();
    assert_eq!(stats.segments, 1);
    assert_eq!(
        stats.bytes_on_disk,
        std::fs::metadata(&segments(dir.path())[0]).unwrap().len()
    );
    wal.close().await.unwrap();

    let (wal, recovery, _) = open(dir.path());
    assert_eq!(tags(&recovery), ["5"]);
    assert_eq!(wal.append(Table::Spans, spans(1, "6")).await.unwrap(), 6);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn truncated_segments_are_reused_and_their_old_records_never_come_back() {
    use std::os::unix::fs::MetadataExt;
    let dir = TempDir::new().unwrap();
    let options = || WalOptions {
        recycle_segments: 2,
        ..small_segments()
    };
    let (wal, _, _) = open_with(dir.path(), options());
    // Large records first, so that the reused files are longer than what
    // is written over them: old records stay behind the new ones.
    for i in 1..=5 {
        wal.append(Table::Spans, spans(40, &format!("old{i}")))
            .await
            .unwrap();
    }
    wal.truncate_before(4).unwrap();
    let free = free_segments(dir.path());
    assert_eq!(free.len(), 2, "two kept, the third deleted");
    assert_eq!(wal.stats().free_segments, 2);
    assert_eq!(segments(dir.path()).len(), 2, "segments 4 and 5 stay");
    let inodes: HashSet<u64> = free
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().ino())
        .collect();

    for i in 6..=7 {
        wal.append(Table::Spans, spans(1, &format!("new{i}")))
            .await
            .unwrap();
    }
    let stats = wal.stats();
    assert_eq!((stats.recycled_segments, stats.free_segments), (2, 0));
    let reused: HashSet<u64> = segments(dir.path())[2..]
        .iter()
        .map(|path| {
            let metadata = std::fs::metadata(path).unwrap();
            assert!(metadata.len() > 2 * EMPTY_SEGMENT_LEN as u64 + 4096);
            metadata.ino()
        })
        .collect();
    assert_eq!(reused, inodes, "segments 6 and 7 are the freed files");
    // Segment 8 is a new file: nothing was free.
    wal.append(Table::Spans, spans(1, "new8")).await.unwrap();
    assert_eq!(wal.stats().recycled_segments, 2);
    wal.close().await.unwrap();

    let (wal, recovery, _) = open_with(dir.path(), options());
    assert_eq!(tags(&recovery), ["old4", "old5", "new6", "new7", "new8"]);
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);
    wal.truncate_before(1_000).unwrap();
    assert_eq!(wal.stats().free_segments, 2);
    wal.close().await.unwrap();

    // Free files wait across a restart, up to the setting of the open.
    let (wal, _, _) = open_with(dir.path(), options());
    let stats = wal.stats();
    // The open started its segment in one of the two.
    assert_eq!((stats.free_segments, stats.recycled_segments), (1, 1));
    wal.close().await.unwrap();
    let (wal, _, _) = open_with(dir.path(), small_segments_without_reuse());
    assert_eq!(wal.stats().free_segments, 0);
    assert!(free_segments(dir.path()).is_empty());
    wal.close().await.unwrap();
}

fn small_segments_without_reuse() -> WalOptions {
    WalOptions {
        recycle_segments: 0,
        ..small_segments()
    }
}

/// A segment of `records` one-row records (one commit group each) from
/// LSN `first_lsn`, tagged `lsn<LSN>`; returns its path and bytes.
async fn segment_with(dir: &Path, first_lsn: Lsn, records: usize) -> (PathBuf, Vec<u8>) {
    let options = WalOptions {
        min_next_lsn: first_lsn,
        ..WalOptions::default()
    };
    let (wal, _, _) = open_with(dir, options);
    for i in 0..records {
        let lsn = wal
            .append(
                Table::Spans,
                spans(1, &format!("lsn{}", first_lsn + i as u64)),
            )
            .await
            .unwrap();
        assert_eq!(lsn, first_lsn + i as u64);
    }
    wal.close().await.unwrap();
    only_nonempty_segment(dir)
}

#[tokio::test]
async fn a_reused_file_ends_at_its_end_marker_and_a_write_torn_over_old_bytes_is_a_torn_tail() {
    let (old_dir, new_dir) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    // What an earlier use left: large records with low LSNs.
    let (_, old) = {
        let (wal, _, _) = open(old_dir.path());
        for i in 0..3 {
            wal.append(Table::Spans, spans(40, &format!("old{i}")))
                .await
                .unwrap();
        }
        wal.close().await.unwrap();
        only_nonempty_segment(old_dir.path())
    };
    let (path, new) = segment_with(new_dir.path(), 100, 2).await;
    assert!(old.len() > new.len() + 4096);
    let reused = |written: usize| [&new[..written], &old[written..]].concat();

    let recovery = scan_segment(&path, 100, &reused(new.len())).unwrap();
    assert_eq!(tags(&recovery), ["lsn100", "lsn101"]);
    assert!(recovery.damage.is_empty(), "{:?}", recovery.damage);

    // The last group's write cut short at any byte (record or marker):
    // what came before is read, the rest is one torn tail to the end. (Where
    // the old bytes happen to equal the new ones, the cut is invisible.)
    let (last_offset, last_len) = record_ranges(&new)[1];
    let marker_at = last_offset + last_len;
    let mut tears = 0;
    // Every byte of the header and the marker, every fifth of the payload
    // (debug builds decode slowly).
    let cuts = (last_offset + 1..new.len())
        .filter(|&at| at < last_offset + RECORD_HEADER_LEN || at >= marker_at - 8 || at % 5 == 0);
    for written in cuts {
        let data = reused(written);
        let recovery = scan_segment(&path, 100, &data).unwrap();
        let intact = |from: usize, to: usize| data[from..to] == new[from..to];
        let (expected, torn_from): (&[&str], _) = if intact(last_offset, new.len()) {
            (&["lsn100", "lsn101"], None)
        } else if intact(last_offset, marker_at) {
            (&["lsn100", "lsn101"], Some(marker_at))
        } else {
            (&["lsn100"], Some(last_offset))
        };
        assert_eq!(tags(&recovery), expected, "written {written}");
        let damage: Vec<_> = recovery
            .damage
            .iter()
            .map(|d| (d.kind, d.offset, d.bytes))
            .collect();
        let expected_damage: Vec<_> = torn_from
            .map(|from| {
                let bytes = (data.len() - from) as u64;
                (DamageKind::TornTail, from as u64, bytes)
            })
            .into_iter()
            .collect();
        assert_eq!(damage, expected_damage, "written {written}");
        tears += usize::from(torn_from.is_some());
    }
    assert!(tears > last_len / 10, "only {tears} cuts visible");

    // An end marker left by another segment does not end this one.
    let mut foreign = reused(new.len());
    foreign[marker_at..new.len()].copy_from_slice(&end_marker(7, 102));
    let recovery = scan_segment(&path, 100, &foreign).unwrap();
    assert_eq!(tags(&recovery), ["lsn100", "lsn101"]);
    assert_eq!(recovery.damage.len(), 1);
    assert_eq!(recovery.damage[0].kind, DamageKind::TornTail);
    assert_eq!(recovery.damage[0].offset, marker_at as u64);
}

#[tokio::test]
async fn records_behind_an_end_marker_are_read_and_the_gap_reported() {
    // A power loss can keep the end of a commit group but not its start,
    // which would have overwritten the previous group's end marker.
    let dir = TempDir::new().unwrap();
    let (path, data) = segment_with(dir.path(), 100, 3).await;
    let ranges = record_ranges(&data);
    let (second, _) = ranges[1];
    let mut lost_start = data.clone();
    lost_start[second..second + END_MARKER_LEN].copy_from_slice(&end_marker(100, 101));
    let recovery = scan_segment(&path, 100, &lost_start).unwrap();
    assert_eq!(tags(&recovery), ["lsn100", "lsn102"]);
    assert_eq!(recovery.damage.len(), 1);
    let damage = &recovery.damage[0];
    assert_eq!(damage.kind, DamageKind::BadRecordHeader);
    assert_eq!(
        (damage.offset, damage.bytes),
        (second as u64, ranges[1].1 as u64)
    );
}

#[tokio::test]
async fn a_failed_fsync_fails_the_append_and_poisons_the_log_until_reopened() {
    let dir = TempDir::new().unwrap();
    let (wal, _, applied) = open(dir.path());
    wal.append(Table::Spans, spans(1, "before")).await.unwrap();

    wal.inner
        .shared
        .faults
        .fail_sync
        .store(true, Ordering::SeqCst);
    let error = wal
        .append(Table::Spans, spans(1, "failed"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::SyncWal { .. }), "{error}");
    assert_eq!(
        applied.lsns(),
        [1],
        "a record that is not durable is not applied"
    );

    // fsync is not retried: the next append is refused.
    let error = wal
        .append(Table::Spans, spans(1, "after"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::WalPoisoned { .. }), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    let stats = wal.stats();
    assert!(stats.poisoned);
    assert_eq!(stats.durable_lsn, 1);
    assert!(
        wal.clone().close().await.is_err(),
        "close reports the poison"
    );

    let (wal, recovery, _) = open(dir.path());
    assert_eq!(recovery.records[0].lsn, 1);
    assert!(!wal.stats().poisoned);
    wal.append(Table::Spans, spans(1, "reopened"))
        .await
        .unwrap();
    wal.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_write_fails_the_append_and_poisons_the_log() {
    let dir = TempDir::new().unwrap();
    let (wal, _, applied) = open(dir.path());
    wal.inner
        .shared
        .faults
        .fail_write
        .store(true, Ordering::SeqCst);
    let error = wal
        .append(Table::Spans, spans(1, "failed"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::WriteWal { .. }), "{error}");
    let error = wal
        .append(Table::Spans, spans(1, "after"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::WalPoisoned { .. }), "{error}");
    assert!(applied.lsns().is_empty());
    let _ = wal.close().await;
}

#[tokio::test]
async fn interval_policy_acknowledges_before_fsync_and_syncs_in_the_background() {
    let dir = TempDir::new().unwrap();
    let never = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_secs(3600)),
        ..WalOptions::default()
    };
    let (wal, _, applied) = open_with(dir.path(), never);
    let before = wal.stats();
    let lsn = wal.append(Table::Spans, spans(1, "a")).await.unwrap();
    let stats = wal.stats();
    assert_eq!(applied.lsns(), [lsn]);
    assert_eq!(stats.fsyncs, before.fsyncs, "acknowledged without fsync");
    assert_eq!(stats.last_lsn, lsn);
    assert!(stats.durable_lsn < lsn);
    // Close syncs what the interval has not.
    let handle = wal.clone();
    wal.close().await.unwrap();
    assert_eq!(handle.stats().durable_lsn, lsn);
    assert_eq!(handle.stats().fsyncs, before.fsyncs + 1);
    drop(handle);

    let soon = WalOptions {
        sync: SyncPolicy::Interval(Duration::from_millis(20)),
        ..WalOptions::default()
    };
    let (wal, recovery, _) = open_with(dir.path(), soon);
    assert_eq!(tags(&recovery), ["a"]);
    let before = wal.stats();
    let lsn = wal.append(Table::Spans, spans(1, "b")).await.unwrap();
    wait_for("the background fsync", || wal.stats().durable_lsn >= lsn).await;
    assert!(wal.stats().fsyncs > before.fsyncs);
    wal.close().await.unwrap();
}

#[tokio::test]
async fn a_directory_has_one_writer_at_a_time() {
    let dir = TempDir::new().unwrap();
    let (wal, _, _) = open(dir.path());
    let applied: Arc<dyn Apply> = Arc::new(Applied::default());
    let error = Wal::open(dir.path(), WalOptions::default(), applied.clone()).unwrap_err();
    assert!(matches!(error, Error::WalLocked { .. }), "{error}");
    wal.close().await.unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions::default(), applied).unwrap();
    wal.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_releases_the_directory_at_once() {
    let dir = TempDir::new().unwrap();
    for round in 1..=20u64 {
        let (wal, recovery, _) = open(dir.path());
        assert_eq!(recovery.records.len() as u64, round - 1);
        let clone = wal.clone();
        wal.append(Table::Spans, spans(1, &round.to_string()))
            .await
            .unwrap();
        drop(wal);
        drop(clone);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_answers_every_append_and_refuses_later_ones() {
    let dir = TempDir::new().unwrap();
    let (wal, _, _) = open(dir.path());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let wal = wal.clone();
        tasks.spawn(async move {
            let tag = i.to_string();
            (wal.append(Table::Spans, spans(1, &tag)).await, tag)
        });
    }
    let handle = wal.clone();
    wal.close().await.unwrap();
    let mut acked = BTreeMap::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (Ok(lsn), tag) => {
                acked.insert(lsn, tag);
            }
            (Err(error), _) => assert!(matches!(error, Error::WalClosed), "{error}"),
        }
    }
    let error = handle
        .append(Table::Spans, spans(1, "late"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::WalClosed), "{error}");
    assert_eq!(handle.stats().durable_lsn, handle.stats().last_lsn);
    drop(handle);

    let (wal, recovery, _) = open(dir.path());
    let recovered: BTreeMap<_, _> = recovery
        .records
        .iter()
        .map(|r| (r.lsn, tag(&r.batch)))
        .collect();
    assert_eq!(recovered, acked, "exactly the acknowledged appends");
    wal.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_appenders_wait_and_drops_nothing() {
    let dir = TempDir::new().unwrap();
    // Apply waits until the gate opens.
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let apply = {
        let gate = gate.clone();
        move |_: Lsn, _: Table, _: RecordBatch| {
            let (open, opened) = &*gate;
            let _open = opened
                .wait_while(open.lock().unwrap(), |open| !*open)
                .unwrap();
        }
    };
    let options = WalOptions {
        queue_capacity: 1,
        max_group_bytes: 1,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.path(), options, Arc::new(apply)).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let wal = wal.clone();
        tasks.spawn(async move { wal.append(Table::Spans, spans(1, &i.to_string())).await });
    }
    // The committer is stuck in apply with one record and the queue is full.
    wait_for("a full queue", || {
        wal.stats().last_lsn == 1 && wal.inner.sender.capacity() == 0
    })
    .await;
    assert!(tasks.try_join_next().is_none(), "nobody was answered yet");
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    let mut lsns = HashSet::new();
    while let Some(result) = tasks.join_next().await {
        assert!(lsns.insert(result.unwrap().unwrap()));
    }
    assert_eq!(lsns.len(), 10);
    wal.close().await.unwrap();
}

const CRASH_DIR: &str = "GRAYSCOPE_WAL_CRASH_DIR";
const CRASH_RUN: &str = "GRAYSCOPE_WAL_CRASH_RUN";

/// The child of [`acknowledged_appends_survive_sigkill`]: appends from four
/// tasks until killed, printing `ack <lsn> <tag>` for every acknowledgement.
#[test]
#[ignore = "run as a child process by acknowledged_appends_survive_sigkill"]
fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let run = std::env::var(CRASH_RUN).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let apply = |_: Lsn, _: Table, _: RecordBatch| {};
        let (wal, _) = Wal::open(Path::new(&dir), small_crash_segments(), Arc::new(apply)).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..4 {
            let wal = wal.clone();
            let run = run.clone();
            tasks.spawn(async move {
                for i in 0.. {
                    let tag = format!("{run}-{task}-{i}");
                    let lsn = wal.append(Table::Spans, spans(16, &tag)).await.unwrap();
                    println!("ack {lsn} {tag}");
                }
            });
        }
        // Truncates the log behind the appends, as the store does after a
        // flush, so that kills also land while segments are retired and
        // reused. The line comes first: a kill may follow the truncation.
        let truncating = wal.clone();
        tasks.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let below = truncating.stats().durable_lsn.saturating_sub(40);
                println!("truncating {below}");
                truncating.truncate_before(below).unwrap();
            }
        });
        tasks.join_next().await;
    });
}

/// Segments small enough that kills also land around rotations.
fn small_crash_segments() -> WalOptions {
    WalOptions {
        segment_size: 64 << 10,
        ..WalOptions::default()
    }
}

/// Kills a child that appends concurrently (and truncates behind its
/// appends) with SIGKILL at random moments, 20 times, and checks after each
/// restart that every acknowledged append not truncated is there, once,
/// with its contents; the only damage a kill may leave is a torn tail.
#[test]
fn acknowledged_appends_survive_sigkill() {
    const KILLS: usize = 20;
    let dir = TempDir::new().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acked: BTreeMap<Lsn, String> = BTreeMap::new();
    // Records below this LSN may have been truncated.
    let mut truncated_below: Lsn = 0;
    let mut torn = HashSet::new();
    let mut recycled = 0;
    for run in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "wal::tests::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env(CRASH_DIR, dir.path())
            .env(CRASH_RUN, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Notes an acknowledgement or a truncation; true for an ack.
        let record = |line: &str, acked: &mut BTreeMap<Lsn, String>, below: &mut Lsn| {
            // The child's first line follows libtest's "test <name> ... ".
            let line = line
                .rsplit_once(" ... ")
                .map_or(line, |(_, printed)| printed);
            if let Some(rest) = line.strip_prefix("ack ") {
                let (lsn, tag) = rest.split_once(' ').unwrap();
                let previous = acked.insert(lsn.parse().unwrap(), tag.to_owned());
                assert!(previous.is_none(), "lsn {lsn} acknowledged twice");
                true
            } else {
                if let Some(lsn) = line.strip_prefix("truncating ") {
                    *below = (*below).max(lsn.parse().unwrap());
                }
                false
            }
        };
        // Kill after a random number of acknowledgements (sometimes none,
        // which lands in open and recovery).
        let target = random(60);
        let mut seen = 0;
        while seen < target {
            let Some(line) = lines.next() else { break };
            if record(&line.unwrap(), &mut acked, &mut truncated_below) {
                seen += 1;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Acknowledgements printed before the kill are still in the pipe.
        for line in lines {
            record(&line.unwrap(), &mut acked, &mut truncated_below);
        }

        let apply: Arc<dyn Apply> = Arc::new(Applied::default());
        let (wal, recovery) = Wal::open(dir.path(), small_crash_segments(), apply).unwrap();
        for damage in &recovery.damage {
            assert_eq!(damage.kind, DamageKind::TornTail, "run {run}: {damage}");
        }
        torn.extend(
            recovery
                .damage
                .iter()
                .map(|d| (d.segment.clone(), d.offset)),
        );
        let recovered: BTreeMap<Lsn, String> = recovery
            .records
            .iter()
            .map(|r| (r.lsn, tag(&r.batch)))
            .collect();
        let tags: HashSet<_> = recovered.values().collect();
        assert_eq!(tags.len(), recovered.len(), "run {run}: a record twice");
        for (lsn, tag) in &acked {
            if *lsn >= truncated_below {
                assert_eq!(
                    recovered.get(lsn),
                    Some(tag),
                    "run {run}: acknowledged lsn {lsn} lost (truncated below {truncated_below})"
                );
            } else if let Some(found) = recovered.get(lsn) {
                assert_eq!(found, tag, "run {run}: lsn {lsn}");
            }
        }
        recycled += wal.stats().recycled_segments;
        runtime.block_on(wal.close()).unwrap();
    }
    println!(
        "{KILLS} SIGKILLs: {} appends acknowledged, all found unless truncated; \
         {} torn tails reported; {recycled} segments reused by the reopens",
        acked.len(),
        torn.len()
    );
    assert!(!acked.is_empty());
    assert!(recycled > 0, "no reopen reused a truncated segment");
}

/// Rebuilds `spans(2, tag)` from a source that is the tag's bytes; refuses
/// the tag `bad`.
struct ByTag;

impl Rebuild for ByTag {
    fn rebuild(&self, table: Table, source: &[u8]) -> std::result::Result<RecordBatch, String> {
        assert_eq!(table, Table::Spans);
        match std::str::from_utf8(source).unwrap() {
            "bad" => Err("refused".to_owned()),
            tag => Ok(spans(2, tag)),
        }
    }
}

#[tokio::test]
async fn source_records_replay_through_the_rebuild_in_lsn_order() {
    let dir = TempDir::new().unwrap();
    let with_rebuild = || WalOptions {
        rebuild: Some(Arc::new(ByTag)),
        ..WalOptions::default()
    };
    let (wal, _, applied) = open_with(dir.path(), with_rebuild());
    wal.append(Table::Spans, spans(2, "a")).await.unwrap();
    let source = |tag: &'static str| {
        vec![
            Bytes::from_static(&tag.as_bytes()[..1]),
            Bytes::from_static(&tag.as_bytes()[1..]),
        ]
    };
    wal.append_source(Table::Spans, spans(2, "bb"), source("bb"))
        .await
        .unwrap();
    wal.append_source(Table::Spans, spans(2, "bad"), source("bad"))
        .await
        .unwrap();
    wal.append(Table::Spans, spans(2, "c")).await.unwrap();
    // The batch given with a source is what is applied now.
    assert_eq!(applied.lsns(), [1, 2, 3, 4]);
    wal.close().await.unwrap();

    let (wal, recovery, _) = open_with(dir.path(), with_rebuild());
    let tags: Vec<String> = recovery.records.iter().map(|r| tag(&r.batch)).collect();
    assert_eq!(tags, ["a", "bb", "c"]);
    assert_eq!(recovery.records[1].batch, spans(2, "bb"));
    // A source its rebuild refuses is reported, never dropped silently.
    assert_eq!(recovery.damage.len(), 1);
    assert_eq!(recovery.damage[0].kind, DamageKind::Undecodable);
    assert_eq!(recovery.damage[0].lsn, Some(3));
    wal.close().await.unwrap();

    // Without a rebuild the log does not open rather than skip them.
    let applied: Arc<dyn Apply> = Arc::new(Applied::default());
    let error = Wal::open(dir.path(), WalOptions::default(), applied).unwrap_err();
    assert!(
        matches!(error, Error::WalNeedsRebuild { lsn: 2, .. }),
        "{error}"
    );
}
