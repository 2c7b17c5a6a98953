"""Helpers of the browser tests (plain functions, imported explicitly): the demo gateway served over HTTP with
or without auth, and the queries whose answers the tests compute without the gateway.

``console_server(config, auth_users=None)`` serves the real FastAPI app (uvicorn, a free port on 127.0.0.1);
its ``limits.query_timeout_s`` is short, so a cancel that failed could not keep a core busy for long.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow.dataset as ds

from gateway.api import create_app
from gateway.auth import Authenticator
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import customers_db, orders_table, running_app

ROOT = Path(__file__).resolve().parents[2]
#: where the tests save their screenshots (committed: the README shows them)
SCREENSHOTS = ROOT / "docs" / "screenshots"
#: seconds any query of these servers may run (a safety net for the cancel test)
QUERY_TIMEOUT_S = 60.0

#: the federated query the tests run: customers in SQLite, orders in the Parquet lake. The LIKE stays in
#: DataFusion (SQLite's LIKE ignores case), the orders scan is restricted by a dynamic filter on the ids of
#: the customers it keeps, and the orders are partially aggregated in the lake: the plan graph shows all three.
FEDERATED_SQL = """\
-- orders of 2023 per region, customers whose name starts with 'A' (SQLite), orders (Parquet)
SELECT c.region, count(*) AS orders, sum(o.total) AS total
FROM demo_db.main.customers c
JOIN demo_lake.orders o ON o.customer_id = c.id
WHERE o.year = 2023 AND c.name LIKE 'A%'
GROUP BY c.region
ORDER BY c.region"""

#: ~1.25 billion joined rows: runs for minutes unless cancelled (cancellation stops it within ~0.1 s)
SLOW_SQL = """\
SELECT count(*) AS n
FROM demo_lake.orders a CROSS JOIN demo_lake.orders b CROSS JOIN demo_db.main.products p
WHERE a.quantity + b.quantity + p.id > 0"""


def federated_expected(config: Path) -> tuple[list[list[str]], int]:
    """FEDERATED_SQL's rows as the grid shows them (region, count, total with 2 places), and how many
    customers it joins (the ids the dynamic filter sends to the lake), computed with sqlite3 and
    pyarrow.dataset, not the gateway. LIKE 'A%' is case-sensitive, as SQL (and DataFusion) has it."""
    region = {c["id"]: c["region"] for c in customers_db(config) if c["name"].startswith("A")}
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    joined = set()
    for order in orders_table(config, ds.field("year") == 2023, ["customer_id", "total"]).to_pylist():
        if order["customer_id"] in region:
            r = region[order["customer_id"]]
            joined.add(order["customer_id"])
            counts[r] += 1
            totals[r] += order["total"]
    return [[r, str(counts[r]), f"{totals[r]:.2f}"] for r in sorted(counts)], len(joined)


@contextlib.contextmanager
def console_server(config: Path, auth_users: list[dict] | None = None) -> Iterator[str]:
    """The demo gateway's REST app (console included) on a free port; yields its base URL. ``auth_users``:
    turn auth on with these ``[auth] users``."""
    raw = tomllib.loads(config.read_text())
    raw["limits"] = {"query_timeout_s": QUERY_TIMEOUT_S}
    if auth_users is not None:
        raw["auth"] = {"enabled": True, "users": auth_users, "token_ttl_s": 600}
    settings = settings_from_dict(raw, base_dir=config.parent)
    engine = QueryEngine(settings)
    authenticator = Authenticator(settings.auth)
    try:
        with running_app(create_app(engine, authenticator)) as url:
            yield url
    finally:
        authenticator.close()
        engine.close()


def screenshot(target, name: str, height: int | None = None) -> Path:
    """Save a PNG of ``target`` (a Playwright page or element) as ``docs/screenshots/{name}.png``; ``height``:
    only the page's top so many pixels."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if height is None:
        target.screenshot(path=str(path))
    else:
        target.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": target.viewport_size["width"], "height": height})
    return path
