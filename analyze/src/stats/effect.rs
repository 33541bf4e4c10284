//! Effect sizes with confidence intervals, and comparing them with a floor.
//!
//! A large enough sample makes any change significant; the judge should roll
//! back only for a change that *matters*. Each test therefore also reports
//! its effect — a shift, a difference or a ratio — as an [`Effect`] with a
//! confidence [`Interval`], and [`Effect::against_floor`] says whether the
//! whole interval lies beyond the smallest change worth acting on, inside it,
//! or straddles it.

use crate::error::{Error, Result};
use crate::stats::direction::{Direction, Movement};
use crate::stats::special::normal_quantile;

/// A confidence level in (0, 1), validated once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence(f64);

impl Confidence {
    /// 95 %.
    pub const NINETY_FIVE: Confidence = Confidence(0.95);
    /// 90 % (the two-sided level whose one end is a one-sided 95 % bound).
    pub const NINETY: Confidence = Confidence(0.90);
    /// 99 %.
    pub const NINETY_NINE: Confidence = Confidence(0.99);

    /// A level strictly between 0 and 1.
    pub fn new(level: f64) -> Result<Confidence> {
        if level > 0.0 && level < 1.0 {
            Ok(Confidence(level))
        } else {
            Err(Error::InvalidConfidence { level })
        }
    }

    /// The level, e.g. 0.95.
    pub fn level(self) -> f64 {
        self.0
    }

    /// 1 − level: the total error rate of a two-sided interval.
    pub fn alpha(self) -> f64 {
        1.0 - self.0
    }

    /// The two-sided standard-normal critical value z₁₋α/₂ (1.96 at 95 %).
    pub fn z(self) -> f64 {
        normal_quantile(1.0 - self.alpha() / 2.0)
    }
}

impl Default for Confidence {
    fn default() -> Self {
        Confidence::NINETY_FIVE
    }
}

/// A closed interval `[low, high]`; either end may be infinite (a ratio whose
/// baseline saw no events has `high = ∞`). Never NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether `value` lies in the interval.
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }

    /// The interval with both ends mapped through an increasing function.
    pub fn map(self, f: impl Fn(f64) -> f64) -> Interval {
        Interval {
            low: f(self.low),
            high: f(self.high),
        }
    }
}

/// How an effect compares canary with baseline, which fixes its null value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// canary − baseline (or a relative difference such as shift / median);
    /// no change is 0.
    Difference,
    /// canary / baseline; no change is 1.
    Ratio,
}

/// An effect estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// The point estimate (may be ±∞ for a ratio over a zero baseline, never
    /// NaN).
    pub estimate: f64,
    /// The confidence interval around it.
    pub interval: Interval,
    /// Difference or ratio.
    pub scale: Scale,
}

/// Where an effect's interval lies relative to a floor (the smallest change
/// worth acting on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloorCheck {
    /// The whole interval is beyond the floor on the bad side: a material
    /// regression, with the stated confidence.
    Exceeds,
    /// The whole interval is on the good side of the floor: whatever changed
    /// is too small to matter (or is an improvement).
    Within,
    /// The interval straddles the floor: not enough data to tell.
    Inconclusive,
}

impl Effect {
    /// The value of "no change" on this scale: 0 or 1.
    pub fn null(&self) -> f64 {
        match self.scale {
            Scale::Difference => 0.0,
            Scale::Ratio => 1.0,
        }
    }

    /// Which way the point estimate moved.
    pub fn movement(&self) -> Movement {
        Movement::of(self.estimate, self.null())
    }

    /// Whether the interval excludes "no change".
    pub fn excludes_null(&self) -> bool {
        !self.interval.contains(self.null())
    }

    /// The worse-side thresholds for a floor: (upper, lower) in this scale.
    /// For a difference, ±floor; for a ratio, `floor` is a relative change
    /// (0.05 = 5 %) and the thresholds are 1 + floor and 1 − floor.
    fn thresholds(&self, floor: f64) -> (f64, f64) {
        let floor = floor.abs();
        match self.scale {
            Scale::Difference => (floor, -floor),
            Scale::Ratio => (1.0 + floor, (1.0 - floor).max(0.0)),
        }
    }

