"""A read-only gateway never locks a SQLite source against the application that writes to it.

The writer is always another process running Python's sqlite3 with a short busy timeout: the ADBC driver links
its own copy of SQLite, and SQLite's POSIX locks belong to the process, so an in-process writer would never see the
gateway's locks. For the same reason this process never opens the database with Python's sqlite3 while the
gateway has it open: closing that connection would drop the gateway's locks (the WAL reader's among them).

What holds, per journal mode:
- both: once registration, a query, or a stream that was stopped part-way has ended, the gateway holds no lock
  and no snapshot (idle pooled connections are in autocommit mode), so writers commit at once;
- WAL: a writer commits even while a gateway statement is streaming; that statement keeps the snapshot it
  started with;
- rollback journal: a writer's commit needs every reader's SHARED lock gone, so it waits for the statement that
  is streaming at that moment, and only until that statement ends.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict

ROWS = 100_000  # ~100 driver batches: a stream read part-way still has its statement open
WRITER_BUSY_TIMEOUT_S = 2.0
ITEMS = "app.main.items"

#: one transaction of the statements given as arguments; prints "begun" once its changes are made (holding the
#: write lock) and "committed <seconds the commit took>" at the end
WRITER = """
import sqlite3, sys, time
path, busy_timeout_s, *statements = sys.argv[1:]
conn = sqlite3.connect(path, timeout=float(busy_timeout_s), isolation_level=None)
conn.execute("BEGIN")
for statement in statements:
    conn.execute(statement)
print("begun", flush=True)
started = time.perf_counter()
conn.execute("COMMIT")
print("committed", time.perf_counter() - started, flush=True)
"""


@pytest.fixture(params=["wal", "delete"], ids=["wal", "rollback_journal"])
def journal_mode(request) -> str:
    """``wal`` or ``delete`` (rollback journal)."""
    return request.param


@pytest.fixture
def database(journal_mode, tmp_path) -> Path:
    """An application's SQLite file: ``items(id, name)`` with ROWS rows, in WAL or rollback-journal mode."""
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    assert conn.execute(f"PRAGMA journal_mode = {journal_mode}").fetchone()[0] == journal_mode
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    conn.executemany("INSERT INTO items VALUES (?, ?)", ((i, f"item {i}") for i in range(1, ROWS + 1)))
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def gateway(database) -> QueryEngine:
    """A gateway on the database, registered as ``gateway serve`` registers it (the catalog's whole copy)."""
    settings = settings_from_dict({"sources": [{"name": "app", "kind": "sqlite", "path": str(database)}]},
                                  base_dir=database.parent)
    gw = QueryEngine(settings)
    assert gw.catalog.reload("app")  # lists tables and reads their columns through the pool
    yield gw
    gw.close()


