//! Comparing two event rates per unit of exposure: OOM kills per pod-hour,
//! TCP retransmits per segment sent, a log template's count per 1 000 log
//! lines.
//!
//! Events are modelled as Poisson with rate λ per unit of exposure e. Given
//! the total K = k₁ + k₂, the canary's count is Binomial(K, π) with
//! `π = e₁λ₁ / (e₁λ₁ + e₂λ₂)`, and "same rate" means π₀ = e₁/(e₁+e₂). So:
//!
//! - **Test**: the exact conditional binomial test of k₁ ~ Bin(K, π₀)
//!   (Przyborowski & Wilenski 1940) — SciPy's `binomtest(k₁, K, π₀)`,
//!   two-sided by minimum likelihood. Exact at any count; nuisance-free.
//! - **Ratio** λ₁/λ₂ with the exact conditional interval: the Clopper-Pearson
//!   interval (π_L, π_U) for π mapped through `π/(1−π) · e₂/e₁`. A canary
//!   with events over a silent baseline has ratio ∞ and an upper bound ∞; a
//!   silent canary has ratio 0 and lower bound 0.
//! - **Difference** λ₁ − λ₂ (per unit of exposure) with the MOVER interval
//!   built from the two score intervals `(k + z²/2 ± z√(k + z²/4)) / e`
//!   (Li, Tang & Wong 2011; statsmodels' `confint_poisson_2indep(...,
//!   method="mover", compare="diff")`). Finite and sensible at zero counts.
//!
//! With no events in either cohort there is nothing to compare: p = 1, no
//! ratio, and a difference interval around 0 whose width reflects the
//! exposure. The test does not need large counts: "5 OOM kills in the canary,
//! 0 in an equally sized baseline" gives p = 1/32 one-sided, exactly.

use crate::error::{Error, Result};
use crate::stats::direction::{Alternative, Movement};
use crate::stats::discrete::Binomial;
use crate::stats::effect::{Confidence, Effect, Interval, Scale};
use crate::stats::special::beta_quantile;

/// A count of events over an exposure (pod-hours, segments, log lines…).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Events counted.
    pub events: u64,
    /// Exposure they were counted over; finite and positive.
    pub exposure: f64,
}

impl Rate {
    /// A rate; `exposure` must be finite and > 0.
    pub fn new(events: u64, exposure: f64) -> Result<Rate> {
        if !(exposure.is_finite() && exposure > 0.0) {
            return Err(Error::InvalidExposure { exposure });
        }
        Ok(Rate { events, exposure })
    }

    /// Events per unit of exposure.
    pub fn per_unit(&self) -> f64 {
        self.events as f64 / self.exposure
    }

    /// The score interval for the rate, `(k + z²/2 ± z√(k + z²/4)) / e`
    /// (statsmodels' `confint_poisson(k, e, method="score")`); 0 events give
    /// `[0, z²/e]`.
    pub fn score_interval(&self, confidence: Confidence) -> Interval {
        score_interval(self.events, self.exposure, confidence.z())
    }
}

fn score_interval(k: u64, e: f64, z: f64) -> Interval {
    let k = k as f64;
    let z2 = z * z;
    let center = k + z2 / 2.0;
    let half = z * (k + z2 / 4.0).sqrt();
    Interval {
        low: if k == 0.0 {
            0.0
        } else {
            ((center - half) / e).max(0.0)
        },
        high: (center + half) / e,
    }
}

/// The result of [`compare_rates`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateComparison {
    /// The canary's events and exposure.
    pub canary: Rate,
    /// The baseline's events and exposure.
    pub baseline: Rate,
    /// The exact conditional binomial p-value for
    /// [`RateComparison::alternative`]; 1 when neither cohort had an event.
    pub p_value: f64,
    /// The alternative tested (`Greater`: the canary's rate is higher).
    pub alternative: Alternative,
    /// λ_canary / λ_baseline with the exact conditional (Clopper-Pearson)
    /// interval; `None` when neither cohort had an event. The estimate is ∞
    /// when only the canary had events.
    pub ratio: Option<Effect>,
    /// λ_canary − λ_baseline per unit of exposure, MOVER score interval.
    pub difference: Effect,
    /// Which way the canary's rate lies from the baseline's.
    pub movement: Movement,
}

