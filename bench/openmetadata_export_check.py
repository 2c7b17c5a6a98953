"""Check ``gateway catalog export --format openmetadata`` with OpenMetadata's own models: every exported
request is parsed by the generated pydantic model of openmetadata-ingestion that an ingestion would send
(``metadata.generated.schema.api...``: ``CreateDatabaseServiceRequest``, ``CreateDatabaseRequest``,
``CreateDatabaseSchemaRequest``, ``CreateTableRequest``, ``CreateTableProfileRequest``, ``AddLineageRequest``
for the column lineage of named views; ``extra='forbid'``,
so an unknown member fails), dumped back and compared with what was exported (a member the model dropped or
changed is reported), its ``path`` compared with the package's REST routes
(``metadata.ingestion.ometa.routes.ROUTES``), and every reference resolved within the export (a database's
service, a schema's database, a table's schema, a foreign key's referred columns, a profile's table and
columns, a lineage edge's tables and columns).

What is exported: by default a catalog made for the check, so that keys and many types are covered: a
throwaway PostgreSQL database (``--pg``, default the test server; a composite primary key, foreign keys,
arrays, uuid, jsonb, timestamptz, numeric, bytea, a view, a name with a dot), a throwaway MariaDB database
(``--mysql``; unsigned keys, a composite key with a foreign key), a Parquet folder with nested and temporal
types, an Iceberg table in a SQL catalog on SQLite, the demo's SQLite source, and named views over them
(``VIEWS``: a join, CASE, an aggregate, a view over a view); or the catalog of
``--config``.

openmetadata-ingestion stays out of the project's venv: the check makes a venv of its own under /tmp (kept
and reused: ``--venv``) and installs ``openmetadata-ingestion`` there *without its dependencies* plus the
ones its generated models import (pydantic, pydantic-settings, email-validator, typing-inspect, as its
requirements pin them). A full install is not possible here: one of its dependencies
(dbt-core-experimental-parser) downloads a wheel from GitHub while it builds. For the same reason the
package's ``metadata/__init__.py`` (which registers the profiler and imports SQLAlchemy, cloud SDKs...) is
not run: ``metadata`` is loaded as a bare package, then its generated models and routes are imported as
they are::

    .venv/bin/python bench/openmetadata_export_check.py [--config FILE] [--venv DIR]

Prints a report per request type and writes ``bench/results/openmetadata_export_check.json``; exits 1 when
any request is rejected or a reference does not resolve.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
from pyiceberg.catalog.sql import SqlCatalog

from gateway.execution.engine import QueryEngine
from gateway.settings import Settings, load_settings, prepare, settings_from_dict
from gateway.trust.export import openmetadata_requests
from tests.conftest import MYSQL_URI, PG_URI, _mysql_params, _with_database

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "openmetadata_export_check.json"
#: what the generated models import, with the bounds openmetadata-ingestion's own requirements set
MODEL_REQUIREMENTS = ["pydantic>=2.12.5,<3", "pydantic-settings>=2.14.2,~=2.0", "email-validator>=2.0",
                      "typing-inspect"]

PG_TABLES = [
    "CREATE SCHEMA sales",
    "CREATE TABLE sales.customers (id bigint PRIMARY KEY, name text NOT NULL, email varchar(80), "
    "tags text[], ref uuid, attrs jsonb, created timestamptz, photo bytea)",
    "CREATE TABLE sales.orders (region char(2), order_no integer, customer_id bigint NOT NULL "
    "REFERENCES sales.customers (id), total numeric(12, 2), placed date, shipped timestamp, "
    "PRIMARY KEY (region, order_no))",
    "CREATE TABLE sales.order_lines (region char(2), order_no integer, line smallint, qty real, price double "
    "precision, PRIMARY KEY (region, order_no, line), FOREIGN KEY (region, order_no) REFERENCES sales.orders)",
    "CREATE TABLE public.\"dotted.name\" (\"a.b\" integer PRIMARY KEY, flag boolean)",
    "CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE total > 100",
    "INSERT INTO sales.customers SELECT g, 'c' || g, 'u' || g || '@example.com', ARRAY['a'], NULL, NULL, "
    "now(), NULL FROM generate_series(1, 50) g",
    "INSERT INTO sales.orders SELECT CASE WHEN g % 2 = 0 THEN 'EU' ELSE 'US' END, g, 1 + g % 50, g * 3.5, "
    "DATE '2024-01-01' + g, NULL FROM generate_series(1, 200) g",
    "ANALYZE",
]
MARIA_TABLES = [
    "CREATE TABLE {db}.parts (p_id INT UNSIGNED PRIMARY KEY, p_name VARCHAR(55) NOT NULL, p_price DECIMAL(15, 2), "
    "p_added DATETIME, p_flag TINYINT(1), p_blob BLOB)",
    "CREATE TABLE {db}.stock (s_part INT UNSIGNED, s_site SMALLINT, s_qty BIGINT, PRIMARY KEY (s_part, s_site), "
    "FOREIGN KEY (s_part) REFERENCES {db}.parts (p_id)) ENGINE=InnoDB",
    "INSERT INTO {db}.parts SELECT seq, CONCAT('part', seq), seq * 1.5, NOW(), seq % 2, NULL FROM seq_1_to_20",
    "ANALYZE TABLE {db}.parts",
]

#: named views of the check's catalog (a join across sources, CASE, an aggregate; a view over a view)
VIEWS = [
    {"name": "bi.sales.by_customer", "description": "orders per customer",
     "sql": "SELECT c.name AS customer, count(*) AS orders, sum(o.total) AS total, CASE WHEN o.region = 'EU' "
            "THEN 'europe' ELSE lower(o.region) END AS area FROM pg.sales.orders o JOIN pg.sales.customers c "
            "ON c.id = o.customer_id GROUP BY c.name, o.region"},
    {"name": "bi.sales.parts_stock", "sql": "SELECT p.p_name, s.s_qty FROM maria.{db}.parts p JOIN maria.{db}.stock s "
                                             "ON s.s_part = p.p_id"},
    {"name": "bi.sales.big", "sql": "SELECT customer, total FROM bi.sales.by_customer WHERE total > 100"},
]

CHECK = r'''
import importlib.util, json, sys, types
spec = importlib.util.find_spec("metadata")
bare = types.ModuleType("metadata")
bare.__path__ = list(spec.submodule_search_locations)  # metadata/__init__.py is not run (see the docstring)
sys.modules["metadata"] = bare
from importlib.metadata import version
from metadata.generated.schema.api.data.createDatabase import CreateDatabaseRequest
from metadata.generated.schema.api.data.createDatabaseSchema import CreateDatabaseSchemaRequest
from metadata.generated.schema.api.data.createTable import CreateTableRequest
from metadata.generated.schema.api.data.createTableProfile import CreateTableProfileRequest
from metadata.generated.schema.api.services.createDatabaseService import CreateDatabaseServiceRequest
from metadata.generated.schema.api.lineage.addLineage import AddLineageRequest
from metadata.ingestion.ometa.routes import ROUTES

MODELS = {m.__name__: m for m in (CreateDatabaseServiceRequest, CreateDatabaseRequest, CreateDatabaseSchemaRequest,
                                  CreateTableRequest, CreateTableProfileRequest, AddLineageRequest)}
PROFILE_PATH = "/v1/tables/{id}/tableProfile"  # metadata.ingestion.ometa.mixins.table_mixin.ingest_profile_data


def diff(sent, back, where=""):
    """Members of ``sent`` the model dropped or changed (numbers compared as numbers)."""
    if isinstance(sent, dict):
        out = []
        for k, v in sent.items():
            if not isinstance(back, dict) or k not in back:
                out.append(f"{where}.{k} dropped")
            else:
                out.extend(diff(v, back[k], f"{where}.{k}"))
        return out
    if isinstance(sent, list):
        if not isinstance(back, list) or len(back) != len(sent):
            return [f"{where} changed length"]
        return [d for i, (a, b) in enumerate(zip(sent, back)) for d in diff(a, b, f"{where}[{i}]")]
    if isinstance(sent, (int, float)) and not isinstance(sent, bool) and isinstance(back, (int, float)):
        return [] if float(sent) == float(back) else [f"{where}: {sent!r} -> {back!r}"]
    return [] if sent == back else [f"{where}: {sent!r} -> {back!r}"]


requests = json.load(open(sys.argv[1]))
report = {"package": "openmetadata-ingestion " + version("openmetadata-ingestion"),
          "pydantic": version("pydantic"), "requests": len(requests), "by_type": {}, "rejected": [],
          "changed": [], "bad_paths": [], "unresolved": []}
services, databases, schemas, tables = set(), set(), set(), {}
for r in requests:
    kind = r["type"]
    report["by_type"][kind] = report["by_type"].get(kind, 0) + 1
    want = PROFILE_PATH if kind == "CreateTableProfileRequest" else "/v1" + ROUTES[kind]
    if r["path"] != want or r["method"] != "PUT":
        report["bad_paths"].append(f"{kind}: {r['method']} {r['path']} (the client sends PUT {want})")
    try:
        model = MODELS[kind].model_validate(r["entity"])
    except Exception as exc:
        report["rejected"].append({"type": kind, "name": r.get("table") or r["entity"].get("name"),
                                   "error": str(exc)[:2000]})
        continue
    back = json.loads(model.model_dump_json(exclude_none=True))
    label = r.get("table") or r["entity"].get("name") or f"{r.get('from_table')} -> {r.get('to_table')}"
    report["changed"].extend(f"{kind} {label}{d}" for d in diff(r["entity"], back))
    e = r["entity"]
    if kind == "CreateDatabaseServiceRequest":
        services.add(e["name"])
    elif kind == "CreateDatabaseRequest":
        databases.add(f"{e['service']}.{e['name']}")
        if e["service"] not in services:
            report["unresolved"].append(f"database {e['name']}: service {e['service']}")
    elif kind == "CreateDatabaseSchemaRequest":
        schemas.add(f"{e['database']}.{e['name']}")
        if e["database"] not in databases:
            report["unresolved"].append(f"schema {e['name']}: database {e['database']}")
    elif kind == "CreateTableRequest":
        name = e["name"] if "." not in e["name"] else f'"{e["name"]}"'
        tables[f"{e['databaseSchema']}.{name}"] = {c["name"] for c in e["columns"]}
        if e["databaseSchema"] not in schemas:
            report["unresolved"].append(f"table {e['name']}: schema {e['databaseSchema']}")
    elif kind == "AddLineageRequest":  # both tables exported before, every column of the edge theirs
        for side in ("from_table", "to_table"):
            if r[side] not in tables:
                report["unresolved"].append(f"lineage {label}: no table {r[side]}")
        for c in e["edge"]["lineageDetails"].get("columnsLineage") or []:
            for fqn, side in [(f, "from_table") for f in c["fromColumns"]] + [(c["toColumn"], "to_table")]:
                table, _, column = fqn.rpartition(".")
                if table != r[side] or column.strip('"') not in tables.get(table, set()):
                    report["unresolved"].append(f"lineage {label}: column {fqn}")
    else:
        columns = tables.get(r["table"])
        if columns is None:
            report["unresolved"].append(f"profile of {r['table']}: no such table")
        else:
            report["unresolved"].extend(f"profile of {r['table']}: column {c['name']}" for c in e["columnProfile"]
                                        if c["name"] not in columns)
for r in requests:  # foreign keys may refer to tables exported after theirs
    for c in r["entity"].get("tableConstraints") or []:
        for ref in c.get("referredColumns") or []:
            table, _, column = ref.rpartition(".")
            if column.strip('"') not in tables.get(table, set()):
                report["unresolved"].append(f"{r['entity']['name']}: foreign key to {ref}")
print(json.dumps(report))
sys.exit(1 if report["rejected"] or report["bad_paths"] or report["unresolved"] else 0)
'''


def ensure_venv(path: Path) -> Path:
    """A venv at ``path`` with openmetadata-ingestion (no dependencies) and its models' requirements; made
    and installed on first use (``nice``d: the machine is shared), reused after."""
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; m.version('openmetadata-ingestion');"
                            "import pydantic_settings, email_validator, typing_inspect"], capture_output=True)
    if probe.returncode != 0:
        pip = ["nice", "-n", "10", str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for step in (["--no-deps", "openmetadata-ingestion"], MODEL_REQUIREMENTS):
            done = subprocess.run([*pip, *step], capture_output=True, text=True)  # pip's resolver warns of
            if done.returncode != 0:  # the dependencies left out: shown only when the install fails
                sys.exit(f"pip install {' '.join(step)} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return python


def check_catalog(pg_server: str, mysql_server: str, lake: Path) -> tuple[Settings, Callable[[], None]]:
    """Settings over throwaway PostgreSQL and MariaDB databases, a Parquet folder, an Iceberg SQL catalog on
    SQLite and the demo's SQLite file; and the function that drops the databases."""
    import adbc_driver_postgresql.dbapi as pg

    name = f"gw_om_check_{secrets.token_hex(4)}"
    maria = pymysql.connect(autocommit=True, **_mysql_params(mysql_server))

    def drop() -> None:
        with pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        with maria.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        maria.close()

    try:
        with pg.connect(pg_server, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        uri = _with_database(pg_server, name)
        with pg.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            for statement in PG_TABLES:
                cur.execute(statement)
        with maria.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"USE {name}")
            for statement in MARIA_TABLES:
                cur.execute(statement.format(db=name))
    except BaseException:
        drop()
        raise
    lake.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "id": pa.array([1, 2], pa.uint32()), "big": pa.array([1, 2], pa.uint64()),
        "at": pa.array([0, 1], pa.timestamp("us", tz="UTC")), "t": pa.array([0, 1], pa.time64("us")),
        "d": pa.array([0, 1], pa.date32()), "hash": pa.array([b"0123", b"4567"], pa.binary(4)),
        "scores": pa.array([[1.5], []], pa.list_(pa.float32())),
        "address": pa.array([{"city": "Oslo", "zip": 1}, {"city": "Rome", "zip": 2}]),
        "props": pa.array([[("k", "v")], []], pa.map_(pa.string(), pa.string())),
        "kind": pa.array(["a", "b"]).dictionary_encode(), "dur": pa.array([1, 2], pa.duration("s")),
    }), lake / "events.parquet")
    ice = SqlCatalog("om_check", uri=f"sqlite:///{lake.parent}/iceberg.db", warehouse=f"file://{lake.parent}/wh")
    ice.create_namespace("sales")
    ice.create_table("sales.events", schema=pa.schema([("id", pa.int64()), ("at", pa.timestamp("us")),
                                                       ("payload", pa.string())]))
    ice.engine.dispose()
    demo = next(s for s in load_settings(None).sources if s.kind == "sqlite")
    settings = settings_from_dict({"sources": [
        {"name": "pg", "kind": "postgresql", "uri": uri},
        {"name": "maria", "kind": "mysql", "uri": urlunsplit(urlsplit(mysql_server)._replace(path=f"/{name}"))},
        {"name": "lake", "kind": "parquet", "path": str(lake)},
        {"name": "ice", "kind": "iceberg", "uri": f"sqlite:///{lake.parent}/iceberg.db",
         "warehouse": str(lake.parent / "wh"), "catalog_name": "om_check"},
        {"name": "demo_db", "kind": "sqlite", "path": str(demo.path)},
    ], "views": [{**v, "sql": v["sql"].format(db=name)} for v in VIEWS]}, base_dir=lake.parent)
    return settings, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="gateway config to export (default: the check's own catalog)")
    parser.add_argument("--venv", default="/tmp/openmetadata-check-venv", help="venv for openmetadata-ingestion")
    parser.add_argument("--pg", default=PG_URI, help="PostgreSQL server for the check's own database "
                        "(default: the tests', $GATEWAY_TEST_PG)")
    parser.add_argument("--mysql", default=MYSQL_URI, help="MariaDB server for the check's own database "
                        "(default: the tests', $GATEWAY_TEST_MYSQL)")
    args = parser.parse_args()
    started = time.perf_counter()
    python = ensure_venv(Path(args.venv))
    installed = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="openmetadata-export-"))
    drop = None
    if args.config:
        settings = prepare(load_settings(args.config))
    else:
        settings, drop = check_catalog(args.pg, args.mysql, work / "lake")
    try:
        engine = QueryEngine(settings)
        try:
            exported = time.perf_counter()
            requests = openmetadata_requests(engine.catalog)
            exported = time.perf_counter() - exported
        finally:
            engine.close()
    finally:
        if drop is not None:
            drop()
    path = work / "catalog.openmetadata.json"
    path.write_text(json.dumps(requests, indent=1))
    done = subprocess.run([str(python), "-c", CHECK, str(path)], capture_output=True, text=True)
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(done.stdout[-2000:], done.stderr[-4000:])
        sys.exit(1)
    report.update(catalog=args.config or "check catalog (PostgreSQL, MariaDB, Parquet, Iceberg, SQLite)",
                  export_s=round(exported, 3), venv_ready_s=round(installed, 1),
                  types=sorted({c["dataType"] for r in requests if r["type"] == "CreateTableRequest"
                                for c in r["entity"]["columns"]}),
                  service_types=sorted({r["entity"]["serviceType"] for r in requests
                                        if r["type"] == "CreateDatabaseServiceRequest"}),
                  ok=done.returncode == 0, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    RESULT.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['requests']} requests exported in {exported:.2f} s to {path}; {report['package']}, "
          f"pydantic {report['pydantic']}")
    for kind, n in report["by_type"].items():
        print(f"  {kind:32} {n:4} parsed")
    for key in ("rejected", "changed", "bad_paths", "unresolved"):
        print(f"  {key}: {len(report[key])}")
        for item in report[key][:20]:
            print(f"    {item}")
    print(f"column types: {', '.join(report['types'])}; service types: {', '.join(report['service_types'])}")
    print(f"{'OK' if report['ok'] else 'FAILED'} -> {RESULT.relative_to(ROOT)}")
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
