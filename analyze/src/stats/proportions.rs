//! Comparing two proportions — error rates: k₁ failed requests of n₁ in the
//! canary against k₂ of n₂ in the baseline.
//!
//! - **Test**: Fisher's exact test on the 2×2 table
//!   `[[k₁, n₁−k₁], [k₂, n₂−k₂]]`, conditional on the margins, with
//!   SciPy's `fisher_exact` p-values (two-sided by minimum likelihood). It is
//!   exact at any size, so there is no small-sample switch to get wrong; it
//!   is conservative for small counts (the price of never over-alarming), and
//!   for large counts it agrees with the score (χ²) test. Its tails are
//!   summed outward from the observed table with a ratio recurrence and stop
//!   when terms vanish, so a table with a million trials per side costs
//!   microseconds to a few milliseconds.
//! - **Effect**: the difference p₁ − p₂ with Newcombe's hybrid score interval
//!   (Newcombe 1998, method 10), built from the two Wilson intervals. It is
//!   well-behaved at zero counts (0 of 5 000 in the baseline gives a finite,
//!   sensible interval) and is what an absolute floor ("no more than +0.1
//!   percentage points") should be compared with.
//!
//! Zero counts: with no errors anywhere the p-value is 1 and the difference
//! interval straddles 0; a cohort with zero trials gives `None` (no data).

use crate::error::{Error, Result};
use crate::stats::direction::{Alternative, Movement};
use crate::stats::discrete::Hypergeometric;
use crate::stats::effect::{Confidence, Effect, Interval, Scale};

/// `events` of `trials` (errors of requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proportion {
    /// Events (e.g. failed requests).
    pub events: u64,
    /// Trials (e.g. requests).
    pub trials: u64,
}

impl Proportion {
    /// A proportion; `events ≤ trials`.
    pub fn new(events: u64, trials: u64) -> Result<Proportion> {
        if events > trials {
            return Err(Error::EventsExceedTrials { events, trials });
        }
        Ok(Proportion { events, trials })
    }

    /// events / trials, `None` when there were no trials.
    pub fn value(&self) -> Option<f64> {
        (self.trials > 0).then(|| self.events as f64 / self.trials as f64)
    }

    /// The Wilson score interval, `None` when there were no trials. Stays
    /// inside [0, 1] and is not degenerate at 0 or `trials` events.
    pub fn wilson(&self, confidence: Confidence) -> Option<Interval> {
        (self.trials > 0).then(|| wilson(self.events, self.trials, confidence.z()))
    }
}

fn wilson(k: u64, n: u64, z: f64) -> Interval {
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = n + z2;
    let center = (k + z2 / 2.0) / denom;
    let half = z / denom * (k * (1.0 - p) + z2 / 4.0).sqrt();
    // Clamp away rounding at the ends: 0 events → exactly 0.
    let low = if k == 0.0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let high = if k == n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Interval { low, high }
}

/// The result of [`compare_proportions`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProportionComparison {
    /// The canary's counts.
    pub canary: Proportion,
    /// The baseline's counts.
    pub baseline: Proportion,
    /// Fisher's exact p-value for [`ProportionComparison::alternative`].
    pub p_value: f64,
    /// The alternative tested (`Greater`: the canary's proportion is higher).
    pub alternative: Alternative,
    /// p_canary − p_baseline with Newcombe's hybrid score interval.
    pub difference: Effect,
    /// Which way the canary's proportion lies from the baseline's.
    pub movement: Movement,
}

/// Compares the canary's proportion with the baseline's. `None` when either
/// cohort had no trials.
pub fn compare_proportions(
    canary: Proportion,
    baseline: Proportion,
    alternative: Alternative,
    confidence: Confidence,
) -> Option<ProportionComparison> {
    let (p1, p2) = (canary.value()?, baseline.value()?);
    let p_value = fisher_exact(canary, baseline, alternative);
    Some(ProportionComparison {
        canary,
        baseline,
        p_value,
        alternative,
        difference: newcombe_difference(canary, baseline, confidence)?,
        movement: Movement::of(p1, p2),
    })
}

/// Fisher's exact test of the table `[[k₁, n₁−k₁], [k₂, n₂−k₂]]` — SciPy's
/// `fisher_exact(table, alternative)`. `Greater` means the canary's
/// proportion is higher. A table with an empty row or column gives 1.
pub fn fisher_exact(canary: Proportion, baseline: Proportion, alternative: Alternative) -> f64 {
    let (k1, n1, k2, n2) = (
        canary.events,
        canary.trials,
        baseline.events,
        baseline.trials,
    );
    let events = k1 + k2;
    let total = n1 + n2;
    if n1 == 0 || n2 == 0 || events == 0 || events == total {
        return 1.0;
    }
    let h = Hypergeometric {
        total,
        successes: n1,
        draws: events,
    };
    let p = match alternative {
        Alternative::Greater => h.greater(k1),
        Alternative::Less => h.less(k1),
        Alternative::TwoSided => h.two_sided_p(k1),
    };
    p.clamp(0.0, 1.0)
}

