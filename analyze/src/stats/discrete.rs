//! The two discrete distributions behind the exact count tests: the binomial
//! (conditional test for two Poisson rates) and the hypergeometric (Fisher's
//! exact test), with tails that stay exact for counts in the billions.
//!
//! Two-sided p-values use the *minimum-likelihood* rule of R's `fisher.test`
//! and `binom.test` and of SciPy's `fisher_exact` and `binomtest`: the
//! probability of every outcome no more likely than the observed one, with a
//! relative tolerance of 1e-7 so that outcomes equally likely in exact
//! arithmetic are not split by rounding.

use crate::stats::special::{binomial_cdf, binomial_sf_incl, ln_binomial_pmf};

/// Relative tolerance for "as likely as the observed outcome".
const REL_ERR: f64 = 1.0 + 1e-7;

/// A unimodal distribution on the integers `lo..=hi`.
trait Unimodal {
    fn support(&self) -> (u64, u64);
    fn mode(&self) -> u64;
    fn pmf(&self, x: u64) -> f64;
    /// P(X ≤ x).
    fn cdf(&self, x: u64) -> f64;
    /// P(X ≥ x).
    fn sf_incl(&self, x: u64) -> f64;

    /// Two-sided minimum-likelihood p-value of observing `x`.
    fn two_sided(&self, x: u64) -> f64 {
        let (lo, hi) = self.support();
        let mode = self.mode();
        let d = self.pmf(x) * REL_ERR;
        if self.pmf(mode) <= d {
            return 1.0;
        }
        let p = if x < mode {
            // First point above the mode with pmf ≤ d (pmf decreases there).
            let (mut a, mut b) = (mode, hi + 1);
            while a < b {
                let m = a + (b - a) / 2;
                if self.pmf(m) <= d { b = m } else { a = m + 1 }
            }
            let upper = if a <= hi { self.sf_incl(a) } else { 0.0 };
            self.cdf(x) + upper
        } else {
            // Last point below the mode with pmf ≤ d.
            let (mut a, mut b) = (lo, mode); // answer in [lo-1, mode)
            while a < b {
                let m = a + (b - a) / 2;
                if self.pmf(m) <= d { a = m + 1 } else { b = m }
            }
            let lower = if a > lo { self.cdf(a - 1) } else { 0.0 };
            self.sf_incl(x) + lower
        };
        p.min(1.0)
    }
}

/// Binomial(n, p).
pub(crate) struct Binomial {
    pub n: u64,
    pub p: f64,
}

impl Unimodal for Binomial {
    fn support(&self) -> (u64, u64) {
        (0, self.n)
    }
    fn mode(&self) -> u64 {
        (((self.n + 1) as f64 * self.p).floor() as u64).min(self.n)
    }
    fn pmf(&self, x: u64) -> f64 {
        ln_binomial_pmf(x as f64, self.n as f64, self.p, 1.0 - self.p).exp()
    }
    fn cdf(&self, x: u64) -> f64 {
        binomial_cdf(x, self.n, self.p)
    }
    fn sf_incl(&self, x: u64) -> f64 {
        binomial_sf_incl(x, self.n, self.p)
    }
}

impl Binomial {
    /// P(X ≤ x), P(X ≥ x) and the two-sided p-value, as `binomtest` does.
    pub(crate) fn less(&self, x: u64) -> f64 {
        self.cdf(x)
    }
    pub(crate) fn greater(&self, x: u64) -> f64 {
        self.sf_incl(x)
    }
    pub(crate) fn two_sided_p(&self, x: u64) -> f64 {
        if self.p <= 0.0 || self.p >= 1.0 {
            // Degenerate null: the observation is either certain or impossible.
            return if self.pmf(x) > 0.0 { 1.0 } else { 0.0 };
        }
        self.two_sided(x)
    }
}

/// Hypergeometric: draws `draws` from `total` items of which `successes` are
/// successes; X = successes drawn.
pub(crate) struct Hypergeometric {
    pub total: u64,
    pub successes: u64,
    pub draws: u64,
}

