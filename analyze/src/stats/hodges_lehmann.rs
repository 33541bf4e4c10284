//! The Hodges-Lehmann shift estimate and its distribution-free confidence
//! interval: "the canary is slower by 12 ms [9, 15]".
//!
//! The estimate is the median of all n₁·n₂ differences `c − b` (canary minus
//! baseline). It is the shift that the Mann-Whitney test is most sensitive
//! to, it is robust (a few outliers do not move it), and for a pure location
//! shift it estimates exactly that shift.
//!
//! The confidence interval inverts the Mann-Whitney test (Hollander & Wolfe,
//! *Nonparametric Statistical Methods*, §4.3; Bauer 1972): with D₍₁₎ ≤ … ≤
//! D₍N₎ the sorted differences and `k` the smallest integer with
//! P(U ≤ k) ≥ α/2 under H₀ (`qwilcox(α/2, n₁, n₂)` in R, raised to 1 if it is
//! 0), the interval is `[D₍k₎, D₍N−k+1₎]`, and its actual coverage is
//! `1 − 2·P(U ≤ k − 1)`, reported as [`ShiftEstimate::achieved_confidence`]
//! (at least the requested level, except when the samples are too small to
//! reach it at all — then the interval is the full range of differences).
//! This is what R's `wilcox.test(x, y, conf.int = TRUE)` computes for the
//! exact case, and what Kayenta's Mann-Whitney classifier reports.
//!
//! - **exact** ranks from the permutation distribution when neither sample
//!   has ties and n₁·n₂ ≤ [`EXACT_MAX_PAIRS`];
//! - otherwise the normal approximation with a continuity correction,
//!   `k = ⌈n₁n₂/2 − ½ − z₁₋α/₂·σ⌉`, σ corrected for the ties within each
//!   sample. Ties *between* the samples are ignored on purpose: they depend
//!   on where zero is, and the interval must be shift-equivariant (shift the
//!   canary by c and the interval moves by exactly c — a property test checks
//!   it). (R's approximate
//!   branch instead solves for the shift with `uniroot`; both are
//!   asymptotically the same interval. Ours stays an interval of actual
//!   differences, so its ends are always values the data can produce.)
//!
//! The order statistics come from `PairwiseDifferences`, an exact selection
//! in O((a+b)·rounds) for a and b distinct values — no O(n₁n₂) enumeration
//! and no subsampling.

use crate::stats::direction::Movement;
use crate::stats::effect::{Confidence, Effect, Interval, Scale};
use crate::stats::mann_whitney::{EXACT_MAX_PAIRS, ExactU, u_null_sd};
use crate::stats::pairwise_differences::PairwiseDifferences;
use crate::stats::sample::Sample;
use crate::stats::special::normal_cdf;

/// The result of [`hodges_lehmann`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftEstimate {
    /// Canary observations.
    pub n_canary: u64,
    /// Baseline observations.
    pub n_baseline: u64,
    /// Median of the differences canary − baseline (for an even number of
    /// differences, the mean of the two middle ones), in the samples' unit.
    pub estimate: f64,
    /// `[D₍k₎, D₍N−k+1₎]`: the distribution-free confidence interval for the
    /// shift.
    pub interval: Interval,
    /// The level asked for.
    pub confidence: Confidence,
    /// The interval's coverage under H₀: exact when [`ShiftEstimate::exact`],
    /// else the normal approximation of it. Below `confidence` only when the
    /// samples are too small to reach that level.
    pub achieved_confidence: f64,
    /// Whether `k` came from the exact distribution of U.
    pub exact: bool,
    /// `k`: the 1-based rank of the lower end among the sorted differences
    /// (the upper end has rank N − k + 1).
    pub lower_rank: u128,
}

impl ShiftEstimate {
    /// The shift as an [`Effect`] on the difference scale.
    pub fn effect(&self) -> Effect {
        Effect {
            estimate: self.estimate,
            interval: self.interval,
            scale: Scale::Difference,
        }
    }

    /// The shift relative to a reference level, usually the baseline median:
    /// `shift / reference`, so a 5 % floor is 0.05. `None` unless the
    /// reference is finite and positive.
    ///
    /// The reference is treated as a constant: its own sampling error is
    /// ignored, which is fair when the baseline is large (its median's
    /// standard error is then a small fraction of the shift's).
    pub fn relative_to(&self, reference: f64) -> Option<Effect> {
        if !(reference.is_finite() && reference > 0.0) {
            return None;
        }
        Some(Effect {
            estimate: self.estimate / reference,
            interval: self.interval.map(|v| v / reference),
            scale: Scale::Difference,
        })
    }

