//! grayscope's judge: it compares every canary cohort with its baseline and
//! decides promote / hold / roll back (DESIGN §6).
//!
//! ```text
//! Rollouts::run ─► every interval, per canary: judge::assess
//!                    ├─ checks (L1 request rate, errors, latency; L2 templates,
//!                    │  rule hits, error logs; L3 kernel metrics), each SQL
//!                    │  through grayscope-queries, each with its test
//!                    ├─ Holm correction, outcomes, roll-up → Evaluation
//!                  ─► stage::Canary::apply → verdict, action, stage
//!                  ─► a row in `verdicts`, and a Change for the sinks
//! ```
//!
//! - [`rollouts`]: the rollouts, their persisted states, and the loop.
//! - [`judge`]: one evaluation: outcomes and roll-up, in one place.
//! - [`stage`]: the stage machine, with operators' commands.
//! - [`sql`]: windows and reading query answers.
//! - [`stats`]: the statistics the judge's checks are built on — pure
//!   functions, no I/O. Rank tests for distributions
//!   ([`stats::mann_whitney()`]) with a shift estimate and its confidence
//!   interval ([`stats::hodges_lehmann()`]); tests for proportions
//!   ([`stats::proportions`]) and event rates ([`stats::rates`]) that stay
//!   sensible on sparse and zero counts; multiple-testing correction
//!   ([`stats::multiple_testing`]); effect sizes and floors
//!   ([`stats::effect`]); sample quantiles ([`stats::quantiles`]) and OTLP
//!   histograms ([`stats::histograms`]). For windows of a million spans,
//!   build the samples with [`stats::Sample::log_quantized`] (0.1 % grid):
//!   the whole latency check then costs a few ms (`BENCHMARKS-stats.md`).
//!
//! ```
//! use grayscope_analyze::stats::{
//!     Alternative, Confidence, Direction, FloorCheck, Sample, hodges_lehmann, mann_whitney,
//! };
//!
//! let baseline = Sample::new((0..400).map(|i| 100.0 + f64::from(i % 40)).collect());
//! let canary = Sample::new((0..400).map(|i| 112.0 + f64::from(i % 40)).collect());
//!
//! let test = mann_whitney(&canary, &baseline, Direction::HigherIsWorse.alternative()).unwrap();
//! assert!(test.p_value < 1e-6);
//!
//! let shift = hodges_lehmann(&canary, &baseline, Confidence::NINETY_FIVE).unwrap();
//! assert_eq!(shift.estimate, 12.0);
//! // Relative to the baseline median (119.5 ms): ≈ +10 %, beyond a 5 % floor.
//! let relative = shift.relative_to(baseline.median().unwrap()).unwrap();
//! assert_eq!(relative.against_floor(0.05, Direction::HigherIsWorse), FloorCheck::Exceeds);
//! # let _ = Alternative::TwoSided;
//! ```

mod checks;
pub mod error;
pub mod judge;
pub mod rollouts;
mod slices;
pub mod sql;
pub mod stage;
pub mod stats;
pub mod verdict_rows;

pub use error::{Error, Result};
pub use slices::SliceCache;
