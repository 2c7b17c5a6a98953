"""The ``gateway`` console script, run as a real subprocess on a temp copy of the demo config.

Expected values come from the demo files directly (sqlite3, pyarrow.dataset), never through the gateway.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pytest

from gateway.client import connect
from tests.demo_support import (
    customers_db,
    free_port,
    orders_dataset,
    orders_table,
    wait_for_health,
)

# orders (Parquet) JOIN customers (SQLite); NULLs in email (customer id % 17 == 0) and status
JOIN_SQL = (
    "SELECT o.order_id, c.name, c.email, c.credit_limit, o.total, o.order_date, o.status "
    "FROM demo_lake.orders o JOIN demo_db.customers c ON c.id = o.customer_id "
    "WHERE o.order_id <= 60 ORDER BY o.order_id"
)
JOIN_COLUMNS = ["order_id", "name", "email", "credit_limit", "total", "order_date", "status"]


def gateway_command() -> list[str]:
    """The installed console script next to this interpreter (else the module it points to)."""
    script = Path(sys.executable).with_name("gateway")
    found = str(script) if script.exists() else shutil.which("gateway")
    return [found] if found else [sys.executable, "-m", "gateway.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # rich lays out for an 80-column terminal when stdout/stderr are pipes, wrapping and truncating long
    # lines and table cells with "…"; a wide virtual terminal keeps every value whole.
    env["COLUMNS"] = "400"
    env.pop("GATEWAY_TEST_UNSET_SECRET", None)
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*gateway_command(), *args], check=False, capture_output=True, text=True, env=cli_env(), timeout=timeout,
    )


@pytest.fixture(scope="session")
def join_reference(demo_config) -> list[dict]:
    """JOIN_SQL computed from the files, typed as the gateway types them (Decimal, date, None)."""
    customers = {c["id"]: c for c in customers_db(demo_config)}
    orders = orders_table(demo_config, ds.field("order_id") <= 60).to_pylist()
    rows = []
    for o in sorted(orders, key=lambda o: o["order_id"]):
        c = customers[o["customer_id"]]
        rows.append({
            "order_id": o["order_id"], "name": c["name"], "email": c["email"], "credit_limit": c["credit_limit"],
            "total": o["total"], "order_date": o["order_date"], "status": o["status"],
        })
    assert len(rows) == 60
    assert any(r["email"] is None for r in rows) and any(r["status"] is None for r in rows)
    return rows


def text_of(value) -> str:
    """str() of a value, as the table and CSV formats print it (dates ISO, decimals with their scale)."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# -- gateway query ---------------------------------------------------------------------------------------