    /// Which way the canary moved, by the sign of the estimate.
    pub fn movement(&self) -> Movement {
        Movement::of(self.estimate, 0.0)
    }
}

/// Σ(t³ − t) over the groups of tied values *within* each sample.
fn within_sample_tie_term(sample: &Sample) -> f64 {
    sample
        .counts()
        .iter()
        .map(|&c| {
            let t = c as f64;
            t * t * t - t
        })
        .sum()
}

/// The rank k of the lower CI end, whether it is exact, and the achieved
/// confidence.
///
/// Only ties *within* each sample are used (for the choice of the exact
/// distribution and for the variance): ties *between* the samples depend on
/// where zero is, and an interval for the shift must move with the data —
/// shifting the canary by c must shift the interval by exactly c.
fn interval_rank(canary: &Sample, baseline: &Sample, confidence: Confidence) -> (u128, bool, f64) {
    let (n1, n2) = (canary.len(), baseline.len());
    let pairs = u128::from(n1) * u128::from(n2);
    let half_alpha = confidence.alpha() / 2.0;
    let tie_term = within_sample_tie_term(canary) + within_sample_tie_term(baseline);
    let max_k = pairs.div_ceil(2);
    if tie_term == 0.0 && pairs <= u128::from(EXACT_MAX_PAIRS) {
        let dist = ExactU::new(n1, n2);
        // Smallest q with P(U ≤ q) ≥ α/2 (R's qwilcox, with its fuzz of
        // 10·ε on the probability); the CDF is monotone: binary search.
        let target = half_alpha - 10.0 * f64::EPSILON;
        let (mut lo, mut hi) = (0_u64, pairs as u64);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if dist.cdf(mid) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let k = u128::from(lo.max(1)).min(max_k);
        let achieved = 1.0 - 2.0 * dist.cdf((k - 1) as u64);
        return (k, true, achieved);
    }
    let sd = u_null_sd(n1 as f64, n2 as f64, tie_term);
    let mu = pairs as f64 / 2.0;
    let q = (mu - 0.5 - confidence.z() * sd).ceil();
    let k = if q < 1.0 { 1 } else { (q as u128).min(max_k) };
    let achieved = if sd > 0.0 {
        1.0 - 2.0 * normal_cdf(((k - 1) as f64 + 0.5 - mu) / sd)
    } else {
        1.0
    };
    (k, false, achieved.clamp(0.0, 1.0))
}

/// The median of the differences and their k-th smallest and k-th largest.
fn median_and_interval(diffs: &PairwiseDifferences<'_>, k: u128) -> (f64, f64, f64) {
    let n = diffs.total();
    let mid = n.div_ceil(2); // (N+1)/2 for odd N, N/2 for even N
    let picked = diffs.select(&[k, mid, n - k + 1]);
    let (low, mid_value, high) = (picked[0], picked[1], picked[2]);
    let median = if n % 2 == 1 {
        mid_value
    } else {
        // The (N/2 + 1)-th difference: the same value if it repeats, else the
        // next larger one.
        let next = if diffs.count_at_most(mid_value) > mid {
            mid_value
        } else {
            diffs.next_above(mid_value).unwrap_or(mid_value)
        };
        mid_value + (next - mid_value) / 2.0
    };
    (median, low, high)
}

