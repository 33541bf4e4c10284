//! Mining throughput on one core, in lines per second.
//!
//! ```text
//! cargo bench -p grayscope-patterns --bench mine_throughput
//! ```
//!
//! Inputs:
//! - `loghub_concat`: the `Content` column of the eight Loghub 2k samples,
//!   concatenated (16 000 lines; `$LOGHUB_2K_DIR`, default
//!   `<repo>/../shared/data/loghub-2k`; skipped when absent). Measured cold (a
//!   new miner per pass, so it includes learning every template) and warm (a
//!   miner that has seen the lines once, the steady state of ingest).
//! - `mixed_1m`: 1 000 000 lines generated deterministically from 40 realistic
//!   templates (sshd, HTTP access logs, JVM, Kubernetes, kernel, PostgreSQL,
//!   JSON and logfmt services, …) with varying values — numbers, addresses,
//!   ids, paths, durations, and user names from a pool of 5 000 — mined by a
//!   new miner per pass.
//!
//! With `GRAYSCOPE_BENCH_DUMP=<dir>` it writes both inputs there (one body per
//! line) and exits, so `benches/drain3_compare.py` can feed drain3 the same
//! lines. With `GRAYSCOPE_BENCH_STATS=1` it mines each input once and prints
//! the rate and the miner's counters instead.

#![allow(
    missing_docs,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::{hint::black_box, path::Path};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use grayscope_patterns::{Miner, MinerConfig};

const DATASETS: &[&str] = &[
    "BGL",
    "HDFS",
    "Hadoop",
    "HealthApp",
    "Linux",
    "Mac",
    "OpenSSH",
    "Spark",
];

/// `Content` column of the Loghub samples (quoted CSV fields handled).
fn loghub_lines() -> Vec<String> {
    let dir = match std::env::var_os("LOGHUB_2K_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub-2k"),
    };
    let mut out = Vec::new();
    for ds in DATASETS {
        let path = dir
            .join(ds)
            .join(format!("{ds}_2k.log_structured_corrected.csv"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let rows = parse_csv(&text);
        let Some(col) = rows
            .first()
            .and_then(|h| h.iter().position(|c| c == "Content"))
        else {
            continue;
        };
        out.extend(
            rows.into_iter()
                .skip(1)
                .filter_map(|mut r| (r.len() > col).then(|| r.swap_remove(col))),
        );
    }
    out
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, _) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// splitmix64: a fixed, seedable generator so the stream is the same on
/// every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.below(256),
            self.below(256),
            1 + self.below(254)
        )
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

fn user(rng: &mut Rng) -> String {
    const A: &[&str] = &[
        "al", "be", "ca", "do", "el", "fa", "gi", "ho", "iv", "ja", "ka", "lu", "ma", "ne", "ol",
        "pa", "qu", "ro", "sa", "ti",
    ];
    const B: &[&str] = &[
        "na", "ric", "lo", "ra", "min", "son", "dy", "ta", "vin", "ly", "mo", "sha", "ck", "ne",
        "ro", "xi", "ber", "lia", "ton", "za",
    ];
    let k = rng.below(5_000);
    let (a, b, c) = (k % 20, (k / 20) % 20, (k / 400) % 13);
    format!("{}{}{}", A[a as usize], B[b as usize], B[c as usize])
}

