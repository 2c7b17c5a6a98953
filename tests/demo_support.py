"""Helpers shared by test_rest.py and test_cli.py (not a conftest: plain functions, imported explicitly).

- ``write_demo_config(folder)``: a temp copy of the demo config (``demo = true``, sources under
  ``folder/demo_data``) with the demo data generated, so tests never write into the repository.
- ``free_port()`` and ``running_app(app)``: the real FastAPI app served by uvicorn on a background thread;
  ``serving_rest(settings)``: a ``QueryEngine`` over ``settings`` behind it, closed afterwards.
- ``customers_db(...)`` / ``orders_table(...)``: the demo data read *without* the gateway (Python's sqlite3,
  pyarrow.dataset), to compute the values the gateway must return.
"""

from __future__ import annotations

import contextlib
import random
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import uvicorn

from gateway.api import create_app
from gateway.execution.engine import QueryEngine
from gateway.settings import load_settings, prepare

DEMO_TOML = """\
# test copy of config/gateway.toml: sources relative to this file's folder
demo = true

[server]
host = "127.0.0.1"

[[sources]]
name = "demo_db"
kind = "sqlite"
path = "demo_data/demo.db"

[[sources]]
name = "demo_lake"
kind = "parquet"
path = "demo_data/lake"
"""

CENT = Decimal("0.01")


def write_demo_config(folder: Path) -> Path:
    """Write ``folder/gateway.toml`` and create the demo data under ``folder/demo_data``. Returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "gateway.toml"
    config.write_text(DEMO_TOML)
    settings = prepare(load_settings(config))
    assert (folder / "demo_data" / "demo.db").is_file()
    assert (folder / "demo_data" / "lake" / "orders").is_dir()
    assert all(Path(s.path).is_relative_to(folder) for s in settings.sources)
    return config


def data_dir(config: Path) -> Path:
    return config.parent / "demo_data"


# -- reference readers (no gateway code) ------------------------------------------------------------------

def customers_db(config: Path, where: str = "1", params: tuple = ()) -> list[dict]:
    """Rows of the demo ``customers`` table read with sqlite3, typed as the gateway types them
    (DECIMAL(10,2) -> Decimal with 2 places, DATE -> date, BOOLEAN -> bool)."""
    import datetime as dt

    with contextlib.closing(sqlite3.connect(f"file:{data_dir(config) / 'demo.db'}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(f"SELECT * FROM customers WHERE {where} ORDER BY id", params)]
    for row in rows:
        row["credit_limit"] = Decimal(str(row["credit_limit"])).quantize(CENT)
        row["signup_date"] = dt.date.fromisoformat(row["signup_date"])
        row["active"] = bool(row["active"])
    return rows


def sqlite_scalar(config: Path, sql: str, params: tuple = ()):
    with contextlib.closing(sqlite3.connect(f"file:{data_dir(config) / 'demo.db'}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchone()[0]


def orders_dataset(config: Path) -> ds.Dataset:
    """The Hive-partitioned ``orders`` folder as a pyarrow dataset (``year`` from the directory names)."""
    return ds.dataset(data_dir(config) / "lake" / "orders", format="parquet", partitioning="hive")


def orders_table(config: Path, condition: ds.Expression | None = None, columns: list[str] | None = None) -> pa.Table:
    return orders_dataset(config).to_table(filter=condition, columns=columns)


def lake_table_names(config: Path) -> list[str]:
    """Tables of the Parquet lake as the folder shows them: sub-folders and ``*.parquet`` files."""
    lake = data_dir(config) / "lake"
    return sorted(p.stem if p.is_file() else p.name for p in lake.iterdir() if p.is_dir() or p.suffix == ".parquet")


# -- a real HTTP server -----------------------------------------------------------------------------------

#: ports handed to servers the tests start in another process: below Linux's ephemeral range (32768-60999),
#: where the kernel never picks the local port of an outgoing connection, so none can take it between the pick
#: and the server's bind (seen under load: ``gateway serve`` exiting on a port taken meanwhile)
_SERVER_PORTS = (20000, 32000)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range (``_SERVER_PORTS``); each
    pick differs from the previous ones of this process."""
    for _ in range(200):
        port = random.randrange(*_SERVER_PORTS)
        if port in _picked:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _picked.add(port)
        return port
    raise RuntimeError(f"no free port in {_SERVER_PORTS}")


_picked: set[int] = set()


def wait_for_health(base_url: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> dict:
    """Poll ``GET /healthz`` until it answers 200; fail when ``alive()`` turns false or on timeout."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server at {base_url} stopped before answering /healthz ({last!r})")
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=2.0)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{base_url}/healthz did not answer within {timeout} s ({last!r})")


@contextlib.contextmanager
def running_app(app, timeout: float = 15.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port on a background thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, timeout, alive=thread.is_alive)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout)
        assert not thread.is_alive(), "uvicorn did not stop"


@contextlib.contextmanager
def serving_rest(settings) -> Iterator[str]:
    """A ``QueryEngine`` over ``settings`` served by the REST app (``running_app``); yields the base URL and closes
    the engine afterwards."""
    engine = QueryEngine(settings)
    try:
        with running_app(create_app(engine)) as url:
            yield url
    finally:
        engine.close()
