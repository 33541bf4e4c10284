//! [`Sample`]: one cohort's observations, sorted and run-length encoded.
//!
//! Every rank-based statistic starts by sorting, so a sample is sorted once
//! and kept as its distinct values in ascending order with the count of each.
//! That is also the natural form of histogram-derived data (a bucket's
//! representative value and its count) and of latencies with heavy ties
//! (millisecond-rounded durations): the algorithms in
//! [`mann_whitney`](super::mann_whitney()) and
//! [`hodges_lehmann`](super::hodges_lehmann()) run in time linear in the number
//! of *distinct* values once the sample is built.
//!
//! Non-finite values (NaN, ±∞) are dropped when a sample is built and counted
//! in [`Sample::dropped`]: a NaN latency is a broken record, not an
//! observation, and one infinity would make every shift estimate infinite.
//! The caller decides whether dropped records are worth reporting. `-0.0` is
//! stored as `0.0`.

use crate::stats::quantiles::r7_by_index;
use crate::stats::sort::{from_ordered_bits, ordered_bits, sort_f64};

/// A cohort's finite observations, sorted ascending and grouped into runs of
/// equal values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sample {
    values: Vec<f64>,
    counts: Vec<u64>,
    /// `ends[i]` = number of observations ≤ `values[i]`.
    ends: Vec<u64>,
    dropped: u64,
}

impl Sample {
    /// Builds a sample from raw observations, sorting them in place (no copy)
    /// with a radix sort: O(n).
    pub fn new(mut values: Vec<f64>) -> Sample {
        let before = values.len();
        values.retain(|v| v.is_finite());
        let dropped = (before - values.len()) as u64;
        for v in &mut values {
            // -0.0 + 0.0 == +0.0: one zero, one run.
            *v += 0.0;
        }
        sort_f64(&mut values);
        let mut sample = Sample::from_sorted_finite(values);
        sample.dropped = dropped;
        sample
    }

    /// Builds a sample from a slice (copies it; see [`Sample::new`]).
    pub fn from_slice(values: &[f64]) -> Sample {
        Sample::new(values.to_vec())
    }

    /// Builds a sample from `(value, count)` pairs in any order — histogram
    /// buckets, or values already aggregated by SQL. Zero counts are skipped;
    /// equal values are merged; the counts of non-finite values go to
    /// [`Sample::dropped`].
    pub fn from_weighted(pairs: impl IntoIterator<Item = (f64, u64)>) -> Sample {
        let mut dropped = 0_u64;
        let mut pairs: Vec<(f64, u64)> = pairs
            .into_iter()
            .filter(|&(v, c)| {
                if !v.is_finite() {
                    dropped += c;
                }
                v.is_finite() && c > 0
            })
            .map(|(v, c)| (v + 0.0, c))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut values = Vec::with_capacity(pairs.len());
        let mut counts: Vec<u64> = Vec::with_capacity(pairs.len());
        for (v, c) in pairs {
            match (values.last(), counts.last_mut()) {
                (Some(&last), Some(n)) if last == v => *n += c,
                _ => {
                    values.push(v);
                    counts.push(c);
                }
            }
        }
        let mut sample = Sample::from_runs(values, counts);
        sample.dropped = dropped;
        sample
    }

