"""The ``gateway`` CLI exits cleanly after a correct answer, every time (no ``terminate called without an active
exception``, exit 134, at interpreter exit).

The abort came from a fragment reader thread (a daemon thread) that had handed the consumer its last batch and
was still destroying its native pyarrow reader when the interpreter finalized; it is a race, so each command
runs 20 times, four processes at a time on two cores (load makes the race likelier). Expected values come from
the demo files (pyarrow.dataset), never through the gateway.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from tests.demo_support import orders_table
from tests.test_cli import cli_env, gateway_command, text_of

RUNS_PER_COMMAND = 20
CONCURRENT_PROCESSES = 4
QUERY_SQL = "SELECT * FROM demo_lake.orders LIMIT 2"
COUNT_SQL = "SELECT count(*) FROM demo_lake.orders"



def run_many(args: list[str], runs: int) -> list[subprocess.CompletedProcess]:
    """Run the CLI with ``args`` ``runs`` times, ``CONCURRENT_PROCESSES`` at a time."""
    command = [*gateway_command(), *args]

    def run_once(_: int) -> subprocess.CompletedProcess:
        return subprocess.run(command, check=False, capture_output=True, text=True, env=cli_env(), timeout=120)

    with ThreadPoolExecutor(CONCURRENT_PROCESSES) as pool:
        return list(pool.map(run_once, range(runs)))


def failures(results: list[subprocess.CompletedProcess], correct) -> list[str]:
    """One line per run that did not exit 0 or whose output ``correct(stdout)`` rejects."""
    return [f"run {i}: exit {r.returncode}, stderr {r.stderr.strip()[-300:]!r}, stdout {r.stdout[:300]!r}"
            for i, r in enumerate(results) if r.returncode != 0 or not correct(r.stdout)]


def test_query_csv_exits_0_every_time(demo_config):
    reference = orders_table(demo_config)
    known_rows = {tuple("" if v is None else text_of(v) for v in row.values()) for row in reference.to_pylist()}

    def correct(stdout: str) -> bool:
        header, *rows = csv.reader(io.StringIO(stdout))
        return header == reference.column_names and len(rows) == 2 and all(tuple(r) in known_rows for r in rows)

    results = run_many(["query", QUERY_SQL, "--config", str(demo_config), "--format", "csv"], RUNS_PER_COMMAND)
    assert failures(results, correct) == []


def test_explain_analyze_exits_0_every_time(demo_config):
    def correct(stdout: str) -> bool:
        # the whole count runs in the Parquet source and returns its one row
        return ("whole query pushed down to source 'demo_lake'" in stdout
                and re.search(r"returned: 1 rows, \d+ bytes", stdout) is not None)

    results = run_many(["explain", "--analyze", COUNT_SQL, "--config", str(demo_config)], RUNS_PER_COMMAND)
    assert failures(results, correct) == []


def test_no_fragment_reader_thread_outlives_gateway_close(demo_config):
    """In-process, without the CLI's exit: the engine stops and joins the threads that read fragments."""
    import threading

    from gateway.execution.engine import QueryEngine
    from gateway.settings import load_settings, prepare

    gateway = QueryEngine(prepare(load_settings(demo_config)))
    assert gateway.execute(QUERY_SQL).reader.read_all().num_rows == 2
    # 25 million rows: its reader thread is still running (held back by the full batch queue) when closed
    unfinished = gateway.execute("SELECT a.order_id FROM demo_lake.orders a CROSS JOIN demo_lake.orders b")
    assert unfinished.reader.read_next_batch().num_rows > 0
    assert any(t.name.startswith("fragment-") for t in threading.enumerate())
    gateway.close()
    assert [t.name for t in threading.enumerate() if t.name.startswith("fragment-")] == []
