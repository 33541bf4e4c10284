//! Exact sample quantiles: R's type 7, NumPy's default `method="linear"`.
//!
//! For a sample of n sorted values x₀ ≤ … ≤ xₙ₋₁ the q-quantile is
//! `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])` with h = (n − 1)·q — what
//! `numpy.quantile`, `pandas.Series.quantile`, R's `quantile()` and
//! DataFusion's `approx_percentile_cont` (on small inputs) agree on. Quantiles
//! of OTLP histograms, which have no individual values, are in
//! [`histograms`](super::histograms).

/// The type-7 quantile of `n` sorted values read through `at(index)`.
/// `n > 0`, `q` ∈ [0, 1].
pub(crate) fn r7_by_index(n: u64, q: f64, at: impl Fn(u64) -> f64) -> f64 {
    let h = (n - 1) as f64 * q;
    let lo = (h.floor() as u64).min(n - 1);
    let t = h - lo as f64;
    let a = at(lo);
    if t <= 0.0 || lo + 1 >= n {
        return a;
    }
    lerp(a, at(lo + 1), t)
}

/// NumPy's `_lerp`: exact at both ends and monotone in `t`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// The type-7 quantile of an ascending slice. `None` when the slice is empty
/// or `q` is outside [0, 1]. The slice must be sorted and NaN-free (not
/// checked).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    Some(r7_by_index(sorted.len() as u64, q, |i| sorted[i as usize]))
}

/// Type-7 quantiles of an unsorted slice, without a full sort: each level
/// costs one `select_nth_unstable` on the part of the slice not yet
/// partitioned (expected O(n) in total for a handful of levels). The slice is
/// reordered. NaNs are moved to the end and ignored. Returns `None` for a
/// level outside [0, 1] and when the slice has no non-NaN value.
pub fn quantiles_unsorted(values: &mut [f64], levels: &[f64]) -> Vec<Option<f64>> {
    // Partition NaNs out so every comparison below is a total order on the rest.
    let mut n = 0;
    for i in 0..values.len() {
        if !values[i].is_nan() {
            values.swap(i, n);
            n += 1;
        }
    }
    let values = &mut values[..n];
    levels
        .iter()
        .map(|&q| {
            if values.is_empty() || !(0.0..=1.0).contains(&q) {
                return None;
            }
            let len = values.len() as u64;
            let h = (len - 1) as f64 * q;
            let lo = (h.floor() as usize).min(values.len() - 1);
            let (_, &mut a, upper) = values.select_nth_unstable_by(lo, f64::total_cmp);
            let t = h - lo as f64;
            if t <= 0.0 || upper.is_empty() {
                return Some(a);
            }
            // The next order statistic is the minimum of the upper part.
            let b = upper.iter().copied().fold(f64::INFINITY, f64::min);
            Some(lerp(a, b, t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // numpy.quantile(x, [0.5, 0.9, 0.99]) with
    // x = [12.1, 3.5, 7.7, 100.0, 45.2, 3.5, 0.2, 19.9, 8.8, 61.0, 5.5]
    // NumPy 2.4.6 → [8.8, 61.0, 96.10000000000001], q=0.25 → 4.5, q=0.75 → 32.55
    const X: [f64; 11] = [12.1, 3.5, 7.7, 100.0, 45.2, 3.5, 0.2, 19.9, 8.8, 61.0, 5.5];

    #[test]
    fn sorted_and_unsorted_match_numpy() {
        let want = [
            (0.5, 8.8),
            (0.9, 61.0),
            (0.99, 96.10000000000001),
            (0.25, 4.5),
            (0.75, 32.55),
        ];
        let mut sorted = X.to_vec();
        sorted.sort_by(f64::total_cmp);
        for (q, w) in want {
            let got = quantile_sorted(&sorted, q).unwrap();
            assert!((got - w).abs() <= 1e-12 * w.abs(), "q={q}: {got} vs {w}");
        }
        let mut unsorted = X.to_vec();
        let levels: Vec<f64> = want.iter().map(|w| w.0).collect();
        let got = quantiles_unsorted(&mut unsorted, &levels);
        for ((_, w), g) in want.iter().zip(got) {
            assert!((g.unwrap() - w).abs() <= 1e-12 * w.abs());
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[1.0], 0.5), Some(1.0));
        assert_eq!(quantile_sorted(&[1.0, 2.0], -0.1), None);
        assert_eq!(quantile_sorted(&[1.0, 2.0], 1.0), Some(2.0));
        let mut v = [f64::NAN, 3.0, 1.0, f64::NAN, 2.0];
        assert_eq!(
            quantiles_unsorted(&mut v, &[0.5, 1.0, 2.0]),
            vec![Some(2.0), Some(3.0), None]
        );
        let mut nans = [f64::NAN];
        assert_eq!(quantiles_unsorted(&mut nans, &[0.5]), vec![None]);
    }
}
