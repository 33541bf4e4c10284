"""Reference values for analyze/src/stats/multiple_testing.rs.

Run: /work/venv-stats/bin/python analyze/reference/multiple_testing.py
"""
import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

P = [0.01, 0.04, 0.03, 0.005, 0.5, 0.04, 0.2, 0.0001]
for name, method in [("HOLM", "holm"), ("BH", "fdr_bh"), ("BONFERRONI", "bonferroni")]:
    adj = multipletests(P, method=method)[1]
    print(f"const {name}: [f64; 8] = [{', '.join(repr(float(v)) for v in adj)}];")
bh = stats.false_discovery_control(P, method="bh")
assert np.allclose(bh, multipletests(P, method="fdr_bh")[1], rtol=1e-15)
print("false_discovery_control(P, method='bh') =", [float(v) for v in bh])
