"""The fixed cost of a query: a one-row answer over Flight SQL against DuckDB in-process and a bare Flight round trip.

Issue 11's goal: a one-row query through the gateway's Flight SQL server (the ADBC driver, as a BI tool connects)
takes at most 1.5x (DuckDB's in-process time for the same query over the same file + a bare ``pyarrow.flight``
round trip), all measured in the same run. The bare round trip is a ``pyarrow.flight`` server answering
GetFlightInfo and DoGet with a one-row table from memory (the two RPCs a Flight SQL statement needs), through
``pyarrow.flight.FlightClient``.

    .venv/bin/python bench/one_row_bench.py [--runs 300] [--out bench/results/one_row.json]

The ADBC driver makes four RPCs per ``cursor.execute`` (CreatePreparedStatement, GetFlightInfo, DoGet,
ClosePreparedStatement) and pays its own cgo/Go costs: a minimal Flight SQL server answering those from memory,
timed through the same driver, is reported as ``bare_flight_sql_through_adbc`` and as a second ratio
(``ratio_to_adbc_floor``), the floor of any server with this client.

Queries: a count over a five-row Parquet table (``region``), and a filtered one-row read of it. Medians and p95
in milliseconds; the gateway's in-process time (``QueryEngine.execute``) is shown too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import flight

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine

QUERIES = {
    "count": ("SELECT count(*) AS n FROM {t}", "count(*)"),
    "lookup": ("SELECT r_name FROM {t} WHERE r_regionkey = 3", "one row by key"),
}


class _BareFlightSqlServer(flight.FlightServerBase):
    """The four RPCs the ADBC Flight SQL driver makes per ``cursor.execute`` (CreatePreparedStatement,
    GetFlightInfo, DoGet, ClosePreparedStatement), answered from memory: the floor any Flight SQL server pays
    with that client, the driver's own cost included."""

    def __init__(self, location: str, table: pa.Table) -> None:
        super().__init__(location)
        self.table = table

    def do_action(self, context, action):
        from flight_server import protocol as pb

        if action.type == pb.ACTION_CREATE_PREPARED_STATEMENT:
            result = pb.ActionCreatePreparedStatementResult(
                prepared_statement_handle=b"h", dataset_schema=self.table.schema.serialize().to_pybytes(),
                parameter_schema=pa.schema([]).serialize().to_pybytes())
            return [flight.Result(pa.py_buffer(pb.pack(result)))]
        return []

    def get_flight_info(self, context, descriptor):
        from flight_server import protocol as pb

        if not isinstance(pb.unpack(descriptor.command), pb.CommandPreparedStatementQuery):
            raise flight.FlightUnimplementedError("only prepared statements")  # e.g. GetSqlInfo at connect
        ticket = pb.pack(pb.TicketStatementQuery(statement_handle=b"h"))
        return flight.FlightInfo(self.table.schema, descriptor, [flight.FlightEndpoint(ticket, [])], -1, -1)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)


class _BareServer(flight.FlightServerBase):
    """GetFlightInfo and DoGet of a one-row table held in memory: the floor any Flight server pays."""

    def __init__(self, location: str, table: pa.Table) -> None:
        super().__init__(location)
        self.table = table

    def get_flight_info(self, context, descriptor):
        endpoint = flight.FlightEndpoint(b"t", [])
        return flight.FlightInfo(self.table.schema, descriptor, [endpoint], self.table.num_rows, self.table.nbytes)

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)


