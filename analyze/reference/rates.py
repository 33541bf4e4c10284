"""Reference values for analyze/src/stats/rates.rs (SciPy, statsmodels).

Run: /work/venv-stats/bin/python analyze/reference/rates.py
Prints Rust tuples ready to paste into the tests.
"""
from scipy import stats
from statsmodels.stats.rates import confint_poisson_2indep

CASES = [
    (5, 1000.0, 0, 1000.0),
    (3, 12.5, 7, 40.0),
    (0, 10.0, 20, 100.0),
    (40, 100.0, 25, 100.0),
    (17, 2.0, 90, 30.0),
    (1500, 1e6, 1300, 1.1e6),
    (2, 1.0, 2, 1.0),
]
for k1, e1, k2, e2 in CASES:
    K = k1 + k2
    p0 = e1 / (e1 + e2)
    ps = [stats.binomtest(k1, K, p0, alternative=a).pvalue for a in ("two-sided", "greater", "less")]
    ci = stats.binomtest(k1, K).proportion_ci(0.95, method="exact")
    def to_ratio(pi):
        return float("inf") if pi >= 1 else pi / (1 - pi) * e2 / e1
    rl, rh = to_ratio(ci.low), to_ratio(ci.high)
    dl, dh = confint_poisson_2indep(k1, e1, k2, e2, method="mover", compare="diff", alpha=0.05)
    vals = [float(v) for v in ps + [rl, rh, dl, dh]]
    print(f"({k1}, {e1!r}, {k2}, {e2!r}, " + ", ".join("f64::INFINITY" if v == float("inf") else repr(v) for v in vals) + "),")