/// The Hodges-Lehmann estimate of the shift canary − baseline with its
/// confidence interval. `None` if either sample is empty.
///
/// Cost: O((a + b) · rounds) for a and b distinct values — a few counting
/// sweeps over the rows. About 80 ms (wall, on our loaded 2-core machine)
/// for 100 000 × 100 000 distinct values; under 1 ms for tied data or for
/// samples built with [`Sample::log_quantized`]. See `BENCHMARKS-stats.md`.
pub fn hodges_lehmann(
    canary: &Sample,
    baseline: &Sample,
    confidence: Confidence,
) -> Option<ShiftEstimate> {
    if canary.is_empty() || baseline.is_empty() {
        return None;
    }
    let (k, exact, achieved_confidence) = interval_rank(canary, baseline, confidence);
    // The selection sweeps rows; make the sample with fewer distinct values
    // the rows (a 100k canary against a 900k baseline sweeps 100k rows).
    // baseline − canary = −(canary − baseline) exactly in f64, and the CI
    // ranks are symmetric, so the swapped answer is just negated.
    let (estimate, low, high) = if canary.distinct() <= baseline.distinct() {
        median_and_interval(&PairwiseDifferences::new(canary, baseline), k)
    } else {
        let (m, l, h) = median_and_interval(&PairwiseDifferences::new(baseline, canary), k);
        (-m, -h, -l)
    };
    Some(ShiftEstimate {
        n_canary: canary.len(),
        n_baseline: baseline.len(),
        estimate,
        interval: Interval { low, high },
        confidence,
        achieved_confidence,
        exact,
        lower_rank: k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::pairwise_differences::tests::brute_force;

    fn s(v: &[f64]) -> Sample {
        Sample::from_slice(v)
    }

    /// The O(n₁n₂) reference: median and CI straight from the sorted list.
    fn brute(x: &Sample, y: &Sample, k: u128) -> (f64, f64, f64) {
        let d = brute_force(x, y);
        let n = d.len();
        let median = if n % 2 == 1 {
            d[n / 2]
        } else {
            d[n / 2 - 1] + (d[n / 2] - d[n / 2 - 1]) / 2.0
        };
        (median, d[k as usize - 1], d[n - k as usize])
    }

    const HW_X: [f64; 10] = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
    const HW_Y: [f64; 5] = [1.15, 0.88, 0.90, 0.74, 1.21];

    #[test]
    fn hollander_wolfe_example() {
        // R's wilcox.test(x, y, conf.int = TRUE) exact branch on Hollander &
        // Wolfe's permeability data (the ?wilcox.test example), reproduced
        // step by step in analyze/reference/hodges_lehmann.py with SciPy's exact
        // distribution as pwilcox: qu = 9, cint = (diffs[9], diffs[42]) =
        // (-0.15000000000000002, 0.7599999999999999), estimate median(diffs) =
        // 0.30500000000000005, achieved 1 − 2·pwilcox(8, 10, 5) = 0.9600399600399601;
        // at conf.level = 0.9: qu = 12, (-0.07999999999999996, 0.72), 0.9007659007659008.
        let (x, y) = (s(&HW_X), s(&HW_Y));
        let r = hodges_lehmann(&x, &y, Confidence::NINETY_FIVE).unwrap();
        assert!(r.exact);
        assert_eq!(r.lower_rank, 9);
        let (median, low, high) = brute(&x, &y, 9);
        assert_eq!(r.estimate, median);
        assert_eq!((r.interval.low, r.interval.high), (low, high));
        assert!((r.estimate - 0.30500000000000005).abs() < 1e-15);
        assert!((r.interval.low - -0.15000000000000002).abs() < 1e-15);
        assert!((r.interval.high - 0.7599999999999999).abs() < 1e-15);
        assert!((r.achieved_confidence - 0.9600399600399601).abs() < 1e-12);
        let r90 = hodges_lehmann(&x, &y, Confidence::NINETY).unwrap();
        assert_eq!(r90.lower_rank, 12);
        assert!((r90.interval.low - -0.07999999999999996).abs() < 1e-15);
        assert!((r90.interval.high - 0.72).abs() < 1e-15);
        assert!((r90.achieved_confidence - 0.9007659007659008).abs() < 1e-12);
    }

    #[test]
    fn asymptotic_interval_matches_brute_force() {
        // 150 × 140 pairs with ties: the normal-approximation rank.
        let x: Vec<f64> = (0..150_u64)
            .map(|i| ((i * 37) % 53) as f64 + 10.0)
            .collect();
        let y: Vec<f64> = (0..140_u64).map(|i| ((i * 41) % 47) as f64 + 7.0).collect();
        let (x, y) = (s(&x), s(&y));
        let r = hodges_lehmann(&x, &y, Confidence::NINETY_FIVE).unwrap();
        assert!(!r.exact);
        let (median, low, high) = brute(&x, &y, r.lower_rank);
        assert_eq!(r.estimate, median);
        assert_eq!((r.interval.low, r.interval.high), (low, high));
        assert!(r.achieved_confidence >= 0.949, "{}", r.achieved_confidence);
        assert!(r.interval.low <= r.estimate && r.estimate <= r.interval.high);
    }

    #[test]
    fn tiny_samples_cannot_reach_the_level() {
        let r = hodges_lehmann(&s(&[1.0, 2.0]), &s(&[0.0, 5.0]), Confidence::NINETY_FIVE).unwrap();
        assert_eq!(r.lower_rank, 1);
        assert_eq!((r.interval.low, r.interval.high), (-4.0, 2.0));
        // 1 − 2·P(U ≤ 0) = 1 − 2/6
        assert!((r.achieved_confidence - (1.0 - 2.0 / 6.0)).abs() < 1e-12);
        assert_eq!(r.estimate, -1.0);
        let one = hodges_lehmann(&s(&[3.0]), &s(&[1.0]), Confidence::NINETY_FIVE).unwrap();
        assert_eq!(one.estimate, 2.0);
        assert_eq!((one.interval.low, one.interval.high), (2.0, 2.0));
        assert!(hodges_lehmann(&s(&[]), &s(&[1.0]), Confidence::NINETY_FIVE).is_none());
    }

    #[test]
    fn identical_and_tied_samples() {
        let v: Vec<f64> = (0..300).map(|i| f64::from(i % 30)).collect();
        let r = hodges_lehmann(&s(&v), &s(&v), Confidence::NINETY_FIVE).unwrap();
        assert_eq!(r.estimate, 0.0);
        assert!(r.interval.low <= 0.0 && r.interval.high >= 0.0);
        assert_eq!(r.movement(), Movement::Unchanged);
        let all_same =
            hodges_lehmann(&s(&[7.0; 40]), &s(&[7.0; 60]), Confidence::NINETY_FIVE).unwrap();
        assert_eq!(all_same.estimate, 0.0);
        assert_eq!((all_same.interval.low, all_same.interval.high), (0.0, 0.0));
    }

    #[test]
    fn relative_shift() {
        let r = hodges_lehmann(&s(&HW_X), &s(&HW_Y), Confidence::NINETY_FIVE).unwrap();
        let rel = r.relative_to(0.9).unwrap();
        assert!((rel.estimate - 0.305 / 0.9).abs() < 1e-12);
        assert!(r.relative_to(0.0).is_none());
        assert!(r.relative_to(f64::NAN).is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Integer-valued samples, so that shifts and differences are exact in f64.
        fn values() -> impl Strategy<Value = Vec<f64>> {
            prop::collection::vec((-500_i32..500).prop_map(f64::from), 1..120)
        }

        proptest! {
            #[test]
            fn matches_brute_force(x in values(), y in values()) {
                let (x, y) = (s(&x), s(&y));
                let r = hodges_lehmann(&x, &y, Confidence::NINETY_FIVE).unwrap();
                let (median, low, high) = brute(&x, &y, r.lower_rank);
                prop_assert_eq!(r.estimate, median);
                prop_assert_eq!((r.interval.low, r.interval.high), (low, high));
                prop_assert!(r.interval.low <= r.estimate && r.estimate <= r.interval.high);
                prop_assert!((0.0..=1.0).contains(&r.achieved_confidence));
            }

            #[test]
            fn shifting_the_canary_shifts_the_estimate(
                x in values(),
                y in values(),
                c in (-1000_i32..1000).prop_map(f64::from),
            ) {
                let (x, y) = (s(&x), s(&y));
                let a = hodges_lehmann(&x, &y, Confidence::NINETY_FIVE).unwrap();
                let b = hodges_lehmann(&x.shifted(c), &y, Confidence::NINETY_FIVE).unwrap();
                prop_assert_eq!(b.estimate, a.estimate + c);
                prop_assert_eq!(b.interval.low, a.interval.low + c);
                prop_assert_eq!(b.interval.high, a.interval.high + c);
            }

            #[test]
            fn swapping_samples_negates(x in values(), y in values()) {
                let (x, y) = (s(&x), s(&y));
                let a = hodges_lehmann(&x, &y, Confidence::NINETY_FIVE).unwrap();
                let b = hodges_lehmann(&y, &x, Confidence::NINETY_FIVE).unwrap();
                prop_assert_eq!(a.estimate, -b.estimate);
                prop_assert_eq!((a.interval.low, a.interval.high), (-b.interval.high, -b.interval.low));
            }
        }
    }
}
