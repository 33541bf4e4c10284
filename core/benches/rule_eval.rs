//! Cost of labelling a record with a cohort rule: a 5-clause rule evaluated
//! on records of 17 attributes, per attribute source.
//!
//! Each iteration evaluates the same 1000 records, so criterion's time per
//! iteration in µs reads directly as ns per record; after criterion, a
//! summary line per source prints ns/record explicitly.
//!
//! `cargo bench -p grayscope-core --bench rule_eval`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use grayscope_core::rule::{Rule, SortedAttributes};

/// Five comparisons: string equality, version order, numeric order.
const RULE: &str = r#"(geo == "华南" AND isp == "移动") OR (device.type == "iOS" AND tls.version >= "1.3") OR http.response.status_code >= 500"#;

const RECORDS: usize = 1000;

/// Records shaped like a span's attributes with its resource's and baggage
/// folded in, values varied so that every branch of the rule is taken.
fn records() -> Vec<Vec<(String, String)>> {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut pick = |options: &[&str]| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let i = usize::try_from(seed >> 33).unwrap_or(0) % options.len();
        options[i].to_owned()
    };
    (0..RECORDS)
        .map(|i| {
            let mut attrs = vec![
                ("service.name".to_owned(), "checkout".to_owned()),
                ("service.version".to_owned(), pick(&["2.3.0", "2.4.0-rc.1"])),
                ("host.name".to_owned(), format!("node-{}", i % 37)),
                ("k8s.namespace.name".to_owned(), "shop".to_owned()),
                ("k8s.pod.name".to_owned(), format!("checkout-7d9f{:04x}", i)),
                ("http.request.method".to_owned(), pick(&["GET", "POST"])),
                (
                    "http.route".to_owned(),
                    pick(&["/cart", "/pay", "/items/{id}"]),
                ),
                (
                    "http.response.status_code".to_owned(),
                    pick(&["200", "200", "200", "404", "503"]),
                ),
                ("url.scheme".to_owned(), "https".to_owned()),
                ("server.address".to_owned(), "api.example.com".to_owned()),
                (
                    "user_agent.original".to_owned(),
                    pick(&["okhttp/4.12", "CFNetwork/1494"]),
                ),
                ("network.protocol.version".to_owned(), pick(&["1.1", "2"])),
                ("tls.version".to_owned(), pick(&["1.2", "1.3", "1.10"])),
                ("geo".to_owned(), pick(&["华南", "华北", "华东"])),
                ("isp".to_owned(), pick(&["移动", "电信", "联通"])),
                ("device.type".to_owned(), pick(&["iOS", "Android", "Web"])),
                ("baggage.group".to_owned(), pick(&["beta", "default"])),
            ];
            attrs.sort();
            attrs
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rule = Rule::parse(RULE).unwrap_or_else(|e| panic!("{e}"));
    let sorted = records();
    let maps: Vec<HashMap<String, String>> = sorted
        .iter()
        .map(|pairs| pairs.iter().cloned().collect())
        .collect();

    let mut group = c.benchmark_group("rule_eval");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("hashmap", |b| {
        b.iter(|| maps.iter().filter(|m| rule.evaluate(black_box(*m))).count());
    });
    group.bench_function("sorted_slice", |b| {
        b.iter(|| {
            sorted
                .iter()
                .filter(|p| rule.evaluate(&SortedAttributes::new(black_box(p))))
                .count()
        });
    });
    group.bench_function("slice_scan", |b| {
        b.iter(|| {
            sorted
                .iter()
                .filter(|p| rule.evaluate(black_box(&p[..])))
                .count()
        });
    });
    group.bench_function("hashmap_reference_walk", |b| {
        b.iter(|| {
            maps.iter()
                .filter(|m| rule.expr().evaluate(black_box(*m)))
                .count()
        });
    });
    group.finish();

    c.bench_function("rule_parse", |b| b.iter(|| Rule::parse(black_box(RULE))));

    let matched = maps.iter().filter(|m| rule.evaluate(*m)).count();
    summary(&rule, &maps, &sorted, matched);
}

/// ns/record by plain timed loops, printed as such. Each source is timed in
/// 15 repetitions, interleaved so that background load hits them alike; the
/// minimum is the least disturbed figure, the median shows the spread.
#[allow(clippy::print_stdout, clippy::cast_precision_loss)] // a bench reports on the terminal
fn summary(
    rule: &Rule,
    maps: &[HashMap<String, String>],
    sorted: &[Vec<(String, String)>],
    matched: usize,
) {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    const ROUNDS: usize = 200;
    const REPETITIONS: usize = 15;
    let sources: [(&str, &dyn Fn() -> usize); 4] = [
        ("HashMap<String, String>", &|| {
            maps.iter().filter(|m| rule.evaluate(black_box(*m))).count()
        }),
        ("slice of pairs (linear scan)", &|| {
            sorted
                .iter()
                .filter(|p| rule.evaluate(black_box(&p[..])))
                .count()
        }),
        ("sorted slice (SortedAttributes)", &|| {
            sorted
                .iter()
                .filter(|p| rule.evaluate(&SortedAttributes::new(black_box(p))))
                .count()
        }),
        ("HashMap, reference tree walk", &|| {
            maps.iter()
                .filter(|m| rule.expr().evaluate(black_box(*m)))
                .count()
        }),
    ];
    let mut samples = vec![Vec::with_capacity(REPETITIONS); sources.len()];
    for _ in 0..REPETITIONS {
        for (i, (_, run)) in sources.iter().enumerate() {
            let start = Instant::now();
            let mut n = 0;
            for _ in 0..ROUNDS {
                n += run();
            }
            black_box(n);
            samples[i].push(start.elapsed().as_nanos() as f64 / (ROUNDS * RECORDS) as f64);
        }
    }
    println!(
        "rule_eval summary: 5-clause rule, 17 attributes/record, {matched}/{RECORDS} records match"
    );
    for ((name, _), mut ns) in sources.iter().zip(samples) {
        ns.sort_by(f64::total_cmp);
        println!(
            "rule_eval summary: {name}: {:.1} ns/record (min of {REPETITIONS}; median {:.1})",
            ns[0],
            ns[REPETITIONS / 2]
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
