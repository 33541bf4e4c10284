"""Reference values for analyze/src/stats/hodges_lehmann.rs.

R is not installable here, so this reproduces R's `wilcox.test(x, y,
conf.int = TRUE)` exact branch step by step, with SciPy's exact Mann-Whitney
distribution standing in for R's pwilcox/qwilcox:

    alpha <- 1 - conf.level
    diffs <- sort(outer(x, y, "-"))
    qu <- qwilcox(alpha/2, n.x, n.y); if (qu == 0) qu <- 1
    ql <- n.x*n.y - qu
    achieved.alpha <- 2*pwilcox(trunc(qu)-1, n.x, n.y)
    cint <- c(diffs[qu], diffs[ql + 1])
    ESTIMATE <- median(diffs)

Run: /work/venv-stats/bin/python analyze/reference/hodges_lehmann.py
"""
import numpy as np
from scipy.stats._mannwhitneyu import _MWU


def pwilcox(q, m, n):
    d = _MWU(m, n)
    return float(d.cdf(q)) if q >= 0 else 0.0


def qwilcox(p, m, n):
    q = 0
    while pwilcox(q, m, n) < p:
        q += 1
    return q


def r_wilcox_conf_int(x, y, conf_level=0.95):
    alpha = 1 - conf_level
    diffs = np.sort(np.subtract.outer(np.asarray(x), np.asarray(y)).ravel())
    m, n = len(x), len(y)
    qu = qwilcox(alpha / 2, m, n)
    if qu == 0:
        qu = 1
    ql = m * n - qu
    achieved = 1 - 2 * pwilcox(qu - 1, m, n)
    return np.median(diffs), diffs[qu - 1], diffs[ql], qu, achieved


HW_X = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
HW_Y = [1.15, 0.88, 0.90, 0.74, 1.21]
print("wilcox.test(HW_X, HW_Y, conf.int=TRUE) [exact] ->", r_wilcox_conf_int(HW_X, HW_Y))
print("wilcox.test(HW_X, HW_Y, conf.int=TRUE, conf.level=0.9) [exact] ->",
      r_wilcox_conf_int(HW_X, HW_Y, 0.9))
