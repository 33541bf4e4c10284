"""DuckDB's side of benches/sql_frontends.rs: the same L1 query over the
same Parquet parts, in one warm connection, timed inside this process.

Usage: python sql_frontends_duckdb.py PARQUET_GLOB
Reads one line per run from stdin; answers each with one JSON line:
{"ms": elapsed, "rows": [[cohort, requests, error_rate, p99_ns], ...]}.
"""

import json
import sys
import time

import duckdb

QUERY = """
SELECT cohort, count(*) AS requests,
       avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate,
       approx_quantile(duration_ns, 0.99) AS p99_ns
FROM read_parquet('{glob}')
WHERE kind = 'server' GROUP BY cohort ORDER BY cohort
"""


def main():
    query = QUERY.format(glob=sys.argv[1])
    conn = duckdb.connect()
    print(json.dumps({"threads": conn.execute("SELECT current_setting('threads')").fetchone()[0],
                      "version": duckdb.__version__}), flush=True)
    for _ in sys.stdin:
        started = time.perf_counter()
        rows = conn.execute(query).fetchall()
        elapsed = (time.perf_counter() - started) * 1e3
        print(json.dumps({"ms": elapsed, "rows": [[r[0], r[1], float(r[2]), float(r[3])] for r in rows]}),
              flush=True)


if __name__ == "__main__":
    main()