def start_writer(database: Path, *statements: str, busy_timeout_s: float = WRITER_BUSY_TIMEOUT_S
                 ) -> subprocess.Popen:
    """Start the WRITER process on ``statements`` (one transaction); its stdout says how far it got."""
    return subprocess.Popen([sys.executable, "-c", WRITER, str(database), str(busy_timeout_s), *statements],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(writer: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    """Wait for a WRITER whose first line was read; return (the rest of its stdout, its stderr).

    Not ``communicate()``: it reads the pipe's file descriptor and would miss what ``readline()`` already buffered
    (the "committed" line arrives with "begun" when the commit is quick, as in WAL mode).
    """
    writer.wait(timeout=timeout_s)
    return writer.stdout.read(), writer.stderr.read()


def write(database: Path, *statements: str) -> None:
    """Commit ``statements`` from another process with a WRITER_BUSY_TIMEOUT_S busy timeout; fail with its error."""
    writer = start_writer(database, *statements)
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, f"the writer failed: {err.strip().splitlines()[-1:]}"
    assert "committed" in out


def scalar(gateway: QueryEngine, sql: str):
    """The first value of the query's result, read through the gateway."""
    return gateway.execute(sql).reader.read_all().column(0)[0].as_py()


def new_rows(first_id: int, count: int, note: str | None = None) -> str:
    """An INSERT of ``count`` items from ``first_id`` (with ``note`` when given: the column is added later)."""
    columns, values = ("id, name", "'new {i}'") if note is None else ("id, name, note", f"'new {{i}}', '{note}'")
    rows = ", ".join(f"({i}, {values.format(i=i)})" for i in range(first_id, first_id + count))
    return f"INSERT INTO items ({columns}) VALUES {rows}"


def test_writers_succeed_right_after_registration(database, gateway):
    write(database, new_rows(ROWS + 1, 10))
    write(database, "ALTER TABLE items ADD COLUMN note TEXT")

    assert scalar(gateway, f"SELECT count(*) FROM {ITEMS}") == ROWS + 10
    gateway.catalog.reload("app")  # the new column is seen once the catalog's copy is refreshed
    assert gateway.execute(f"SELECT id, note FROM {ITEMS} WHERE id > {ROWS}").reader.read_all().to_pylist() == [
        {"id": i, "note": None} for i in range(ROWS + 1, ROWS + 11)]


def test_writers_succeed_after_each_finished_query(database, gateway):
    assert scalar(gateway, f"SELECT count(*) FROM {ITEMS}") == ROWS  # a residual plan over a fetched fragment
    write(database, new_rows(ROWS + 1, 5))

    streamed = gateway.execute(f"SELECT id, name FROM {ITEMS}").reader.read_all()  # pushed whole, streamed
    assert streamed.num_rows == ROWS + 5
    write(database, "ALTER TABLE items ADD COLUMN note TEXT")

    gateway.catalog.reload("app")
    assert scalar(gateway, f"SELECT count(note) FROM {ITEMS}") == 0
    write(database, new_rows(ROWS + 6, 3, note="late"))

    assert gateway.execute(f"SELECT id FROM {ITEMS} WHERE note = 'late' ORDER BY id").reader.read_all() \
        .column("id").to_pylist() == [ROWS + 6, ROWS + 7, ROWS + 8]


@pytest.mark.parametrize("stop", ["cancel", "drop"])
def test_writer_succeeds_after_a_partly_read_stream_is_closed(database, gateway, stop):
    result = gateway.execute(f"SELECT id, name FROM {ITEMS}")
    assert result.reader.read_next_batch().num_rows > 0
    # pyarrow's close() of the engine's reader (RecordBatchReader.from_batches) releases nothing by itself; the
    # stream ends on cancel() (as the Flight server stops a stream) or when the result is dropped (REST)
    result.reader.close()
    if stop == "cancel":
        result.cancel()
    else:
        del result

    write(database, new_rows(ROWS + 1, 7), "ALTER TABLE items ADD COLUMN note TEXT")
    assert scalar(gateway, f"SELECT count(*) FROM {ITEMS}") == ROWS + 7


def test_writer_while_a_query_streams(database, gateway, journal_mode):
    wal = journal_mode == "wal"
    result = gateway.execute(f"SELECT id FROM {ITEMS}")
    first = result.reader.read_next_batch()  # the source statement is open now, part-way through the table

    writer = start_writer(database, new_rows(ROWS + 1, 4), busy_timeout_s=30.0)
    assert writer.stdout.readline().strip() == "begun", writer.stderr.read()
    if wal:
        # WAL: readers never block writers; the commit does not wait for the open statement
        out, err = finish(writer, timeout_s=WRITER_BUSY_TIMEOUT_S * 5)
        assert writer.returncode == 0, err
        assert out.startswith("committed"), out
        assert float(out.split()[-1]) < WRITER_BUSY_TIMEOUT_S
    else:
        # rollback journal: the commit waits for the statement's SHARED lock, until the statement ends
        time.sleep(0.5)
        assert writer.poll() is None, "the commit did not wait for the open statement"

    rest = result.reader.read_all()
    statement_ended = time.perf_counter()
    if not wal:
        out, err = finish(writer, timeout_s=30)
        assert writer.returncode == 0, err
        assert out.startswith("committed"), out
        assert time.perf_counter() - statement_ended < WRITER_BUSY_TIMEOUT_S, "the commit waited past the statement"

    # one statement, one snapshot: the running query returned the table as it was when it started
    ids = first.column(0).to_pylist() + rest.column("id").to_pylist()
    assert sorted(ids) == list(range(1, ROWS + 1))
    assert scalar(gateway, f"SELECT count(*) FROM {ITEMS}") == ROWS + 4
