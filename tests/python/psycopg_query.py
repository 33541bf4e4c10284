"""Runs one query with bound parameters through psycopg (3) and prints the
rows as JSON: python psycopg_query.py CONNINFO SQL PARAMS_JSON."""

import json
import sys

import psycopg


def main() -> None:
    conninfo, sql, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [list(row) for row in cursor.fetchall()]
    json.dump(rows, sys.stdout, default=str)


if __name__ == "__main__":
    main()
