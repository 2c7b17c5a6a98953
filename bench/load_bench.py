"""Load: 1, 8 and 32 concurrent Flight SQL clients on a mix of point lookups, small federated joins and Parquet
aggregates, with admission control on and off.

The bench creates its own sources and removes them at the end: a PostgreSQL database ``gw_bench_load_<hex>``
(table ``app.accounts``, ``--accounts`` rows, primary key ``id``, analyzed) and a Parquet lake in a temporary
folder (``sales``: ``--sales-rows`` rows in 4 files; ``regions``: 64 rows). The gateway runs in a child process
(this script with ``--serve``: a ``GatewayFlightServer`` on a free 127.0.0.1 port) so that its RSS is its own;
the clients are threads of this process, each with its own ADBC Flight SQL connection
(``gateway.client.connect``), running a closed loop (no think time) of parameterized queries picked at random:

- ``lookup`` (70%): ``SELECT id, name, region_id, balance FROM pg.app.accounts WHERE id = ?``; light (a
  primary-key equality pushed whole to PostgreSQL);
- ``join`` (20%): an account by id joined with ``lake.main.regions`` (PostgreSQL and Parquet, the join in
  DataFusion); heavy (a residual plan; see ``gateway.execution.admission``);
- ``aggregate`` (10%): ``SELECT region_id, count(*), sum(amount), avg(amount) FROM lake.main.sales WHERE day >=
  ? GROUP BY region_id``; heavy (4 M rows).

Each client prepares each statement once and then binds and runs it (an application's statement cache;
``--prepare-each``: a new prepared statement per query). The PostgreSQL source's ``pool_size`` is 16
(``--pool-size``; its default, 4, opens a new connection per lookup beyond 4 at once).

Each level runs ``--seconds`` seconds (and at most ``--max-queries`` queries per client), after every client
ran each query once to warm up. Per level: p50/p95/p99 per kind and overall, throughput, errors (by kind and
message), the server's RSS sampled every 0.5 s, and the cores used by the machine, the server, the clients,
PostgreSQL and other processes (the machine may be shared). Both modes (``--admission both``) have a server of
their own, started together, and take turns level by level: ``limits.admission_control = true`` (the defaults:
``max_heavy_queries`` = cores) and ``false``; ``--limits`` sets more ``[limits]``; ``--lake-cache`` gives the lake
source a cache rule (``cache_fingerprint = true``: the aggregate then reads its Parquet files from the partition
cache while they are unchanged).

Goals, checked with admission on: at 32 clients the lookups' p50 at most 10x their 1-client p50, p99 at most
5x p50 for lookups and at most 10x overall, no errors, throughput not below the 1-client figure.

    .venv/bin/python bench/load_bench.py [--seconds 30] [--levels 1,8,32] [--admission both|on|off]
    .venv/bin/python bench/load_bench.py --soak-seconds 600     # 8 clients, admission on: RSS growth

Writes ``bench/results/load.json`` (``load-soak.json`` for a soak). Clients only connect to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import write_results

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
REGIONS = 64
FIRST_DAY = date(2020, 1, 1)
DAYS = 1500
MIX = {"lookup": 0.7, "join": 0.2, "aggregate": 0.1}
QUERIES = {
    "lookup": "SELECT id, name, region_id, balance FROM pg.app.accounts WHERE id = ?",
    "join": "SELECT a.id, a.name, a.balance, r.name AS region, r.manager FROM pg.app.accounts a "
            "JOIN lake.main.regions r ON r.id = a.region_id WHERE a.id = ?",
    "aggregate": "SELECT region_id, count(*) AS n, sum(amount) AS total, avg(amount) AS mean "
                 "FROM lake.main.sales WHERE day >= ? GROUP BY region_id",
}
GOALS = {"lookup_p50_vs_1_client": 10.0, "lookup_p99_vs_p50": 5.0, "overall_p99_vs_p50": 10.0}


# -- sources ---------------------------------------------------------------------------------------------

def with_database(uri: str, database: str) -> str:
    return uri.rsplit("/", 1)[0] + f"/{database}"


def create_postgres(admin_uri: str, database: str, accounts: int) -> str:
    """Create ``database`` with ``app.accounts`` (``accounts`` rows, primary key ``id``), analyzed."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    uri = with_database(admin_uri, database)
    with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA app")
        cur.execute("CREATE TABLE app.accounts (id bigint PRIMARY KEY, name text NOT NULL, region_id int NOT NULL, "
                    "balance double precision NOT NULL, opened date NOT NULL)")
        cur.execute(f"INSERT INTO app.accounts SELECT g, 'account ' || g, g % {REGIONS}, (g * 7919 % 1000000) / 100.0, "
                    f"date '2020-01-01' + (g % 1500)::int FROM generate_series(1::bigint, {accounts}) g")
        cur.execute("ANALYZE app.accounts")
    return uri


