//! Benchmarks of the judge's statistics at the sizes a rollout window holds.
//!
//! `cargo bench -p grayscope-analyze --bench stats`
//!
//! Latencies are log-normal (median ≈ 100 ms, σ = 0.5), the canary shifted by
//! 3 %: continuous values (nearly all distinct — the worst case for the
//! run-length encoding) and the same rounded to whole milliseconds (heavy
//! ties, as durations from histograms or ms-resolution clocks arrive).

use criterion::{BenchmarkId, Criterion};
use grayscope_analyze::stats::{
    Alternative, Confidence, Proportion, Rate, Sample, compare_proportions, compare_rates,
    hodges_lehmann, mann_whitney,
};
use std::hint::black_box;
use std::time::Duration;

/// SplitMix64 + Box-Muller: deterministic log-normal latencies in ms.
fn latencies(n: usize, seed: u64, median_ms: f64) -> Vec<f64> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            median_ms * (0.5 * z).exp()
        })
        .collect()
}

fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.round()).collect()
}

fn latency_checks(c: &mut Criterion) {
    for &n in &[100_000_usize, 1_000_000] {
        let baseline_raw = latencies(n, 1, 100.0);
        let canary_raw = latencies(n, 2, 103.0);
        let mut group = c.benchmark_group(format!("latency_{n}x{n}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 20 } else { 8 }));
        group.warm_up_time(Duration::from_secs(1));

        for (kind, canary_values, baseline_values) in [
            ("continuous", canary_raw.clone(), baseline_raw.clone()),
            ("ms_ties", rounded(&canary_raw), rounded(&baseline_raw)),
        ] {
            let canary = Sample::from_slice(&canary_values);
            let baseline = Sample::from_slice(&baseline_values);
            group.bench_function(BenchmarkId::new("build_samples", kind), |b| {
                b.iter(|| {
                    (
                        Sample::from_slice(black_box(&canary_values)),
                        Sample::from_slice(black_box(&baseline_values)),
                    )
                })
            });
            group.bench_function(BenchmarkId::new("mann_whitney", kind), |b| {
                b.iter(|| {
                    mann_whitney(
                        black_box(&canary),
                        black_box(&baseline),
                        Alternative::Greater,
                    )
                })
            });
            group.bench_function(BenchmarkId::new("hodges_lehmann_ci", kind), |b| {
                b.iter(|| {
                    hodges_lehmann(
                        black_box(&canary),
                        black_box(&baseline),
                        Confidence::NINETY_FIVE,
                    )
                })
            });
            group.bench_function(
                BenchmarkId::new("whole_check_log_quantized_0.001", kind),
                |b| {
                    b.iter(|| {
                        let canary = Sample::log_quantized(black_box(&canary_values), 1e-3);
                        let baseline = Sample::log_quantized(black_box(&baseline_values), 1e-3);
                        canary.zip(baseline).map(|(canary, baseline)| {
                            let test = mann_whitney(&canary, &baseline, Alternative::Greater);
                            let shift = hodges_lehmann(&canary, &baseline, Confidence::NINETY_FIVE);
                            (test, shift)
                        })
                    })
                },
            );
            group.bench_function(BenchmarkId::new("whole_check", kind), |b| {
                b.iter(|| {
                    let canary = Sample::from_slice(black_box(&canary_values));
                    let baseline = Sample::from_slice(black_box(&baseline_values));
                    let test = mann_whitney(&canary, &baseline, Alternative::Greater);
                    let shift = hodges_lehmann(&canary, &baseline, Confidence::NINETY_FIVE);
                    let p99 = (canary.quantile(0.99), baseline.quantile(0.99));
                    (test, shift, p99)
                })
            });
        }
        group.finish();
    }
}

/// The shape of the judge's budget case: 1M spans in a window, 10 % of them
/// in the canary; exact, and on a 0.1 % log grid.
fn rollout_window(c: &mut Criterion) {
    let baseline_values = latencies(900_000, 3, 100.0);
    let canary_values = latencies(100_000, 4, 103.0);
    let mut group = c.benchmark_group("window_100k_canary_900k_baseline");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("whole_check_exact", |b| {
        b.iter(|| {
            let canary = Sample::from_slice(black_box(&canary_values));
            let baseline = Sample::from_slice(black_box(&baseline_values));
            let test = mann_whitney(&canary, &baseline, Alternative::Greater);
            let shift = hodges_lehmann(&canary, &baseline, Confidence::NINETY_FIVE);
            (test, shift)
        })
    });
    group.bench_function("whole_check_log_quantized_0.001", |b| {
        b.iter(|| {
            let canary = Sample::log_quantized(black_box(&canary_values), 1e-3);
            let baseline = Sample::log_quantized(black_box(&baseline_values), 1e-3);
            canary.zip(baseline).map(|(canary, baseline)| {
                let test = mann_whitney(&canary, &baseline, Alternative::Greater);
                let shift = hodges_lehmann(&canary, &baseline, Confidence::NINETY_FIVE);
                (test, shift)
            })
        })
    });
    group.finish();
}

fn count_tests(c: &mut Criterion) {
    let mut group = c.benchmark_group("counts");
    group.bench_function("fisher_1M_requests_1pct_vs_1.1pct", |b| {
        let canary = Proportion {
            events: 11_000,
            trials: 1_000_000,
        };
        let baseline = Proportion {
            events: 10_000,
            trials: 1_000_000,
        };
        b.iter(|| {
            compare_proportions(
                black_box(canary),
                black_box(baseline),
                Alternative::TwoSided,
                Confidence::NINETY_FIVE,
            )
        })
    });
    group.bench_function("fisher_small_3_of_200_vs_1_of_2000", |b| {
        let canary = Proportion {
            events: 3,
            trials: 200,
        };
        let baseline = Proportion {
            events: 1,
            trials: 2000,
        };
        b.iter(|| {
            compare_proportions(
                black_box(canary),
                black_box(baseline),
                Alternative::Greater,
                Confidence::NINETY_FIVE,
            )
        })
    });
    group.bench_function("poisson_rates_1e6_retransmits_per_1e9_segments", |b| {
        let canary = Rate {
            events: 1_020_000,
            exposure: 1e9,
        };
        let baseline = Rate {
            events: 1_000_000,
            exposure: 1e9,
        };
        b.iter(|| {
            compare_rates(
                black_box(canary),
                black_box(baseline),
                Alternative::TwoSided,
                Confidence::NINETY_FIVE,
            )
        })
    });
    group.bench_function("poisson_rates_5_vs_0", |b| {
        let canary = Rate {
            events: 5,
            exposure: 120.0,
        };
        let baseline = Rate {
            events: 0,
            exposure: 360.0,
        };
        b.iter(|| {
            compare_rates(
                black_box(canary),
                black_box(baseline),
                Alternative::Greater,
                Confidence::NINETY_FIVE,
            )
        })
    });
    group.finish();
}

/// Runs every group with criterion's command-line options.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    latency_checks(&mut c);
    rollout_window(&mut c);
    count_tests(&mut c);
    c.final_summary();
}
