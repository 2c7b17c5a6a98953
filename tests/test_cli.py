"""The ``gateway`` console script, run as a real subprocess on a temp copy of the demo config.

Expected values come from the demo files directly (sqlite3, pyarrow.dataset), never through the gateway.
"""

from __future__ import annotations

import contextlib
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
    # table is the default format; --max-rows 0: every row (the default cap is above 60 anyway)
    result = run_cli("query", JOIN_SQL, "--config", str(demo_config), "--max-rows", "0")
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
        health = wait_for_health(f"http://127.0.0.1:{http_port}", 60.0, alive=lambda: process.poll() is None)
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


# -- SQL input, formats, the table cap, help texts (issue 13) ----------------------------------------------------

def run_with(*args: str, input: str | bytes | None = None, env: dict | None = None, text: bool = True,
             timeout: float = 60.0) -> subprocess.CompletedProcess:
    """The CLI with ``input`` on stdin (an empty stdin when None) and extra environment variables."""
    return subprocess.run(
        [*gateway_command(), *args], check=False, capture_output=True, text=text, env=cli_env(**(env or {})),
        input=input if input is not None else ("" if text else b""), timeout=timeout,
    )


REGION_SQL = "-- customers per region\nSELECT region, count(*) AS n FROM demo_db.customers GROUP BY region ORDER BY region"


def test_sql_from_argument_stdin_and_files_with_a_leading_comment(demo_config, tmp_path):
    counts = {}
    for c in customers_db(demo_config):
        counts[c["region"]] = counts.get(c["region"], 0) + 1
    expected = [["region", "n"], *([r, str(n)] for r, n in sorted(counts.items()))]
    sql_file = tmp_path / "regions.sql"
    sql_file.write_text(REGION_SQL + ";\n")
    ways = {
        "argument": ([REGION_SQL], None), "dash": (["-"], REGION_SQL), "piped": ([], REGION_SQL),
        "at-file": ([f"@{sql_file}"], None), "--file": (["--file", str(sql_file)], None), "-f -": (["-f", "-"], REGION_SQL),
    }
    for way, (args, stdin) in ways.items():
        result = run_with("query", *args, "--config", str(demo_config), "--format", "csv", input=stdin)
        assert result.returncode == 0, (way, result.stderr)
        assert list(csv.reader(io.StringIO(result.stdout))) == expected, way


