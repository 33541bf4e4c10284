//! Statistics for comparing a canary cohort with its baseline.
//!
//! Everything here is a pure function of its inputs: no I/O, no global state,
//! no randomness that could change an answer (the one randomized algorithm,
//! the pairwise-difference selection, uses a fixed seed and is exact anyway).
//! Every comparison is stated *canary versus baseline*.
//!
//! | question | function | result |
//! |---|---|---|
//! | did the latency distribution move? | [`mann_whitney()`] | U, z, p, probability of superiority |
//! | by how much (in ms, in %)? | [`hodges_lehmann()`] | median pairwise shift and its distribution-free CI |
//! | did the error proportion rise? | [`proportions::compare_proportions`] | Fisher exact p, Newcombe CI on the difference |
//! | did an event rate per exposure rise? | [`rates::compare_rates`] | exact conditional binomial p, CI on the rate ratio |
//! | many checks at once | [`multiple_testing`] | Holm / Benjamini–Hochberg adjusted p-values |
//! | is it big enough to matter? | [`Effect::against_floor`] | exceeds / within / inconclusive |
//! | p50, p90, p99 | [`quantiles`], [`Sample::quantile`], [`histograms`] | type-7 quantiles; OTLP histogram quantiles |
//! | latencies from OTLP histograms | [`histograms`] `comparable_samples` | weighted samples for the rank tests |
//! | a million latencies in a window | [`Sample::log_quantized`] | values on a 0.1 % log grid: sub-ms tests |
//!
//! Conventions shared by all of them:
//! - A check's [`Direction`] (higher is worse, lower is worse, either) picks
//!   the test's [`Alternative`]; every result reports the canary's
//!   [`Movement`].
//! - Degenerate data (an empty cohort, no events anywhere) gives `None` or a
//!   result with p = 1 — never NaN, never a division by zero, never false
//!   significance. Invalid arguments (a count above its total) are
//!   [`crate::Error`]s.
//! - p-values reproduce SciPy's to ~1e-12 on the reference cases in each
//!   module's tests; the script that produced every reference number is in
//!   `analyze/reference/`.

pub mod direction;
mod discrete;
pub mod effect;
pub mod histograms;
pub mod hodges_lehmann;
pub mod mann_whitney;
pub mod multiple_testing;
mod pairwise_differences;
pub mod proportions;
pub mod quantiles;
pub mod rates;
pub mod sample;
mod sort;
mod special;

pub use direction::{Alternative, Direction, Movement};
pub use effect::{Confidence, Effect, FloorCheck, Interval, Scale};
pub use hodges_lehmann::{ShiftEstimate, hodges_lehmann};
pub use mann_whitney::{MannWhitney, mann_whitney};
pub use proportions::{Proportion, ProportionComparison, compare_proportions};
pub use rates::{Rate, RateComparison, compare_rates};
pub use sample::Sample;
