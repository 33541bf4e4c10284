"""Reference values for analyze/src/stats/special.rs (SciPy).

Run: /work/venv-stats/bin/python analyze/reference/special.py
"""
from scipy import special

for x in [0.0, 1.959963984540054, -3.0, -8.0, -38.0]:
    print(f"special.ndtr({x!r}) = {special.ndtr(x)!r}")
for p in [0.975, 0.5, 0.025, 1e-10, 0.3, 0.999, 1e-300]:
    print(f"special.ndtri({p!r}) = {special.ndtri(p)!r}")
for a, b, x in [(2.0, 3.0, 0.4), (0.5, 0.5, 0.2), (5.0, 1.0, 0.9), (100.0, 200.0, 0.3),
                (1e6, 1e6, 0.5005), (1.0, 1e9, 1e-9), (10.0, 10.0, 0.99), (3e8, 7e8, 0.29998),
                (0.5, 20.5, 0.01)]:
    print(f"special.betainc({a!r}, {b!r}, {x!r}) = {special.betainc(a, b, x)!r}")
for a, b, p in [(3.0, 8.0, 0.025), (1.0, 50.0, 0.975), (500.0, 1500.0, 0.5), (1e6, 2e6, 1e-6),
                (0.5, 0.5, 0.9)]:
    print(f"special.betaincinv({a!r}, {b!r}, {p!r}) = {special.betaincinv(a, b, p)!r}")