def test_a_file_of_statements_runs_them_in_order(demo_config, tmp_path):
    sql_file = tmp_path / "two.sql"
    sql_file.write_text("SELECT 1 AS a;\n-- the second one; with a semicolon in a comment\nSELECT 'x;y' AS b;\n")
    result = run_with("query", "-f", str(sql_file), "--config", str(demo_config), "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["a", "1", "b", "x;y"]


@pytest.mark.parametrize(("args", "message"), [
    (["SELECT 1", "--file", "x.sql"], "not both"),
    (["--file", "/nonexistent/q.sql"], "cannot read the SQL file '/nonexistent/q.sql'"),
    (["@/nonexistent/q.sql"], "cannot read the SQL file '/nonexistent/q.sql'"),
    (["-- only a comment"], "no SQL statement"),
    (["SELECT 1", "--format", "xml"], "'xml' is not one of table, csv, json"),
])
def test_bad_sql_input_is_a_usage_error(demo_config, args, message):
    result = run_with("query", *args, "--config", str(demo_config))
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def _typed(rows: list[dict]) -> list[dict]:
    """Rows as JSON text gives them: ints as numbers, decimals and dates as strings, None as null."""
    return [{k: (v if v is None or isinstance(v, int | str) else text_of(v)) for k, v in r.items()} for r in rows]


def test_formats_ndjson_markdown_parquet_arrow(demo_config, join_reference, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ndjson = run_with("query", JOIN_SQL, "--config", str(demo_config), "--format", "ndjson")
    assert ndjson.returncode == 0, ndjson.stderr
    assert [json.loads(line) for line in ndjson.stdout.splitlines()] == _typed(join_reference)

    markdown = run_with("query", JOIN_SQL, "--config", str(demo_config), "--format", "markdown")
    lines = markdown.stdout.splitlines()
    assert lines[0] == "| " + " | ".join(JOIN_COLUMNS) + " |" and set(lines[1]) <= set("|-:")
    assert [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]] == [
        ["NULL" if v is None else text_of(v) for v in r.values()] for r in join_reference]

    target = tmp_path / "join.parquet"
    parquet = run_with("query", JOIN_SQL, "--config", str(demo_config), "--format", "parquet", "-o", str(target))
    assert parquet.returncode == 0 and parquet.stdout == "", parquet.stderr
    assert pq.read_table(target).to_pylist() == join_reference

    arrow = run_with("query", JOIN_SQL, "--config", str(demo_config), "--format", "arrow", text=False)
    assert arrow.returncode == 0, arrow.stderr
    assert pa.ipc.open_stream(arrow.stdout).read_all().to_pylist() == join_reference


def test_binary_format_refused_on_a_terminal(demo_config):
    import pty

    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([*gateway_command(), "query", "SELECT 1", "--config", str(demo_config),
                                 "--format", "parquet"], stdout=terminal, stderr=subprocess.PIPE, text=True,
                                env=cli_env(), timeout=60, check=False)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 2
    assert "parquet output is binary: write it with --output FILE or redirect stdout" in " ".join(result.stderr.split())


def _body(stdout: str) -> list[str]:
    return [line.strip("│").strip() for line in stdout.splitlines() if line.startswith("│")]


def test_table_output_is_capped_to_first_and_last_rows(demo_config):
    ids = sorted(orders_table(demo_config, columns=["order_id"]).column(0).to_pylist())
    result = run_cli("query", "SELECT order_id FROM demo_lake.orders ORDER BY order_id", "--config", str(demo_config))
    assert result.returncode == 0, result.stderr
    assert _body(result.stdout) == [str(i) for i in ids[:20]] + ["…"] + [str(i) for i in ids[-20:]]
    assert "5,000 rows, 4,960 rows more not shown" in result.stdout

    result = run_cli("query", "SELECT order_id FROM demo_lake.orders ORDER BY order_id", "--config", str(demo_config),
                     "--max-rows", "6")
    assert _body(result.stdout) == [str(i) for i in ids[:3]] + ["…"] + [str(i) for i in ids[-3:]]


HELP_COMMANDS = [[], ["query"], ["explain"], ["shell"], ["serve"], ["catalog"], ["catalog", "stats"], ["cache"],
                 ["cache", "status"], ["cache", "warm"], ["cache", "clear"]]


def test_help_texts_are_clean():
    """No typer type labels (``<str>``, ``<bool>``...) nor ``{sql}``-style braces in any command's help."""
    from typer.testing import CliRunner

    from gateway.cli import app

    runner = CliRunner()
    for args in HELP_COMMANDS:
        result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output)
        assert "Usage: " in result.output
        for label in ("<str>", "<bool>", "<path>", "<float>", "<int>", "{"):
            assert label not in result.output, (args, label, result.output)
    query_help = runner.invoke(app, ["query", "--help"], env={"COLUMNS": "200"}).output
    assert "[SQL]" in query_help and re.search(r"--format\s+FORMAT", query_help)


# -- --server: the same commands through the Python client (Flight SQL) -------------------------------------------

@pytest.fixture(scope="module")
def demo_server(demo_config) -> str:
    """A real Flight SQL server over the demo config, in this process; its grpc:// URI."""
    from gateway.settings import load_settings, prepare
    from tests.flight_support import serve

    with serve(prepare(load_settings(demo_config))) as (uri, _):
        yield uri


