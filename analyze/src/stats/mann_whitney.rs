//! The Mann-Whitney U test (Wilcoxon rank-sum test), canary versus baseline.
//!
//! `U_canary` counts the (canary, baseline) pairs in which the canary value is
//! larger, ties counting ½: `U_canary = #{c > b} + ½·#{c = b}`, and
//! `U_canary + U_baseline = n_canary·n_baseline`. Under "same distribution",
//! U has mean n₁n₂/2; a canary whose latencies are shifted up makes U large.
//!
//! p-values follow `scipy.stats.mannwhitneyu` exactly:
//! - **exact** — the permutation distribution of U, computed as the
//!   coefficients of the Gaussian binomial [n₁+n₂ choose n₁]_q in O(min(n₁,n₂)
//!   · n₁n₂/2). Valid only without ties. [`Method::Auto`] uses it when there
//!   are no ties and n₁·n₂ ≤ [`EXACT_MAX_PAIRS`]; SciPy's `auto` uses it only
//!   when a sample has ≤ 8 values, but with our bound the exact computation
//!   still costs < 2 ms and avoids the normal approximation where it is
//!   poorest (small, unbalanced samples).
//! - **asymptotic** — the normal approximation with the tie-corrected
//!   variance `n₁n₂/12·((N+1) − Σ(t³−t)/(N(N−1)))` and a continuity correction
//!   of ½, SciPy's `use_continuity=True`.
//!
//! Computation is a merge of the two [`Sample`]s' runs: O(distinct values)
//! after the samples are built (the O(n log n) sort happens there). Ties cost
//! nothing extra, so histogram-derived data with few distinct values is fast.
//!
//! Effect sizes: the probability of superiority (common-language effect size)
//! `U_canary / (n₁n₂)` = P(C > B) + ½P(C = B), and the rank-biserial
//! correlation `2·PS − 1` ∈ [−1, 1], positive when the canary tends higher.

use crate::stats::direction::{Alternative, Movement};
use crate::stats::sample::Sample;
use crate::stats::special::normal_sf;

/// Largest n₁·n₂ for which [`Method::Auto`] computes the exact distribution.
pub const EXACT_MAX_PAIRS: u64 = 20_000;

/// Most work (min(n₁,n₂)·n₁n₂/2 coefficient updates) [`Method::Exact`] will
/// spend on the exact distribution before falling back to the normal
/// approximation.
pub const EXACT_MAX_WORK: u128 = 1_000_000_000;

/// How to compute the p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Method {
    /// Exact when there are no ties and n₁·n₂ ≤ [`EXACT_MAX_PAIRS`], else
    /// asymptotic.
    #[default]
    Auto,
    /// Exact whenever there are no ties and the distribution costs at most
    /// [`EXACT_MAX_WORK`] steps (min(n₁,n₂)·n₁n₂/2: about 1 s); asymptotic
    /// otherwise — with ties the exact no-ties distribution would be wrong,
    /// and beyond that size the normal approximation is excellent anyway.
    Exact,
    /// Normal approximation with tie and continuity correction.
    Asymptotic,
}

/// The result of [`mann_whitney`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// Canary observations.
    pub n_canary: u64,
    /// Baseline observations.
    pub n_baseline: u64,
    /// `#{canary > baseline} + ½·#{equal}` over all pairs; SciPy's
    /// `mannwhitneyu(canary, baseline).statistic`.
    pub u_canary: f64,
    /// `n_canary·n_baseline − u_canary`.
    pub u_baseline: f64,
    /// The continuity-corrected standardized statistic behind the asymptotic
    /// p-value for this alternative, signed so that positive means the canary
    /// tends higher (for the two-sided test, `sign·max(|U−μ|−½, 0)/σ`).
    /// 0 when every observation is tied. Reported for the exact test too.
    pub z: f64,
    /// The p-value for [`MannWhitney::alternative`], in [0, 1].
    pub p_value: f64,
    /// The alternative tested.
    pub alternative: Alternative,
    /// Whether the p-value is from the exact distribution.
    pub exact: bool,
    /// Σ(t³ − t) over groups of tied values in the pooled sample (0 = no
    /// ties).
    pub tie_term: f64,
    /// `u_canary / (n_canary·n_baseline)`: P(canary > baseline) +
    /// ½·P(equal) for a random pair, 0.5 under no difference.
    pub prob_superiority: f64,
    /// `2·prob_superiority − 1` ∈ [−1, 1].
    pub rank_biserial: f64,
    /// Which way the canary tends: by `prob_superiority` against ½.
    pub movement: Movement,
}