/// p_canary − p_baseline with Newcombe's hybrid score interval (method 10):
/// `[d − √((p₁−l₁)² + (u₂−p₂)²), d + √((u₁−p₁)² + (p₂−l₂)²)]` with (lᵢ, uᵢ)
/// the Wilson intervals. `None` when either cohort had no trials.
pub fn newcombe_difference(
    canary: Proportion,
    baseline: Proportion,
    confidence: Confidence,
) -> Option<Effect> {
    let (p1, p2) = (canary.value()?, baseline.value()?);
    let (w1, w2) = (canary.wilson(confidence)?, baseline.wilson(confidence)?);
    let d = p1 - p2;
    let low = d - ((p1 - w1.low).powi(2) + (w2.high - p2).powi(2)).sqrt();
    let high = d + ((w1.high - p1).powi(2) + (p2 - w2.low).powi(2)).sqrt();
    Some(Effect {
        estimate: d,
        interval: Interval { low, high },
        scale: Scale::Difference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(k: u64, n: u64) -> Proportion {
        Proportion::new(k, n).unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn fisher_matches_scipy() {
        // scipy.stats.fisher_exact([[k1, n1-k1], [k2, n2-k2]], alternative=alt)
        // (analyze/reference/proportions.py, SciPy 1.17.1)
        for &(k1, n1, k2, n2, two, greater, less) in REFERENCE_FISHER {
            let (c, b) = (prop(k1, n1), prop(k2, n2));
            for (alt, want) in [
                (Alternative::TwoSided, two),
                (Alternative::Greater, greater),
                (Alternative::Less, less),
            ] {
                let got = fisher_exact(c, b, alt);
                assert!(
                    close(got, want, 1e-9),
                    "{k1}/{n1} vs {k2}/{n2} {alt:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn wilson_and_newcombe_match_statsmodels() {
        // statsmodels proportion_confint(k, n, alpha=0.05, method="wilson") and
        // confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        // (analyze/reference/proportions.py, statsmodels 0.15.0)
        for &(k1, n1, k2, n2, w_low, w_high, d_low, d_high) in REFERENCE_NEWCOMBE {
            let (c, b) = (prop(k1, n1), prop(k2, n2));
            let w = c.wilson(Confidence::NINETY_FIVE).unwrap();
            assert!(close(w.low, w_low, 1e-12) || (w.low == 0.0 && w_low.abs() < 1e-15));
            assert!(close(w.high, w_high, 1e-12));
            let d = newcombe_difference(c, b, Confidence::NINETY_FIVE).unwrap();
            assert!(
                close(d.interval.low, d_low, 1e-10),
                "{} vs {d_low}",
                d.interval.low
            );
            assert!(
                close(d.interval.high, d_high, 1e-10),
                "{} vs {d_high}",
                d.interval.high
            );
        }
    }

    #[test]
    fn zeros_and_degenerate_tables() {
        // No errors anywhere: nothing to see.
        let r = compare_proportions(
            prop(0, 1000),
            prop(0, 5000),
            Alternative::Greater,
            Confidence::NINETY_FIVE,
        )
        .unwrap();
        assert_eq!(r.p_value, 1.0);
        assert_eq!(r.movement, Movement::Unchanged);
        assert!(r.difference.interval.contains(0.0));
        assert!(r.difference.interval.low.is_finite() && r.difference.interval.high.is_finite());
        // All errors everywhere.
        assert_eq!(
            fisher_exact(prop(10, 10), prop(7, 7), Alternative::TwoSided),
            1.0
        );
        // No trials: no data.
        assert!(
            compare_proportions(
                prop(0, 0),
                prop(1, 10),
                Alternative::Greater,
                Confidence::NINETY_FIVE
            )
            .is_none()
        );
        assert!(Proportion::new(3, 2).is_err());
        // Baseline clean, canary 5 errors of 200: higher, and significant.
        let r = compare_proportions(
            prop(5, 200),
            prop(0, 2000),
            Alternative::Greater,
            Confidence::NINETY_FIVE,
        )
        .unwrap();
        assert_eq!(r.movement, Movement::Higher);
        assert!(r.p_value < 1e-3);
        assert!(r.difference.interval.low > 0.0);
    }

    #[test]
    fn huge_tables_are_fast_and_sane() {
        // 1.2 % vs 1.0 % over ten million requests each: z ≈ 43, p underflows.
        let b = prop(100_000, 10_000_000);
        assert_eq!(
            fisher_exact(prop(120_000, 10_000_000), b, Alternative::Greater),
            0.0
        );
        assert_eq!(
            fisher_exact(prop(120_000, 10_000_000), b, Alternative::Less),
            1.0
        );
        let same = fisher_exact(prop(100_000, 10_000_000), b, Alternative::TwoSided);
        assert_eq!(same, 1.0);
    }

    /// (k1, n1, k2, n2, two-sided, greater, less)
    type FisherCase = (u64, u64, u64, u64, f64, f64, f64);
    const REFERENCE_FISHER: &[FisherCase] = &[
        (
            3,
            10,
            1,
            10,
            0.5820433436532508,
            0.2910216718266254,
            0.956656346749226,
        ),
        (
            8,
            15,
            2,
            17,
            0.020885121955151457,
            0.014931244055391658,
            0.9986345536908965,
        ),
        (0, 40, 5, 60, 0.08128199733501645, 1.0, 0.07254206274824829),
        (
            5,
            200,
            0,
            2000,
            5.931063433359794e-06,
            5.931063433359794e-06,
            1.0,
        ),
        (
            12,
            1000,
            9,
            1100,
            0.39077055874730215,
            0.254922069296977,
            0.8638516560937879,
        ),
        (1, 3, 2, 4, 1.0, 0.8857142857142857, 0.6285714285714286),
        (
            150,
            10000,
            100,
            10000,
            0.0017626809589844053,
            0.0008813404794922027,
            0.9994352050342022,
        ),
        (
            1234,
            100000,
            1100,
            100000,
            0.005608751804304327,
            0.0028043759021521637,
            0.9975343906626409,
        ),
        (7, 100, 7, 100, 1.0, 0.6085962952125992, 0.6085962952125992),
        (
            102000,
            10000000,
            100000,
            10000000,
            7.807947019564474e-06,
            3.9039735097822355e-06,
            0.9999961768618324,
        ),
    ];
    /// (k1, n1, k2, n2, wilson low/high of k1/n1, newcombe low/high)
    type NewcombeCase = (u64, u64, u64, u64, f64, f64, f64, f64);
    const REFERENCE_NEWCOMBE: &[NewcombeCase] = &[
        (
            3,
            10,
            1,
            10,
            0.10779126740630104,
            0.6032218525388546,
            -0.1597936015062252,
            0.5141461574374272,
        ),
        (
            8,
            15,
            2,
            17,
            0.30116980025498397,
            0.7519046463426261,
            0.09188414265409262,
            0.6501194451299295,
        ),
        (
            0,
            40,
            5,
            60,
            0.0,
            0.08762160119728668,
            -0.18068942018334413,
            0.01619857474467877,
        ),
        (
            5,
            200,
            0,
            2000,
            0.01072471965176126,
            0.05717834040664199,
            0.010596573348700303,
            0.05717834040664199,
        ),
        (
            12,
            1000,
            9,
            1100,
            0.006877647806403521,
            0.02085726847549828,
            -0.005095247395432528,
            0.01348457720382518,
        ),
        (
            1,
            3,
            2,
            4,
            0.06149194472039626,
            0.7923403991979523,
            -0.6098037218501158,
            0.4105336413957044,
        ),
        (
            150,
            10000,
            100,
            10000,
            0.012797042489119613,
            0.01757543593043668,
            0.001923873442375706,
            0.008125399287777184,
        ),
        (
            1234,
            100000,
            1100,
            100000,
            0.011674247814396861,
            0.013043217262567634,
            0.0003986584238751036,
            0.002282772712844507,
        ),
        (
            7,
            100,
            7,
            100,
            0.03431926106727266,
            0.13749514739073504,
            -0.0763459891027845,
            0.0763459891027845,
        ),
    ];

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn proportion() -> impl Strategy<Value = Proportion> {
            (0_u64..3000)
                .prop_flat_map(|n| (0..=n, Just(n)))
                .prop_map(|(k, n)| prop(k, n))
        }

        proptest! {
            #[test]
            fn p_values_are_probabilities_and_sides_mirror(c in proportion(), b in proportion()) {
                for alt in [Alternative::TwoSided, Alternative::Greater, Alternative::Less] {
                    let p = fisher_exact(c, b, alt);
                    prop_assert!((0.0..=1.0).contains(&p), "{p}");
                }
                let g = fisher_exact(c, b, Alternative::Greater);
                let l = fisher_exact(b, c, Alternative::Less);
                prop_assert!((g - l).abs() <= 1e-9 * g.max(1e-300) + 1e-15, "{g} vs {l}");
                let two = fisher_exact(c, b, Alternative::TwoSided);
                let back = fisher_exact(b, c, Alternative::TwoSided);
                prop_assert!((two - back).abs() <= 1e-9 * two.max(1e-300) + 1e-15);
                if let Some(r) = compare_proportions(c, b, Alternative::TwoSided, Confidence::NINETY_FIVE) {
                    let i = r.difference.interval;
                    prop_assert!(i.low.is_finite() && i.high.is_finite());
                    prop_assert!(i.low <= r.difference.estimate && r.difference.estimate <= i.high);
                    prop_assert!(i.low >= -1.0 && i.high <= 1.0);
                }
            }
        }
    }
}