def test_query_and_explain_through_a_server(demo_server, join_reference, tmp_path):
    result = run_with("query", JOIN_SQL, "--server", demo_server, "--format", "json", "--config",
                      str(tmp_path / "no-config-needed.toml"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == _typed(join_reference)

    # the address also comes from the environment; host:port means grpc://host:port
    result = run_with("explain", EXPLAIN_SQL, env={"GATEWAY_SERVER": demo_server.removeprefix("grpc://")})
    assert result.returncode == 0, result.stderr
    assert "source 'demo_db'" in result.stdout and "source 'demo_lake'" in result.stdout

    result = run_with("query", "SELECT id, emial FROM demo_db.customers", "--server", demo_server)
    assert result.returncode == 2
    assert result.stderr.startswith("error (unknown_object): unknown column 'emial'")

    result = run_with("query", "SELECT 1", "--server", "http://nowhere")
    assert result.returncode == 2 and "not a Flight SQL address" in result.stderr


# -- Ctrl-C and the spinner, on a PostgreSQL view that sleeps ------------------------------------------------------

@pytest.fixture(scope="module")
def pg_config(tmp_path_factory, pg_database) -> Path:
    """A config with one PostgreSQL source holding ``bi.slow`` (60 s) and ``bi.nap`` (2 s)."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    from tests.flight_support import setup_pg

    setup_pg(pg_database)
    with adbc_pg.connect(pg_database, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE VIEW bi.nap AS SELECT g AS n FROM pg_sleep(2), generate_series(1, 3) g")
    config = tmp_path_factory.mktemp("pg_cli") / "gateway.toml"
    config.write_text(f'[[sources]]\nname = "pg"\nkind = "postgresql"\nuri = "{pg_database}"\n')
    return config


def _wait(predicate, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


@pytest.mark.parametrize("where", ["in-process", "server"])
def test_ctrl_c_cancels_the_source_query_and_exits_130(pg_config, pg_database, pg_server, where):
    from urllib.parse import urlsplit

    from gateway.settings import load_settings, prepare
    from tests.flight_support import serve, slow_backends

    names = (pg_server, urlsplit(pg_database).path.lstrip("/"))
    with contextlib.ExitStack() as stack:
        target = ["--config", str(pg_config)]
        if where == "server":
            uri, _ = stack.enter_context(serve(prepare(load_settings(pg_config))))
            target = ["--server", uri]
        process = subprocess.Popen([*gateway_command(), "query", "SELECT s FROM pg.bi.slow", *target],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
        try:
            assert _wait(lambda: slow_backends(*names), 30), "the query never reached PostgreSQL"
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 130, err
        assert "cancelled" in err and out == ""
        assert _wait(lambda: not slow_backends(*names), 15), slow_backends(*names)


def test_spinner_shows_time_and_rows_on_a_terminal_only(pg_config):
    import pty
    import threading

    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        result = subprocess.run([*gateway_command(), "query", "SELECT n FROM pg.bi.nap ORDER BY n", "--config",
                                 str(pg_config), "--format", "csv"], stdout=subprocess.PIPE, stderr=terminal,
                                text=True, env=cli_env(TERM="xterm-256color"), timeout=60, check=False)
    finally:
        os.close(terminal)
        reader.join(5)
        os.close(controller)
    assert result.returncode == 0 and result.stdout.split() == ["n", "1", "2", "3"]
    shown = b"".join(chunks).decode(errors="replace")
    assert re.search(r"running \d+\.\d s · \d+ rows · \d+ B", shown), shown

    piped = run_with("query", "SELECT n FROM pg.bi.nap", "--config", str(pg_config), "--format", "csv")
    assert piped.returncode == 0 and piped.stderr == ""


# -- cache status is a table -----------------------------------------------------------------------------------

def test_cache_status_prints_tables(demo_config):
    from gateway.api.app import create_app
    from gateway.execution.engine import QueryEngine
    from gateway.settings import load_settings, prepare
    from tests.demo_support import running_app

    engine = QueryEngine(prepare(load_settings(demo_config)))
    try:
        with running_app(create_app(engine)) as url:
            result = run_with("cache", "status", "--url", url)
            as_json = run_with("cache", "status", "--url", url, "--json")
    finally:
        engine.close()
    assert result.returncode == 0, result.stderr
    assert "cached partition(s)" in result.stdout and "counters" in result.stdout and "memory" in result.stdout
    assert "{" not in result.stdout and "'" not in result.stdout
    assert set(json.loads(as_json.stdout)) >= {"entries", "memory", "disk", "stats"}