def test_query_json(demo_config, join_reference):
    result = run_cli("query", JOIN_SQL, "--config", str(demo_config), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [list(r) for r in rows] == [JOIN_COLUMNS] * len(rows)
    expected = [
        {k: (None if v is None else v if isinstance(v, int | str) else text_of(v)) for k, v in r.items()}
        for r in join_reference
    ]
    assert rows == expected
    assert isinstance(rows[0]["order_id"], int) and rows[0]["total"] == str(join_reference[0]["total"])


def test_query_csv(demo_config, join_reference):
    result = run_cli("query", JOIN_SQL, "--config", str(demo_config), "--format", "csv")
    assert result.returncode == 0, result.stderr
    records = list(csv.reader(io.StringIO(result.stdout)))
    assert records[0] == JOIN_COLUMNS
    # CSV writes NULL as an empty field
    assert records[1:] == [["" if v is None else text_of(v) for v in r.values()] for r in join_reference]


def test_query_table(demo_config, join_reference):
    result = run_cli("query", JOIN_SQL, "--config", str(demo_config))  # table is the default format
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = [cell.strip() for cell in next(line for line in lines if line.startswith("┃")).strip("┃").split("┃")]
    assert header == JOIN_COLUMNS
    body = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    assert body == [["NULL" if v is None else text_of(v) for v in r.values()] for r in join_reference]


def test_query_sql_error_exits_2(demo_config):
    result = run_cli("query", "SELECT id, emial FROM demo_db.customers", "--config", str(demo_config))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error (unknown_object): unknown column 'emial'")
    assert "did you mean: email" in result.stderr

    result = run_cli("query", "DROP TABLE demo_db.customers", "--config", str(demo_config))
    assert result.returncode == 2
    assert result.stderr.startswith("error (unsupported_statement): DROP statements are refused")
    assert customers_db(demo_config, "id = 1")  # nothing was dropped


# -- gateway explain -------------------------------------------------------------------------------------

EXPLAIN_SQL = (
    "SELECT c.region, count(*) AS n FROM demo_db.customers c JOIN demo_lake.orders o ON o.customer_id = c.id "
    "WHERE c.region = 'north' AND o.year = 2024 GROUP BY c.region"
)


def test_explain(demo_config):
    result = run_cli("explain", EXPLAIN_SQL, "--config", str(demo_config))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Fragment" in out and "Residual" in out
    assert "source 'demo_db'" in out and "source 'demo_lake'" in out
    # the SQLite fragment's SQL carries the region filter
    sqlite_sql = re.search(r"source 'demo_db'.*?SQL: (.*?)$", out, re.DOTALL | re.MULTILINE).group(1)
    assert "'north'" in sqlite_sql and "WHERE" in sqlite_sql
    assert "returned:" not in out  # no run without --analyze


def test_explain_analyze_counts_rows_per_fragment(demo_config):
    result = run_cli("explain", EXPLAIN_SQL, "--config", str(demo_config), "--analyze")
    assert result.returncode == 0, result.stderr
    returned = dict(re.findall(r"source '(\w+)'.*?returned: (\d+) rows", result.stdout, re.DOTALL))
    north = customers_db(demo_config, "region = 'north'")
    # a dynamic filter sends the north customers' ids into the orders scan: only their 2024 orders move
    north_ids = [c["id"] for c in north]
    joinable = orders_dataset(demo_config).count_rows(
        filter=(ds.field("year") == 2024) & ds.field("customer_id").isin(north_ids))
    assert returned == {"demo_db": str(len(north)), "demo_lake": str(joinable)}
    assert "dynamic filter: customer_id IN" in result.stdout


# -- bad configs -----------------------------------------------------------------------------------------

GOOD_SOURCES = """
[[sources]]
name = "demo_db"
kind = "sqlite"
path = "demo_data/demo.db"
"""

BAD_CONFIGS = {
    "unknown_kind": (
        "query", GOOD_SOURCES + '\n[[sources]]\nname = "mongo"\nkind = "mongodb"\npath = "x"\n',
        ["sources[1].kind", "unknown source kind 'mongodb'", "sqlite"],
    ),
    "missing_path": (
        "serve", '[[sources]]\nname = "crm"\nkind = "sqlite"\n',
        ["sources[0].path", "required for a 'sqlite' source"],
    ),
    "toml_syntax": (
        "explain", 'demo = false\n\n[server\nhost = "127.0.0.1"\n',
        ["not valid TOML", "line 3"],
    ),
    "unset_env_var": (
        "serve", GOOD_SOURCES + '\n[[sources]]\nname = "lake"\nkind = "parquet"\npath = "${GATEWAY_TEST_UNSET_SECRET}/x"\n',
        ["sources[1].path", "environment variable GATEWAY_TEST_UNSET_SECRET is not set"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_naming_key_and_reason(tmp_path, case):
    command, text, expected = BAD_CONFIGS[case]
    config = tmp_path / f"{case}.toml"
    config.write_text(text)
    args = ["--flight-port", str(free_port()), "--http-port", str(free_port())] if command == "serve" else ["SELECT 1"]
    result = run_cli(command, *args, "--config", str(config), timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error (config_error): ")
    assert f"{case}.toml" in result.stderr  # names the file
    for fragment in expected:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_sqlite_file_is_source_unavailable(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(GOOD_SOURCES.replace("demo_data/demo.db", "nowhere/demo.db"))
    result = run_cli("query", "SELECT count(*) FROM demo_db.customers", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith("error (source_unavailable): source 'demo_db' is unavailable")
    assert str(tmp_path / "nowhere" / "demo.db") in result.stderr
    assert not (tmp_path / "nowhere").exists()  # opened read-only: nothing created


def test_missing_sqlite_file_message_names_the_source_once(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(GOOD_SOURCES.replace("demo_data/demo.db", "nowhere/demo.db"))
    result = run_cli("query", "SELECT count(*) FROM demo_db.customers", "--config", str(config))
    assert result.stderr.count("is unavailable") == 1


@pytest.mark.parametrize("name", ["x[bold]y", "a[/b]"])
def test_error_message_is_printed_verbatim(demo_config, name):
    result = run_cli("query", f'SELECT * FROM "{name}"', "--config", str(demo_config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error (unknown_object): unknown table '{name}'")


# -- gateway serve ---------------------------------------------------------------------------------------

def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            pytest.fail("gateway serve did not stop within 15 s of SIGINT")
    return process.returncode


def test_serve_answers_http_and_flight_sql(demo_config, tmp_path):
    flight_port, http_port = free_port(), free_port()
    while http_port == flight_port:
        http_port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*gateway_command(), "serve", "--config", str(demo_config), "--flight-port", str(flight_port),
             "--http-port", str(http_port)],
            stdout=subprocess.DEVNULL, stderr=log, env=cli_env(),
        )
    try:
        health = wait_for_health(f"http://127.0.0.1:{http_port}", 20.0, alive=lambda: process.poll() is None)
        assert health == {"status": "ok"}

        expected = orders_dataset(demo_config).count_rows()
        with connect(f"grpc://127.0.0.1:{flight_port}") as conn:
            table = conn.query("SELECT count(*) AS n FROM demo_lake.orders")
            assert table.column("n").to_pylist() == [expected] == [5000]
            active = conn.query("SELECT count(*) AS n FROM demo_db.customers WHERE active")
            assert active.column("n").to_pylist() == [len(customers_db(demo_config, "active"))]

        # the REST side of the same process sees the same data
        rest = httpx.post(f"http://127.0.0.1:{http_port}/v1/query",
                          json={"sql": "SELECT sum(total) AS s FROM demo_lake.orders WHERE year = 2023"}, timeout=30)
        total_2023 = sum(orders_table(demo_config, ds.field("year") == 2023, ["total"]).column(0).to_pylist(),
                         Decimal("0.00"))
        assert rest.json()["rows"] == [[str(total_2023)]]
    finally:
        returncode = _stop(process)
    assert returncode == 0

    logs = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    by_message = {entry["msg"]: entry for entry in logs}
    assert by_message["Flight SQL server listening"]["uri"] == f"grpc://127.0.0.1:{flight_port}"
    assert by_message["REST API listening"]["url"] == f"http://127.0.0.1:{http_port}"
    assert all(entry["level"] != "error" for entry in logs), logs
