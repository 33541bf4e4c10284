//! Special functions the tests need: the normal distribution, log-gamma, the
//! regularized incomplete beta function and its inverse, and Loader's
//! saddle-point binomial density.
//!
//! Everything here is accurate to a few ulps in the ranges the tests use
//! (checked against `scipy.special` in the unit tests), and stays accurate for
//! huge arguments: densities and the incomplete-beta prefactor go through
//! Loader's deviance form (`bd0`, `stirlerr`) rather than differences of
//! `ln Γ`, which would lose all digits for counts of 10⁹.

use std::f64::consts::SQRT_2;

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Standard normal CDF, Φ(x).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / SQRT_2)
}

/// Standard normal survival function, 1 − Φ(x), accurate in the upper tail.
pub fn normal_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x / SQRT_2)
}

/// Standard normal quantile Φ⁻¹(p): Wichura's AS 241 (PPND16), relative
/// error about 1e-16. Returns ∓∞ at 0 and 1 and NaN outside [0, 1].
// The coefficients are AS 241's, digit for digit.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((2509.0809287301227 * r + 33430.57558358813) * r + 67265.7709270087) * r
                + 45921.95393154987)
                * r
                + 13731.693765509461)
                * r
                + 1971.5909503065514)
                * r
                + 133.14166789178438)
                * r
                + 3.3871328727963665)
            / (((((((5226.495278852545 * r + 28729.085735721943) * r + 39307.89580009271) * r
                + 21213.794301586597)
                * r
                + 5394.196021424751)
                * r
                + 687.1870074920579)
                * r
                + 42.31333070160091)
                * r
                + 1.0);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let mut r = (-tail.ln()).sqrt();
    let value = if r <= 5.0 {
        r -= 1.6;
        (((((((7.745450142783414e-4 * r + 0.022723844989269184) * r + 0.2417807251774506) * r
            + 1.2704582524523684)
            * r
            + 3.6478483247632045)
            * r
            + 5.769497221460691)
            * r
            + 4.630337846156546)
            * r
            + 1.4234371107496835)
            / (((((((1.0507500716444169e-9 * r + 5.475938084995345e-4) * r
                + 0.015198666563616457)
                * r
                + 0.14810397642748008)
                * r
                + 0.6897673349851)
                * r
                + 1.6763848301838038)
                * r
                + 2.053191626637759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((2.0103343992922881e-7 * r + 2.7115555687434876e-5) * r + 0.0012426609473880784)
            * r
            + 0.026532189526576124)
            * r
            + 0.2965605718285049)
            * r
            + 1.7848265399172913)
            * r
            + 5.463784911164114)
            * r
            + 6.657904643501103)
            / (((((((2.0442631033899397e-15 * r + 1.421511758316446e-7) * r
                + 1.8463183175100548e-5)
                * r
                + 7.868691311456133e-4)
                * r
                + 0.014875361290850615)
                * r
                + 0.1369298809227358)
                * r
                + 0.599832206555888)
                * r
                + 1.0)
    };
    if q < 0.0 { -value } else { value }
}

/// `ln Γ(x)` for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma_r(x).0
}

/// Stirling's error `ln Γ(z+1) − [(z+½) ln z − z + ln √(2π)]` for z > 0.
fn stirlerr(z: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if z <= 15.0 {
        return ln_gamma(z + 1.0) - (z + 0.5) * z.ln() + z - LN_SQRT_2PI;
    }
    let zz = z * z;
    if z > 500.0 {
        (S0 - S1 / zz) / z
    } else if z > 80.0 {
        (S0 - (S1 - S2 / zz) / zz) / z
    } else if z > 35.0 {
        (S0 - (S1 - (S2 - S3 / zz) / zz) / zz) / z
    } else {
        (S0 - (S1 - (S2 - (S3 - S4 / zz) / zz) / zz) / zz) / z
    }
}

/// Loader's deviance term `x ln(x/m) + m − x`, computed without cancellation
/// when x ≈ m.
fn bd0(x: f64, m: f64) -> f64 {
    if x == 0.0 {
        return m;
    }
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        s
    } else {
        x * (x / m).ln() + m - x
    }
}

