//! Retry back-off: exponential, capped, with jitter so that many
//! grayscope instances (or endpoints) do not retry in lock-step.

use std::time::Duration;

use rand::Rng;

/// The wait before retry `retry` (1 for the first retry): `initial ×
/// 2^(retry-1)`, capped at `max`, then drawn uniformly from its upper half
/// ("equal jitter": never less than half the exponential step, so a
/// struggling endpoint still gets room).
pub fn backoff(initial: Duration, max: Duration, retry: u32, rng: &mut impl Rng) -> Duration {
    let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
    let step = initial.saturating_mul(factor).min(max);
    let half = step / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(rng.random_range(0..=jitter_nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut rng = rand::rng();
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for retry in 1..40 {
            let step = (initial * 2u32.pow((retry - 1).min(20))).min(max);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..50 {
                let wait = backoff(initial, max, retry, &mut rng);
                assert!(wait >= step / 2 && wait <= step, "retry {retry}: {wait:?}");
                seen.insert(wait);
            }
            assert!(seen.len() > 1, "retry {retry}: no jitter");
        }
    }
}
