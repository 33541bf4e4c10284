//! Order statistics of the n₁·n₂ pairwise differences `x − y` of two
//! samples, without materialising them.
//!
//! The Hodges-Lehmann estimate and its confidence interval are order
//! statistics of the differences `cᵢ − bⱼ` (canary minus baseline). For
//! 100 000 × 100 000 observations that is 10¹⁰ differences: materialising them
//! is out of the question, and the textbook alternative — binary search on the
//! value with an O(n₁+n₂) counting pass per step — needs ~64 passes.
//!
//! # Algorithm
//!
//! With both samples sorted, the differences form an implicit matrix whose
//! rows (fixed `x`) decrease along `y`. For a threshold `t` the number of
//! differences ≤ t is counted in one monotone two-pointer sweep, O(a + b) for
//! a and b distinct values (weighted by the run counts, so tied data costs
//! only its distinct values). Selection keeps a *band* `(lo, hi]` known to
//! contain the wanted rank, as one column range per row, and narrows it in
//! rounds, in the spirit of Floyd–Rivest selection and Monahan's (1984)
//! randomized Hodges-Lehmann algorithm:
//!
//! 1. draw a stratified random sample of s differences from the band (row by
//!    row, O(a + s·log b));
//! 2. take the two sample order statistics that bracket the wanted rank with
//!    a margin of ~4 standard errors, and count both with one sweep;
//! 3. the band shrinks by a factor ≈ √s / 4 per round (64 for s = 65 536);
//! 4. when at most `max(8192, (a+b)/2)` differences remain in the band, they
//!    are enumerated and selected directly.
//!
//! Each round is one or two O(a + b) sweeps, and three to five rounds reach
//! the enumeration threshold for 10⁶ × 10⁶. Ranks that are close together
//! (the median and the two CI bounds) share their first rounds.
//!
//! The answer is **exact** — the same `f64` a sort of all differences would
//! give (the differences are computed as `x − y` in f64 exactly as such a sort
//! would). The randomness (a fixed-seed SplitMix64) only steers how fast the
//! band shrinks. Two safety nets make termination unconditional: a band held
//! by one huge tie (all differences equal) is recognised by counting `< t`
//! and `≤ t`, and any round that fails to shrink the band falls back to a
//! bisection step on the bit pattern of the value, which needs at most 64
//! steps.

use crate::stats::sample::Sample;
use crate::stats::sort::{from_ordered_bits, ordered_bits};

/// Differences left in the band at which they are enumerated.
const MIN_ENUMERATE: u128 = 8192;
/// Sample size per round: (a + b) / 16 clamped into this range.
const MIN_SAMPLE: usize = 2048;
const MAX_SAMPLE: usize = 65_536;

/// The implicit matrix of differences `x[i] − y[j]` of two samples.
pub(crate) struct PairwiseDifferences<'a> {
    xv: &'a [f64],
    xc: &'a [u64],
    yv: &'a [f64],
    yc: &'a [u64],
    /// `ysuf[j]` = number of y observations at or after run j; `ysuf[b]` = 0.
    ysuf: Vec<u64>,
    total: u128,
    enumerate_limit: u128,
    sample_size: usize,
}

/// Differences in `(lo, hi]`: for row i, columns `p_hi[i]..p_lo[i]`.
#[derive(Clone)]
struct Band {
    lo: f64,
    /// Weight of differences ≤ lo.
    c_lo: u128,
    hi: f64,
    /// Weight of differences ≤ hi.
    c_hi: u128,
    /// First column with difference ≤ lo, per row.
    p_lo: Vec<u32>,
    /// First column with difference ≤ hi, per row.
    p_hi: Vec<u32>,
}

impl Band {
    fn weight(&self) -> u128 {
        self.c_hi - self.c_lo
    }
}

/// A threshold to count, restricted to `bands[band]`; the sweep fills `ptr`
/// (first column ≤ t per row) and `count` (weight of differences ≤ t).
struct Query {
    t: f64,
    band: usize,
    ptr: Vec<u32>,
    count: u128,
}

