//! The store's promise end to end: what grayscope acknowledged is never
//! lost, whatever kills the process, and back-pressure never drops data.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message as _;

use super::harness::Server;

/// One export request of `n` spans, each named `{prefix}-{i}` with its own
/// trace id (so names and ids are unique across the test).
fn request(prefix: &str, seed: u64, n: usize) -> Vec<u8> {
    let spans = (0..n)
        .map(|i| {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&seed.to_be_bytes());
            trace_id[8..12].copy_from_slice(&(i as u32).to_be_bytes());
            trace_id[15] = 1;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                name: format!("{prefix}-{i}"),
                kind: 2,
                start_time_unix_nano: 1_764_000_000_000_000_000 + seed * 1_000_000 + i as u64,
                end_time_unix_nano: 1_764_000_000_000_000_000 + seed * 1_000_000 + i as u64 + 5_000,
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Sends requests until the server stops answering or `stop` is set;
/// records the names of every span whose request was acknowledged with 200.
async fn send_until_gone(
    http: SocketAddr,
    tag: String,
    seed_base: u64,
    acknowledged: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let client = reqwest::Client::new();
    let (mut acked, mut refused) = (0, 0);
    for request_no in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let prefix = format!("{tag}-{request_no}");
        let body = request(&prefix, seed_base + request_no, 50);
        let sent = client
            .post(format!("http://{http}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 200 => {
                acked += 1;
                let mut names = acknowledged.lock().unwrap();
                names.extend((0..50).map(|i| format!("{prefix}-{i}")));
            }
            Ok(response) if response.status() == 429 || response.status() == 503 => {
                assert!(response.headers().contains_key("retry-after"));
                refused += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(response) => panic!("unexpected status {}", response.status()),
            // Killed mid-request: not acknowledged, may or may not be stored.
            Err(_) => break,
        }
    }
    (acked, refused)
}

/// Settings that make flushes, renames and segment rotations frequent, so
/// kills land in the middle of each.
const CHURN: &str = "[store]\nflush_size = \"32KiB\"\nflush_interval = \"1s\"\n\
                     [store.wal]\nsegment_size = \"1MiB\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    // A fixed-seed generator: the test is the same every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let kills = 24;
    // Kills between a segment's retirement and its reuse count only if
    // segments are retired for reuse at all.
    let mut kills_with_free_segments = 0;
    for round in 0..kills {
        let node = Server::start_in(dir.path(), CHURN);
        let senders: Vec<_> = (0..3)
            .map(|sender| {
                tokio::spawn(send_until_gone(
                    node.http,
                    format!("k{round:02}s{sender}"),
                    (round * 10 + sender) * 1_000_000,
                    acknowledged.clone(),
                    Arc::new(AtomicBool::new(false)),
                ))
            })
            .collect();
        // Kill at a random moment: during appends, fsyncs, flushes, renames.
        let delay = 30 + next() % 600;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill();
        for sender in senders {
            sender.await.unwrap();
        }
        let free = std::fs::read_dir(dir.path().join("data/wal"))
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".wal.free")
            })
            .count();
        kills_with_free_segments += usize::from(free > 0);
    }

    let node = Server::start_in(dir.path(), CHURN);
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();
    let duplicates = node
        .sql("SELECT name, count(*) AS n FROM spans GROUP BY name HAVING count(*) > 1 LIMIT 5")
        .await;
    assert!(duplicates.is_empty(), "rows stored twice: {duplicates:?}");
    let stored: HashSet<String> = node
        .sql("SELECT name FROM spans")
        .await
        .into_iter()
        .map(|row| row["name"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|n| !stored.contains(*n))
        .collect();
    println!(
        "kills: {kills} ({kills_with_free_segments} with log segments waiting for reuse); \
         acknowledged spans: {}; found: {}; stored in all (incl. unacknowledged): {}",
        acknowledged.len(),
        acknowledged.len() - missing.len(),
        stored.len()
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged spans lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        acknowledged.len() > 10_000,
        "too little was acknowledged to mean anything"
    );
    assert!(kills_with_free_segments > 0, "no log segment was reused");
    let parts = node.sql("SELECT count(*) AS n FROM system.parts").await;
    assert!(
        parts[0]["n"].as_i64().unwrap() > 0,
        "no flush ever completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_gets_backpressure_memory_stays_capped_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 512 * 1024;
    // Refusal at the memory limit, without the stall that would otherwise
    // slow the flood before it gets there (the store's tests cover that).
    let node = Server::start_in(
        dir.path(),
        &format!(
            "[store]\nflush_size = \"64KiB\"\nmemory_limit = {limit}\nflush_interval = \"1s\"\nstall_memtables = 0\n"
        ),
    );
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let api = node.api;
    let watcher = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut peak = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(4) {
            let response = client
                .post(format!("http://{api}/api/v1/sql"))
                .body("SELECT memory_bytes FROM system.store")
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = response.json().await.unwrap();
            peak = peak.max(body["rows"][0]["memory_bytes"].as_i64().unwrap());
        }
        peak
    });
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            tokio::spawn(send_until_gone(
                node.http,
                format!("f{sender}"),
                sender * 1_000_000,
                acknowledged.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Stop between requests, so each one sent is either answered or not.
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        let (acked, _) = sender.await.unwrap();
        assert!(acked > 0);
    }
    let peak = watcher.await.unwrap();
    let rejected =
        node.sql("SELECT rejected_appends FROM system.store").await[0]["rejected_appends"]
            .as_i64()
            .unwrap();
    println!(
        "peak memtable bytes {peak} of {limit}; appends refused with back-pressure: {rejected}"
    );
    assert!(
        peak <= limit,
        "memtables held {peak} bytes, over the {limit} cap"
    );
    assert!(rejected > 0, "the flood never met back-pressure");

    let acknowledged = acknowledged.lock().unwrap().clone();
    let stored: HashSet<String> = node
        .sql("SELECT name FROM spans")
        .await
        .into_iter()
        .map(|row| row["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "refused requests must store nothing"
    );
    assert!(acknowledged.iter().all(|n| stored.contains(n)));
}
