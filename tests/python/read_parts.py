"""Reads grayscope's Parquet parts with tools nobody here wrote.

Usage: read_parts.py DATA_DIR

For each table directory (spans, logs, metrics) under DATA_DIR, reads every
part with pyarrow and with DuckDB, and prints one JSON document:
{"spans": {"pyarrow_rows": .., "duckdb_rows": .., "columns": {name: type}, "trace_ids": [...]}, ...}
"""

import glob
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq


def main(data_dir):
    out = {}
    for table in ("spans", "logs", "metrics"):
        files = sorted(glob.glob(os.path.join(data_dir, table, "date=*", "hour=*", "part-*.parquet")))
        if not files:
            continue
        arrow_table = pq.ParquetDataset(files).read()
        pattern = os.path.join(data_dir, table, "date=*", "hour=*", "part-*.parquet")
        con = duckdb.connect()
        duck_rows = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchone()[0]
        entry = {
            "files": len(files),
            "pyarrow_rows": arrow_table.num_rows,
            "duckdb_rows": duck_rows,
            "columns": {f.name: str(f.type) for f in arrow_table.schema},
        }
        if table != "metrics":
            ids = con.execute(
                f"SELECT DISTINCT trace_id FROM read_parquet('{pattern}') WHERE trace_id IS NOT NULL ORDER BY 1"
            ).fetchall()
            entry["trace_ids"] = [row[0] for row in ids]
        if table == "spans":
            rows = con.execute(
                f"SELECT cohort, count(*) FROM read_parquet('{pattern}') GROUP BY cohort ORDER BY cohort"
            ).fetchall()
            entry["cohorts"] = {cohort: n for cohort, n in rows}
            attr = con.execute(
                f"SELECT attributes['http.route'] FROM read_parquet('{pattern}') WHERE name = 'GET /cart'"
            ).fetchall()
            entry["cart_routes"] = [row[0] for row in attr]
        out[table] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