/// `ln P(X = x)` for X ~ Binomial(n, p), with q = 1 − p given separately so
/// callers can pass an exact complement. Loader (2000), as R's `dbinom_raw`.
pub fn ln_binomial_pmf(x: f64, n: f64, p: f64, q: f64) -> f64 {
    if x < 0.0 || x > n {
        return f64::NEG_INFINITY;
    }
    if p == 0.0 {
        return if x == 0.0 { 0.0 } else { f64::NEG_INFINITY };
    }
    if q == 0.0 {
        return if x == n { 0.0 } else { f64::NEG_INFINITY };
    }
    if x == 0.0 {
        if n == 0.0 {
            return 0.0;
        }
        return if p < 0.1 {
            -bd0(n, n * q) - n * p
        } else {
            n * q.ln()
        };
    }
    if x == n {
        return if q < 0.1 {
            -bd0(n, n * p) - n * q
        } else {
            n * p.ln()
        };
    }
    let lc = stirlerr(n) - stirlerr(x) - stirlerr(n - x) - bd0(x, n * p) - bd0(n - x, n * q);
    let lf = 2.0 * LN_SQRT_2PI + x.ln() + (-x / n).ln_1p();
    lc - 0.5 * lf
}

/// `ln[xᵃ yᵇ / B(a, b)]` (y = 1 − x) for a, b > 0, in Loader's deviance form
/// so it keeps its digits when a and b are huge:
///
/// `−bd0(a, s·x) − bd0(b, s·y) + ½ ln(ab/s) − ln √(2π) + δ(s) − δ(a) − δ(b)`
///
/// with s = a + b and δ = [`stirlerr`]. The smaller of s·x and s·y is
/// computed from its own argument and the other as the exact complement, so
/// a tiny p passed as `y` keeps its relative precision.
fn ln_beta_power_term(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let s = a + b;
    let (ma, mb) = if x <= y {
        let ma = s * x;
        (ma, s - ma)
    } else {
        let mb = s * y;
        (s - mb, mb)
    };
    -bd0(a, ma) - bd0(b, mb) + 0.5 * (a * b / s).ln() - LN_SQRT_2PI + stirlerr(s)
        - stirlerr(a)
        - stirlerr(b)
}

/// Regularized incomplete beta function I_x(a, b) for a, b > 0.
///
/// Continued fraction (modified Lentz) on whichever side converges, with the
/// prefactor from [`ln_beta_power_term`]. The fraction needs
/// O(√max(a, b)) terms, so counts of 10⁹ take ~10⁵ steps (well under a
/// millisecond).
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let y = 1.0 - x;
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - beta_inc_cf(b, a, y, x);
    }
    beta_inc_cf(a, b, x, y)
}

/// I_x(a, b) via the continued fraction; valid (fast) for x < (a+1)/(a+b+2).
fn beta_inc_cf(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let ln_front = ln_beta_power_term(a, b, x, y) - a.ln();
    if ln_front < -745.0 {
        return 0.0;
    }
    ln_front.exp() * beta_cf(a, b, x)
}

/// The continued fraction of I_x(a, b) (Numerical Recipes' `betacf`).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let max_iter = 10_000 + (20.0 * a.max(b).sqrt()) as usize;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=max_iter {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Density of Beta(a, b) at x.
fn beta_pdf(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    (ln_beta_power_term(a, b, x, 1.0 - x) - x.ln() - (1.0 - x).ln()).exp()
}

/// Quantile of Beta(a, b): the x with I_x(a, b) = p. Safeguarded Newton
/// (falls back to bisection whenever a step leaves the bracket).
pub fn beta_quantile(a: f64, b: f64, p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    // Start at the normal approximation of the quantile, clamped inside.
    let mean = a / (a + b);
    let sd = (a * b / ((a + b) * (a + b) * (a + b + 1.0))).sqrt();
    let mut x = (mean + normal_quantile(p) * sd).clamp(1e-300, 1.0 - 1e-16);
    for _ in 0..300 {
        let f = beta_inc(a, b, x) - p;
        if f == 0.0 {
            return x;
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let pdf = beta_pdf(a, b, x);
        let mut next = if pdf > 0.0 { x - f / pdf } else { f64::NAN };
        if !(next > lo && next < hi) {
            next = if lo == 0.0 && hi > 1e-300 && hi < 1e-3 {
                // Geometric bisection reaches tiny quantiles quickly.
                (lo.max(1e-300) * hi).sqrt()
            } else {
                0.5 * (lo + hi)
            };
        }
        if (next - x).abs() <= 4.0 * f64::EPSILON * x.abs() || hi - lo <= f64::EPSILON * hi {
            return next;
        }
        x = next;
    }
    x
}

/// Binomial lower tail P(X ≤ k) for X ~ Binomial(n, p).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    // P(X ≤ k) = I_{1−p}(n − k, k + 1)
    beta_inc_complement_safe(n as f64 - k as f64, k as f64 + 1.0, p)
}

