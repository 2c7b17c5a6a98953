"""GetTables(include_schema) over 2,000 tables, through the real Flight SQL server.

A SQLite database with 2,000 tables of 8 columns each (mixed types) is made in a temp folder and
registered as a source; the catalog's in-memory copy is loaded (as ``gateway serve`` does in the
background), then a raw ``pyarrow.flight`` client times GetFlightInfo + DoGet of CommandGetTables with
``include_schema = true`` (every table's Arrow schema with the ARROW:FLIGHT:SQL:* column metadata).

    .venv/bin/python bench/metadata_bench.py [--tables 2000] [--repeat 30]

Writes ``bench/results/metadata.json``; the goal is a median under 50 ms.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa
from pyarrow import flight

from bench.common import write_results
from flight_server import protocol as pb
from flight_server.server import GatewayFlightServer
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict

GOAL_MS = 50.0
COLUMNS = ("id INTEGER PRIMARY KEY", "name TEXT NOT NULL", "amount DECIMAL(12,2)", "ratio REAL",
           "created DATE", "updated TIMESTAMP", "active BOOLEAN", "payload BLOB")


def make_db(path: Path, tables: int) -> None:
    with sqlite3.connect(path) as db:
        for i in range(tables):
            db.execute(f"CREATE TABLE t{i:04d} ({', '.join(COLUMNS)})")


def get_tables(client: flight.FlightClient) -> pa.Table:
    descriptor = flight.FlightDescriptor.for_command(pb.pack(pb.CommandGetTables(include_schema=True)))
    info = client.get_flight_info(descriptor)
    return client.do_get(info.endpoints[0].ticket).read_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "metadata.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "many.db"
        make_db(db, args.tables)
        settings = settings_from_dict({"sources": [{"name": "wide", "kind": "sqlite", "path": str(db)}]},
                                      base_dir=Path(tmp))
        gateway = QueryEngine(settings)
        t0 = time.perf_counter()
        assert gateway.catalog.reload("wide")  # the background refresher's work, done once here
        load_s = time.perf_counter() - t0
        server = GatewayFlightServer(gateway, "grpc://127.0.0.1:0")
        threading.Thread(target=server.serve, daemon=True).start()
        with flight.connect(f"grpc://127.0.0.1:{server.port}") as client:
            t0 = time.perf_counter()
            first = get_tables(client)
            first_ms = (time.perf_counter() - t0) * 1000
            assert first.num_rows == args.tables, first.num_rows
            schema = pa.ipc.read_schema(pa.py_buffer(first.column("table_schema")[0].as_py()))
            assert len(schema) == len(COLUMNS) and b"ARROW:FLIGHT:SQL:TYPE_NAME" in schema.field(0).metadata
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                table = get_tables(client)
                times.append((time.perf_counter() - t0) * 1000)
                assert table.num_rows == args.tables
        server.shutdown()
        gateway.close()

    times.sort()
    result = {
        "benchmark": "Flight SQL GetTables include_schema=true (GetFlightInfo + DoGet, loopback)",
        "tables": args.tables, "columns_per_table": len(COLUMNS), "repeat": args.repeat,
        "catalog_load_s": round(load_s, 3),
        "first_call_ms": round(first_ms, 2),
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "min_ms": round(times[0], 2),
        "goal_ms": GOAL_MS, "goal_met": statistics.median(times) < GOAL_MS,
    }
    write_results(args.out, result)


if __name__ == "__main__":
    main()