/// One line of the mixed stream.
fn mixed_line(rng: &mut Rng) -> String {
    let services = ["checkout", "payments", "catalog", "search", "auth", "cart"];
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    let paths = [
        "/api/v1/orders",
        "/api/v1/items",
        "/api/v2/cart",
        "/healthz",
        "/api/v1/users",
    ];
    match rng.below(40) {
        0..=3 => format!(
            "Failed password for {} from {} port {} ssh2",
            user(rng),
            rng.ip(),
            1024 + rng.below(60_000)
        ),
        4 => format!(
            "Accepted publickey for {} from {} port {} ssh2: RSA SHA256:{}",
            user(rng),
            rng.ip(),
            1024 + rng.below(60_000),
            rng.hex(43)
        ),
        5 => format!(
            "Invalid user {} from {} port {}",
            user(rng),
            rng.ip(),
            1024 + rng.below(60_000)
        ),
        6..=11 => format!(
            "{} - - [01/May/2024:12:{:02}:{:02} +0000] \"{} {}/{} HTTP/1.1\" {} {} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt={}.{:03}",
            rng.ip(),
            rng.below(60),
            rng.below(60),
            rng.pick(&methods),
            rng.pick(&paths),
            rng.below(100_000),
            rng.pick(&[
                "200", "200", "200", "201", "204", "304", "404", "500", "502"
            ]),
            rng.below(90_000),
            rng.below(3),
            rng.below(1000)
        ),
        12..=14 => format!(
            "INFO [http-nio-8080-exec-{}] c.e.{}.OrderService - order {} created for customer {} in {}ms",
            rng.below(200),
            rng.pick(&services),
            rng.uuid(),
            rng.below(1_000_000),
            rng.below(900)
        ),
        15 => format!(
            "WARN [pool-{}-thread-{}] c.e.db.ConnectionPool - connection to redis {}:6379 timed out after {}.{}s",
            rng.below(8),
            rng.below(64),
            rng.ip(),
            rng.below(5),
            rng.below(10)
        ),
        16..=18 => format!(
            "{{\"ts\":\"2024-05-01T12:{:02}:{:02}.{:03}Z\",\"level\":\"info\",\"service\":\"{}\",\"msg\":\"request completed\",\"path\":\"{}/{}\",\"status\":{},\"duration_ms\":{},\"trace_id\":\"{}\"}}",
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            rng.pick(&services),
            rng.pick(&paths),
            rng.below(100_000),
            rng.pick(&["200", "200", "404", "500"]),
            rng.below(2_000),
            rng.hex(32)
        ),
        19 => format!(
            "{{\"ts\":\"2024-05-01T12:{:02}:{:02}Z\",\"level\":\"error\",\"service\":\"{}\",\"msg\":\"upstream call failed\",\"upstream\":\"{}\",\"error\":\"context deadline exceeded\",\"attempt\":{}}}",
            rng.below(60),
            rng.below(60),
            rng.pick(&services),
            rng.pick(&services),
            rng.below(5)
        ),
        20..=22 => format!(
            "time=2024-05-01T12:{:02}:{:02}Z level=info msg=\"cache miss\" key=user:{} shard={} took={}ms",
            rng.below(60),
            rng.below(60),
            rng.below(1_000_000),
            rng.below(16),
            rng.below(50)
        ),
        23 => format!(
            "time=2024-05-01T12:{:02}:{:02}Z level=warn msg=\"slow query\" table={} rows={} took={}ms",
            rng.below(60),
            rng.below(60),
            rng.pick(&["orders", "items", "users", "carts"]),
            rng.below(100_000),
            200 + rng.below(5_000)
        ),
        24 => format!(
            "Out of memory: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:0kB",
            rng.below(65_536),
            rng.pick(&["java", "python3", "node", "envoy"]),
            rng.below(10_000_000),
            rng.below(5_000_000),
            rng.below(100_000)
        ),
        25 => format!(
            "[GC pause (G1 Evacuation Pause) (young) {}M->{}M({}M), {}.{:07} secs]",
            rng.below(4096),
            rng.below(4096),
            4096,
            rng.below(2),
            rng.below(10_000_000)
        ),
        26 | 27 => format!(
            "duration: {}.{:03} ms  statement: SELECT id, total FROM orders WHERE customer_id = {} AND created_at > now() - interval '1 day'",
            rng.below(500),
            rng.below(1000),
            rng.below(1_000_000)
        ),
        28 => format!(
            "Pod {}/{}-{}-{} changed phase to {}",
            rng.pick(&["default", "shop", "kube-system"]),
            rng.pick(&services),
            rng.hex(10),
            rng.hex(5),
            rng.pick(&["Running", "Pending", "Succeeded", "Failed"])
        ),
        29 => format!(
            "Started container {} in pod {}-{} on node ip-{}-{}-{}-{}.ec2.internal",
            rng.pick(&services),
            rng.pick(&services),
            rng.hex(5),
            10,
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        30 => format!(
            "Deleting block blk_{} file /data/{}/current/subdir{}/blk_{}",
            rng.below(1 << 62),
            rng.below(12),
            rng.below(64),
            rng.below(1 << 62)
        ),
        31 => format!(
            "Receiving block blk_{} src: /{}:{} dest: /{}:50010",
            rng.below(1 << 62),
            rng.ip(),
            rng.below(65_536),
            rng.ip()
        ),
        32 => format!(
            "session opened for user {} by (uid={})",
            user(rng),
            rng.below(1000)
        ),
        33 => format!("session closed for user {}", user(rng)),
        34 => format!(
            "Finished task {}.0 in stage {}.0 (TID {}). {} bytes result sent to driver",
            rng.below(200),
            rng.below(50),
            rng.below(100_000),
            rng.below(10_000)
        ),
        35 => format!(
            "Connection reset by peer while reading response header from upstream, client: {}, server: shop.example.com, request: \"GET {} HTTP/1.1\"",
            rng.ip(),
            rng.pick(&paths)
        ),
        36 => format!(
            "user {} logged in from {} using {}",
            user(rng),
            rng.ip(),
            rng.pick(&["password", "sso", "webauthn"])
        ),
        37 => format!(
            "payment {} authorised for {}.{:02} EUR via {}",
            rng.uuid(),
            rng.below(500),
            rng.below(100),
            rng.pick(&["visa", "mastercard", "paypal", "sepa"])
        ),
        38 => format!(
            "retrying request to https://{}.internal:8443/v1/{} after {}ms (attempt {} of 5)",
            rng.pick(&services),
            rng.pick(&["charge", "refund", "lookup"]),
            rng.below(2_000),
            1 + rng.below(5)
        ),
        _ => format!(
            "container {}-{}-{} OOMKilled (exit code 137), restarting in {}s",
            rng.pick(&services),
            rng.hex(9),
            rng.hex(5),
            rng.below(300)
        ),
    }
}

fn mixed_stream(n: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    (0..n).map(|_| mixed_line(&mut rng)).collect()
}

fn mine_all(m: &mut Miner, lines: &[String]) {
    for (i, l) in lines.iter().enumerate() {
        black_box(m.mine(l, i as u64));
    }
}

/// CPU time this thread has run, in ns (Linux `schedstat`; 0 elsewhere): a
/// rate per CPU second that other processes on a busy machine do not skew.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn dump(dir: &Path, loghub: &[String], mixed: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    // Loghub contents hold no newlines; one body per line.
    std::fs::write(dir.join("loghub_concat.log"), loghub.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("mixed_1m.log"), mixed.join("\n") + "\n").unwrap();
    println!(
        "wrote {} and {} lines to {}",
        loghub.len(),
        mixed.len(),
        dir.display()
    );
}