    /// Builds a sample with every value rounded to a log-linear grid of
    /// relative precision `relative_error` (α): the f64 is cut after its
    /// top m mantissa bits, with m the smallest such that 2^−(m+1) ≤ α, and
    /// represented by the midpoint of its cell — HdrHistogram's layout, so
    /// every (normal) value moves by at most α relative (0.049 % for
    /// α = 0.001, m = 10). Zero stays zero; non-finite values are dropped as
    /// in [`Sample::new`]. `None` unless 0 < α < 0.5.
    ///
    /// Why: a window of a million distinct latencies costs a sort and an
    /// O(n)-per-round pairwise selection; on the grid the same window has a
    /// few 10⁴ distinct values (1 024 per power of two at α = 0.001), the
    /// counts are built by direct indexing on the bit pattern (no sort, no
    /// logarithm), and Mann-Whitney and Hodges-Lehmann then cost well under
    /// a millisecond (`BENCHMARKS-stats.md`).
    ///
    /// What it costs in accuracy: quantiles move by at most α relative. Each
    /// pairwise difference c − b moves by at most α·(|c| + |b|), so the
    /// Hodges-Lehmann estimate and its interval ends move by at most that
    /// for the pairs that define them — about 2α times the median latency
    /// (0.1 % at α = 0.001), far below any useful effect floor. Values closer
    /// than α become ties, which the rank test's tie correction accounts for;
    /// it loses power only for shifts below α. Subnormal values (|v| <
    /// 2.2e−308) get a coarser absolute grid.
    pub fn log_quantized(values: &[f64], relative_error: f64) -> Option<Sample> {
        /// Widest key range counted densely (8 MiB of counters).
        const DENSE_MAX: u64 = 1 << 20;
        if !(relative_error > 0.0 && relative_error < 0.5) {
            return None;
        }
        let mantissa_bits = ((1.0 / relative_error).log2() - 1.0)
            .ceil()
            .clamp(0.0, 52.0) as u32;
        let shift = 52 - mantissa_bits;
        let key = |v: f64| ordered_bits(v) >> shift;
        let midpoint = |k: u64| {
            let half = if shift == 0 { 0 } else { 1 << (shift - 1) };
            from_ordered_bits((k << shift) | half)
        };
        let (mut dropped, mut zeros) = (0_u64, 0_u64);
        let (mut lo, mut hi) = (u64::MAX, 0_u64);
        for &v in values {
            if !v.is_finite() {
                dropped += 1;
            } else if v == 0.0 {
                zeros += 1;
            } else {
                let k = key(v);
                lo = lo.min(k);
                hi = hi.max(k);
            }
        }
        let mut keyed: Vec<(u64, u64)> = Vec::new();
        if lo <= hi && hi - lo < DENSE_MAX {
            let mut counts = vec![0_u64; (hi - lo + 1) as usize];
            for &v in values {
                if v.is_finite() && v != 0.0 {
                    counts[(key(v) - lo) as usize] += 1;
                }
            }
            keyed.extend(
                counts
                    .iter()
                    .enumerate()
                    .filter(|&(_, &c)| c > 0)
                    .map(|(slot, &c)| (lo + slot as u64, c)),
            );
        } else if lo <= hi {
            let mut keys: Vec<u64> = values
                .iter()
                .filter(|v| v.is_finite() && **v != 0.0)
                .map(|&v| key(v))
                .collect();
            keys.sort_unstable();
            for k in keys {
                match keyed.last_mut() {
                    Some((last, c)) if *last == k => *c += 1,
                    _ => keyed.push((k, 1)),
                }
            }
        }
        let mut runs: Vec<(f64, u64)> = Vec::with_capacity(keyed.len() + 1);
        for (k, c) in keyed {
            let v = midpoint(k);
            if zeros > 0 && v > 0.0 {
                runs.push((0.0, zeros));
                zeros = 0;
            }
            runs.push((v, c));
        }
        if zeros > 0 {
            runs.push((0.0, zeros));
        }
        let (values, counts) = runs.into_iter().unzip();
        let mut sample = Sample::from_runs(values, counts);
        sample.dropped = dropped;
        Some(sample)
    }

    /// Groups sorted finite values into runs, reusing the vector for the
    /// distinct values.
    fn from_sorted_finite(mut values: Vec<f64>) -> Sample {
        let mut counts = Vec::with_capacity(values.len());
        let mut write = 0;
        for read in 0..values.len() {
            let v = values[read];
            if write > 0 && values[write - 1] == v {
                if let Some(n) = counts.last_mut() {
                    *n += 1;
                }
            } else {
                values[write] = v;
                write += 1;
                counts.push(1);
            }
        }
        values.truncate(write);
        values.shrink_to_fit();
        Sample::from_runs(values, counts)
    }

    fn from_runs(values: Vec<f64>, counts: Vec<u64>) -> Sample {
        let mut total = 0_u64;
        let ends = counts
            .iter()
            .map(|&c| {
                total += c;
                total
            })
            .collect();
        Sample {
            values,
            counts,
            ends,
            dropped: 0,
        }
    }

