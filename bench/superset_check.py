"""Apache Superset's own code path against the gateway: a throwaway Superset, a Database entry with the gateway's
URI made through Superset's REST API, the catalog as Superset lists it, and a federated SQL Lab query.

Steps (each timed, each recorded in the report):

1. Superset in its own virtualenv (``--venv``, default /tmp/gw-superset-venv): created when missing with
   ``pip install apache-superset`` (plus ``SUPERSET_PINS``) and this project with its ``[sqlalchemy]`` extra
   (editable, so the working tree's dialect and engine spec are the ones used); Superset pins SQLAlchemy 1.4,
   which the dialect supports as well as 2.x.
2. The gateway on its demo catalog (``gateway serve`` over a copy of ``config/gateway.toml`` in a temp folder):
   Flight SQL and REST on free 127.0.0.1 ports.
3. Superset initialised in a temp folder: SQLite metadata database, ``superset db upgrade``, an admin user,
   ``superset init``, a random SECRET_KEY; then its web server (``superset run``) on a free 127.0.0.1 port.
4. Through Superset's REST API: login -> access token -> CSRF token; ``POST /api/v1/database/test_connection/``
   and ``POST /api/v1/database/`` with ``sqlalchemy_uri = gateway+flightsql://127.0.0.1:<port>``.
5. Sources as catalogs (the engine spec's ``supports_catalog``): the catalogs Superset lists are the demo's
   sources (from its gateway.toml), "Allow changing catalogs" is on, each catalog's schemas are listed by plain
   name (both sources have a ``main``), the tables under each (catalog, schema) are the demo files' (sqlite3's
   ``sqlite_master``, the lake folder), a table's columns and the ``SELECT *`` Superset writes for it under its
   catalog; a SQL Lab query with catalog ``demo_db`` and schema ``main`` selected that names ``customers``
   unqualified and joins ``demo_lake.main.orders``; a dataset in catalog ``demo_lake`` with a chart-data query.
6. Without a catalog (as before catalogs existed, and for databases made then): schemas ``source.schema``, their
   tables and one table's columns; ``POST /api/v1/sqllab/execute/`` of a query joining the SQLite source with
   the Parquet source; a dataset on one table and a chart-data query that Superset compiles with the dialect
   (``demo_db.main.customers``, GROUP BY, LIMIT) and a monthly time series with a time range (the engine spec of
   ``gateway/superset.py``: time grains, date literals).

Every answer is compared with the same answer computed from the demo files (sqlite3 and pyarrow, no gateway
code).

Prints a short report and writes ``bench/results/superset_check.json``; exits 1 when a check fails. Not part of
the CI suite (installing Superset takes minutes; a run with the virtualenv in place takes about 30 s).

    .venv/bin/python bench/superset_check.py
    .venv/bin/python bench/superset_check.py --venv /tmp/other-venv --json-out /tmp/superset.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, free_port
from tests.demo_support import customers_db, data_dir, lake_table_names, orders_table

DEFAULT_VENV = Path("/tmp/gw-superset-venv")
#: what a plain ``pip install apache-superset`` (6.1.0) gets wrong: flask-caching 2.5 passes its cache backends
#: an ``ignore_delete_many_errors`` argument SupersetMetastoreCache does not take (``superset db upgrade`` fails
#: with a TypeError); Superset's own lock file has flask-caching 2.3.1. And superset/db_engine_specs/aws_iam.py
#: imports cachetools, which only older google-auth releases brought along (without it every engine-spec lookup
#: fails: "Could not load database driver for: gateway")
SUPERSET_PINS = ["flask-caching<2.5", "cachetools"]
ADMIN, ADMIN_PASSWORD = "admin", "a throwaway admin password"
#: the federated SQL Lab query: the SQLite source joined with the Parquet source
FEDERATED_SQL = """SELECT c.region, count(*) AS orders, sum(o.total) AS total
FROM demo_db.main.customers c JOIN demo_lake.main.orders o ON o.customer_id = c.id
WHERE o.status = 'shipped'
GROUP BY c.region ORDER BY c.region"""
#: the same query in SQL Lab with catalog demo_db and schema main selected: ``customers`` unqualified
CATALOG_SQL = FEDERATED_SQL.replace("demo_db.main.customers", "customers")

SUPERSET_CONFIG = """
SECRET_KEY = {secret!r}
SQLALCHEMY_DATABASE_URI = "sqlite:///{home}/superset.db"
TALISMAN_ENABLED = False
RATELIMIT_ENABLED = False
SQLLAB_TIMEOUT = 120
"""


class Report:
    """The steps done so far: name, ok, seconds and details; written as JSON at the end."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.facts: dict = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict]:
        """Time one step; an exception marks it failed (with its message) and propagates."""
        record: dict = {"step": name, "ok": False}
        self.steps.append(record)
        t0 = time.perf_counter()
        try:
            yield record
            record["ok"] = True
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - t0, 2)
            print(f"  {'ok  ' if record['ok'] else 'FAIL'} {name} ({record['seconds']} s)"
                  + (f": {record['error']}" if "error" in record else ""), flush=True)