def _timed(fn, runs: int) -> list[float]:
    for _ in range(min(20, runs)):  # warm-up: connections, caches, plans
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _summary(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3),
            "runs": len(ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", default="bench/results/one_row.json")
    args = parser.parse_args(argv)

    import adbc_driver_flightsql.dbapi as flightsql

    from flight_server.server import GatewayFlightServer
    from gateway.execution.engine import QueryEngine
    from gateway.settings import settings_from_dict

    folder = Path(tempfile.mkdtemp(prefix="gw_one_row_"))
    region = pa.table({"r_regionkey": pa.array([0, 1, 2, 3, 4], pa.int32()),
                       "r_name": ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]})
    pq.write_table(region, folder / "region.parquet")
    engine = QueryEngine(settings_from_dict({"sources": [{"name": "lake", "kind": "parquet", "path": str(folder)}]},
                                            base_dir=folder))
    server = GatewayFlightServer(engine, "grpc://127.0.0.1:0")
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    conn = flightsql.connect(f"grpc://127.0.0.1:{server.port}", autocommit=True)
    bare = _BareServer("grpc://127.0.0.1:0", pa.table({"n": [5]}))
    bare_client = flight.FlightClient(f"grpc://127.0.0.1:{bare.port}")
    bare_sql = _BareFlightSqlServer("grpc://127.0.0.1:0", pa.table({"n": [5]}))
    bare_sql_conn = flightsql.connect(f"grpc://127.0.0.1:{bare_sql.port}", autocommit=True)
    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW region AS SELECT * FROM read_parquet('{folder / 'region.parquet'}')")
    results: dict = {"benchmark": "one-row", "runs": args.runs, "machine": machine(),
                     "load_average_before": os.getloadavg()[0], "queries": {}}

    def bare_round_trip() -> None:
        info = bare_client.get_flight_info(flight.FlightDescriptor.for_command(b"q"))
        bare_client.do_get(info.endpoints[0].ticket).read_all()

    def bare_adbc_round_trip() -> None:
        with bare_sql_conn.cursor() as cur:
            cur.execute("SELECT 5")
            cur.fetch_arrow_table()

    try:
        adbc_floor = _summary(_timed(bare_adbc_round_trip, args.runs))
        results["bare_flight_sql_through_adbc"] = adbc_floor
        print(f"a bare Flight SQL server through the ADBC driver: {adbc_floor['median_ms']:.2f} ms", flush=True)
        for name, (template, what) in QUERIES.items():
            gateway_sql, duck_sql = template.format(t="lake.main.region"), template.format(t="region")

            def over_flight_sql(sql=gateway_sql) -> None:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    cur.fetch_arrow_table()

            entry = {
                "query": what,
                "gateway_flight_sql": _summary(_timed(over_flight_sql, args.runs)),
                "gateway_in_process": _summary(_timed(
                    lambda sql=gateway_sql: engine.execute(sql).reader.read_all(), args.runs)),
                "duckdb_in_process": _summary(_timed(lambda sql=duck_sql: duck.execute(sql).arrow(), args.runs)),
                "bare_flight_round_trip": _summary(_timed(bare_round_trip, args.runs)),
            }
            floor = entry["duckdb_in_process"]["median_ms"] + entry["bare_flight_round_trip"]["median_ms"]
            entry["ratio_to_floor"] = round(entry["gateway_flight_sql"]["median_ms"] / floor, 2)
            entry["goal"] = {"ratio_to_floor": "<= 1.5", "met": entry["ratio_to_floor"] <= 1.5}
            # the same client's floor: DuckDB's time + the ADBC driver against a server answering from memory
            adbc = entry["duckdb_in_process"]["median_ms"] + adbc_floor["median_ms"]
            entry["ratio_to_adbc_floor"] = round(entry["gateway_flight_sql"]["median_ms"] / adbc, 2)
            results["queries"][name] = entry
            print(f"{name:7s} gateway over Flight SQL {entry['gateway_flight_sql']['median_ms']:.2f} ms "
                  f"(in-process {entry['gateway_in_process']['median_ms']:.2f}); DuckDB "
                  f"{entry['duckdb_in_process']['median_ms']:.2f} ms + bare Flight "
                  f"{entry['bare_flight_round_trip']['median_ms']:.2f} ms; ratio {entry['ratio_to_floor']:.2f} "
                  f"(goal 1.5); to DuckDB + the ADBC floor {entry['ratio_to_adbc_floor']:.2f}", flush=True)
    finally:
        conn.close()
        bare_sql_conn.close()
        bare_sql.shutdown()
        bare_client.close()
        bare.shutdown()
        server.shutdown()
        thread.join(timeout=10)
        engine.close()
    results["load_average_after"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