/// SplitMix64: tiny, fast, and fixed-seeded so runs are reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl<'a> PairwiseDifferences<'a> {
    /// The differences `x − y`. Both samples must be non-empty and have fewer
    /// than 2³² distinct values.
    pub(crate) fn new(x: &'a Sample, y: &'a Sample) -> Self {
        let (xv, xc, yv, yc) = (x.values(), x.counts(), y.values(), y.counts());
        let mut ysuf = vec![0_u64; yv.len() + 1];
        for j in (0..yv.len()).rev() {
            ysuf[j] = ysuf[j + 1] + yc[j];
        }
        let size = xv.len() + yv.len();
        PairwiseDifferences {
            xv,
            xc,
            yv,
            yc,
            ysuf,
            total: u128::from(x.len()) * u128::from(y.len()),
            enumerate_limit: MIN_ENUMERATE.max(size as u128 / 2),
            sample_size: (size / 16).clamp(MIN_SAMPLE, MAX_SAMPLE),
        }
    }

    /// Number of differences, n₁·n₂.
    pub(crate) fn total(&self) -> u128 {
        self.total
    }

    fn diff(&self, i: usize, j: usize) -> f64 {
        self.xv[i] - self.yv[j]
    }

    fn full_band(&self) -> Band {
        Band {
            lo: f64::NEG_INFINITY,
            c_lo: 0,
            hi: f64::INFINITY,
            c_hi: self.total,
            p_lo: vec![self.yv.len() as u32; self.xv.len()],
            p_hi: vec![0; self.xv.len()],
        }
    }

    /// Counts differences ≤ t (t inside the band) and records, per row, the
    /// first column whose difference is ≤ t.
    fn count_le(&self, t: f64, band: &Band, ptr: &mut Vec<u32>) -> u128 {
        let mut queries = [Query {
            t,
            band: 0,
            ptr: std::mem::take(ptr),
            count: 0,
        }];
        self.count_many(std::slice::from_ref(band), &mut queries);
        let [q] = queries;
        *ptr = q.ptr;
        q.count
    }

    /// Counts, for every query, the differences ≤ its threshold (inside its
    /// band), recording per-row pointers — all in one sweep over the rows.
    /// Each query's column pointer only moves forward (the first column with
    /// difference ≤ t is non-decreasing in the row), and never leaves the
    /// row's band, so a sweep is O(a + b) per query and O(a + Σ band widths)
    /// once the bands are narrow; fusing the queries shares the row reads.
    fn count_many(&self, bands: &[Band], queries: &mut [Query]) {
        let mut pos = vec![0_usize; queries.len()];
        for q in queries.iter_mut() {
            q.ptr.clear();
            q.ptr.reserve(self.xv.len());
            q.count = 0;
        }
        for i in 0..self.xv.len() {
            let x = self.xv[i];
            let weight = u128::from(self.xc[i]);
            for (q, p) in queries.iter_mut().zip(pos.iter_mut()) {
                let band = &bands[q.band];
                let end = band.p_lo[i] as usize;
                let mut j = (*p).max(band.p_hi[i] as usize);
                while j < end && x - self.yv[j] > q.t {
                    j += 1;
                }
                *p = j;
                let j = j.min(end);
                q.ptr.push(j as u32);
                q.count += weight * u128::from(self.ysuf[j]);
            }
        }
    }

    /// Moves `band.lo` up to `t`, given W(≤ t) < rank.
    fn raise_lo(band: &mut Band, t: f64, c: u128, ptr: &mut Vec<u32>) {
        band.lo = t;
        band.c_lo = c;
        std::mem::swap(&mut band.p_lo, ptr);
    }

    /// Moves `band.hi` down to `t`, given W(≤ t) ≥ rank.
    fn lower_hi(band: &mut Band, t: f64, c: u128, ptr: &mut Vec<u32>) {
        band.hi = t;
        band.c_hi = c;
        std::mem::swap(&mut band.p_hi, ptr);
    }

    /// A stratified random sample of `s` differences from the band.
    fn sample_band(&self, band: &Band, s: usize, rng: &mut SplitMix64, out: &mut Vec<f64>) {
        out.clear();
        let weight = band.weight() as f64;
        let mut row = 0_usize;
        let mut row_start: u128 = 0; // weight before `row`
        let row_weight = |i: usize| {
            u128::from(self.xc[i])
                * u128::from(self.ysuf[band.p_hi[i] as usize] - self.ysuf[band.p_lo[i] as usize])
        };
        let mut w_row = row_weight(0);
        let last = band.weight() - 1;
        for t in 0..s {
            let pos = (((t as f64 + rng.next_f64()) / s as f64 * weight) as u128).min(last);
            while row_start + w_row <= pos {
                row_start += w_row;
                row += 1;
                w_row = row_weight(row);
            }
            // Offset within the row, in baseline observations.
            let y_off = ((pos - row_start) / u128::from(self.xc[row])) as u64;
            let (from, to) = (band.p_hi[row] as usize, band.p_lo[row] as usize);
            let target = self.ysuf[from] - y_off;
            // Last column j in [from, to) with ysuf[j] ≥ target.
            let j = from + self.ysuf[from..to].partition_point(|&s| s >= target) - 1;
            out.push(self.diff(row, j));
        }
    }

    /// Narrows each band around its target ranks `(k1, k2)` (1-based,
    /// k1 ≤ k2) until it is small enough to enumerate or stops shrinking.
    /// All bands advance together: one sampling step per band, then one fused
    /// counting sweep for all their thresholds.
    fn narrow_all(&self, bands: &mut [Band], targets: &[(u128, u128)], rng: &mut SplitMix64) {
        let s = self.sample_size;
        let margin = 2.0 * (s as f64).sqrt() + 2.0;
        let mut samples = Vec::new();
        let mut spare: Vec<Vec<u32>> = Vec::new();
        let mut active: Vec<usize> = (0..bands.len())
            .filter(|&b| bands[b].weight() > self.enumerate_limit)
            .collect();
        while !active.is_empty() {
            let mut queries = Vec::with_capacity(2 * active.len());
            for &b in &active {
                let band = &bands[b];
                let (k1, k2) = targets[b];
                let weight = band.weight() as f64;
                self.sample_band(band, s, rng, &mut samples);
                let (r1, r2) = ((k1 - band.c_lo) as f64, (k2 - band.c_lo) as f64);
                let idx1 = (r1 / weight * s as f64 - margin).floor();
                let idx2 = (r2 / weight * s as f64 + margin).ceil();
                for idx in [idx1, idx2] {
                    if idx >= 0.0 && idx < s as f64 {
                        let (_, &mut t, _) =
                            samples.select_nth_unstable_by(idx as usize, f64::total_cmp);
                        if t > band.lo && t < band.hi {
                            queries.push(Query {
                                t,
                                band: b,
                                ptr: spare.pop().unwrap_or_default(),
                                count: 0,
                            });
                        }
                    }
                }
            }
            let before: Vec<u128> = active.iter().map(|&b| bands[b].weight()).collect();
            self.count_many(bands, &mut queries);
            for mut q in queries {
                let band = &mut bands[q.band];
                let (k1, k2) = targets[q.band];
                if q.count < k1 && q.t > band.lo {
                    Self::raise_lo(band, q.t, q.count, &mut q.ptr);
                } else if q.count >= k2 && q.t < band.hi {
                    Self::lower_hi(band, q.t, q.count, &mut q.ptr);
                }
                spare.push(q.ptr);
            }
            let mut still = Vec::with_capacity(active.len());
            for (&b, &was) in active.iter().zip(&before) {
                let now = bands[b].weight();
                // Stop a band that is small enough, or that shrank by less
                // than a quarter (a huge tie, or the ranks are far apart).
                if now > self.enumerate_limit && now * 4 <= was * 3 {
                    still.push(b);
                }
            }
            active = still;
        }
    }

    /// The k-th smallest difference (1-based, weighted) inside `band`.
    fn finish(&self, mut band: Band, k: u128, rng: &mut SplitMix64) -> f64 {
        let mut ptr = Vec::new();
        let mut ptr_lt = Vec::new();
        loop {
            self.narrow_all(std::slice::from_mut(&mut band), &[(k, k)], rng);
            if band.weight() <= self.enumerate_limit {
                return self.enumerate(&band, k);
            }
            if band.hi == band.lo.next_up() {
                return band.hi;
            }
            // Stalled: either one value holds most of the band (heavy ties),
            // or the sample was unlucky. Test the band's sampled median as an
            // atom, then take one guaranteed bisection step on the value.
            let mut samples = Vec::new();
            self.sample_band(&band, MIN_SAMPLE, rng, &mut samples);
            let mid = MIN_SAMPLE / 2;
            let (_, &mut t, _) = samples.select_nth_unstable_by(mid, f64::total_cmp);
            let c_le = self.count_le(t, &band, &mut ptr);
            let below = t.next_down();
            if below > band.lo {
                let c_lt = self.count_le(below, &band, &mut ptr_lt);
                if c_lt < k && k <= c_le {
                    return t;
                }
                if c_lt >= k {
                    Self::lower_hi(&mut band, below, c_lt, &mut ptr_lt);
                } else {
                    Self::raise_lo(&mut band, t, c_le, &mut ptr);
                }
            } else if c_le >= k {
                // (lo, t] holds only t.
                return t;
            } else {
                Self::raise_lo(&mut band, t, c_le, &mut ptr);
            }
            if band.weight() > self.enumerate_limit && band.hi > band.lo.next_up() {
                let (a, b) = (ordered_bits(band.lo), ordered_bits(band.hi));
                let m = from_ordered_bits(a + (b - a) / 2);
                if m > band.lo && m < band.hi {
                    let c = self.count_le(m, &band, &mut ptr);
                    if c >= k {
                        Self::lower_hi(&mut band, m, c, &mut ptr);
                    } else {
                        Self::raise_lo(&mut band, m, c, &mut ptr);
                    }
                }
            }
        }
    }

    /// Enumerates the band and selects the rank directly.
    fn enumerate(&self, band: &Band, k: u128) -> f64 {
        let r = k - band.c_lo; // 1-based rank within the band
        let unweighted = self.xc.iter().all(|&c| c == 1) && self.yc.iter().all(|&c| c == 1);
        if unweighted {
            let mut values = Vec::with_capacity(band.weight() as usize);
            for i in 0..self.xv.len() {
                for j in band.p_hi[i] as usize..band.p_lo[i] as usize {
                    values.push(self.diff(i, j));
                }
            }
            let (_, &mut v, _) = values.select_nth_unstable_by(r as usize - 1, f64::total_cmp);
            return v;
        }
        let mut pairs = Vec::new();
        for i in 0..self.xv.len() {
            for j in band.p_hi[i] as usize..band.p_lo[i] as usize {
                pairs.push((
                    self.diff(i, j),
                    u128::from(self.xc[i]) * u128::from(self.yc[j]),
                ));
            }
        }
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut acc = 0;
        for (v, w) in &pairs {
            acc += w;
            if acc >= r {
                return *v;
            }
        }
        band.hi
    }

    /// The order statistics at the given 1-based ranks (each in 1..=total),
    /// in the same order.
    pub(crate) fn select(&self, ranks: &[u128]) -> Vec<f64> {
        let mut rng = SplitMix64(0x6772_6179_7363_6f70); // "grayscop"
        let (Some(&k_min), Some(&k_max)) = (ranks.iter().min(), ranks.iter().max()) else {
            return Vec::new();
        };
        // Close ranks (the median and the CI ends) share the first rounds.
        let mut shared = [self.full_band()];
        self.narrow_all(&mut shared, &[(k_min, k_max)], &mut rng);
        let [shared] = shared;
        let mut bands: Vec<Band> = ranks.iter().map(|_| shared.clone()).collect();
        let targets: Vec<(u128, u128)> = ranks.iter().map(|&k| (k, k)).collect();
        self.narrow_all(&mut bands, &targets, &mut rng);
        bands
            .into_iter()
            .zip(ranks)
            .map(|(band, &k)| self.finish(band, k, &mut rng))
            .collect()
    }

    /// The smallest difference greater than `v`, if any. One sweep.
    pub(crate) fn next_above(&self, v: f64) -> Option<f64> {
        let band = self.full_band();
        let mut ptr = Vec::new();
        self.count_le(v, &band, &mut ptr);
        (0..self.xv.len())
            .filter(|&i| ptr[i] > 0)
            .map(|i| self.diff(i, ptr[i] as usize - 1))
            .min_by(f64::total_cmp)
    }

    /// The number (weight) of differences ≤ v. One sweep.
    pub(crate) fn count_at_most(&self, v: f64) -> u128 {
        let band = self.full_band();
        let mut ptr = Vec::new();
        self.count_le(v, &band, &mut ptr)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// All differences, expanded and sorted: the O(n₁n₂) reference.
    pub(crate) fn brute_force(x: &Sample, y: &Sample) -> Vec<f64> {
        let mut d = Vec::new();
        for (&xv, &xc) in x.values().iter().zip(x.counts()) {
            for (&yv, &yc) in y.values().iter().zip(y.counts()) {
                for _ in 0..xc * yc {
                    d.push(xv - yv);
                }
            }
        }
        d.sort_by(f64::total_cmp);
        d
    }

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn matches_brute_force_on_large_continuous_samples() {
        // Large enough that several narrowing rounds run before enumeration.
        let mut seed = 42;
        let x = Sample::new((0..1500).map(|_| (lcg(&mut seed) * 50.0).exp()).collect());
        let y = Sample::new((0..1200).map(|_| (lcg(&mut seed) * 49.0).exp()).collect());
        let all = brute_force(&x, &y);
        let m = PairwiseDifferences::new(&x, &y);
        let n = m.total();
        let ranks = [1, 2, n / 3, n / 2, n / 2 + 1, n - 7, n];
        let got = m.select(&ranks);
        for (r, g) in ranks.iter().zip(got) {
            assert_eq!(g, all[*r as usize - 1], "rank {r}");
        }
    }

    #[test]
    fn matches_brute_force_with_heavy_ties() {
        let x = Sample::new((0..2000_u64).map(|i| ((i * 7919) % 23) as f64).collect());
        let y = Sample::new((0..1500_u64).map(|i| ((i * 104_729) % 17) as f64).collect());
        let all = brute_force(&x, &y);
        let m = PairwiseDifferences::new(&x, &y);
        let n = m.total();
        let ranks = [1, n / 5, n / 2, n / 2 + 1, n - 1, n];
        for (r, g) in ranks.iter().zip(m.select(&ranks)) {
            assert_eq!(g, all[*r as usize - 1], "rank {r}");
        }
        let v = all[(n / 2) as usize - 1];
        let next = all.iter().copied().find(|&d| d > v);
        assert_eq!(m.next_above(v), next);
        assert_eq!(
            m.count_at_most(v),
            all.iter().filter(|&&d| d <= v).count() as u128
        );
    }

    #[test]
    fn one_giant_tie_terminates() {
        let x = Sample::from_weighted([(5.0, 1_000_000)]);
        let y = Sample::from_weighted([(2.0, 1_000_000)]);
        let m = PairwiseDifferences::new(&x, &y);
        assert_eq!(
            m.select(&[1, m.total() / 2, m.total()]),
            vec![3.0, 3.0, 3.0]
        );
        assert_eq!(m.next_above(3.0), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Values with a controllable amount of ties: `levels` distinct values.
        fn sample(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
            (1_u32..400).prop_flat_map(move |levels| {
                prop::collection::vec(
                    (0..levels).prop_map(|v| f64::from(v) * 0.37 - 20.0),
                    1..max_len,
                )
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// The selection equals the k-th element of the sorted brute-force
            /// list, for any rank — including samples big enough (up to
            /// 250 × 250) that the narrowing rounds run.
            #[test]
            fn selection_equals_brute_force(
                x in sample(250),
                y in sample(250),
                fractions in prop::collection::vec(0.0_f64..1.0, 1..5),
            ) {
                let (x, y) = (Sample::new(x), Sample::new(y));
                let all = brute_force(&x, &y);
                let m = PairwiseDifferences::new(&x, &y);
                prop_assert_eq!(m.total(), all.len() as u128);
                let ranks: Vec<u128> = fractions
                    .iter()
                    .map(|f| 1 + (f * (all.len() - 1) as f64) as u128)
                    .collect();
                for (r, got) in ranks.iter().zip(m.select(&ranks)) {
                    prop_assert_eq!(got, all[*r as usize - 1], "rank {}", r);
                }
            }
        }
    }
}
