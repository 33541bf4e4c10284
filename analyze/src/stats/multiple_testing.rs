//! Correcting p-values for the number of checks in a rollout.
//!
//! A rollout runs a dozen checks every interval; at α = 0.05 each, a healthy
//! canary would fail one of them about half the time. The judge therefore
//! compares *adjusted* p-values with α:
//!
//! - [`holm`] (Holm–Bonferroni, step-down) controls the family-wise error
//!   rate — the chance of *any* false alarm — under any dependence between
//!   the checks. Use it for decisions that roll back.
//! - [`benjamini_hochberg`] (step-up) controls the false discovery rate —
//!   the expected share of false alarms among the flagged checks — under
//!   independence or positive dependence. Less conservative; suited to
//!   flagging, say, which log templates grew.
//! - [`bonferroni`] for completeness.
//!
//! Each returns the adjusted p-values in the input order (statsmodels'
//! `multipletests(p, method="holm" | "fdr_bh" | "bonferroni")[1]`, SciPy's
//! `false_discovery_control(p, method="bh")`). A NaN p-value is treated as 1
//! (a check that could not be computed must not look significant) and still
//! counts towards the number of tests.

/// p-values with NaN replaced by 1 and everything clamped into [0, 1].
fn sanitized(p_values: &[f64]) -> Vec<f64> {
    p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect()
}

/// Indices that sort `p` ascending (stable).
fn ascending(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    order
}

/// Bonferroni: `min(1, m·p)`.
pub fn bonferroni(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len() as f64;
    sanitized(p_values)
        .into_iter()
        .map(|p| (p * m).min(1.0))
        .collect()
}

/// Holm–Bonferroni step-down adjusted p-values: for the i-th smallest
/// (0-based), `max_{j ≤ i} min(1, (m − j)·p₍ⱼ₎)`.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let p = sanitized(p_values);
    let m = p.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in ascending(&p).iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// Benjamini–Hochberg step-up adjusted p-values ("q-values"): for the i-th
/// smallest (1-based), `min_{j ≥ i} min(1, m·p₍ⱼ₎ / j)`.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let p = sanitized(p_values);
    let m = p.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in ascending(&p).iter().enumerate().rev() {
        running = running.min(m as f64 * p[i] / (rank + 1) as f64);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    // analyze/reference/multiple_testing.py (statsmodels 0.15.0, SciPy 1.17.1)
    const P: [f64; 8] = [0.01, 0.04, 0.03, 0.005, 0.5, 0.04, 0.2, 0.0001];

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.max(1e-300),
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn match_statsmodels_and_scipy() {
        // multipletests(P, method="holm")[1]
        assert_close(&holm(&P), &HOLM);
        // multipletests(P, method="fdr_bh")[1] == false_discovery_control(P, method="bh")
        assert_close(&benjamini_hochberg(&P), &BH);
        // multipletests(P, method="bonferroni")[1]
        assert_close(&bonferroni(&P), &BONFERRONI);
    }

    #[test]
    fn edge_cases() {
        assert!(holm(&[]).is_empty());
        assert!(benjamini_hochberg(&[]).is_empty());
        assert_eq!(holm(&[0.03]), vec![0.03]);
        assert_eq!(benjamini_hochberg(&[0.03]), vec![0.03]);
        // NaN counts as a test and as p = 1.
        assert_eq!(holm(&[0.01, f64::NAN]), vec![0.02, 1.0]);
        assert_eq!(benjamini_hochberg(&[0.01, f64::NAN]), vec![0.02, 1.0]);
        // Ties keep their order and get equal adjusted values.
        assert_eq!(holm(&[0.02, 0.02]), vec![0.04, 0.04]);
        // Adjusted p-values never drop below the raw ones.
        for (a, p) in holm(&P).iter().zip(P) {
            assert!(*a >= p);
        }
    }

    const HOLM: [f64; 8] = [0.06, 0.16, 0.15, 0.035, 0.5, 0.16, 0.4, 0.0008];
    const BH: [f64; 8] = [
        0.02666666666666667,
        0.05333333333333334,
        0.05333333333333334,
        0.02,
        0.5,
        0.05333333333333334,
        0.2285714285714286,
        0.0008,
    ];
    const BONFERRONI: [f64; 8] = [0.08, 0.32, 0.24, 0.04, 1.0, 0.32, 1.0, 0.0008];
}
