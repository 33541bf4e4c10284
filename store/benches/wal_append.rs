//! Write-ahead log append throughput, durable: fsync per commit group.
//!
//! `cargo bench -p grayscope-store --bench wal_append`
//!
//! Each append is one realistic spans batch of 512 rows (10 span attributes,
//! 6 resource attributes, one event on every eighth span), as ingest builds
//! it from one OTLP export request. 1, 4 and 16 tasks append concurrently
//! with `SyncPolicy::EveryCommit`, so the figures include group commit at
//! work; `interval_100ms/16` shows the ceiling without fsync waits. Besides
//! criterion's time per append (and appends/s), each configuration prints
//! to stderr its MB/s, fsyncs per append and mean commit group size, and
//! the run starts with the latency of a bare 4 KiB write + fdatasync on the
//! same disk, the floor of one commit.

// criterion's macros generate undocumented items; a failed append should
// abort the benchmark loudly.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::fs::File;
use std::io::{Cursor, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use grayscope_core::Table;
use grayscope_store::wal::{Apply, Lsn, SyncPolicy, Wal, WalOptions};

const ROWS: usize = 512;

fn span_batch(seed: usize) -> RecordBatch {
    let routes = ["/cart", "/cart/{id}", "/checkout", "/payment", "/shipping"];
    let mut json = String::new();
    for i in 0..ROWS {
        let n = seed * ROWS + i;
        let start = 1_700_000_000_000_000_000i64 + n as i64 * 137_000;
        let duration = 200_000 + (n * 7919 % 50_000_000) as i64;
        let route = routes[n % routes.len()];
        let status = if n.is_multiple_of(50) { 500 } else { 200 };
        let events = if n.is_multiple_of(8) {
            format!(
                r#"[{{"time":{},"name":"exception","attributes":{{"exception.type":"TimeoutError","exception.message":"upstream timed out after 2000ms"}}}}]"#,
                start + duration / 2
            )
        } else {
            "[]".to_owned()
        };
        json.push_str(&format!(
            concat!(
                r#"{{"time":{start},"end_time":{end},"duration_ns":{duration},"#,
                r#""trace_id":"{trace:032x}","span_id":"{span:016x}","parent_span_id":"{parent:016x}","#,
                r#""service":"checkout","name":"GET {route}","kind":"server","status_code":"{code}","#,
                r#""http_route":"{route}","http_method":"GET","http_status_code":{status},"#,
                r#""peer_service":"cart","events":{events},"links":[],"#,
                r#""attributes":{{"http.route":"{route}","http.request.method":"GET","#,
                r#""http.response.status_code":"{status}","url.scheme":"https","#,
                r#""server.address":"checkout.internal","server.port":"8443","#,
                r#""client.address":"10.12.{a}.{b}","user_agent.original":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)","#,
                r#""network.protocol.version":"2","app.cart.items":"{items}"}},"#,
                r#""resource_attributes":{{"service.name":"checkout","service.version":"2.14.1","#,
                r#""service.instance.id":"checkout-7d9f8b6c5-x2x4q","deployment.environment.name":"production","#,
                r#""host.name":"node-17.eu-west-1.internal","telemetry.sdk.language":"rust"}},"#,
                r#""scope_name":"opentelemetry-instrumentation-axum","scope_version":"0.33.0","#,
                r#""scope_attributes":{{}},"cohort":"{cohort}","version":"2.14.1"}}"#,
                "\n"
            ),
            start = start,
            end = start + duration,
            duration = duration,
            trace = ((n as u128) * 0x9e37_79b9_7f4a_7c15) | 0x0002,
            span = n as u64 * 0x2545_f491 + 1,
            parent = n as u64 * 0x2545_f491 + 7,
            route = route,
            code = if status == 500 { "error" } else { "ok" },
            status = status,
            events = events,
            a = n % 256,
            b = n / 256 % 256,
            items = n % 9,
            cohort = if n.is_multiple_of(10) { "canary" } else { "baseline" },
        ));
    }
    arrow::json::ReaderBuilder::new(Table::Spans.schema())
        .with_batch_size(ROWS)
        .build(Cursor::new(json))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

struct Discard;

impl Apply for Discard {
    fn apply(&self, _: Lsn, _: Table, _: RecordBatch) {}
}

/// Mean latency of a 4 KiB write + fdatasync on the bench's disk.
fn fdatasync_latency(dir: &std::path::Path) -> Duration {
    let mut file = File::create(dir.join("probe")).unwrap();
    let block = [7u8; 4096];
    let rounds = 100;
    let start = Instant::now();
    for _ in 0..rounds {
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
    }
    start.elapsed() / rounds
}

fn wal_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let batches: Arc<Vec<RecordBatch>> = Arc::new((0..16).map(span_batch).collect());

    let probe = tempfile::tempdir().unwrap();
    eprintln!(
        "write 4 KiB + fdatasync on this disk: {:?} mean",
        fdatasync_latency(probe.path())
    );

    let mut group = c.benchmark_group("wal_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(1));

    let configs = [
        ("every_commit", SyncPolicy::EveryCommit, 1),
        ("every_commit", SyncPolicy::EveryCommit, 4),
        ("every_commit", SyncPolicy::EveryCommit, 16),
        (
            "interval_100ms",
            SyncPolicy::Interval(Duration::from_millis(100)),
            16,
        ),
    ];
    for (name, sync, appenders) in configs {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions {
            sync,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(dir.path(), options, Arc::new(Discard)).unwrap();
        let start_stats = wal.stats();
        let mut timed = Duration::ZERO;
        group.bench_function(format!("{name}/{appenders}"), |b| {
            b.iter_custom(|iters| {
                let elapsed = runtime.block_on(async {
                    let start = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for task in 0..appenders {
                        let count = iters / appenders + u64::from(task < iters % appenders);
                        let wal = wal.clone();
                        let batches = batches.clone();
                        tasks.spawn(async move {
                            for i in 0..count as usize {
                                let batch = batches[(task as usize + i) % batches.len()].clone();
                                wal.append(Table::Spans, batch).await.unwrap();
                            }
                        });
                    }
                    while let Some(result) = tasks.join_next().await {
                        result.unwrap();
                    }
                    start.elapsed()
                });
                timed += elapsed;
                // Keep the disk from filling; not timed.
                wal.truncate_before(wal.stats().last_lsn).unwrap();
                elapsed
            })
        });
        let stats = wal.stats();
        let appends = stats.appended_records - start_stats.appended_records;
        let bytes = stats.appended_bytes - start_stats.appended_bytes;
        let fsyncs = stats.fsyncs - start_stats.fsyncs;
        let groups = stats.commit_groups - start_stats.commit_groups;
        let seconds = timed.as_secs_f64();
        eprintln!(
            "wal_append/{name}/{appenders}: {appends} appends of {:.0} KiB in {seconds:.1} s: \
             {:.0} appends/s, {:.0} spans/s, {:.1} MB/s, {:.3} fsyncs/append, {:.2} appends/group",
            bytes as f64 / appends as f64 / 1024.0,
            appends as f64 / seconds,
            (appends as usize * ROWS) as f64 / seconds,
            bytes as f64 / seconds / 1e6,
            fsyncs as f64 / appends as f64,
            appends as f64 / groups as f64,
        );
        runtime.block_on(wal.close()).unwrap();
    }
    group.finish();
}

criterion_group!(benches, wal_append);
criterion_main!(benches);
