"""``gateway shell``: the real shell code over the real engine (in-process) and over a real Flight SQL server,
driven through prompt_toolkit's pipe input and DummyOutput, plus one subprocess fed a script on stdin.

Expected values come from the demo files (sqlite3, pyarrow.dataset), never through the gateway.
"""

from __future__ import annotations

import io
import subprocess

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from gateway import terminal
from gateway.client import connect
from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings, prepare
from gateway.shell import Shell, history_path
from tests.demo_support import customers_db, orders_dataset
from tests.flight_support import serve
from tests.test_cli import cli_env, gateway_command

REGIONS_SQL = "SELECT region, count(*) AS n\rFROM demo_db.customers\rGROUP BY region ORDER BY region;\r"


@pytest.fixture(scope="module")
def settings(demo_config):
    return prepare(load_settings(demo_config))


@pytest.fixture(scope="module")
def local(settings):
    backend = terminal.LocalBackend(QueryEngine(settings))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def remote(settings):
    with serve(settings) as (uri, _):
        connection = connect(uri)
        yield terminal.RemoteBackend(connection, uri)
        connection.close()


def region_counts(demo_config) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in customers_db(demo_config):
        counts[c["region"]] = counts.get(c["region"], 0) + 1
    return counts


def drive(backend, keys: str, history) -> tuple[str, str, Shell]:
    """Type ``keys`` into a real Shell (``\\r`` is Enter); returns (stdout, stderr, shell)."""
    out, err = io.StringIO(), io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        shell = Shell(backend, history_path=history, input=pipe, output=DummyOutput(), out=out, err=err)
        shell.run()
    return out.getvalue(), err.getvalue(), shell


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("where", ["local", "remote"])
def test_multi_line_statement_timer_explain_and_history(request, where, demo_config, tmp_path):
    backend = request.getfixturevalue(where)
    history = tmp_path / "history"
    keys = (REGIONS_SQL + ".timer on\rSELECT count(*) AS n FROM demo_lake.orders;\r"
            ".explain SELECT count(*) FROM demo_db.customers\r.quit\r")
    out, err, shell = drive(backend, keys, history)
    assert err.startswith("gateway shell (") and "error" not in err and shell.errors == 0
    rows = table_rows(out)
    expected = sorted(region_counts(demo_config).items())
    assert rows[: len(expected)] == [[r, str(n)] for r, n in expected]
    assert rows[len(expected)] == [f"{orders_dataset(demo_config).count_rows():,}".replace(",", "")]
    assert "timer on" in out and "Run Time: " in out and " 1 rows" in out
    assert "Fragment" in out and "source 'demo_db'" in out
    # the history file holds what was typed, the multi-line statement as one entry
    saved = history.read_text()
    assert "+SELECT region, count(*) AS n\n+FROM demo_db.customers\n+GROUP BY region ORDER BY region;" in saved
    assert "+.quit" in saved


def test_errors_are_reported_and_the_shell_goes_on(local, tmp_path):
    keys = "SELECT emial FROM demo_db.customers;\r.timer maybe\r.nope\rSELECT 2 AS two;\r\x04"  # Ctrl-D leaves
    out, err, shell = drive(local, keys, tmp_path / "history")
    assert "error (unknown_object): unknown column 'emial'" in err and "did you mean: email" in err
    assert ".timer takes on or off" in err and "unknown command '.nope'" in err
    assert shell.errors == 3 and table_rows(out) == [["2"]]


@pytest.mark.parametrize("where", ["local", "remote"])
def test_completion_of_keywords_and_catalog_names(request, where):
    shell = Shell(request.getfixturevalue(where), input=object(), out=io.StringIO(), err=io.StringIO())

    def complete(text: str) -> list[str]:
        return [c.text for c in shell.completer.get_completions(Document(text), CompleteEvent())]

    assert complete("SELECT * FROM demo_l") == ["demo_lake"]
    assert complete("SELECT * FROM demo_db.m") == ["demo_db.main"]
    assert "demo_db.main.customers" in complete("SELECT * FROM demo_db.main.cu")
    assert "demo_lake.orders" in complete("SELECT * FROM demo_lake.or")
    assert "credit_limit" in complete("SELECT credit_")
    assert "order_date" in complete("SELECT order_d")
    assert "GROUP BY" in complete("SELECT 1 gro")
    assert complete(".ti") == [".timer"] and complete("\\tim") == ["\\timing"]


def test_format_maxrows_sources_and_tables_commands(local, demo_config, tmp_path):
    keys = (".format csv\rSELECT id FROM demo_db.customers WHERE id < 3 ORDER BY id;\r.format table\r.maxrows 4\r"
            "SELECT order_id FROM demo_lake.orders ORDER BY order_id;\r.sources\r.tables demo_lake\r\\timing\r\\q\r")
    out, err, _ = drive(local, keys, tmp_path / "history")
    assert "error" not in err
    assert "id\r\n1\r\n2\r\n" in out  # CSV lines end with CRLF (RFC 4180)
    assert "2 rows more not shown (.maxrows 0 shows all)" not in out and ".maxrows 0 shows all" in out
    ids = sorted(orders_dataset(demo_config).to_table(columns=["order_id"]).column(0).to_pylist())
    assert table_rows(out) == [[str(ids[0])], [str(ids[1])], ["…"], [str(ids[-2])], [str(ids[-1])]]
    assert "demo_db\ndemo_lake\n" in out and "demo_lake.main.orders\ndemo_lake.main.regions\n" in out
    assert "timer on" in out


def test_history_file_location(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert history_path() == tmp_path / "gateway" / "history"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert history_path() == tmp_path / ".gateway_history"


def test_shell_reads_a_script_from_stdin_when_not_a_terminal(demo_config, tmp_path):
    script = ".timer on\nSELECT region, count(*) AS n\nFROM demo_db.customers GROUP BY region ORDER BY region;\n" \
             ".format csv\nSELECT 1 AS one; SELECT 'a;b' AS two\n"
    result = subprocess.run([*gateway_command(), "shell", "--config", str(demo_config)], input=script, text=True,
                            capture_output=True, env=cli_env(HOME=str(tmp_path)), timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    expected = sorted(region_counts(demo_config).items())
    assert table_rows(result.stdout) == [[r, str(n)] for r, n in expected]
    assert result.stdout.count("Run Time: ") == 3
    assert "one\n1\n" in result.stdout and "two\na;b\n" in result.stdout  # (text mode reads CRLF as \n)

    failing = subprocess.run([*gateway_command(), "shell", "--config", str(demo_config)],
                             input="SELECT nope FROM demo_db.customers;\n.quit\nSELECT 1;\n", text=True,
                             capture_output=True, env=cli_env(HOME=str(tmp_path)), timeout=60, check=False)
    assert failing.returncode == 2 and "unknown column 'nope'" in failing.stderr and failing.stdout == ""
