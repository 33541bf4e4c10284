//! Writing a flushed memtable as a Parquet part, on one core.
//!
//! `cargo bench -p grayscope-ingest --bench part_write`
//!
//! The rows are what the pipeline makes of real export requests: 256
//! requests of 512 spans (or log records) each, every span distinct
//! (`common::spans_request_from`), converted by `decode_and_convert`, so
//! 131 072 rows in time order: one row group at the default size, and the
//! order of magnitude of a flush of the default 64 MiB memtable on a busy
//! server. Measured: the store's `write_part`, the function flushes
//! and compactions call, with the default row group size: encoding,
//! compression, statistics, the footer, the fsync and the rename.
//!
//! Two more inputs hold the same spans with the times a server sees from
//! several exporters: `spans-arrival` in the order requests arrive (each an
//! SDK batch of spans ordered by when they ended, batches of eight services
//! overlapping in time), as a flush writes them, and `spans-sorted` the
//! same rows sorted by start time. Together they tell what sorting a flush
//! would save or cost in bytes and in encoding.
//!
//! After criterion, the same writes are timed again by this thread's CPU
//! time, interleaved (the figure per core on a machine shared with other
//! work), with the bytes each row takes in the part.

// criterion's macros generate undocumented items; a failed write should
// abort the benchmark loudly.
#![allow(missing_docs, clippy::expect_used)]

use std::path::Path;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use criterion::{Criterion, Throughput};
use grayscope_ingest::{Encoding, Labeler, Signal, decode_and_convert};
use grayscope_store::{PartMeta, PartWriterOptions, Partition, write_part};
use prost::Message as _;

mod common;

use common::{BATCH, logs_request_from, spans_request_from, thread_cpu_ns};

const REQUESTS: u64 = 256;
const ROWS: u64 = REQUESTS * BATCH as u64;

/// The converted rows of `REQUESTS` requests of `signal`.
fn rows(signal: Signal) -> Vec<RecordBatch> {
    let labeler = Labeler::new();
    (0..REQUESTS)
        .map(|k| {
            let first = k * BATCH as u64;
            let body = Bytes::from(match signal {
                Signal::Logs => logs_request_from(first).encode_to_vec(),
                _ => spans_request_from(first).encode_to_vec(),
            });
            decode_and_convert(signal, Encoding::Protobuf, body, &labeler, None)
                .expect("convert")
                .batch
        })
        .collect()
}

/// Exporters whose batches interleave in [`arrival_order`].
const EXPORTERS: u64 = 8;

/// `spans` (one batch per request) given the times of [`EXPORTERS`] services
/// exporting through SDK batch processors: request k is service k % 8's
/// batch of the 512 spans that ended in a 5-second window (its spans in end
/// order), the services' windows staggered within each 5 seconds, and each
/// span's duration spread from 100 µs to about 2 s (log-uniform, a fixed
/// pseudo-random sequence).
fn arrival_order(spans: &[RecordBatch]) -> Vec<RecordBatch> {
    use arrow::array::{Array, ArrayRef, Int64Array, TimestampNanosecondArray};
    use std::sync::Arc;
    const WINDOW_NS: u64 = 5_000_000_000;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let timestamps = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC"))
    };
    spans
        .iter()
        .enumerate()
        .map(|(k, batch)| {
            let (k, rows) = (k as u64, batch.num_rows() as u64);
            let window = 1_764_000_000_000_000_000
                + (k / EXPORTERS) * WINDOW_NS
                + (k % EXPORTERS) * WINDOW_NS / EXPORTERS;
            let ends: Vec<i64> = (0..rows)
                .map(|i| (window + i * WINDOW_NS / rows) as i64)
                .collect();
            // 100 µs · 2^(0..14.3): up to about 2 s.
            let durations: Vec<i64> = (0..rows)
                .map(|_| {
                    let exponent = (next() % 14_300) as f64 / 1_000.0;
                    (100_000.0 * exponent.exp2()) as i64
                })
                .collect();
            let starts: Vec<i64> = ends.iter().zip(&durations).map(|(e, d)| e - d).collect();
            let schema = batch.schema();
            let mut columns = batch.columns().to_vec();
            for (name, values) in [
                ("time", timestamps(starts)),
                ("end_time", timestamps(ends)),
                (
                    "duration_ns",
                    Arc::new(Int64Array::from(durations)) as ArrayRef,
                ),
            ] {
                let at = schema.index_of(name).expect("spans column");
                assert_eq!(columns[at].data_type(), values.data_type());
                columns[at] = values;
            }
            RecordBatch::try_new(schema, columns).expect("batch")
        })
        .collect()
}