    /// Number of (finite) observations.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Whether there are no observations.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.values.len()
    }

    /// The distinct values, ascending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// How many observations have each of [`Sample::values`].
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Non-finite observations (or histogram weight) ignored when building.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether any value occurs more than once.
    pub fn has_ties(&self) -> bool {
        self.counts.iter().any(|&c| c > 1)
    }

    /// The smallest observation.
    pub fn min(&self) -> Option<f64> {
        self.values.first().copied()
    }

    /// The largest observation.
    pub fn max(&self) -> Option<f64> {
        self.values.last().copied()
    }

    /// The `index`-th smallest observation, 0-based (`index < len`).
    fn value_at(&self, index: u64) -> f64 {
        let run = self.ends.partition_point(|&end| end <= index);
        self.values[run.min(self.values.len() - 1)]
    }

    /// The sample quantile at level `q` ∈ [0, 1] by R's type 7 / NumPy's
    /// default `"linear"` rule: linear interpolation between the order
    /// statistics around (n − 1)·q. `None` when empty or `q` is outside
    /// [0, 1]. O(log distinct).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.is_empty() || !(0.0..=1.0).contains(&q) {
            return None;
        }
        Some(r7_by_index(self.len(), q, |i| self.value_at(i)))
    }

    /// The median (type-7 quantile at ½, i.e. the usual median).
    pub fn median(&self) -> Option<f64> {
        self.quantile(0.5)
    }

    /// The arithmetic mean.
    pub fn mean(&self) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let sum: f64 = self
            .values
            .iter()
            .zip(&self.counts)
            .map(|(&v, &c)| v * c as f64)
            .sum();
        Some(sum / self.len() as f64)
    }

    /// The same sample with `c` added to every value (dropped values stay
    /// dropped). Adding can merge runs when values are huge relative to `c`'s
    /// precision; they are re-merged.
    pub fn shifted(&self, c: f64) -> Sample {
        let mut s = Sample::from_weighted(
            self.values
                .iter()
                .zip(&self.counts)
                .map(|(&v, &n)| (v + c, n)),
        );
        s.dropped += self.dropped;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_runs_and_drops_non_finite() {
        let s = Sample::new(vec![3.0, 1.0, f64::NAN, 2.0, 1.0, -0.0, 0.0, f64::INFINITY]);
        assert_eq!(s.values(), &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.counts(), &[2, 2, 1, 1]);
        assert_eq!(s.len(), 6);
        assert_eq!(s.dropped(), 2);
        assert!(s.has_ties());
        assert_eq!(s.min(), Some(0.0));
        assert_eq!(s.max(), Some(3.0));
        assert_eq!(s.mean(), Some(7.0 / 6.0));
    }

    #[test]
    fn weighted_merges_equal_values() {
        let s = Sample::from_weighted([(5.0, 2), (1.0, 0), (5.0, 3), (f64::NAN, 4), (2.0, 1)]);
        assert_eq!(s.values(), &[2.0, 5.0]);
        assert_eq!(s.counts(), &[1, 5]);
        assert_eq!(s.dropped(), 4);
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn empty_and_single() {
        let e = Sample::new(vec![]);
        assert!(e.is_empty());
        assert_eq!(e.len(), 0);
        assert_eq!(e.median(), None);
        assert_eq!(e.mean(), None);
        let one = Sample::new(vec![4.5]);
        assert_eq!(one.median(), Some(4.5));
        assert_eq!(one.quantile(0.99), Some(4.5));
        assert_eq!(one.quantile(1.5), None);
    }

    #[test]
    fn quantiles_match_numpy_on_runs() {
        // numpy.quantile([1, 2, 2, 2, 3, 7, 7, 10], q) (method="linear"), NumPy 2.4.6:
        // q=0.5 → 2.5, q=0.9 → 7.8999999999999995, q=0.1 → 1.7000000000000002, q=0.99 → 9.79
        let s = Sample::from_weighted([(2.0, 3), (7.0, 2), (1.0, 1), (10.0, 1), (3.0, 1)]);
        assert_eq!(s.quantile(0.5), Some(2.5));
        assert!((s.quantile(0.9).unwrap() - 7.8999999999999995).abs() < 1e-12);
        assert!((s.quantile(0.1).unwrap() - 1.7000000000000002).abs() < 1e-12);
        assert!((s.quantile(0.99).unwrap() - 9.79).abs() < 1e-12);
        assert_eq!(s.quantile(0.0), Some(1.0));
        assert_eq!(s.quantile(1.0), Some(10.0));
    }

    #[test]
    fn shifted_moves_every_value() {
        let s = Sample::new(vec![1.0, 2.0, 2.0]).shifted(10.0);
        assert_eq!(s.values(), &[11.0, 12.0]);
        assert_eq!(s.counts(), &[1, 2]);
    }

    #[test]
    fn log_quantized_keeps_relative_error() {
        let values: Vec<f64> = (1..5000)
            .map(|i| f64::from(i) * 0.731)
            .chain([0.0, -3.0, f64::NAN])
            .collect();
        let alpha = 0.001;
        let q = Sample::log_quantized(&values, alpha).unwrap();
        let exact = Sample::from_slice(&values);
        assert_eq!(q.len(), exact.len());
        assert_eq!(q.dropped(), 1);
        assert!(q.distinct() < exact.distinct());
        assert!(q.values().windows(2).all(|w| w[0] < w[1]));
        for level in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let (a, b) = (q.quantile(level).unwrap(), exact.quantile(level).unwrap());
            assert!(
                (a - b).abs() <= alpha * b.abs() * 1.000_001,
                "q{level}: {a} vs {b}"
            );
        }
        assert!((q.min().unwrap() + 3.0).abs() <= alpha * 3.0);
        assert!(Sample::log_quantized(&values, 0.0).is_none());
        assert!(Sample::log_quantized(&values, 0.5).is_none());
        assert!(Sample::log_quantized(&[], 0.01).unwrap().is_empty());
    }
}