    /// Compares the whole interval with a floor for the given direction.
    ///
    /// `floor` is a magnitude: for a [`Scale::Difference`] in the effect's own
    /// units (0.001 for 0.1 percentage points, 0.05 for a 5 % relative shift),
    /// for a [`Scale::Ratio`] a relative change (0.05 → ratios 1.05 and 0.95).
    /// A value exactly on the floor counts as within it.
    pub fn against_floor(&self, floor: f64, direction: Direction) -> FloorCheck {
        let (up, down) = self.thresholds(floor);
        let Interval { low, high } = self.interval;
        let (exceeds, within) = match direction {
            Direction::HigherIsWorse => (low > up, high <= up),
            Direction::LowerIsWorse => (high < down, low >= down),
            Direction::Either => (low > up || high < down, low >= down && high <= up),
        };
        if exceeds {
            FloorCheck::Exceeds
        } else if within {
            FloorCheck::Within
        } else {
            FloorCheck::Inconclusive
        }
    }

    /// Whether the point estimate alone is beyond the floor on the bad side.
    pub fn estimate_exceeds(&self, floor: f64, direction: Direction) -> bool {
        let (up, down) = self.thresholds(floor);
        match direction {
            Direction::HigherIsWorse => self.estimate > up,
            Direction::LowerIsWorse => self.estimate < down,
            Direction::Either => self.estimate > up || self.estimate < down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(estimate: f64, low: f64, high: f64) -> Effect {
        Effect {
            estimate,
            interval: Interval { low, high },
            scale: Scale::Difference,
        }
    }

    #[test]
    fn confidence_is_validated() {
        assert!(Confidence::new(0.0).is_err());
        assert!(Confidence::new(1.0).is_err());
        assert!(Confidence::new(f64::NAN).is_err());
        let c = Confidence::new(0.95).unwrap();
        assert!((c.z() - 1.959963984540054).abs() < 1e-12);
        assert!((c.alpha() - 0.05).abs() < 1e-15);
    }

    #[test]
    fn floors_by_direction() {
        use Direction::*;
        use FloorCheck::*;
        // Significant (interval excludes 0) but below a 5 % floor.
        let small = diff(0.02, 0.01, 0.03);
        assert!(small.excludes_null());
        assert_eq!(small.against_floor(0.05, HigherIsWorse), Within);
        assert!(!small.estimate_exceeds(0.05, HigherIsWorse));
        let big = diff(0.2, 0.1, 0.3);
        assert_eq!(big.against_floor(0.05, HigherIsWorse), Exceeds);
        assert_eq!(big.against_floor(0.05, LowerIsWorse), Within);
        assert_eq!(big.against_floor(0.05, Either), Exceeds);
        let wide = diff(0.04, -0.02, 0.1);
        assert_eq!(wide.against_floor(0.05, HigherIsWorse), Inconclusive);
        assert_eq!(wide.against_floor(0.05, LowerIsWorse), Within);
        let down = diff(-0.2, -0.3, -0.1);
        assert_eq!(down.against_floor(0.05, LowerIsWorse), Exceeds);
        assert_eq!(down.against_floor(0.05, Either), Exceeds);
        assert_eq!(down.movement(), Movement::Lower);
    }

    #[test]
    fn ratio_floors_are_relative() {
        let r = Effect {
            estimate: 3.0,
            interval: Interval {
                low: 1.2,
                high: f64::INFINITY,
            },
            scale: Scale::Ratio,
        };
        assert_eq!(
            r.against_floor(0.1, Direction::HigherIsWorse),
            FloorCheck::Exceeds
        );
        assert_eq!(
            r.against_floor(0.5, Direction::HigherIsWorse),
            FloorCheck::Inconclusive
        );
        assert_eq!(r.movement(), Movement::Higher);
        let lower = Effect {
            estimate: 0.5,
            interval: Interval {
                low: 0.4,
                high: 0.6,
            },
            scale: Scale::Ratio,
        };
        assert_eq!(
            lower.against_floor(0.1, Direction::LowerIsWorse),
            FloorCheck::Exceeds
        );
        assert_eq!(
            lower.against_floor(0.1, Direction::HigherIsWorse),
            FloorCheck::Within
        );
    }
}