/// Mann-Whitney U test with [`Method::Auto`]. `None` if either sample is
/// empty.
pub fn mann_whitney(
    canary: &Sample,
    baseline: &Sample,
    alternative: Alternative,
) -> Option<MannWhitney> {
    mann_whitney_with(canary, baseline, alternative, Method::Auto)
}

/// U statistic (doubled, exact) and tie term of two samples: one merge of
/// their runs.
pub(crate) struct RankSums {
    /// 2·U_canary, exact.
    pub twice_u_canary: u128,
    /// Σ(t³ − t) over tied groups of the pooled sample.
    pub tie_term: u128,
}

pub(crate) fn rank_sums(canary: &Sample, baseline: &Sample) -> RankSums {
    let (xv, xc) = (canary.values(), canary.counts());
    let (yv, yc) = (baseline.values(), baseline.counts());
    let (mut i, mut j) = (0, 0);
    let mut below: u128 = 0; // baseline observations below the current value
    let mut twice_u: u128 = 0;
    let mut tie: u128 = 0;
    while i < xv.len() || j < yv.len() {
        let t: u128 = if j == yv.len() || (i < xv.len() && xv[i] < yv[j]) {
            let c = u128::from(xc[i]);
            twice_u += c * 2 * below;
            i += 1;
            c
        } else if i == xv.len() || yv[j] < xv[i] {
            let c = u128::from(yc[j]);
            below += c;
            j += 1;
            c
        } else {
            let (c1, c2) = (u128::from(xc[i]), u128::from(yc[j]));
            twice_u += c1 * (2 * below + c2);
            below += c2;
            i += 1;
            j += 1;
            c1 + c2
        };
        tie += t * t * t - t;
    }
    RankSums {
        twice_u_canary: twice_u,
        tie_term: tie,
    }
}

/// Standard deviation of U under H₀ with the tie correction.
pub(crate) fn u_null_sd(n1: f64, n2: f64, tie_term: f64) -> f64 {
    let n = n1 + n2;
    let tie = if n > 1.0 {
        tie_term / (n * (n - 1.0))
    } else {
        0.0
    };
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie);
    if var > 0.0 { var.sqrt() } else { 0.0 }
}

