//! Which way is worse, which alternative a test takes, and which way the
//! canary moved.
//!
//! Every comparison in [`crate::stats`] is *canary versus baseline*. A check is
//! configured with a [`Direction`] ("higher latency is worse"); that picks the
//! test's [`Alternative`], and every result says how the canary
//! [`Movement`]-ed, so the judge can report "high" or "low".

/// What a check considers a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// A canary value above the baseline is a regression (latency, errors).
    #[default]
    HigherIsWorse,
    /// A canary value below the baseline is a regression (throughput, cache
    /// hit ratio).
    LowerIsWorse,
    /// Any change is a regression.
    Either,
}

impl Direction {
    /// The alternative hypothesis a test should take for this direction: a
    /// one-sided test when only one way is bad, which has more power for the
    /// same false-alarm rate.
    pub fn alternative(self) -> Alternative {
        match self {
            Direction::HigherIsWorse => Alternative::Greater,
            Direction::LowerIsWorse => Alternative::Less,
            Direction::Either => Alternative::TwoSided,
        }
    }

    /// Whether a canary that moved this way regressed.
    pub fn is_worse(self, movement: Movement) -> bool {
        matches!(
            (self, movement),
            (Direction::HigherIsWorse, Movement::Higher)
                | (Direction::LowerIsWorse, Movement::Lower)
                | (Direction::Either, Movement::Higher | Movement::Lower)
        )
    }
}

/// The alternative hypothesis of a test, always stated for the canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Alternative {
    /// The canary differs from the baseline, either way.
    #[default]
    TwoSided,
    /// The canary is stochastically greater (SciPy's `alternative="greater"`
    /// with the canary as the first sample).
    Greater,
    /// The canary is stochastically less.
    Less,
}

/// Which way the canary's point estimate lies from the baseline's.
///
/// This is the *direction of the estimate*, not a verdict: pair it with the
/// p-value or the interval before calling it a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Movement {
    /// The canary is above the baseline.
    Higher,
    /// The canary is below the baseline.
    Lower,
    /// No difference at all (equal estimates, or nothing to compare).
    Unchanged,
}

impl Movement {
    /// The movement of `estimate` relative to `null` (0 for a difference, 1
    /// for a ratio). NaN gives `Unchanged`.
    pub fn of(estimate: f64, null: f64) -> Movement {
        if estimate > null {
            Movement::Higher
        } else if estimate < null {
            Movement::Lower
        } else {
            Movement::Unchanged
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_pick_alternatives_and_judge_movements() {
        assert_eq!(Direction::HigherIsWorse.alternative(), Alternative::Greater);
        assert_eq!(Direction::LowerIsWorse.alternative(), Alternative::Less);
        assert_eq!(Direction::Either.alternative(), Alternative::TwoSided);
        assert!(Direction::HigherIsWorse.is_worse(Movement::Higher));
        assert!(!Direction::HigherIsWorse.is_worse(Movement::Lower));
        assert!(Direction::LowerIsWorse.is_worse(Movement::Lower));
        assert!(Direction::Either.is_worse(Movement::Lower));
        assert!(!Direction::Either.is_worse(Movement::Unchanged));
        assert_eq!(Movement::of(1.2, 1.0), Movement::Higher);
        assert_eq!(Movement::of(-0.1, 0.0), Movement::Lower);
        assert_eq!(Movement::of(f64::NAN, 0.0), Movement::Unchanged);
    }
}
