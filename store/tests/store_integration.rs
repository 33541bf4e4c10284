//! The store's promises, through its public interface: what was appended
//! is queryable at once, survives flushes and restarts exactly once, and
//! memory stays under its cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::AsArray as _;
use arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, ListArray, MapBuilder, StringArray, StringBuilder,
    TimestampNanosecondArray, UInt32Array, new_empty_array, new_null_array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use datafusion::prelude::SessionContext;
use grayscope_core::Table;
use grayscope_core::config::{ByteSize, ConfigDuration, StoreConfig};
use grayscope_store::wal::Rebuild;
use grayscope_store::{Error, Store};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// 2025-11-24T16:00:00Z.
const T0: i64 = 1_764_000_000_000_000_000;
const HOUR: i64 = 3_600_000_000_000;

/// A `spans` batch: one row per time, named `{prefix}-{i}`.
fn spans(prefix: &str, times: &[i64]) -> RecordBatch {
    let schema = Table::Spans.schema();
    let n = times.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| column(field, n, prefix, times))
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn column(field: &Field, n: usize, prefix: &str, times: &[i64]) -> ArrayRef {
    match (field.name().as_str(), field.data_type()) {
        ("time" | "end_time", _) => {
            Arc::new(TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC"))
        }
        ("name", _) => Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("{prefix}-{i}")),
        )),
        ("cohort", _) => Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| if i % 2 == 0 { "baseline" } else { "canary" }),
        )),
        (_, _) if field.is_nullable() => new_null_array(field.data_type(), n),
        (_, DataType::Utf8) => Arc::new(StringArray::from_iter_values((0..n).map(|_| "x"))),
        (_, DataType::Int64) => Arc::new(Int64Array::from(vec![1; n])),
        (_, DataType::Int32) => Arc::new(Int32Array::from(vec![1; n])),
        (_, DataType::UInt32) => Arc::new(UInt32Array::from(vec![1; n])),
        (_, DataType::Map(_, _)) => {
            let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
            for _ in 0..n {
                map.keys().append_value("k");
                map.values().append_value("v");
                map.append(true).unwrap();
            }
            Arc::new(map.finish())
        }
        (_, DataType::List(item)) => Arc::new(ListArray::new(
            item.clone(),
            OffsetBuffer::new_zeroed(n),
            new_empty_array(item.data_type()),
            None,
        )),
        (name, other) => panic!("no test value for {name}: {other}"),
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        // Flushes happen only when a test asks, unless it says otherwise.
        flush_interval: ConfigDuration::from_secs(3600),
        ..StoreConfig::default()
    }
}

/// Appends a `spans` batch (see [`spans`]) and flushes it: one part per
/// hour partition its times fall in.
async fn flush_spans(store: &Store, prefix: &str, times: &[i64]) {
    store
        .append(Table::Spans, spans(prefix, times))
        .await
        .unwrap();
    store.flush().await.unwrap();
}

