"""Drives grayscope's Arrow Flight SQL server with clients nobody here wrote:
the ADBC Flight SQL driver (adbc-driver-flightsql) and pyarrow.flight.

Reads one JSON request from stdin:
    {"uri": "grpc://127.0.0.1:PORT", "db_kwargs": {...}, "steps": [...]}
runs each step on one ADBC connection, and prints one JSON list with a
result per step: {"ok": ...} or {"error": {"type", "status", "message"}}.
A step that fails does not stop the next. Steps:
    {"query": SQL, "params": [...] | null}   -> rows as a list of dicts
    {"batches": SQL}                         -> {"batches": n, "rows": n}
    {"get_objects": {"depth": "all", "catalog", "db_schema", "table_name",
                     "table_types": [...]}}  -> [[catalog, schema, table, type, [columns]]]
    {"table_schema": TABLE, "catalog": C, "db_schema": S} -> [[name, type]]
    {"table_types": true}                    -> [type, ...]
    {"basic_handshake": {"user": U, "password": P}}  (pyarrow.flight)
                                             -> the authorization header returned
"""

import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.flight as flight


def error(e):
    status = getattr(e, "status_code", None)
    return {
        "type": type(e).__name__,
        "status": status.name if status is not None else None,
        "message": str(e),
    }


def plain(value):
    """JSON-friendly values: timestamps and decimals as strings."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return str(value)


def run(conn, request, step):
    if "query" in step:
        with conn.cursor() as cur:
            params = step.get("params")
            if params is None:
                cur.execute(step["query"])
            else:
                cur.execute(step["query"], params)
            return plain(cur.fetch_arrow_table().to_pylist())
    if "batches" in step:
        with conn.cursor() as cur:
            cur.execute(step["batches"])
            reader = cur.fetch_record_batch()
            batches = rows = 0
            for batch in reader:
                batches += 1
                rows += batch.num_rows
            return {"batches": batches, "rows": rows}
    if "get_objects" in step:
        options = step["get_objects"]
        objects = conn.adbc_get_objects(
            depth=options.get("depth", "all"),
            catalog_filter=options.get("catalog"),
            db_schema_filter=options.get("db_schema"),
            table_name_filter=options.get("table_name"),
            table_types_filter=options.get("table_types"),
        ).read_all().to_pylist()
        out = []
        for catalog in objects:
            for schema in catalog["catalog_db_schemas"] or []:
                for table in schema["db_schema_tables"] or []:
                    columns = [c["column_name"] for c in table["table_columns"] or []]
                    out.append([
                        catalog["catalog_name"],
                        schema["db_schema_name"],
                        table["table_name"],
                        table["table_type"],
                        columns,
                    ])
        return out
    if "table_schema" in step:
        schema = conn.adbc_get_table_schema(
            step["table_schema"],
            catalog_filter=step.get("catalog"),
            db_schema_filter=step.get("db_schema"),
        )
        return [[field.name, str(field.type)] for field in schema]
    if "table_types" in step:
        return conn.adbc_get_table_types()
    if "basic_handshake" in step:
        options = step["basic_handshake"]
        client = flight.FlightClient(request["uri"])
        try:
            header = client.authenticate_basic_token(
                options["user"].encode(), options["password"].encode()
            )
            return [plain(h.decode() if isinstance(h, bytes) else h) for h in header]
        finally:
            client.close()
    raise ValueError(f"unknown step {step!r}")


def main():
    request = json.load(sys.stdin)
    results = []
    try:
        conn = flight_sql.connect(request["uri"], db_kwargs=request.get("db_kwargs", {}))
    except Exception as e:  # noqa: BLE001 - reported to the test, which asserts on it
        print(json.dumps([{"error": error(e)} for _ in request["steps"]]))
        return
    with conn:
        for step in request["steps"]:
            try:
                results.append({"ok": run(conn, request, step)})
            except Exception as e:  # noqa: BLE001 - reported to the test, which asserts on it
                results.append({"error": error(e)})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