fn bench(c: &mut Criterion) {
    let loghub = loghub_lines();
    let mixed = mixed_stream(1_000_000);
    if let Some(dir) = std::env::var_os("GRAYSCOPE_BENCH_DUMP") {
        dump(Path::new(&dir), &loghub, &mixed);
        return;
    }
    if std::env::var_os("GRAYSCOPE_BENCH_STATS").is_some() {
        // Warm the shared DFA first so the first input does not pay for it.
        Miner::new(MinerConfig::default()).mine("warm up 1", 0);
        let mut warm = Miner::new(MinerConfig::default());
        mine_all(&mut warm, &loghub);
        // The CPU clock advances in scheduler ticks (a few ms): repeat the
        // short inputs so every measurement spans hundreds of milliseconds.
        let runs: [(&str, &[String], bool, usize); 3] = [
            ("loghub_concat_cold", &loghub, false, 60),
            ("loghub_concat_warm", &loghub, true, 100),
            ("mixed_1m", &mixed, false, 1),
        ];
        for (name, lines, use_warm, repeat) in runs {
            let mut fresh = Miner::new(MinerConfig::default());
            let (t, cpu) = (std::time::Instant::now(), thread_cpu_ns());
            for _ in 0..repeat {
                if use_warm {
                    mine_all(&mut warm, lines);
                } else {
                    fresh = Miner::new(MinerConfig::default());
                    mine_all(&mut fresh, lines);
                }
            }
            let secs = t.elapsed().as_secs_f64();
            let cpu_secs = (thread_cpu_ns() - cpu) as f64 / 1e9;
            let total = (lines.len() * repeat) as f64;
            let m = if use_warm { &warm } else { &fresh };
            println!(
                "{name}: {:.0} lines/s wall, {:.0} lines/s of thread CPU time, {:?}",
                total / secs,
                total / cpu_secs,
                m.stats()
            );
        }
        return;
    }
    let mut g = c.benchmark_group("mine");
    g.sample_size(10);
    if !loghub.is_empty() {
        g.throughput(Throughput::Elements(loghub.len() as u64));
        g.bench_function("loghub_concat_cold", |b| {
            b.iter_batched(
                || Miner::new(MinerConfig::default()),
                |mut m| mine_all(&mut m, &loghub),
                BatchSize::LargeInput,
            )
        });
        let mut warm = Miner::new(MinerConfig::default());
        mine_all(&mut warm, &loghub);
        g.bench_function("loghub_concat_warm", |b| {
            b.iter(|| mine_all(&mut warm, &loghub))
        });
    }
    g.throughput(Throughput::Elements(mixed.len() as u64));
    g.bench_function("mixed_1m", |b| {
        b.iter_batched(
            || Miner::new(MinerConfig::default()),
            |mut m| mine_all(&mut m, &mixed),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