def drop_postgres(admin_uri: str, database: str) -> None:
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(admin_uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def write_lake(folder: Path, sales_rows: int, accounts: int) -> None:
    """``sales`` (``sales_rows`` rows in 4 files) and ``regions`` (64 rows) as Parquet under ``folder``."""
    rng = np.random.default_rng(11)
    (folder / "sales").mkdir(parents=True)
    parts = 4
    for part in range(parts):
        n = sales_rows // parts
        days = rng.integers(0, DAYS, n)
        pq.write_table(pa.table({
            "id": pa.array(np.arange(part * n, (part + 1) * n, dtype=np.int64)),
            "account_id": pa.array(rng.integers(1, accounts + 1, n, dtype=np.int64)),
            "region_id": pa.array(rng.integers(0, REGIONS, n, dtype=np.int32)),
            "day": pa.array(np.datetime64(FIRST_DAY.isoformat()) + days.astype("timedelta64[D]")),
            "amount": pa.array(rng.random(n) * 1000),
        }), folder / "sales" / f"part-{part}.parquet", row_group_size=256_000)
    pq.write_table(pa.table({
        "id": pa.array(np.arange(REGIONS, dtype=np.int32)),
        "name": [f"region {i}" for i in range(REGIONS)],
        "manager": [f"manager {i % 7}" for i in range(REGIONS)],
    }), folder / "regions.parquet")


# -- the server process ----------------------------------------------------------------------------------

def serve(config_json: str) -> None:
    """Child process: a Flight SQL server over the given settings on a free 127.0.0.1 port. Prints
    ``port N``, serves until stdin closes, then prints the admission lanes' counters and the memory budget
    (``gateway.execution.memory``: its total, what is held at the end, its peak) as JSON."""
    from flight_server.server import GatewayFlightServer
    from gateway.execution.engine import QueryEngine
    from gateway.settings import settings_from_dict

    config = json.loads(config_json)
    gateway = QueryEngine(settings_from_dict(config, base_dir=Path(tempfile.gettempdir())))
    server = GatewayFlightServer(gateway, "grpc://127.0.0.1:0")
    thread = threading.Thread(target=server.serve, name="flight-sql", daemon=True)
    thread.start()
    print(f"port {server.port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    print(json.dumps({**gateway.admission.snapshot(), "memory_budget": gateway.memory.snapshot()}), flush=True)
    server.shutdown()
    thread.join(timeout=10)
    gateway.close()


class Server:
    """The gateway in a child process (``serve``), with its RSS sampled every 0.5 s."""

    def __init__(self, config: dict) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", json.dumps(config)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"the gateway did not start: {line!r}")
        self.uri = f"grpc://127.0.0.1:{int(line.split()[1])}"
        self.samples: list[tuple[float, float]] = []  # (monotonic time, RSS MiB)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="rss", daemon=True)
        self._sampler.start()

    def rss_mib(self) -> float | None:
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            rss = self.rss_mib()
            if rss is not None:
                self.samples.append((time.monotonic(), rss))

    def rss_between(self, t0: float, t1: float) -> list[list[float]]:
        """[seconds since t0, RSS MiB] of the samples taken between t0 and t1."""
        return [[round(t - t0, 1), round(rss, 1)] for t, rss in self.samples if t0 <= t <= t1]

    def stop(self) -> dict:
        """Stop the server; its admission counters."""
        self._stop.set()
        try:
            self.proc.stdin.close()
            out = self.proc.stdout.read()
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {}
        lines = [line for line in out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


# -- CPU accounting (the machine is shared: other processes' CPU is reported too) ---------------------------

def cpu_times(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: the whole machine busy (and wall ticks), the server process, this (client) process
    and every PostgreSQL process."""
    tick = os.sysconf("SC_CLK_TCK")

    def process(pid: int | str) -> tuple[str, float]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            return "", 0.0
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        return name, (int(fields[11]) + int(fields[12])) / tick

    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    postgres = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            name, seconds = process(pid)
            if name == "postgres":
                postgres += seconds
    return {"busy": (sum(values) - values[3] - values[4]) / tick, "total": sum(values) / tick,
            "server": process(server_pid)[1], "clients": process(os.getpid())[1], "postgres": postgres}


def cpu_cores(before: dict, after: dict, seconds: float) -> dict:
    """Average cores used between two ``cpu_times``: machine, server, clients, PostgreSQL, and others."""
    used = {k: (after[k] - before[k]) / seconds for k in ("server", "clients", "postgres")}
    busy = (after["busy"] - before["busy"]) / (after["total"] - before["total"]) * (os.cpu_count() or 1)
    return {"machine_busy": round(busy, 2), **{k: round(v, 2) for k, v in used.items()},
            "other_processes": round(max(0.0, busy - sum(used.values())), 2)}


# -- clients ---------------------------------------------------------------------------------------------

def parameters(kind: str, rng: random.Random, accounts: int) -> list:
    if kind == "aggregate":
        return [FIRST_DAY + timedelta(days=rng.randrange(0, DAYS // 2))]
    return [rng.randrange(1, accounts + 1)]


def run_level(uri: str, clients: int, seconds: float, max_queries: int, accounts: int, seed: int,
              prepare_each: bool = False, server_pid: int | None = None) -> dict:
    """``clients`` threads, each its own connection, running the mix for ``seconds`` (at most
    ``max_queries`` each). Each client keeps one cursor per kind, so each statement is prepared once and then
    bound and run (an application's statement cache); ``prepare_each``: a new cursor, so a new prepared
    statement, per query (``Connection.query``). Returns raw samples: ``[(kind, start offset, seconds, error
    or None)]`` and the wall-clock bounds."""
    from gateway.client import connect

    start_box: dict[str, float] = {}
    # the start time is set by the barrier's action, before any client is released
    ready = threading.Barrier(clients + 1, action=lambda: start_box.__setitem__("t", time.perf_counter()))
    samples: list[tuple[str, float, float, str | None]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        kinds, weights = list(MIX), list(MIX.values())
        mine = []
        with connect(uri) as conn:
            cursors = {kind: conn.cursor() for kind in kinds}

            def run(kind: str) -> None:
                if prepare_each:
                    conn.query(QUERIES[kind], parameters(kind, rng, accounts))
                    return
                cursor = cursors[kind]
                cursor.execute(QUERIES[kind], parameters(kind, rng, accounts))
                cursor.fetch_arrow_table()

            for kind in kinds:  # warm-up: connection, prepared statements, plan cache
                run(kind)
            ready.wait()
            t_start = start_box["t"]
            deadline = t_start + seconds
            for _ in range(max_queries):
                if time.perf_counter() >= deadline:
                    break
                kind = rng.choices(kinds, weights)[0]
                t0 = time.perf_counter()
                error = None
                try:
                    run(kind)
                except Exception as exc:  # recorded, the loop goes on
                    error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
                mine.append((kind, t0 - t_start, time.perf_counter() - t0, error))
            for cursor in cursors.values():
                cursor.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(i,), name=f"client-{i}", daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    wall0 = time.monotonic()
    cpu0 = cpu_times(server_pid) if server_pid else None
    for t in threads:
        t.join(seconds + 120)
    wall1 = time.monotonic()
    cpu = cpu_cores(cpu0, cpu_times(server_pid), wall1 - wall0) if server_pid else None
    return {"samples": samples, "wall_start": wall0, "wall_end": wall1, "cpu_cores": cpu}


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"n": len(ordered), "p50_ms": round(at(0.50) * 1000, 1), "p95_ms": round(at(0.95) * 1000, 1),
            "p99_ms": round(at(0.99) * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}


def summarize(raw: dict, seconds: float, server: Server) -> dict:
    samples = raw["samples"]
    ok = [s for s in samples if s[3] is None]
    errors: dict[str, int] = {}
    for kind, _, _, error in samples:
        if error is not None:
            key = f"{kind}: {error}"
            errors[key] = errors.get(key, 0) + 1
    elapsed = max([s[1] + s[2] for s in samples] + [seconds])
    rss = server.rss_between(raw["wall_start"], raw["wall_end"])
    return {
        "queries": len(samples),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "throughput_qps": round(len(ok) / elapsed, 1),
        "overall": percentiles([s[2] for s in ok]),
        "by_kind": {kind: percentiles([s[2] for s in ok if s[0] == kind]) for kind in MIX},
        "cpu_cores": raw.get("cpu_cores"),
        "rss_mib": {"start": rss[0][1] if rss else None, "end": rss[-1][1] if rss else None,
                    "max": max(r[1] for r in rss) if rss else None, "samples": rss},
    }


def check_goals(levels: dict) -> dict:
    """The goals at the highest level against the 1-client level."""
    top = levels[str(max(int(k) for k in levels))]
    one = levels.get("1")
    lookup, overall = top["by_kind"]["lookup"], top["overall"]
    checks = {}
    if one and one["by_kind"]["lookup"].get("n"):
        ratio = lookup["p50_ms"] / one["by_kind"]["lookup"]["p50_ms"]
        checks["lookup_p50_vs_1_client"] = {"value": round(ratio, 1), "goal": GOALS["lookup_p50_vs_1_client"],
                                            "met": ratio <= GOALS["lookup_p50_vs_1_client"]}
        checks["throughput_vs_1_client"] = {"value": round(top["throughput_qps"] / one["throughput_qps"], 2),
                                            "goal": 1.0, "met": top["throughput_qps"] >= one["throughput_qps"]}
    ratio = lookup["p99_ms"] / lookup["p50_ms"]
    checks["lookup_p99_vs_p50"] = {"value": round(ratio, 1), "goal": GOALS["lookup_p99_vs_p50"],
                                   "met": ratio <= GOALS["lookup_p99_vs_p50"]}
    ratio = overall["p99_ms"] / overall["p50_ms"]
    checks["overall_p99_vs_p50"] = {"value": round(ratio, 1), "goal": GOALS["overall_p99_vs_p50"],
                                    "met": ratio <= GOALS["overall_p99_vs_p50"]}
    errors = sum(level["errors"] for level in levels.values())
    checks["no_errors"] = {"value": errors, "goal": 0, "met": errors == 0}
    return checks


def line(mode: str, clients: int, s: dict) -> str:
    k = s["by_kind"]

    def fmt(p: dict) -> str:
        return f"{p.get('p50_ms', '-')}/{p.get('p95_ms', '-')}/{p.get('p99_ms', '-')}"

    kinds = " ".join(f"{kind} {fmt(k[kind])}" for kind in MIX)
    return (f"admission {mode:<3} {clients:>3} clients: {s['throughput_qps']:>6} q/s, errors {s['errors']}, "
            f"p50/p95/p99 ms {kinds} overall {fmt(s['overall'])}, RSS max {s['rss_mib']['max']} MiB, "
            f"cores {s['cpu_cores']}")


# -- main ------------------------------------------------------------------------------------------------

def server_config(pg_uri: str, lake: Path, admission: bool, pool_size: int, limits: dict | None = None,
                  lake_options: dict | None = None) -> dict:
    return {"sources": [{"name": "pg", "kind": "postgresql", "uri": pg_uri, "pool_size": pool_size},
                        {"name": "lake", "kind": "parquet", "path": str(lake), **(lake_options or {})}],
            "catalog": {"refresh_interval_s": 0},
            "limits": {**(limits or {}), "admission_control": admission}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each level")
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument("--admission", choices=("both", "on", "off"), default="both")
    parser.add_argument("--max-queries", type=int, default=100_000, help="per client and level, at most")
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--sales-rows", type=int, default=4_000_000)
    parser.add_argument("--pool-size", type=int, default=16,
                        help="the PostgreSQL source's pool_size (its default, 4, opens a connection per query "
                             "beyond 4 at once)")
    parser.add_argument("--prepare-each", action="store_true",
                        help="a new prepared statement per query (default: one per client and query kind)")
    parser.add_argument("--limits", default="{}",
                        help='more [limits] settings as JSON, e.g. \'{"max_heavy_queries": 1}\'')
    parser.add_argument("--lake-cache", action="store_true",
                        help="give the lake source a cache rule (cache_fingerprint = true: its Parquet files "
                             "served from the partition cache while unchanged)")
    parser.add_argument("--soak-seconds", type=float, default=0.0,
                        help="a soak instead of the levels: 8 clients, admission on, RSS growth (600: ten minutes)")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="--soak-seconds in minutes")
    parser.add_argument("--pg", default=DEFAULT_PG, help="a PostgreSQL user that may create databases")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    args.soak_seconds = args.soak_seconds or args.soak_minutes * 60
    soak = args.soak_seconds > 0
    out = Path(args.out or Path(__file__).parent / "results" / ("load-soak.json" if soak else "load.json"))
    database = f"gw_bench_load_{secrets.token_hex(3)}"
    folder = Path(tempfile.mkdtemp(prefix="gw_load_bench_"))
    t0 = time.perf_counter()
    try:
        pg_uri = create_postgres(args.pg, database, args.accounts)
        write_lake(folder / "lake", args.sales_rows, args.accounts)
        print(f"sources ready in {time.perf_counter() - t0:.1f} s", flush=True)
        setup = {"accounts": args.accounts, "sales_rows": args.sales_rows, "regions": REGIONS, "mix": MIX,
                 "queries": QUERIES, "pg_pool_size": args.pool_size, "cores": os.cpu_count(),
                 "lake_options": lake_options(args)}
        if soak:
            result = run_soak(args, pg_uri, folder / "lake")
            write_results(out, {"benchmark": "load-soak", "setup": setup, **result})
            return
        levels = [int(n) for n in args.levels.split(",")]
        modes = {"both": ("on", "off"), "on": ("on",), "off": ("off",)}[args.admission]
        # both servers live side by side and the levels alternate between them (on, off, on, off...), so that
        # the load other processes put on the machine falls on both alike
        servers = {mode: Server(server_config(pg_uri, folder / "lake", mode == "on", args.pool_size,
                                              json.loads(args.limits), lake_options(args))) for mode in modes}
        by_mode: dict[str, dict] = {mode: {} for mode in modes}
        lanes = {}
        try:
            for clients in levels:
                for mode, server in servers.items():
                    raw = run_level(server.uri, clients, args.seconds, args.max_queries, args.accounts, seed=clients,
                                    prepare_each=args.prepare_each, server_pid=server.proc.pid)
                    by_mode[mode][str(clients)] = summarize(raw, args.seconds, server)
                    print(line(mode, clients, by_mode[mode][str(clients)]), flush=True)
        finally:
            for mode, server in servers.items():
                lanes[mode] = server.stop()
        results = {mode: {"levels": by_level, "goals": check_goals(by_level), "lanes_at_end": lanes[mode]}
                   for mode, by_level in by_mode.items()}
        write_results(out, {"benchmark": "load", "setup": {**setup, "seconds_per_level": args.seconds,
                                                           "levels": levels}, "admission": results})
    finally:
        drop_postgres(args.pg, database)
        shutil.rmtree(folder, ignore_errors=True)


def lake_options(args) -> dict:
    """The lake source's options beyond its path: a cache rule with ``--lake-cache``."""
    return {"cache_fingerprint": True} if args.lake_cache else {}


def run_soak(args, pg_uri: str, lake: Path) -> dict:
    """8 clients for ``--soak-seconds`` against one server with admission on; RSS at the start (after a
    warm-up level of a tenth of the soak, at most a minute), at the end, and its growth; the RSS slope over
    the second half (MiB per minute: a leak keeps it above zero)."""
    server = Server(server_config(pg_uri, lake, True, args.pool_size, json.loads(args.limits), lake_options(args)))
    seconds = args.soak_seconds
    try:
        warm = run_level(server.uri, 8, min(60.0, seconds / 10), args.max_queries, args.accounts, seed=1,
                         prepare_each=args.prepare_each)
        start_rss = server.rss_mib()
        raw = run_level(server.uri, 8, seconds, 10**9, args.accounts, seed=2,
                        prepare_each=args.prepare_each, server_pid=server.proc.pid)
        summary = summarize(raw, seconds, server)
        end_rss = server.rss_mib()
    finally:
        lanes = server.stop()
    samples = summary["rss_mib"]["samples"]
    half = [s for s in samples if s[0] >= samples[-1][0] / 2] if samples else []
    slope = None
    if len(half) >= 2:
        xs, ys = [s[0] / 60 for s in half], [s[1] for s in half]
        slope = round(statistics.linear_regression(xs, ys).slope, 2)
    growth = round(end_rss - start_rss, 1) if start_rss and end_rss else None
    print(f"soak {seconds:g} s at 8 clients: RSS {start_rss:.0f} -> {end_rss:.0f} MiB "
          f"(growth {growth} MiB; second half {slope} MiB/min), {summary['throughput_qps']} q/s, "
          f"errors {summary['errors']}", flush=True)
    return {"soak_seconds": seconds, "warmup_queries": len(warm["samples"]),
            "rss_start_mib": round(start_rss, 1), "rss_end_mib": round(end_rss, 1), "rss_growth_mib": growth,
            "rss_slope_second_half_mib_per_min": slope, "level": summary, "lanes_at_end": lanes}


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
