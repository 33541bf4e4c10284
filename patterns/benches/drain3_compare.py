#!/usr/bin/env python3
"""Throughput of grayscope-patterns and of Python drain3 on the same input.

Run from anywhere, with a Python that has drain3 installed:

    python3 -m venv /work/venv-bench && /work/venv-bench/bin/pip install drain3
    /work/venv-bench/bin/python patterns/benches/drain3_compare.py

It (1) has the `mine_throughput` bench write its two inputs (the Loghub 2k
samples concatenated, and the generated 1M-line mixed stream) to a temporary
directory, (2) runs the criterion bench and reads its estimates, (3) feeds
drain3's `TemplateMiner` the same lines, one `add_log_message` call per line,
on one core, and (4) prints a Markdown table with both rates and the ratio.

drain3 runs twice: with its default configuration (no masking) and with
masking instructions for IPs, hex and numbers (closer to what grayscope does).
`DRAIN3_MAX_LINES` caps the lines drain3 sees per input (default 200000; 0 =
all). drain3 slows down as its clusters grow, so the cap favours drain3: the
ratio on the full 1M-line stream is higher than the one printed.
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CRATE = Path(__file__).resolve().parent.parent
REPO = CRATE.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def cargo_bench(env_extra, args=()):
    env = dict(os.environ, **env_extra)
    cmd = ["cargo", "bench", "-p", "grayscope-patterns", "--bench", "mine_throughput", "--", *args]
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=sys.stderr)


def criterion_rate(bench, lines):
    est = TARGET / "criterion" / "mine" / bench / "new" / "estimates.json"
    with open(est) as f:
        ns = json.load(f)["mean"]["point_estimate"]
    return lines / (ns / 1e9)


def drain3_rate(path, masking, max_lines):
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig
    from drain3.masking import MaskingInstruction

    logging.getLogger("drain3").setLevel(logging.WARNING)
    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    if masking:
        cfg.masking_instructions = [
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
            MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
        ]
    miner = TemplateMiner(config=cfg)
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    if max_lines:
        lines = lines[:max_lines]
    start, cpu = time.perf_counter(), time.thread_time()
    for line in lines:
        miner.add_log_message(line)
    secs, cpu_secs = time.perf_counter() - start, time.thread_time() - cpu
    return (len(lines) / secs, len(lines) / cpu_secs), len(lines), len(miner.drain.clusters)


def our_cpu_rates():
    """Rates per second of thread CPU time from the bench's stats mode."""
    env = dict(os.environ, GRAYSCOPE_BENCH_STATS="1")
    cmd = ["cargo", "bench", "-p", "grayscope-patterns", "--bench", "mine_throughput"]
    out = subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout
    rates = {}
    for line in out.splitlines():
        name, _, rest = line.partition(": ")
        if "lines/s of thread CPU time" in rest:
            rates[name] = float(rest.split(" lines/s wall, ")[1].split(" ")[0])
    return rates


def main():
    max_lines = int(os.environ.get("DRAIN3_MAX_LINES", "200000"))
    with tempfile.TemporaryDirectory() as tmp:
        cargo_bench({"GRAYSCOPE_BENCH_DUMP": tmp})
        inputs = {
            "loghub_concat": Path(tmp) / "loghub_concat.log",
            "mixed_1m": Path(tmp) / "mixed_1m.log",
        }
        counts = {k: sum(1 for _ in open(p, encoding="utf-8", errors="replace")) for k, p in inputs.items()}
        cargo_bench({}, ["--noplot"])
        ours_cpu = our_cpu_rates()
        ours = {
            "loghub_concat": criterion_rate("loghub_concat_cold", counts["loghub_concat"]),
            "loghub_concat (warm)": criterion_rate("loghub_concat_warm", counts["loghub_concat"]),
            "mixed_1m": criterion_rate("mixed_1m", counts["mixed_1m"]),
        }
        rows = []
        for name, path in inputs.items():
            d_plain, n, clusters = drain3_rate(path, False, max_lines)
            d_mask, _, clusters_m = drain3_rate(path, True, max_lines)
            rows.append((name, counts[name], ours[name], d_plain, d_mask, n, clusters, clusters_m))
    print("Wall clock (criterion for grayscope):")
    print()
    print("| input | lines | grayscope lines/s | drain3 lines fed | drain3 lines/s (default) | ratio | drain3 lines/s (masking) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, lines, us, dp, dm, n, _, _ in rows:
        print(f"| {name} | {lines} | {us:,.0f} | {n} | {dp[0]:,.0f} | {us / dp[0]:,.0f}× | {dm[0]:,.0f} | {us / dm[0]:,.0f}× |")
    print()
    print(f"grayscope, loghub_concat with a warmed miner: {ours['loghub_concat (warm)']:,.0f} lines/s")
    print()
    print("Per second of the mining thread's CPU time (robust to other load on the machine):")
    print()
    print("| input | grayscope lines/CPU-s | drain3 lines/CPU-s (default) | ratio | drain3 lines/CPU-s (masking) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    cold = {"loghub_concat": "loghub_concat_cold", "mixed_1m": "mixed_1m"}
    for name, lines, us, dp, dm, n, _, _ in rows:
        c = ours_cpu.get(cold[name], float("nan"))
        print(f"| {name} | {c:,.0f} | {dp[1]:,.0f} | {c / dp[1]:,.0f}× | {dm[1]:,.0f} | {c / dm[1]:,.0f}× |")
    w = ours_cpu.get("loghub_concat_warm", float("nan"))
    print(f"| loghub_concat, warm miner | {w:,.0f} | | {w / rows[0][3][1]:,.0f}× | | {w / rows[0][4][1]:,.0f}× |")
    for name, _, _, _, _, n, c, cm in rows:
        print(f"drain3 on {name}: {n} lines fed, {c} clusters (default), {cm} clusters (masking)")


if __name__ == "__main__":
    main()