async fn count(store: &Store, sql_where: &str) -> i64 {
    let ctx = SessionContext::new();
    ctx.register_table("spans", store.provider(Table::Spans))
        .unwrap();
    let batches = ctx
        .sql(&format!("SELECT count(*) AS n FROM spans {sql_where}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0)
}

async fn names(store: &Store) -> Vec<String> {
    let ctx = SessionContext::new();
    ctx.register_table("spans", store.provider(Table::Spans))
        .unwrap();
    let batches = ctx
        .sql("SELECT name FROM spans ORDER BY name")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches
        .iter()
        .flat_map(|b| {
            let names =
                arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let names = names.as_any().downcast_ref::<StringArray>().unwrap();
            (0..names.len())
                .map(|i| names.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_rows_are_queryable_at_once_and_after_flush_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = Store::open(dir.path(), config()).await.unwrap();
    assert_eq!(report.replayed, 0);

    store
        .append(Table::Spans, spans("a", &[T0, T0 + 1, T0 + 2]))
        .await
        .unwrap();
    assert_eq!(count(&store, "").await, 3);

    store.flush().await.unwrap();
    assert_eq!(store.stats(Table::Spans).memory_rows, 0);
    assert_eq!(store.stats(Table::Spans).part_rows, 3);
    assert_eq!(count(&store, "").await, 3);

    // Rows still in memory at shutdown come back from the log.
    store
        .append(Table::Spans, spans("b", &[T0 + 3, T0 + 4]))
        .await
        .unwrap();
    drop(store); // no close: as if the process had died
    let (store, report) = Store::open(dir.path(), config()).await.unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    assert_eq!(report.parts, 1);
    let mut expected: Vec<String> = ["a-0", "a-1", "a-2", "b-0", "b-1"].map(String::from).into();
    expected.sort();
    assert_eq!(names(&store).await, expected);

    // A graceful close flushes; the next open replays nothing.
    store.close().await.unwrap();
    let (store, report) = Store::open(dir.path(), config()).await.unwrap();
    assert_eq!(report.replayed, 0, "{report:?}");
    assert_eq!(names(&store).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_are_hour_partitioned_parquet_files() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    store
        .append(
            Table::Spans,
            spans("p", &[T0 + 2 * HOUR + 5, T0, T0 + 1, T0 + 2 * HOUR]),
        )
        .await
        .unwrap();
    store.flush().await.unwrap();
    let mut parts: Vec<_> = store
        .parts(Table::Spans)
        .iter()
        .map(|p| {
            p.path()
                .strip_prefix(dir.path())
                .unwrap()
                .parent()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        vec![
            "spans/date=2025-11-24/hour=16",
            "spans/date=2025-11-24/hour=18"
        ]
    );
    for part in store.parts(Table::Spans) {
        let name = part
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
        // Its time range is known, for pruning.
        assert!(part.meta().min_time <= part.meta().max_time);
    }
    // Time filters skip parts and still return exactly the matching rows.
    assert_eq!(
        count(
            &store,
            &format!("WHERE time >= to_timestamp_nanos({})", T0 + HOUR)
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &store,
            &format!("WHERE time < to_timestamp_nanos({})", T0 + 2)
        )
        .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_see_every_row_exactly_once_across_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let writer = {
        let store = store.clone();
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for round in 0..60 {
                let times: Vec<i64> = (0..100)
                    .map(|i| T0 + (round * 100 + i) * 1_000_000)
                    .collect();
                store
                    .append(Table::Spans, spans(&format!("r{round:02}"), &times))
                    .await
                    .unwrap();
                acknowledged.fetch_add(100, Ordering::SeqCst);
                if round % 7 == 3 {
                    store.flush().await.unwrap();
                }
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() {
        let before = acknowledged.load(Ordering::SeqCst) as i64;
        let seen = count(&store, "").await;
        let after = acknowledged.load(Ordering::SeqCst) as i64;
        // Never a duplicate, never a gap: between what was acknowledged
        // when the query started and when it ended, in whole batches.
        assert!(
            before <= seen && seen <= after + 100,
            "{before} <= {seen} <= {after}+100"
        );
        assert_eq!(seen % 100, 0, "a batch was split: {seen}");
        checks += 1;
    }
    writer.await.unwrap();
    assert!(checks > 5, "only {checks} queries ran during the writes");
    assert!(store.parts(Table::Spans).len() >= 5);
    assert_eq!(count(&store, "").await, 6000);
    let distinct = {
        let ctx = SessionContext::new();
        ctx.register_table("spans", store.provider(Table::Spans))
            .unwrap();
        let batches = ctx
            .sql("SELECT count(DISTINCT name || CAST(time AS VARCHAR)) FROM spans")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    };
    assert_eq!(distinct, 6000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_expired_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    let old = T0 - 8 * 24 * HOUR;
    store
        .append(Table::Spans, spans("old", &[old, old + 1]))
        .await
        .unwrap();
    flush_spans(&store, "new", &[T0]).await;
    assert_eq!(store.parts(Table::Spans).len(), 2);

    // Seven days after T0, the partition of T0 - 8 days has expired.
    store.housekeeping_at(T0 + HOUR).await.unwrap();
    assert_eq!(store.parts(Table::Spans).len(), 1);
    assert_eq!(names(&store).await, vec!["new-0".to_owned()]);
    assert_eq!(store.store_stats().expired_parts, 1);

    // And it stays gone after a restart.
    drop(store);
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    store.housekeeping_at(T0 + HOUR).await.unwrap();
    assert_eq!(names(&store).await, vec!["new-0".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_the_parts_of_finished_hours() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    for round in 0..4 {
        let times = [T0 + round * 10, T0 + round * 10 + 1];
        flush_spans(&store, &format!("c{round}"), &times).await;
    }
    assert_eq!(store.parts(Table::Spans).len(), 4);
    let before = names(&store).await;

    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    let parts = store.parts(Table::Spans);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].meta().replaces.len(), 4);
    assert_eq!(names(&store).await, before);

    // After a restart the replaced parts' files are cleaned up, and each
    // row is still there once.
    drop(store);
    let (store, report) = Store::open(dir.path(), config()).await.unwrap();
    assert_eq!(report.parts, 1);
    assert_eq!(report.discarded.len(), 4, "{:?}", report.discarded);
    assert_eq!(names(&store).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_interleaves_parts_in_time_order_merging_at_most_64_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    // Seventy flushes whose rows interleave in time: flush r holds
    // T0 + r, T0 + 70 + r, ..., T0 + 280 + r.
    for round in 0..70 {
        let times: Vec<i64> = (0..5).map(|k| T0 + k * 70 + round).collect();
        flush_spans(&store, &format!("i{round}"), &times).await;
    }

    // One merge takes the oldest 64 parts (in the background, once there
    // are 64, or here), a second the rest and its result.
    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    let parts = store.parts(Table::Spans);
    assert_eq!(parts.len(), 1);
    assert_eq!(store.store_stats().compactions, 2);
    assert_eq!(parts[0].meta().replaces.len(), 7);
    assert_eq!(parts[0].meta().rows, 350);

    // The merged file holds every row once. These flushes' rows arrived in
    // time order and the merge interleaves its inputs by time, so the file
    // is in time order too.
    let file = std::fs::File::open(parts[0].path()).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut times = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let time = batch.column_by_name("time").unwrap();
        times.extend_from_slice(time.as_primitive::<TimestampNanosecondType>().values());
    }
    let expected: Vec<i64> = (0..350).map(|t| T0 + t).collect();
    assert_eq!(times, expected);
    assert_eq!(count(&store, "").await, 350);

    // A part of a quarter of `compact_below` or more is not small, and is
    // left alone: two late small parts merge only with each other.
    let merged = parts[0].meta().id;
    let config = StoreConfig {
        compact_below: ByteSize(parts[0].size() * 4),
        ..config()
    };
    drop(parts);
    store.close().await.unwrap();
    let (store, _) = Store::open(dir.path(), config).await.unwrap();
    for round in 0..2 {
        flush_spans(&store, &format!("late{round}"), &[T0 + 1000]).await;
    }
    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    let parts = store.parts(Table::Spans);
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().any(|p| p.meta().id == merged));
    assert_eq!(count(&store, "").await, 352);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hour_being_written_merges_its_small_parts_once_they_add_up_to_compact_below() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let flush_one = async |store: &Store, round: i64| {
        flush_spans(store, &format!("h{round:02}"), &[now + round]).await;
    };
    // Measure one part, then aim compaction at 4.5 of them.
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    flush_one(&store, 0).await;
    let size = store.parts(Table::Spans)[0].size();
    store.close().await.unwrap();
    let config = StoreConfig {
        compact_below: ByteSize(size * 9 / 2),
        ..config()
    };
    let (store, _) = Store::open(dir.path(), config).await.unwrap();
    for round in 1..4 {
        flush_one(&store, round).await;
    }
    // Four small parts do not add up to it, and the hour is not over.
    store.housekeeping_at(now).await.unwrap();
    assert_eq!(store.parts(Table::Spans).len(), 4);

    // Five do: the store merges the oldest four (as many as fit) in the
    // background, without waiting for the hour to end. (The merge runs at
    // nice 19: on a busy machine it may take a while.)
    flush_one(&store, 4).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while store.parts(Table::Spans).len() > 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "not merged: {} parts",
            store.parts(Table::Spans).len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let parts = store.parts(Table::Spans);
    let merged: Vec<usize> = parts.iter().map(|p| p.meta().replaces.len()).collect();
    assert!(merged.contains(&4), "{merged:?}");
    assert_eq!(store.store_stats().compactions, 1);
    assert_eq!(count(&store, "").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_below_zero_turns_compaction_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        compact_below: ByteSize(0),
        ..config()
    };
    let (store, _) = Store::open(dir.path(), config).await.unwrap();
    for round in 0..3 {
        flush_spans(&store, &format!("z{round}"), &[T0 + round]).await;
    }
    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(store.parts(Table::Spans).len(), 3);
    assert_eq!(store.store_stats().compactions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_limit_appends_get_backpressure_until_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let batch = spans("m", &[T0; 200]);
    let size = batch.get_array_memory_size();
    let config = StoreConfig {
        flush_size: ByteSize(size as u64 * 100),
        memory_limit: ByteSize(size as u64 * 3 + size as u64 / 2),
        ..config()
    };
    let (store, _) = Store::open(dir.path(), config).await.unwrap();
    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..10 {
        match store.append(Table::Spans, batch.clone()).await {
            Ok(()) => accepted += 1,
            Err(Error::Backpressure { used, limit, .. }) => {
                assert!(used <= limit);
                refused += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
        assert!(store.store_stats().memory_bytes <= store.store_stats().memory_limit);
    }
    assert_eq!(accepted, 3);
    assert_eq!(refused, 7);
    assert_eq!(store.store_stats().rejected_appends, 7);
    // The check receivers make before decoding a request says the same,
    // for a request of the batch's size but not for a tiny one, which
    // still fits.
    assert!(matches!(
        store.check_pressure(size),
        Err(Error::Backpressure { .. })
    ));
    assert!(store.check_pressure(size / 4).is_ok());
    assert_eq!(store.store_stats().rejected_appends, 8);
    store.flush().await.unwrap();
    assert!(store.check_pressure(size).is_ok());
    store.append(Table::Spans, batch.clone()).await.unwrap();
    assert_eq!(count(&store, "").await, 800);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_flushes_lag_appends_wait_for_them_then_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let batch = spans("s", &[T0; 100]);
    let size = batch.get_array_memory_size();
    let config = StoreConfig {
        // Every append fills a memtable; one waiting for its flush stalls.
        flush_size: ByteSize(size as u64),
        stall_memtables: 1,
        ..config()
    };
    let (store, _) = Store::open(dir.path(), config).await.unwrap();
    // A file where the hour's directory goes makes every flush fail, so
    // the first memtable stays frozen.
    let blocker = dir.path().join("spans").join("date=2025-11-24");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();
    store.append(Table::Spans, batch.clone()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.store_stats().flush_errors == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the blocked flush never failed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(store.store_stats().stalled_appends, 0);

    // No flush completes: the next append waits its whole second, then
    // goes on; it is slowed, not refused.
    let started = std::time::Instant::now();
    store.append(Table::Spans, batch.clone()).await.unwrap();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(990),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(store.store_stats().stalled_appends, 1);
    assert_eq!(store.store_stats().rejected_appends, 0);

    // Once flushes succeed, nothing waits.
    std::fs::remove_file(&blocker).unwrap();
    store.flush().await.unwrap();
    store.append(Table::Spans, batch.clone()).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.store_stats().stalled_appends, 1);
    assert_eq!(count(&store, "").await, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memtable_is_frozen_at_flush_size_so_each_flush_writes_a_bounded_part() {
    let dir = tempfile::tempdir().unwrap();
    let batch = spans("f", &[T0; 100]);
    let size = batch.get_array_memory_size();
    let config = StoreConfig {
        // Three batches fill a memtable.
        flush_size: ByteSize(size as u64 * 3),
        ..config()
    };
    let (store, _) = Store::open(dir.path(), config).await.unwrap();
    for _ in 0..10 {
        store.append(Table::Spans, batch.clone()).await.unwrap();
    }
    store.flush().await.unwrap();
    let mut rows: Vec<u64> = store
        .parts(Table::Spans)
        .iter()
        .map(|p| p.meta().rows)
        .collect();
    rows.sort_unstable();
    // However the background flushes interleaved with the appends, no part
    // holds more than one full memtable.
    assert_eq!(rows.iter().sum::<u64>(), 1000);
    assert!(rows.iter().all(|&r| r <= 300), "{rows:?}");
    assert_eq!(count(&store, "").await, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_log_directory_never_makes_new_records_look_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    for round in 0..3 {
        store
            .append(Table::Spans, spans(&format!("f{round}"), &[T0 + round]))
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    // The log is gone (a wiped volume, an operator's rm): sequence numbers
    // must still continue after what the parts cover.
    std::fs::remove_dir_all(dir.path().join("wal")).unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    store
        .append(Table::Spans, spans("after", &[T0 + 10]))
        .await
        .unwrap();
    drop(store); // crash: the new record exists only in the log
    let (store, report) = Store::open(dir.path(), config()).await.unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    assert_eq!(names(&store).await, vec!["after-0", "f0-0", "f1-0", "f2-0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_have_statistics_for_pruning_none_for_attribute_maps_and_plain_attribute_values() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    flush_spans(&store, "s", &[T0, T0 + 1, T0 + 2]).await;
    let parts = store.parts(Table::Spans);
    let file = std::fs::File::open(parts[0].path()).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let row_group = &reader.metadata().row_groups()[0];
    let chunk = |path: &str| {
        row_group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == path)
            .unwrap_or_else(|| panic!("no column {path}"))
    };
    let statistics = |path: &str| chunk(path).statistics().is_some();
    let dictionary = |path: &str| chunk(path).dictionary_page_offset().is_some();
    for path in ["time", "name", "cohort"] {
        assert!(statistics(path), "{path} has no statistics");
    }
    for path in [
        "attributes.entries.keys",
        "attributes.entries.values",
        "resource_attributes.entries.keys",
        "scope_attributes.entries.values",
    ] {
        assert!(!statistics(path), "{path} has statistics");
    }
    // Keys, a few names on every row, are dictionary-encoded; values are
    // written plainly (the dictionary cost more to build than it saved).
    for path in ["name", "cohort", "attributes.entries.keys"] {
        assert!(dictionary(path), "{path} has no dictionary");
    }
    for path in [
        "attributes.entries.values",
        "resource_attributes.entries.values",
    ] {
        assert!(!dictionary(path), "{path} has a dictionary");
    }
    // Attributes are still found by key, from the part.
    assert_eq!(count(&store, "WHERE attributes['k'] = 'v'").await, 3);
    assert_eq!(count(&store, "WHERE attributes['k'] = 'w'").await, 0);
}

/// Something of each row group of a part's file.
fn per_row_group<T>(
    path: &std::path::Path,
    f: impl Fn(&parquet::file::metadata::RowGroupMetaData) -> T,
) -> Vec<T> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    reader.metadata().row_groups().iter().map(f).collect()
}

/// The row counts of the row groups of a part's file.
fn row_groups(path: &std::path::Path) -> Vec<i64> {
    per_row_group(path, |g| g.num_rows())
}

/// Whether each row group of a part's file declares a sorting column.
fn declares_sorted(path: &std::path::Path) -> Vec<bool> {
    per_row_group(path, |g| g.sorting_columns().is_some_and(|c| !c.is_empty()))
}

/// The times of a part's file, in file order.
fn file_times(path: &std::path::Path) -> Vec<i64> {
    let file = std::fs::File::open(path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(
        builder
            .schema()
            .field_with_name("time")
            .unwrap()
            .data_type(),
        Table::Spans
            .schema()
            .field_with_name("time")
            .unwrap()
            .data_type(),
        "the Arrow types are kept"
    );
    let mut times = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let time = batch.column_by_name("time").unwrap();
        times.extend_from_slice(time.as_primitive::<TimestampNanosecondType>().values());
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_keeps_rows_in_arrival_order_and_splits_them_by_hour() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), config()).await.unwrap();
    // Out of time order, and one row in the next hour.
    let times = [T0 + 30, T0 + 10, T0 + HOUR + 1, T0 + 20, T0 + 5];
    flush_spans(&store, "x", &times).await;
    let mut parts = store.parts(Table::Spans);
    parts.sort_by_key(|p| p.meta().min_time);
    assert_eq!(parts.len(), 2);
    // Each part holds its hour's rows as they arrived, with their range.
    assert_eq!(
        file_times(parts[0].path()),
        [T0 + 30, T0 + 10, T0 + 20, T0 + 5]
    );
    assert_eq!(
        (parts[0].meta().min_time, parts[0].meta().max_time),
        (T0 + 5, T0 + 30)
    );
    assert_eq!(declares_sorted(parts[0].path()), vec![false]);
    assert_eq!(file_times(parts[1].path()), [T0 + HOUR + 1]);
    // Time predicates still answer from the row groups' statistics.
    assert_eq!(count(&store, "").await, 5);
    assert_eq!(
        count(
            &store,
            &format!(
                "WHERE time >= to_timestamp_nanos({}) AND time < to_timestamp_nanos({})",
                T0 + 10,
                T0 + 30
            )
        )
        .await,
        2
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_of_busy_flushes_are_merged_by_copying_their_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    // Row groups of at most 8 rows: a row group of 2 or more (a quarter)
    // is big enough to be copied.
    let config = StoreConfig {
        row_group_rows: 8,
        ..config()
    };
    let (store, _) = Store::open(dir.path(), config.clone()).await.unwrap();
    // Four flushes of 10 rows whose times interleave: flush r holds
    // T0 + 4k + r.
    for round in 0..4 {
        let times: Vec<i64> = (0..10).map(|k| T0 + 4 * k + round).collect();
        flush_spans(&store, &format!("b{round}"), &times).await;
    }
    // Balanced row groups: 10 rows under a cap of 8 are two groups of 5,
    // in arrival order, so none is declared sorted.
    for part in store.parts(Table::Spans) {
        assert_eq!(row_groups(part.path()), vec![5, 5]);
        assert_eq!(declares_sorted(part.path()), vec![false, false]);
    }
    let before = names(&store).await;

    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    let parts = store.parts(Table::Spans);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].meta().replaces.len(), 4);
    assert_eq!(parts[0].meta().rows, 40);
    // The row groups were copied, oldest flush first: each still sorted,
    // the file as a whole not (the flushes interleave).
    assert_eq!(row_groups(parts[0].path()), vec![5; 8]);
    // Readers that take the first row group's sort order for the whole
    // file's would be misled: none is declared.
    assert_eq!(declares_sorted(parts[0].path()), vec![false; 8]);
    let times = file_times(parts[0].path());
    let expected: Vec<i64> = (0..4)
        .flat_map(|round| (0..10).map(move |k| T0 + 4 * k + round))
        .collect();
    assert_eq!(times, expected);
    assert_eq!(names(&store).await, before);
    assert_eq!(
        count(
            &store,
            &format!("WHERE time >= to_timestamp_nanos({T0} + 20) AND attributes['k'] = 'v'")
        )
        .await,
        20
    );

    // The copy is a part like any other after a restart.
    drop(parts);
    store.close().await.unwrap();
    let (store, report) = Store::open(dir.path(), config.clone()).await.unwrap();
    assert_eq!(report.parts, 1);
    assert_eq!(names(&store).await, before);

    // A late flush of one row is too small to copy, so it is not merged
    // with the copied part (that would re-encode it): alone, it stays.
    flush_spans(&store, "late", &[T0 + 17]).await;
    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(store.parts(Table::Spans).len(), 2);
    assert_eq!(count(&store, "").await, 41);

    // With bigger row groups configured (a quarter is now 8 rows), the
    // copied part's groups of 5 are too small to copy again: merged with
    // a new flush of 10 rows it is re-encoded row by row, one input per row
    // group, interleaved by time. These row groups happen to hold their rows
    // in time order, so the result is in time order too, but it is not
    // declared sorted: its inputs were not. (The one-row part still waits
    // for a partner.)
    store.close().await.unwrap();
    let bigger_groups = StoreConfig {
        row_group_rows: 32,
        ..config
    };
    let (store, _) = Store::open(dir.path(), bigger_groups).await.unwrap();
    let times: Vec<i64> = (0..10).map(|k| T0 + 40 + k).collect();
    flush_spans(&store, "more", &times).await;
    store.housekeeping_at(T0 + 2 * HOUR).await.unwrap();
    let parts = store.parts(Table::Spans);
    assert_eq!(parts.len(), 2);
    let merged = parts.iter().find(|p| p.meta().rows == 50).unwrap();
    let expected: Vec<i64> = (0..50).map(|t| T0 + t).collect();
    assert_eq!(file_times(merged.path()), expected);
    // 50 rows under a cap of 32: two groups, balanced.
    assert_eq!(row_groups(merged.path()), vec![25, 25]);
    assert_eq!(declares_sorted(merged.path()), vec![false, false]);
    assert_eq!(count(&store, "").await, 51);
}

/// Rebuilds a `spans` batch from a source naming its prefix and times
/// (`prefix:t1,t2,…`), as ingest rebuilds span batches from their requests.
struct FromText;

impl Rebuild for FromText {
    fn rebuild(&self, table: Table, source: &[u8]) -> Result<RecordBatch, String> {
        assert_eq!(table, Table::Spans);
        let text = std::str::from_utf8(source).map_err(|e| e.to_string())?;
        let (prefix, times) = text.split_once(':').ok_or("no ':'")?;
        let times = times
            .split(',')
            .map(|t| t.parse::<i64>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(spans(prefix, &times))
    }
}

fn source(prefix: &str, times: &[i64]) -> Vec<Bytes> {
    let times: Vec<String> = times.iter().map(i64::to_string).collect();
    vec![
        Bytes::from(format!("{prefix}:")),
        Bytes::from(times.join(",")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_logged_as_its_source_comes_back_through_the_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let rebuild = || Some(Arc::new(FromText) as Arc<dyn Rebuild>);
    let (store, _) = Store::open_with_rebuild(dir.path(), config(), rebuild())
        .await
        .unwrap();
    assert!(store.rebuilds_sources());
    let times = [T0, T0 + 1];
    store
        .append_source(Table::Spans, spans("s", &times), source("s", &times))
        .await
        .unwrap();
    // The log holds a 32-byte header and the 41 bytes of source, padded.
    assert_eq!(store.store_stats().wal.appended_bytes, 32 + 48);
    store
        .append(Table::Spans, spans("i", &[T0 + 2]))
        .await
        .unwrap();
    assert_eq!(names(&store).await, ["i-0", "s-0", "s-1"]);
    drop(store); // as if the process had died

    // The log cannot be read without the rebuild, and says so.
    let error = Store::open(dir.path(), config()).await.unwrap_err();
    assert!(matches!(error, Error::WalNeedsRebuild { .. }), "{error}");

    let (store, report) = Store::open_with_rebuild(dir.path(), config(), rebuild())
        .await
        .unwrap();
    assert_eq!(report.replayed, 2, "{report:?}");
    assert!(report.wal_damage.is_empty());
    assert_eq!(names(&store).await, ["i-0", "s-0", "s-1"]);
    store.close().await.unwrap();

    // Without a rebuild, a source append logs the batch itself, so the
    // store opens again as it was opened.
    let plain = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(plain.path(), config()).await.unwrap();
    assert!(!store.rebuilds_sources());
    store
        .append_source(Table::Spans, spans("s", &times), source("s", &times))
        .await
        .unwrap();
    assert!(store.store_stats().wal.appended_bytes > 1000);
    drop(store);
    let (store, report) = Store::open(plain.path(), config()).await.unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    assert_eq!(names(&store).await, ["s-0", "s-1"]);
}