def run(cmd: list[str], env: dict | None = None, timeout: float = 1800) -> str:
    """Run ``cmd`` at low CPU priority; its output, or a RuntimeError with the output's tail."""
    done = subprocess.run(["nice", "-n", "10", *cmd], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd[:3])}... exited {done.returncode}:\n" + "\n".join(tail))
    return done.stdout


def ensure_venv(venv: Path, report: Report) -> Path:
    """The virtualenv's python, with Superset and this project installed (created when missing)."""
    python = venv / "bin" / "python"
    if not python.exists():
        with report.step(f"create {venv} (pip install apache-superset and this project)"):
            run([sys.executable, "-m", "venv", str(venv)])
            run([str(python), "-m", "pip", "install", "-q", "-U", "pip"])
            run([str(python), "-m", "pip", "install", "-q", "apache-superset", *SUPERSET_PINS])
    with report.step("install this project (editable) into the Superset virtualenv"):
        # the README's instruction: the [sqlalchemy] extra must leave Superset's SQLAlchemy 1.4 in place
        run([str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[sqlalchemy]", *SUPERSET_PINS])
    versions = run([str(python), "-c", "import importlib.metadata as m; print(m.version('apache-superset'), "
                    "m.version('sqlalchemy'), m.version('adbc-driver-flightsql'))"]).split()
    report.facts.update(superset=versions[0], superset_sqlalchemy=versions[1], adbc_driver_flightsql=versions[2])
    return python


def wait_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail when ``process`` ends or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def process(cmd: list[str], log: Path, env: dict | None = None) -> Iterator[subprocess.Popen]:
    """A background process logging to ``log``, terminated (then killed) on exit."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def expected_rows(config: Path) -> list[list]:
    """``FEDERATED_SQL``'s answer computed from the demo files: [region, orders, total] per region."""
    region = {c["id"]: c["region"] for c in customers_db(config)}
    orders = orders_table(config, columns=["customer_id", "total", "status"]).to_pylist()
    out: dict[str, list] = {}
    for order in orders:
        if order["status"] == "shipped" and order["customer_id"] in region:
            row = out.setdefault(region[order["customer_id"]], [0, Decimal(0)])
            row[0] += 1
            row[1] += Decimal(str(order["total"]))
    return [[r, n, float(t)] for r, (n, t) in sorted(out.items())]


def _month(value) -> str:
    """``YYYY-MM`` of a time value as Superset's JSON carries it (epoch milliseconds or ISO text)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m")
    return str(value)[:7]


class Superset:
    """Superset's REST API as a logged-in admin (bearer token plus the CSRF token its POSTs need)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=180)
        token = self.http.post("/api/v1/security/login", json={
            "username": ADMIN, "password": ADMIN_PASSWORD, "provider": "db", "refresh": True})
        self.http.headers["Authorization"] = f"Bearer {self.ok(token)['access_token']}"
        csrf = self.ok(self.http.get("/api/v1/security/csrf_token/"))["result"]
        self.http.headers.update({"X-CSRFToken": csrf, "Referer": base_url})

    @staticmethod
    def ok(response: httpx.Response) -> dict:
        """The JSON body of a 2xx answer; a RuntimeError with the status and body otherwise."""
        if not response.is_success:
            raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} "
                               f"{response.text[:800]}")
        return response.json()

    def get(self, path: str, **params) -> dict:
        """GET ``path``."""
        return self.ok(self.http.get(path, params=params or None))

    def post(self, path: str, body: dict) -> dict:
        """POST ``body`` as JSON to ``path``."""
        return self.ok(self.http.post(path, json=body))


