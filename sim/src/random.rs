//! Draws from the distributions the generator needs, from a seeded
//! generator so that a scenario always produces the same telemetry.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// A seeded source of randomness.
pub(crate) struct Random {
    rng: StdRng,
}

impl Random {
    pub(crate) fn new(seed: u64) -> Random {
        Random {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform integer in `[0, n)`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// 16 random bytes.
    pub(crate) fn bytes16(&mut self) -> [u8; 16] {
        self.rng.random()
    }

    /// A standard normal draw (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A log-normal draw with the given median and log-space spread.
    pub(crate) fn lognormal(&mut self, median: f64, spread: f64) -> f64 {
        median * (spread * self.normal()).exp()
    }

    /// A Poisson draw with mean `lambda` (Knuth for small means, a normal
    /// approximation for large ones).
    pub(crate) fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 50.0 {
            return (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut product = self.unit();
        while product > limit {
            k += 1;
            product *= self.unit();
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_have_the_right_centre() {
        let (mut a, mut b) = (Random::new(7), Random::new(7));
        assert_eq!(a.bytes16(), b.bytes16());
        let mut r = Random::new(1);
        let mut draws: Vec<f64> = (0..20_001).map(|_| r.lognormal(50.0, 0.4)).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[10_000];
        assert!((median - 50.0).abs() < 2.0, "{median}");
        let mean: f64 = (0..20_000).map(|_| r.poisson(3.5) as f64).sum::<f64>() / 20_000.0;
        assert!((mean - 3.5).abs() < 0.1, "{mean}");
        let mean: f64 = (0..20_000).map(|_| r.poisson(400.0) as f64).sum::<f64>() / 20_000.0;
        assert!((mean - 400.0).abs() < 2.0, "{mean}");
    }
}