/// Binomial upper tail P(X ≥ k).
pub fn binomial_sf_incl(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // P(X ≥ k) = I_p(k, n − k + 1)
    beta_inc(k as f64, n as f64 - k as f64 + 1.0, p)
}

/// I_{1−p}(a, b) evaluated as 1 − I_p(b, a) on whichever side keeps digits.
fn beta_inc_complement_safe(a: f64, b: f64, p: f64) -> f64 {
    // I_{1-p}(a, b) = 1 - I_p(b, a). Compute directly with x = 1 − p and the
    // exact complement y = p so the prefactor sees both without rounding.
    let x = 1.0 - p;
    let y = p;
    if x > (a + 1.0) / (a + b + 2.0) {
        1.0 - beta_inc_cf(b, a, y, x)
    } else {
        beta_inc_cf(a, b, x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        a == b || ((a - b).abs() <= rel * b.abs().max(1e-300))
    }

    #[test]
    fn normal_matches_scipy() {
        // special.ndtr(x), special.ndtri(p): analyze/reference/special.py, SciPy 1.17.1
        for (x, cdf) in [
            (0.0, 0.5),
            (1.959963984540054, 0.975),
            (-3.0, 0.0013498980316300933),
            (-8.0, 6.22096057427174e-16),
        ] {
            assert!(
                close(normal_cdf(x), cdf, 1e-13),
                "cdf({x}) = {}",
                normal_cdf(x)
            );
            assert!(close(normal_sf(-x), cdf, 1e-13));
        }
        for (p, z) in [
            (0.975, 1.959963984540054),
            (0.5, 0.0),
            (0.025, -1.9599639845400545),
            (1e-10, -6.361340902404056),
            (0.3, -0.5244005127080409),
            (0.999, 3.090232306167813),
            (1e-300, -37.0470962993612),
        ] {
            let got = normal_quantile(p);
            assert!(close(got, z, 1e-14), "ppf({p}) = {got}");
        }
        assert!(normal_quantile(-0.1).is_nan());
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn beta_inc_matches_scipy() {
        // special.betainc(a, b, x): analyze/reference/special.py, SciPy 1.17.1
        let cases = [
            (2.0, 3.0, 0.4, 0.5247999999999999),
            (0.5, 0.5, 0.2, 0.2951672353008665),
            (5.0, 1.0, 0.9, 0.5904900000000001),
            (100.0, 200.0, 0.3, 0.10884306564490986),
            (1e6, 1e6, 0.5005, 0.9213504224190758),
            (1.0, 1e9, 1e-9, 0.6321205590124974),
            (10.0, 10.0, 0.99, 0.9999999999999991),
            (3e8, 7e8, 0.29998, 0.08377185732235731),
            (0.5, 20.5, 0.01, 0.4765415315484656),
        ];
        for (a, b, x, want) in cases {
            let got = beta_inc(a, b, x);
            assert!(
                close(got, want, 1e-11),
                "I_{x}({a},{b}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn beta_quantile_matches_scipy() {
        // special.betaincinv(a, b, p): analyze/reference/special.py, SciPy 1.17.1
        let cases = [
            (3.0, 8.0, 0.025, 0.06673951117773447),
            (1.0, 50.0, 0.975, 0.07112173646419764),
            (500.0, 1500.0, 0.5, 0.24991665330124854),
            (1e6, 2e6, 1e-6, 0.33204041715095545),
            (0.5, 0.5, 0.9, 0.9755282581475768),
        ];
        for (a, b, p, want) in cases {
            let got = beta_quantile(a, b, p);
            assert!(
                close(got, want, 1e-12),
                "Q({p}; {a},{b}) = {got}, want {want}"
            );
        }
        assert_eq!(beta_quantile(2.0, 3.0, 0.0), 0.0);
        assert_eq!(beta_quantile(2.0, 3.0, 1.0), 1.0);
    }

    #[test]
    fn binomial_pmf_is_normalised_and_matches_direct_sum() {
        let (n, p) = (40_u64, 0.3);
        let total: f64 = (0..=n)
            .map(|k| ln_binomial_pmf(k as f64, n as f64, p, 1.0 - p).exp())
            .sum();
        assert!(close(total, 1.0, 1e-13));
        let pmf = |k: u64| ln_binomial_pmf(k as f64, n as f64, p, 1.0 - p).exp();
        for k in 0..n {
            let cdf: f64 = (0..=k).map(pmf).sum();
            let sf: f64 = (k + 1..=n).map(pmf).sum();
            assert!(close(binomial_cdf(k, n, p), cdf, 1e-12), "k={k}");
            assert!(close(binomial_sf_incl(k + 1, n, p), sf, 1e-12), "k={k}");
        }
    }
}