def demo_tables(config: Path) -> dict[str, list[str]]:
    """``{source: [table, ...]}`` of the demo's two sources read from their files (one schema each, ``main``)."""
    with contextlib.closing(sqlite3.connect(f"file:{data_dir(config) / 'demo.db'}?mode=ro", uri=True)) as db:
        sqlite_tables = sorted(n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    return {"demo_db": sqlite_tables, "demo_lake": lake_table_names(config)}


def sqllab(api: Superset, database_id: int, sql: str, catalog: str | None, schema: str | None,
           limit: int = 1000) -> dict:
    """Superset's answer to ``sql`` run synchronously in SQL Lab with ``catalog`` and ``schema`` selected."""
    return api.post("/api/v1/sqllab/execute/", {
        "database_id": database_id, "sql": sql, "runAsync": False, "queryLimit": limit, "catalog": catalog,
        "schema": schema, "client_id": secrets.token_hex(5), "tab": "superset_check"})


def check_catalogs(api: Superset, database_id: int, config: Path, report: Report) -> None:
    """Step 5 of the module docstring: the gateway's sources as Superset's catalogs."""
    base = f"/api/v1/database/{database_id}"
    sources = sorted(s["name"] for s in tomllib.loads(config.read_text())["sources"])
    with report.step("catalogs = the demo's sources, schemas per catalog, tables under (catalog, schema)") as step:
        # the database list as SQL Lab's database selector reads it: allow_multi_catalog shows its catalog selector
        [listed] = [d for d in api.get("/api/v1/database/")["result"] if d["id"] == database_id]
        step["allow_multi_catalog"] = listed["allow_multi_catalog"]
        catalogs = step["catalogs"] = sorted(api.get(f"{base}/catalogs/", q="(force:!t)")["result"])
        step["schemas"] = {c: sorted(api.get(f"{base}/schemas/", q=f"(catalog:'{c}',force:!t)")["result"])
                           for c in catalogs}
        step["tables"] = {f"{c}.{s}": sorted(t["value"] for t in api.get(
            f"{base}/tables/", q=f"(catalog_name:'{c}',force:!t,schema_name:'{s}')")["result"])
            for c, schemas in step["schemas"].items() for s in schemas}
        assert step["allow_multi_catalog"] is True, listed
        assert catalogs == sources, f"Superset lists catalogs {catalogs}, the demo has sources {sources}"
        assert step["schemas"] == {c: ["main"] for c in sources}, step["schemas"]
        want = {f"{c}.main": tables for c, tables in demo_tables(config).items()}
        assert step["tables"] == want, f"Superset lists {step['tables']}, the demo files have {want}"
    with report.step("a table's columns and SELECT * under (catalog demo_lake, schema main)") as step:
        metadata = api.get(f"{base}/table_metadata/", name="orders", schema="main", catalog="demo_lake")
        step["orders_columns"] = [[c["name"], c["type"]] for c in metadata["columns"]]
        step["select_star"] = metadata["selectStar"]
        want = [f.name for f in orders_table(config).schema]
        assert [name for name, _ in step["orders_columns"]] == want, (step["orders_columns"], want)
        preview = sqllab(api, database_id, metadata["selectStar"], "demo_lake", "main", limit=100)
        step["rows"] = len(preview["data"])
        assert step["rows"] == min(100, orders_table(config).num_rows), step["rows"]
    with report.step("SQL Lab with catalog demo_db, schema main selected: customers unqualified, joined with "
                     "demo_lake.main.orders") as step:
        answer = sqllab(api, database_id, CATALOG_SQL, "demo_db", "main")
        query = answer.get("query") or {}
        step["sql"], step["catalog"], step["schema"] = CATALOG_SQL, query.get("catalog"), query.get("schema")
        got = step["rows"] = [[r["region"], r["orders"], round(float(r["total"]), 2)] for r in answer["data"]]
        want = [[r, n, round(t, 2)] for r, n, t in expected_rows(config)]
        assert (step["catalog"], step["schema"]) == ("demo_db", "main"), query
        assert got == want, f"Superset answered {got}, the demo files give {want}"
        # the selection reaches the connection: a schema the selected catalog lacks fails there
        try:
            sqllab(api, database_id, "SELECT 1", "demo_lake", "no_such_schema")
            step["unknown_schema"] = "accepted"
        except RuntimeError as exc:
            step["unknown_schema"] = str(exc)[:300]
        assert "unknown schema 'no_such_schema' in source 'demo_lake'" in step["unknown_schema"], step
    with report.step("a dataset in catalog demo_lake (main.orders) and a chart-data query") as step:
        dataset = api.post("/api/v1/dataset/", {"database": database_id, "catalog": "demo_lake", "schema": "main",
                                                "table_name": "orders"})
        step["dataset_catalog"] = api.get(f"/api/v1/dataset/{dataset['id']}")["result"].get("catalog")
        chart = api.post("/api/v1/chart/data", {
            "datasource": {"id": dataset["id"], "type": "table"}, "result_format": "json", "result_type": "full",
            "queries": [{"columns": ["status"], "metrics": ["count"], "orderby": [["status", True]],
                         "row_limit": 100}]})
        result = chart["result"][0]
        step["compiled_sql"] = result.get("query")
        step["rows"] = [[r["status"], r["count"]] for r in result["data"]]
        got = sorted(step["rows"], key=str)  # NULL statuses too
        want = sorted(([k, n] for k, n in Counter(orders_table(config, columns=["status"]).column(0).to_pylist())
                       .items()), key=str)
        assert step["dataset_catalog"] == "demo_lake", step["dataset_catalog"]
        assert got == want, f"Superset answered {got}, the demo files give {want}"


def check(args: argparse.Namespace, report: Report, work: Path) -> None:
    """Every step of the module docstring; raises at the first failure."""
    python = ensure_venv(args.venv, report)
    superset_bin = str(python.parent / "superset")
    gateway_dir = work / "gateway"
    gateway_dir.mkdir()
    config = gateway_dir / "gateway.toml"
    shutil.copy(ROOT / "config" / "gateway.toml", config)
    flight_port, http_port, superset_port = free_port(), free_port(), free_port()
    gateway_cmd = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--host", "127.0.0.1",
                   "--flight-port", str(flight_port), "--http-port", str(http_port)]
    home = work / "superset"
    home.mkdir()
    (home / "superset_config.py").write_text(SUPERSET_CONFIG.format(secret=secrets.token_urlsafe(32), home=home))
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(home / "superset_config.py"), "SUPERSET_HOME": str(home),
           "FLASK_APP": "superset.app:create_app()", "PYTHONWARNINGS": "ignore"}
    with report.step("superset db upgrade, create-admin, init (SQLite metadata in a temp folder)"):
        run([superset_bin, "db", "upgrade"], env=env)
        run([superset_bin, "fab", "create-admin", "--username", ADMIN, "--firstname", "Ada", "--lastname", "Admin",
             "--email", "admin@example.invalid", "--password", ADMIN_PASSWORD], env=env)
        run([superset_bin, "init"], env=env)
    with process(gateway_cmd, work / "gateway.log", env={**os.environ, "PYTHONPATH": str(ROOT)}) as gateway, \
            process(["nice", "-n", "10", superset_bin, "run", "-h", "127.0.0.1", "-p", str(superset_port),
                     "--with-threads"], work / "superset.log", env=env) as superset_proc:
        with report.step("gateway serve (demo catalog) answers /readyz"):
            wait_http(f"http://127.0.0.1:{http_port}/readyz", gateway, 60)
        with report.step("superset run answers /health"):
            wait_http(f"http://127.0.0.1:{superset_port}/health", superset_proc, 180)
        api = Superset(f"http://127.0.0.1:{superset_port}")
        uri = f"gateway+flightsql://127.0.0.1:{flight_port}"
        report.facts["sqlalchemy_uri"] = "gateway+flightsql://127.0.0.1:<port>"
        with report.step("POST /api/v1/database/test_connection/") as step:
            step["answer"] = api.post("/api/v1/database/test_connection/", {
                "database_name": "gateway", "sqlalchemy_uri": uri, "engine": "gateway"}).get("message")
        with report.step("POST /api/v1/database/ (the gateway's URI)") as step:
            created = api.post("/api/v1/database/", {"database_name": "gateway", "sqlalchemy_uri": uri,
                                                     "expose_in_sqllab": True})
            database_id = step["database_id"] = created["id"]
            # the engine spec of gateway/superset.py (entry point superset.db_engine_specs) is the one in use
            available = api.get("/api/v1/database/available/")["databases"]
            step["engine_spec"] = [e["name"] for e in available if e.get("engine") == "gateway"]
            assert step["engine_spec"] == ["Federated SQL Gateway"], step["engine_spec"]
        check_catalogs(api, database_id, config, report)
        with report.step("no catalog chosen: schemas source.schema, their tables and columns") as step:
            base = f"/api/v1/database/{database_id}"
            schemas = step["schemas"] = sorted(api.get(f"{base}/schemas/", q="(force:!t)")["result"])
            step["tables"] = {schema: sorted(t["value"] for t in api.get(
                f"{base}/tables/", q=f"(force:!t,schema_name:'{schema}')")["result"]) for schema in schemas}
            metadata = api.get(f"{base}/table_metadata/", name="customers", schema="demo_db.main")
            step["customers_columns"] = [[c["name"], c["type"]] for c in metadata["columns"]]
            assert {"demo_db.main", "demo_lake.main"} <= set(schemas), schemas
            assert {"customers", "products"} <= set(step["tables"]["demo_db.main"]), step["tables"]
            assert {"orders", "regions"} <= set(step["tables"]["demo_lake.main"]), step["tables"]
            assert step["customers_columns"][0][0] == "id", step["customers_columns"]
        with report.step("SQL Lab's table preview (the SELECT * Superset writes for demo_db.main.customers)") as step:
            step["select_star"] = metadata["selectStar"]
            preview = sqllab(api, database_id, metadata["selectStar"], None, "demo_db.main", limit=100)
            ids = sorted(r["id"] for r in preview["data"])
            known = [c["id"] for c in customers_db(config)]
            step["rows"] = len(ids)
            assert ids and len(ids) == min(100, len(known)) and set(ids) <= set(known), ids
        with report.step("POST /api/v1/sqllab/execute/ (a federated query) returns the expected rows") as step:
            answer = sqllab(api, database_id, FEDERATED_SQL, None, None)
            step["status"] = answer.get("status")
            step["executed_sql"] = (answer.get("query") or {}).get("executedSql")
            got = [[r["region"], r["orders"], round(float(r["total"]), 2)] for r in answer["data"]]
            want = [[r, n, round(t, 2)] for r, n, t in expected_rows(config)]
            step["rows"] = got
            assert got == want, f"Superset answered {got}, the demo files give {want}"
        with report.step("a dataset on demo_db.main.customers and a chart-data query Superset compiles") as step:
            dataset = api.post("/api/v1/dataset/", {"database": database_id, "schema": "demo_db.main",
                                                    "table_name": "customers"})
            columns = api.get(f"/api/v1/dataset/{dataset['id']}")["result"]["columns"]
            step["dataset_columns"] = [[c["column_name"], c["type"]] for c in columns]
            chart = api.post("/api/v1/chart/data", {
                "datasource": {"id": dataset["id"], "type": "table"}, "result_format": "json",
                "result_type": "full", "queries": [{"columns": ["region"], "metrics": ["count"],
                                                    "orderby": [["region", True]], "row_limit": 100}]})
            result = chart["result"][0]
            step["compiled_sql"] = result.get("query")
            got = [[r["region"], r["count"]] for r in result["data"]]
            want = sorted([r, n] for r, n in Counter(c["region"] for c in customers_db(config)).items())
            step["rows"] = got
            assert got == want, f"Superset answered {got}, the demo file gives {want}"
        with report.step("a time-series chart-data query: signups per month of 2023 (time grain, time range)") as step:
            chart = api.post("/api/v1/chart/data", {
                "datasource": {"id": dataset["id"], "type": "table"}, "result_format": "json",
                "result_type": "full", "queries": [{
                    "columns": [{"timeGrain": "P1M", "columnType": "BASE_AXIS", "sqlExpression": "signup_date",
                                 "label": "signup_date", "expressionType": "SQL"}],
                    "metrics": ["count"], "orderby": [["count", False]], "row_limit": 1000,
                    "filters": [{"col": "signup_date", "op": "TEMPORAL_RANGE",
                                 "val": "2023-01-01T00:00:00 : 2024-01-01T00:00:00"}]}]})
            result = chart["result"][0]
            step["compiled_sql"] = result.get("query")
            got = sorted([_month(r["signup_date"]), r["count"]] for r in result["data"])
            want = sorted([m, n] for m, n in Counter(
                c["signup_date"].strftime("%Y-%m") for c in customers_db(config) if c["signup_date"].year == 2023
            ).items())
            step["rows"] = got
            assert got == want, f"Superset answered {got}, the demo file gives {want}"


def main() -> int:
    """Run the check; print the report and write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Superset's virtualenv (made if missing)")
    parser.add_argument("--json-out", type=Path, default=ROOT / "bench" / "results" / "superset_check.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, Superset's database)")
    args = parser.parse_args()
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="gw-superset-check-"))
    print(f"Superset check (work folder {work})", flush=True)
    t0 = time.perf_counter()
    try:
        check(args, report, work)
        ok = True
    except Exception as exc:
        ok = False
        report.facts["failure"] = f"{type(exc).__name__}: {exc}"
        for name in ("gateway.log", "superset.log"):
            log = work / name
            if log.exists():
                report.facts[f"{name}_tail"] = log.read_text(errors="replace").splitlines()[-25:]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = {"ok": ok, "seconds": round(time.perf_counter() - t0, 1), **report.facts, "steps": report.steps,
              "query": FEDERATED_SQL, "catalog_query": CATALOG_SQL}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"{'PASSED' if ok else 'FAILED'} in {result['seconds']} s: Superset {report.facts.get('superset')} "
          f"(SQLAlchemy {report.facts.get('superset_sqlalchemy')}); report in {args.json_out}")
    if not ok:
        print(report.facts["failure"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