impl Hypergeometric {
    /// ln P(X = x) in Loader's form:
    /// `dbinom(x; K, p)·dbinom(n−x; M−K, p) / dbinom(n; M, p)` with p = n/M.
    fn ln_pmf(&self, x: u64) -> f64 {
        let (lo, hi) = self.support();
        if x < lo || x > hi {
            return f64::NEG_INFINITY;
        }
        let (m, k, n) = (self.total as f64, self.successes as f64, self.draws as f64);
        let p = n / m;
        let q = (m - n) / m;
        let x = x as f64;
        ln_binomial_pmf(x, k, p, q) + ln_binomial_pmf(n - x, m - k, p, q)
            - ln_binomial_pmf(n, m, p, q)
    }

    /// pmf(x+1)/pmf(x).
    fn ratio_up(&self, x: u64) -> f64 {
        let (m, k, n, x) = (
            self.total as f64,
            self.successes as f64,
            self.draws as f64,
            x as f64,
        );
        (k - x) * (n - x) / ((x + 1.0) * (m - k - n + x + 1.0))
    }

    /// Σ pmf from `x` outward (down when `down`), by the ratio recurrence,
    /// until the terms no longer change the sum.
    fn tail_sum(&self, x: u64, down: bool) -> f64 {
        let (lo, hi) = self.support();
        let mut term = self.ln_pmf(x).exp();
        let mut sum = term;
        let mut i = x;
        loop {
            if down {
                if i == lo {
                    break;
                }
                term /= self.ratio_up(i - 1);
                i -= 1;
            } else {
                if i == hi {
                    break;
                }
                term *= self.ratio_up(i);
                i += 1;
            }
            sum += term;
            if term <= sum * 1e-17 {
                break;
            }
        }
        sum
    }
}

impl Unimodal for Hypergeometric {
    fn support(&self) -> (u64, u64) {
        let lo = self.draws.saturating_sub(self.total - self.successes);
        (lo, self.successes.min(self.draws))
    }
    fn mode(&self) -> u64 {
        let (lo, hi) = self.support();
        let m = ((self.draws + 1) as f64 * (self.successes + 1) as f64 / (self.total + 2) as f64)
            .floor() as u64;
        m.clamp(lo, hi)
    }
    fn pmf(&self, x: u64) -> f64 {
        self.ln_pmf(x).exp()
    }
    fn cdf(&self, x: u64) -> f64 {
        let (lo, hi) = self.support();
        if x >= hi {
            return 1.0;
        }
        if x < lo {
            return 0.0;
        }
        // Sum the side that is a decreasing tail.
        if x < self.mode() {
            self.tail_sum(x, true).min(1.0)
        } else {
            (1.0 - self.tail_sum(x + 1, false)).max(0.0)
        }
    }
    fn sf_incl(&self, x: u64) -> f64 {
        let (lo, hi) = self.support();
        if x <= lo {
            return 1.0;
        }
        if x > hi {
            return 0.0;
        }
        if x > self.mode() {
            self.tail_sum(x, false).min(1.0)
        } else {
            (1.0 - self.tail_sum(x - 1, true)).max(0.0)
        }
    }
}

impl Hypergeometric {
    pub(crate) fn less(&self, x: u64) -> f64 {
        self.cdf(x)
    }
    pub(crate) fn greater(&self, x: u64) -> f64 {
        self.sf_incl(x)
    }
    pub(crate) fn two_sided_p(&self, x: u64) -> f64 {
        self.two_sided(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypergeometric_tails_sum_to_one() {
        let h = Hypergeometric {
            total: 60,
            successes: 25,
            draws: 30,
        };
        let (lo, hi) = h.support();
        let total: f64 = (lo..=hi).map(|x| h.pmf(x)).sum();
        assert!((total - 1.0).abs() < 1e-13);
        for x in lo..=hi {
            let cdf: f64 = (lo..=x).map(|i| h.pmf(i)).sum();
            let sf: f64 = (x..=hi).map(|i| h.pmf(i)).sum();
            assert!(
                (h.cdf(x) - cdf).abs() <= 1e-13 * cdf.max(1e-300) + 1e-16,
                "x={x}"
            );
            assert!(
                (h.sf_incl(x) - sf).abs() <= 1e-13 * sf.max(1e-300) + 1e-16,
                "x={x}"
            );
        }
    }
}
