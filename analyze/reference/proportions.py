"""Reference values for analyze/src/stats/proportions.rs (SciPy, statsmodels).

Run: /work/venv-stats/bin/python analyze/reference/proportions.py
Prints Rust tuples ready to paste into the tests.
"""
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, confint_proportions_2indep

TABLES = [
    (3, 10, 1, 10),
    (8, 15, 2, 17),
    (0, 40, 5, 60),
    (5, 200, 0, 2000),
    (12, 1000, 9, 1100),
    (1, 3, 2, 4),
    (150, 10000, 100, 10000),
    (1234, 100000, 1100, 100000),
    (7, 100, 7, 100),
    (102000, 10000000, 100000, 10000000),
]
print("// scipy.stats.fisher_exact([[k1, n1-k1], [k2, n2-k2]], alternative=...)")
for k1, n1, k2, n2 in TABLES:
    t = [[k1, n1 - k1], [k2, n2 - k2]]
    ps = [stats.fisher_exact(t, alternative=a).pvalue for a in ("two-sided", "greater", "less")]
    print(f"({k1}, {n1}, {k2}, {n2}, {ps[0]!r}, {ps[1]!r}, {ps[2]!r}),")

print("// proportion_confint(k1, n1, method='wilson'); confint_proportions_2indep(..., method='newcomb', compare='diff')")
for k1, n1, k2, n2 in TABLES:
    wl, wh = proportion_confint(k1, n1, alpha=0.05, method="wilson")
    dl, dh = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff", alpha=0.05)
    print(f"({k1}, {n1}, {k2}, {n2}, {float(wl)!r}, {float(wh)!r}, {float(dl)!r}, {float(dh)!r}),")