/// The rows of `batches` sorted by `time` (as flushes wrote them before
/// they kept arrival order).
fn sorted_by_time(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    let all = arrow::compute::concat_batches(&batches[0].schema(), batches).expect("concat");
    let time = all.column_by_name("time").expect("time");
    let order = arrow::compute::sort_to_indices(time, None, None).expect("sort");
    let sorted = arrow::compute::take_record_batch(&all, &order).expect("take");
    vec![sorted]
}

/// Writes `batches` as part `id` of a table in `dir`; returns its size.
fn write(dir: &Path, signal: Signal, batches: &[RecordBatch], id: u64) -> u64 {
    let schema = batches[0].schema();
    let meta = PartMeta {
        table: format!("{signal:?}"),
        id,
        flush_id: id,
        flush_lsn: id,
        replaces: Vec::new(),
        rows: ROWS,
        min_time: 1_764_000_000_000_000_000,
        max_time: 1_764_000_000_000_000_000 + ROWS as i64 * 1_000_000,
    };
    let part = write_part(
        dir,
        Partition::of_nanos(meta.min_time),
        schema,
        batches.iter().cloned().map(Ok),
        meta,
        &PartWriterOptions {
            row_group_rows: 131_072,
        },
        false,
    )
    .expect("write part");
    let size = part.size();
    std::fs::remove_file(part.path()).expect("remove part");
    size
}

fn bench(c: &mut Criterion, inputs: &[(&str, Signal, Vec<RecordBatch>)], dir: &Path) {
    let mut group = c.benchmark_group("part_write");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    for (name, signal, batches) in inputs {
        let mut id = 0;
        group.bench_function(*name, |b| {
            b.iter(|| {
                id += 1;
                write(dir, *signal, batches, id)
            });
        });
    }
    group.finish();
}

#[allow(clippy::print_stdout, clippy::cast_precision_loss)] // a bench reports on the terminal
fn summary(inputs: &[(&str, Signal, Vec<RecordBatch>)], dir: &Path) {
    const REPETITIONS: usize = 5;
    let mut cpu_ns = vec![0u64; inputs.len()];
    let mut sizes = vec![0u64; inputs.len()];
    for repetition in 0..REPETITIONS {
        for (k, (_, signal, batches)) in inputs.iter().enumerate() {
            let cpu0 = thread_cpu_ns();
            sizes[k] = write(dir, *signal, batches, 1_000 + repetition as u64);
            cpu_ns[k] += thread_cpu_ns().saturating_sub(cpu0);
        }
    }
    println!("\npart_write: one thread, {REPETITIONS} interleaved writes of {ROWS} rows");
    println!(
        "{:<14} {:>18} {:>12} {:>12}",
        "input", "rows per CPU-second", "CPU ns/row", "bytes/row"
    );
    for (k, (name, ..)) in inputs.iter().enumerate() {
        let per_row = cpu_ns[k] as f64 / (REPETITIONS as f64 * ROWS as f64);
        println!(
            "{name:<14} {:>18.0} {:>12.1} {:>12.2}",
            1e9 / per_row.max(1e-9),
            per_row,
            sizes[k] as f64 / ROWS as f64
        );
    }
}

fn main() {
    let spans = rows(Signal::Traces);
    let arrival = arrival_order(&spans);
    let sorted = sorted_by_time(&arrival);
    let inputs = [
        ("spans", Signal::Traces, spans),
        ("logs", Signal::Logs, rows(Signal::Logs)),
        ("spans-arrival", Signal::Traces, arrival),
        ("spans-sorted", Signal::Traces, sorted),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &inputs, dir.path());
    c.final_summary();
    summary(&inputs, dir.path());
}