/// Compares the canary's event rate with the baseline's.
pub fn compare_rates(
    canary: Rate,
    baseline: Rate,
    alternative: Alternative,
    confidence: Confidence,
) -> RateComparison {
    let (k1, k2) = (canary.events, baseline.events);
    let (e1, e2) = (canary.exposure, baseline.exposure);
    let (r1, r2) = (canary.per_unit(), baseline.per_unit());
    let total = k1 + k2;
    let pi0 = e1 / (e1 + e2);
    let p_value = if total == 0 {
        1.0
    } else {
        let b = Binomial { n: total, p: pi0 };
        match alternative {
            Alternative::Greater => b.greater(k1),
            Alternative::Less => b.less(k1),
            Alternative::TwoSided => b.two_sided_p(k1),
        }
        .clamp(0.0, 1.0)
    };
    let ratio = (total > 0).then(|| {
        let half = confidence.alpha() / 2.0;
        let (k1f, k2f) = (k1 as f64, k2 as f64);
        // Clopper-Pearson for π = share of events in the canary.
        let pi_low = if k1 == 0 {
            0.0
        } else {
            beta_quantile(k1f, k2f + 1.0, half)
        };
        let pi_high = if k2 == 0 {
            1.0
        } else {
            beta_quantile(k1f + 1.0, k2f, 1.0 - half)
        };
        let to_ratio = |pi: f64| {
            if pi >= 1.0 {
                f64::INFINITY
            } else {
                pi / (1.0 - pi) * (e2 / e1)
            }
        };
        Effect {
            estimate: if k2 == 0 { f64::INFINITY } else { r1 / r2 },
            interval: Interval {
                low: to_ratio(pi_low),
                high: to_ratio(pi_high),
            },
            scale: Scale::Ratio,
        }
    });
    let z = confidence.z();
    let (w1, w2) = (score_interval(k1, e1, z), score_interval(k2, e2, z));
    let d = r1 - r2;
    let difference = Effect {
        estimate: d,
        interval: Interval {
            low: d - ((r1 - w1.low).powi(2) + (w2.high - r2).powi(2)).sqrt(),
            high: d + ((w1.high - r1).powi(2) + (r2 - w2.low).powi(2)).sqrt(),
        },
        scale: Scale::Difference,
    };
    RateComparison {
        canary,
        baseline,
        p_value,
        alternative,
        ratio,
        difference,
        movement: Movement::of(r1, r2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(k: u64, e: f64) -> Rate {
        Rate::new(k, e).unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        a == b || (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn matches_scipy_and_statsmodels() {
        // p: scipy.stats.binomtest(k1, k1+k2, e1/(e1+e2), alternative=alt).pvalue
        // ratio CI: binomtest(k1, k1+k2).proportion_ci(0.95, method="exact")
        //   mapped by π/(1−π)·e2/e1
        // difference CI: statsmodels confint_poisson_2indep(k1, e1, k2, e2,
        //   method="mover", compare="diff", alpha=0.05)
        // (analyze/reference/rates.py)
        for &(k1, e1, k2, e2, two, greater, less, r_low, r_high, d_low, d_high) in REFERENCE {
            let r = |alt| compare_rates(rate(k1, e1), rate(k2, e2), alt, Confidence::NINETY_FIVE);
            for (alt, want) in [
                (Alternative::TwoSided, two),
                (Alternative::Greater, greater),
                (Alternative::Less, less),
            ] {
                let got = r(alt).p_value;
                assert!(
                    close(got, want, 1e-9),
                    "{k1}/{e1} vs {k2}/{e2} {alt:?}: {got} vs {want}"
                );
            }
            let c = r(Alternative::TwoSided);
            let ratio = c.ratio.unwrap();
            assert!(
                close(ratio.interval.low, r_low, 1e-9),
                "{} vs {r_low}",
                ratio.interval.low
            );
            assert!(
                close(ratio.interval.high, r_high, 1e-9),
                "{} vs {r_high}",
                ratio.interval.high
            );
            assert!(close(c.difference.interval.low, d_low, 1e-9));
            assert!(close(c.difference.interval.high, d_high, 1e-9));
        }
    }

    #[test]
    fn zero_counts_are_sensible() {
        let none = compare_rates(
            rate(0, 100.0),
            rate(0, 300.0),
            Alternative::TwoSided,
            Confidence::NINETY_FIVE,
        );
        assert_eq!(none.p_value, 1.0);
        assert!(none.ratio.is_none());
        assert_eq!(none.movement, Movement::Unchanged);
        assert!(none.difference.interval.contains(0.0));
        assert!(none.difference.interval.low.is_finite());

        // A new log template: 5 in the canary, 0 in an equal baseline.
        let new = compare_rates(
            rate(5, 1000.0),
            rate(0, 1000.0),
            Alternative::Greater,
            Confidence::NINETY_FIVE,
        );
        assert!(close(new.p_value, 1.0 / 32.0, 1e-12));
        let ratio = new.ratio.unwrap();
        assert_eq!(ratio.estimate, f64::INFINITY);
        assert_eq!(ratio.interval.high, f64::INFINITY);
        assert!(ratio.interval.low > 0.0 && ratio.interval.low.is_finite());
        assert_eq!(new.movement, Movement::Higher);

        // Canary silent, baseline not.
        let quiet = compare_rates(
            rate(0, 10.0),
            rate(20, 100.0),
            Alternative::Greater,
            Confidence::NINETY_FIVE,
        );
        assert_eq!(quiet.p_value, 1.0);
        assert_eq!(quiet.ratio.unwrap().estimate, 0.0);
        assert_eq!(quiet.ratio.unwrap().interval.low, 0.0);
        assert_eq!(quiet.movement, Movement::Lower);

        assert!(Rate::new(1, 0.0).is_err());
        assert!(Rate::new(1, f64::NAN).is_err());
        assert!(Rate::new(1, f64::INFINITY).is_err());
    }

    #[test]
    fn huge_counts() {
        // Retransmits: 1.02e6 of 1e9 segments vs 1.0e6 of 1e9.
        let r = compare_rates(
            rate(1_020_000, 1e9),
            rate(1_000_000, 1e9),
            Alternative::Greater,
            Confidence::NINETY_FIVE,
        );
        assert!(r.p_value < 1e-20 && r.p_value > 0.0, "{}", r.p_value);
        let ratio = r.ratio.unwrap();
        assert!(ratio.interval.contains(1.02));
        assert!(ratio.interval.low > 1.01 && ratio.interval.high < 1.03);
    }

    /// (k1, e1, k2, e2, p two-sided, greater, less, ratio low, high, diff low, high)
    type Case = (u64, f64, u64, f64, f64, f64, f64, f64, f64, f64, f64);
    const REFERENCE: &[Case] = &[
        (
            5,
            1000.0,
            0,
            1000.0,
            0.0625,
            0.03125,
            1.0,
            0.91635585731546,
            f64::INFINITY,
            0.00020823478826573379,
            0.011705757683120677,
        ),
        (
            3,
            12.5,
            7,
            40.0,
            0.7103193833148597,
            0.4384058444530752,
            0.8029946694512079,
            0.2288390415394762,
            6.007383805485144,
            -0.17949601754840577,
            0.5393553963465536,
        ),
        (
            0,
            10.0,
            20,
            100.0,
            0.25083611475831574,
            1.0,
            0.14864362802414366,
            0.0,
            2.0254960379683515,
            -0.3089393273366782,
            0.19056599639523736,
        ),
        (
            40,
            100.0,
            25,
            100.0,
            0.08168153394154003,
            0.040840766970770014,
            0.9768232628335444,
            0.9471532209365666,
            2.75183926939498,
            -0.00957032986431336,
            0.3156129091291968,
        ),
        (
            17,
            2.0,
            90,
            30.0,
            0.00034922103326436515,
            0.00034922103326436515,
            0.999886851560625,
            1.581246560478476,
            4.7928228229895335,
            2.2341326672354858,
            10.643967362217666,
        ),
        (
            1500,
            1000000.0,
            1300,
            1100000.0,
            3.2053697227131684e-10,
            1.6574310775800627e-10,
            0.9999999998701606,
            1.1775924595379539,
            1.3681383326130907,
            0.00021900726550549054,
            0.00041803226335956244,
        ),
        (
            2,
            1.0,
            2,
            1.0,
            1.0,
            0.6875,
            0.6875,
            0.07248495358195571,
            13.795966619049318,
            -5.488409710823821,
            5.488409710823821,
        ),
    ];

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_rate() -> impl Strategy<Value = Rate> {
            (0_u64..5000, 0.01_f64..1e6).prop_map(|(k, e)| rate(k, e))
        }

        proptest! {
            #[test]
            fn p_values_are_probabilities_and_intervals_are_ordered(c in any_rate(), b in any_rate()) {
                for alt in [Alternative::TwoSided, Alternative::Greater, Alternative::Less] {
                    let r = compare_rates(c, b, alt, Confidence::NINETY_FIVE);
                    prop_assert!((0.0..=1.0).contains(&r.p_value), "{}", r.p_value);
                    let d = r.difference;
                    prop_assert!(d.interval.low <= d.estimate && d.estimate <= d.interval.high);
                    if let Some(ratio) = r.ratio {
                        prop_assert!(!ratio.estimate.is_nan());
                        prop_assert!(ratio.interval.low <= ratio.interval.high);
                        prop_assert!(ratio.interval.low >= 0.0);
                    }
                }
                let g = compare_rates(c, b, Alternative::Greater, Confidence::NINETY_FIVE).p_value;
                let l = compare_rates(b, c, Alternative::Less, Confidence::NINETY_FIVE).p_value;
                prop_assert!((g - l).abs() <= 1e-9 * g.max(1e-300) + 1e-15, "{g} vs {l}");
            }
        }
    }
}