/// Mann-Whitney U test with an explicit p-value [`Method`]. `None` if either
/// sample is empty.
pub fn mann_whitney_with(
    canary: &Sample,
    baseline: &Sample,
    alternative: Alternative,
    method: Method,
) -> Option<MannWhitney> {
    if canary.is_empty() || baseline.is_empty() {
        return None;
    }
    let (n1, n2) = (canary.len(), baseline.len());
    let sums = rank_sums(canary, baseline);
    let pairs = u128::from(n1) * u128::from(n2);
    let u1 = sums.twice_u_canary as f64 / 2.0;
    let u2 = (2 * pairs - sums.twice_u_canary) as f64 / 2.0;
    let pairs_f = pairs as f64;
    let mu = pairs_f / 2.0;
    let tie_term = sums.tie_term as f64;
    let sd = u_null_sd(n1 as f64, n2 as f64, tie_term);

    let (u_tail, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let z_tail = if sd > 0.0 {
        (u_tail - mu - 0.5) / sd
    } else {
        0.0
    };
    let z = match alternative {
        Alternative::Greater => z_tail,
        Alternative::Less => -z_tail,
        Alternative::TwoSided => z_tail.max(0.0) * if u1 < mu { -1.0 } else { 1.0 },
    };
    let exact = match method {
        Method::Auto => sums.tie_term == 0 && pairs <= u128::from(EXACT_MAX_PAIRS),
        Method::Exact => sums.tie_term == 0 && u128::from(n1.min(n2)) * pairs / 2 <= EXACT_MAX_WORK,
        Method::Asymptotic => false,
    };
    let p_tail = if exact {
        // No ties: U is an integer.
        ExactU::new(n1, n2).sf(u_tail as u64)
    } else if sd > 0.0 {
        normal_sf(z_tail)
    } else {
        // Every observation tied: no evidence of any difference.
        1.0
    };
    let p_value = (factor * p_tail).clamp(0.0, 1.0);
    let prob_superiority = u1 / pairs_f;
    Some(MannWhitney {
        n_canary: n1,
        n_baseline: n2,
        u_canary: u1,
        u_baseline: u2,
        z,
        p_value,
        alternative,
        exact,
        tie_term,
        prob_superiority,
        rank_biserial: 2.0 * prob_superiority - 1.0,
        movement: Movement::of(prob_superiority, 0.5),
    })
}

/// The exact null distribution of U for sample sizes (n₁, n₂) without ties.
///
/// The number of arrangements with U = k is the k-th coefficient of the
/// Gaussian binomial `∏_{j=1}^{m} (1 − q^{n+j}) / (1 − q^j)` (m = min, n =
/// max). Each factor is a subtraction pass and a running-sum pass over the
/// coefficients; only the lower half (k ≤ mn/2) is needed thanks to the
/// symmetry U ↔ mn − U, and lower coefficients never depend on higher ones.
/// Coefficients are kept as f64 (C(282, 141) ≈ 10⁸³ is far inside range); the
/// subtractions only touch coefficients already ≥ the subtrahend, so the
/// tails, which decide small p-values, are computed without cancellation.
pub(crate) struct ExactU {
    pairs: u64,
    /// `cum[k]` = P(U ≤ k) for k ≤ pairs/2.
    cum: Vec<f64>,
}

impl ExactU {
    pub(crate) fn new(n1: u64, n2: u64) -> ExactU {
        let (m, n) = (n1.min(n2) as usize, n1.max(n2) as usize);
        let pairs = (m * n) as u64;
        let half = m * n / 2;
        let mut f = vec![0.0_f64; half + 1];
        f[0] = 1.0;
        for j in 1..=m {
            let step = n + j;
            if step <= half {
                for k in (step..=half).rev() {
                    f[k] -= f[k - step];
                }
            }
            for k in j..=half {
                f[k] += f[k - j];
            }
        }
        let lower: f64 = if (m * n) % 2 == 0 {
            f[..half].iter().sum::<f64>()
        } else {
            f.iter().sum::<f64>()
        };
        let total = 2.0 * lower + if (m * n) % 2 == 0 { f[half] } else { 0.0 };
        let mut acc = 0.0;
        let cum = f
            .iter()
            .map(|&c| {
                acc += c;
                acc / total
            })
            .collect();
        ExactU { pairs, cum }
    }

    /// P(U ≤ u).
    pub(crate) fn cdf(&self, u: u64) -> f64 {
        if u >= self.pairs {
            return 1.0;
        }
        let half = self.cum.len() as u64 - 1;
        if u <= half {
            self.cum[u as usize]
        } else {
            // P(U ≤ u) = 1 − P(U ≥ u+1) = 1 − P(U ≤ pairs − u − 1).
            1.0 - self.cum[(self.pairs - u - 1) as usize]
        }
    }

    /// P(U ≥ u).
    pub(crate) fn sf(&self, u: u64) -> f64 {
        if u == 0 {
            return 1.0;
        }
        if u > self.pairs {
            return 0.0;
        }
        self.cdf(self.pairs - u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::from_slice(v)
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    // Hollander & Wolfe's permeability data, the example of R's ?wilcox.test.
    const HW_X: [f64; 10] = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
    const HW_Y: [f64; 5] = [1.15, 0.88, 0.90, 0.74, 1.21];

    #[test]
    fn exact_matches_scipy_small() {
        // scipy.stats.mannwhitneyu(HW_X, HW_Y, alternative=alt, method="exact")
        // (analyze/reference/mann_whitney.py, SciPy 1.17.1): U = 35.0;
        // greater → 0.1272061272061272, less → 0.8967698967698967,
        // two-sided → 0.2544122544122544. R's wilcox.test(x, y, alternative="g")
        // prints W = 35, p-value = 0.1272.
        let (x, y) = (s(&HW_X), s(&HW_Y));
        for (alt, p) in [
            (Alternative::Greater, 0.1272061272061272),
            (Alternative::Less, 0.8967698967698967),
            (Alternative::TwoSided, 0.2544122544122544),
        ] {
            let r = mann_whitney(&x, &y, alt).unwrap();
            assert!(r.exact);
            assert_eq!(r.u_canary, 35.0);
            assert_eq!(r.u_baseline, 15.0);
            assert!(close(r.p_value, p, 1e-12), "{alt:?}: {}", r.p_value);
            assert_eq!(r.movement, Movement::Higher);
            assert!(close(r.prob_superiority, 0.7, 1e-15));
        }
    }

    #[test]
    fn asymptotic_matches_scipy_with_ties() {
        // scipy.stats.mannwhitneyu(A, B, alternative=alt, method="asymptotic")
        // (analyze/reference/mann_whitney.py, SciPy 1.17.1)
        let a = [
            12.0, 15.0, 15.0, 18.0, 20.0, 20.0, 20.0, 25.0, 30.0, 31.0, 40.0, 41.0,
        ];
        let b = [10.0, 11.0, 12.0, 15.0, 15.0, 16.0, 17.0, 18.0, 20.0, 22.0];
        let (x, y) = (s(&a), s(&b));
        for (alt, p) in [
            (Alternative::TwoSided, 0.028553400536637227),
            (Alternative::Greater, 0.014276700268318614),
            (Alternative::Less, 0.9879631032182132),
        ] {
            let r = mann_whitney(&x, &y, alt).unwrap();
            assert!(!r.exact, "ties force the normal approximation");
            assert_eq!(r.u_canary, 93.5);
            assert!(close(r.p_value, p, 1e-12), "{alt:?}: {} vs {p}", r.p_value);
        }
    }

    #[test]
    fn exact_and_asymptotic_match_scipy_medium() {
        // scipy.stats.mannwhitneyu(C, D, alternative=alt, method=m), C_i = 0.5 i^1.3
        // (i < 40), D_i = 0.5 i^1.3 + 3 (i < 25) (analyze/reference/mann_whitney.py)
        let c: Vec<f64> = (0..40).map(|i| 0.5 * f64::from(i).powf(1.3)).collect();
        let d: Vec<f64> = (0..25)
            .map(|i| 0.5 * f64::from(i).powf(1.3) + 3.0)
            .collect();
        let (x, y) = (s(&c), s(&d));
        for (method, alt, p) in [
            (Method::Exact, Alternative::TwoSided, 0.07839158778290344),
            (Method::Exact, Alternative::Greater, 0.03919579389145172),
            (Method::Exact, Alternative::Less, 0.9619519314068414),
            (
                Method::Asymptotic,
                Alternative::TwoSided,
                0.07846519334416745,
            ),
            (
                Method::Asymptotic,
                Alternative::Greater,
                0.039232596672083724,
            ),
            (Method::Asymptotic, Alternative::Less, 0.9618977113854165),
        ] {
            let r = mann_whitney_with(&x, &y, alt, method).unwrap();
            assert_eq!(r.u_canary, 631.0);
            assert_eq!(r.exact, method == Method::Exact);
            assert!(
                close(r.p_value, p, 1e-11),
                "{method:?} {alt:?}: {} vs {p}",
                r.p_value
            );
        }
        // 40 × 25 = 1000 pairs: Auto picks exact.
        assert!(mann_whitney(&x, &y, Alternative::Greater).unwrap().exact);
        // Forcing exact on samples far too large for it falls back.
        let big: Vec<f64> = (0..100_000).map(f64::from).collect();
        let r =
            mann_whitney_with(&s(&big), &s(&big), Alternative::TwoSided, Method::Exact).unwrap();
        assert!(!r.exact);
    }

    #[test]
    fn heavy_ties_match_scipy() {
        // scipy.stats.mannwhitneyu(E, F, alternative=alt) with
        // E_i = (7919 i mod 97) + (i mod 13), i < 3000; F_i = (104729 i mod 101) + 3, i < 2500
        // (analyze/reference/mann_whitney.py, SciPy 1.17.1)
        let e: Vec<f64> = (0..3000_u64)
            .map(|i| ((7919 * i) % 97 + i % 13) as f64)
            .collect();
        let f: Vec<f64> = (0..2500_u64)
            .map(|i| ((104729 * i) % 101 + 3) as f64)
            .collect();
        let (x, y) = (s(&e), s(&f));
        for (alt, p) in [
            (Alternative::TwoSided, 0.2029931938512729),
            (Alternative::Greater, 0.10149659692563645),
            (Alternative::Less, 0.8985064288277778),
        ] {
            let r = mann_whitney(&x, &y, alt).unwrap();
            assert_eq!(r.u_canary, 3824644.0);
            assert!(close(r.p_value, p, 1e-10), "{alt:?}: {} vs {p}", r.p_value);
        }
    }

    #[test]
    fn exact_distribution_is_a_distribution() {
        for (n1, n2) in [(1, 1), (3, 4), (7, 7), (10, 13), (2, 30)] {
            let d = ExactU::new(n1, n2);
            let pairs = n1 * n2;
            assert!(close(d.cdf(pairs), 1.0, 1e-15));
            let mut prev = 0.0;
            for u in 0..=pairs {
                let c = d.cdf(u);
                assert!(c >= prev - 1e-15 && c <= 1.0 + 1e-15);
                prev = c;
                // Symmetry: P(U ≤ u) = P(U ≥ pairs − u).
                assert!(close(c, d.sf(pairs - u), 1e-12));
            }
        }
        // P(U = 0) = 1 / C(n1+n2, n1).
        let d = ExactU::new(5, 6);
        assert!(close(d.cdf(0), 1.0 / 462.0, 1e-14));
    }

    #[test]
    fn degenerate_inputs() {
        assert!(mann_whitney(&s(&[]), &s(&[1.0]), Alternative::TwoSided).is_none());
        assert!(mann_whitney(&s(&[1.0]), &s(&[]), Alternative::TwoSided).is_none());
        // All tied: no evidence.
        let r = mann_whitney(&s(&[3.0; 50]), &s(&[3.0; 70]), Alternative::Greater).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.z, 0.0);
        assert_eq!(r.movement, Movement::Unchanged);
        assert_eq!(r.u_canary, 1750.0);
        // One each.
        let r = mann_whitney(&s(&[2.0]), &s(&[1.0]), Alternative::TwoSided).unwrap();
        assert!(r.exact);
        assert_eq!(r.p_value, 1.0);
        let r = mann_whitney(&s(&[2.0]), &s(&[1.0]), Alternative::Greater).unwrap();
        assert_eq!(r.p_value, 0.5);
        // Identical samples.
        let v: Vec<f64> = (0..200).map(f64::from).collect();
        let r = mann_whitney(&s(&v), &s(&v), Alternative::TwoSided).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.rank_biserial, 0.0);
    }

    #[test]
    fn weighted_equals_expanded() {
        let expanded = s(&[1.0, 1.0, 1.0, 2.0, 5.0, 5.0]);
        let weighted = Sample::from_weighted([(1.0, 3), (2.0, 1), (5.0, 2)]);
        let other = s(&[0.5, 1.0, 3.0, 3.0, 6.0]);
        let a = mann_whitney(&expanded, &other, Alternative::TwoSided).unwrap();
        let b = mann_whitney(&weighted, &other, Alternative::TwoSided).unwrap();
        assert_eq!(a, b);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn values() -> impl Strategy<Value = Vec<f64>> {
            prop::collection::vec((0_u32..60).prop_map(f64::from), 1..80)
        }

        proptest! {
            #[test]
            fn u_statistics_add_up_and_p_values_are_probabilities(x in values(), y in values()) {
                let (x, y) = (s(&x), s(&y));
                for alt in [Alternative::TwoSided, Alternative::Greater, Alternative::Less] {
                    for method in [Method::Auto, Method::Exact, Method::Asymptotic] {
                        let r = mann_whitney_with(&x, &y, alt, method).unwrap();
                        prop_assert_eq!(r.u_canary + r.u_baseline, (x.len() * y.len()) as f64);
                        prop_assert!((0.0..=1.0).contains(&r.p_value));
                        prop_assert!((-1.0..=1.0).contains(&r.rank_biserial));
                        prop_assert!(r.z.is_finite());
                    }
                }
            }

            #[test]
            fn swapping_samples_mirrors_the_test(x in values(), y in values()) {
                let (x, y) = (s(&x), s(&y));
                let xy = mann_whitney(&x, &y, Alternative::Greater).unwrap();
                let yx = mann_whitney(&y, &x, Alternative::Less).unwrap();
                prop_assert_eq!(xy.u_canary, yx.u_baseline);
                prop_assert!((xy.p_value - yx.p_value).abs() < 1e-12);
                prop_assert!((xy.z + yx.z).abs() < 1e-12);
                let a = mann_whitney(&x, &y, Alternative::TwoSided).unwrap();
                let b = mann_whitney(&y, &x, Alternative::TwoSided).unwrap();
                prop_assert!((a.p_value - b.p_value).abs() < 1e-12);
                prop_assert!((a.rank_biserial + b.rank_biserial).abs() < 1e-12);
            }
        }
    }
}
