"""The fuzzer's deterministic data set, loaded the same into all five sources, and the local reference.

Tables (lower-case names and columns; ``id`` is unique and never NULL in every table):

- ``t1`` (200 rows): keys ``k2`` -> t2.id, ``k3`` -> t3.id, ``dk`` -> dim.id (with keys that match nothing and
  NULL keys), ``g`` smallint (few values), ``s`` text (unicode, case and space traps), ``c`` text (mostly NULL),
  ``amt`` decimal(12,2), ``f`` float, ``dt`` date, ``ts`` timestamp, ``tz`` timestamptz (UTC), ``b`` boolean,
  ``n`` int (half NULL).
- ``t2`` (150 rows): ``k1`` -> t1.id, ``g``, ``s``, ``amt``, ``qty`` int (duplicates), ``f``, ``dt``, ``ts``, ``b``.
- ``t3`` (60 rows): ``k2`` -> t2.id, ``s``, ``f``, ``amt``, ``tz``, ``dt``.
- ``dim`` (10 rows): ``name`` text, ``g``.

``FuzzSources`` creates a PostgreSQL database (schema ``fz``), a MariaDB database, a SQLite file, a Parquet
folder and a CSV folder holding these tables, and drops them on ``close``. ``Reference`` reads every (source,
table) once through the gateway and registers that Arrow table in a local DataFusion session under
``<table>_<source>``: the data exactly as the gateway's catalog types it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tests.sources import (
    database_name,
    drop_five_sources,
    five_source_settings,
    load_five_sources,
    with_database,
)

UTC = dt.UTC
SOURCES = ("pg", "maria", "lite", "pq", "csv")
TEXTS = ["abc", "ABC", "Abc", "Åsa", "åsa", "émile", "Émile", "", "two words", " lead", "trail ", "x", "X",
         "zed", "Ünter", "ß", "straße", "a%b", "a_b", "Zoë"]
DIM_NAMES = ["north", "South", "east", "West", "Ünter", "ZED", "zed", "mid dle", "Öst", "élan"]

# logical type of each column (``tests.sources.column_kind`` of its Arrow type): int, small, dec, float, text,
# date, ts, tstz, bool
COLUMNS: dict[str, dict[str, str]] = {
    "t1": {"id": "int", "k2": "int", "k3": "int", "dk": "int", "g": "small", "s": "text", "c": "text",
           "amt": "dec", "f": "float", "dt": "date", "ts": "ts", "tz": "tstz", "b": "bool", "n": "int"},
    "t2": {"id": "int", "k1": "int", "g": "small", "s": "text", "amt": "dec", "qty": "int", "f": "float",
           "dt": "date", "ts": "ts", "b": "bool"},
    "t3": {"id": "int", "k2": "int", "s": "text", "f": "float", "amt": "dec", "tz": "tstz", "dt": "date"},
    "dim": {"id": "int", "name": "text", "g": "small"},
}
ARROW = {"int": pa.int32(), "small": pa.int16(), "dec": pa.decimal128(12, 2), "float": pa.float64(),
         "text": pa.string(), "date": pa.date32(), "ts": pa.timestamp("us"), "tstz": pa.timestamp("us", tz="UTC"),
         "bool": pa.bool_()}


def _maybe(rng: random.Random, value, null_one_in: int):
    return None if rng.randrange(null_one_in) == 0 else value


def _value(rng: random.Random, kind: str, column: str, table: str, i: int):
    """One random value of ``kind``; NULL-heavy and duplicate-heavy columns by name."""
    if column == "id":
        return i
    if kind in ("int", "small"):
        ranges = {"k2": (1, 170, 10), "k3": (1, 70, 7), "dk": (0, 12, 20), "k1": (1, 220, 10), "g": (0, 4, 0),
                  "n": (0, 9, 2), "qty": (0, 20, 12)}
        lo, hi, nulls = ranges.get(column, (-50, 50, 10))
        value = rng.randint(lo, hi)
        return _maybe(rng, value, nulls) if nulls else value
    if kind == "dec":
        return _maybe(rng, Decimal(rng.randrange(-100000, 10_000_000)) / 100, 10)
    if kind == "float":
        return _maybe(rng, rng.choice([rng.uniform(-100, 100), float(rng.randint(-5, 5)), 0.1 * rng.randint(0, 9)]), 9)
    if kind == "text":
        if column == "c":
            return rng.choice(["x", "y", "X"]) if rng.random() < 0.4 else None
        if column == "name":
            return DIM_NAMES[i - 1]
        return _maybe(rng, rng.choice(TEXTS), 10)
    if kind == "date":
        return _maybe(rng, dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(1500)), 10)
    if kind == "ts":
        return _maybe(rng, dt.datetime(2021, 1, 1) + dt.timedelta(seconds=rng.randrange(4 * 10**7),
                                                                 microseconds=rng.choice([0, rng.randrange(10**6)])), 10)
    if kind == "tstz":
        return _maybe(rng, dt.datetime(2022, 6, 1, tzinfo=UTC) + dt.timedelta(minutes=rng.randrange(10**6)), 5)
    if kind == "bool":
        return _maybe(rng, rng.random() < 0.5, 5)
    raise ValueError(kind)


def canonical_tables() -> dict[str, pa.Table]:
    """The data set as Arrow tables with the logical types (``ARROW``)."""
    sizes = {"t1": 200, "t2": 150, "t3": 60, "dim": 10}
    out = {}
    for n, (table, columns) in enumerate(COLUMNS.items()):
        rng = random.Random(1000 + n)
        rows = [{c: _value(rng, k, c, table, i) for c, k in columns.items()} for i in range(1, sizes[table] + 1)]
        schema = pa.schema([pa.field(c, ARROW[k], nullable=c != "id") for c, k in columns.items()])
        out[table] = pa.Table.from_pylist(rows, schema=schema)
    return out


@dataclass
class FuzzSources:
    """The data set loaded into a fresh PostgreSQL database, a fresh MariaDB database and files under a
    temporary folder. ``names[source]`` is the ``catalog.schema`` prefix of the tables in that source."""

    pg_admin_uri: str
    mysql_uri: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw_fuzz_")))
    tables: dict[str, pa.Table] = field(default_factory=canonical_tables)
    pg_db: str = ""
    mysql_db: str = ""

    def create(self) -> FuzzSources:
        self.pg_db = self.mysql_db = database_name("gw_fuzz_")
        load_five_sources(self.tables, self.root, self.pg_admin_uri, self.mysql_uri, self.pg_db, pg_schema="fz",
                          sqlite_file="fuzz.db")
        return self

    @property
    def names(self) -> dict[str, str]:
        return {"pg": "pg.fz", "maria": f"maria.{self.mysql_db}", "lite": "lite.main", "pq": "pq.main",
                "csv": "csv.main"}

    def settings(self, limits: dict | None = None):
        """Gateway settings with the five sources (and ``limits``, the ``[limits]`` section)."""
        return five_source_settings(self.root, with_database(self.pg_admin_uri, self.pg_db),
                                    with_database(self.mysql_uri, self.mysql_db), "fuzz.db", limits)

    def close(self) -> None:
        """Drop both databases and remove the files."""
        drop_five_sources(self.pg_admin_uri, self.pg_db, self.mysql_uri, self.mysql_db, self.root)


# -- the reference ---------------------------------------------------------------------------------------------

class Reference:
    """A local DataFusion session holding every (source, table) as the gateway scans it, as ``<table>_<source>``.

    ``scan_findings`` lists (source, table, difference) where a scan differs from the canonical data after
    casting the canonical columns to the scanned types.
    """

    def __init__(self, gateway, sources: FuzzSources) -> None:
        from datafusion import SessionConfig, SessionContext

        self.ctx = SessionContext()
        # a second session planned differently (more partitions, small batches, data in two partitions, sort-merge
        # instead of hash joins): when the two disagree, DataFusion's own answer is not stable and a difference is
        # no gateway bug (DataFusion 55's hash join drops the row of `t RIGHT JOIN u ON .. WHERE t.x IS NULL`
        # whose match has a NULL x; its sort-merge join keeps it)
        config = SessionConfig().with_target_partitions(4).with_batch_size(64)
        self.alternative = SessionContext(config.set("datafusion.optimizer.prefer_hash_join", "false"))
        # and a third on one partition: DataFusion 52 answers a window over `ORDER BY .. OFFSET 5` in a
        # sub-query differently on one partition than on several (regression: the fuzzer's seed 424242)
        self.single = SessionContext(SessionConfig().with_target_partitions(1))
        self.scans: dict[tuple[str, str], pa.Table] = {}
        self.scan_findings: list[tuple[str, str, str]] = []
        for source in SOURCES:
            for table, canonical in sources.tables.items():
                scanned = gateway.execute(f"SELECT * FROM {sources.names[source]}.{table}").reader.read_all()
                self.scans[source, table] = scanned
                self.ctx.register_record_batches(f"{table}_{source}", [scanned.to_batches()])
                self.single.register_record_batches(f"{table}_{source}", [scanned.to_batches()])
                half = scanned.num_rows // 2
                self.alternative.register_record_batches(
                    f"{table}_{source}", [scanned.slice(0, half).to_batches(), scanned.slice(half).to_batches()])
                difference = scan_difference(canonical, scanned)
                if difference:
                    self.scan_findings.append((source, table, difference))

    def run(self, sql: str, alternative: bool | str = False) -> pa.Table:
        """The reference answer of ``sql`` (DataFusion dialect, ``<table>_<source>`` names); ``alternative``:
        from a differently configured session (True or "alternative": more partitions, sort-merge joins;
        "single": one partition)."""
        session = {True: self.alternative, "alternative": self.alternative, "single": self.single}.get(
            alternative, self.ctx)
        return session.sql(sql).to_arrow_table()


def _same(want, got) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(want, got, rel_tol=1e-12, abs_tol=1e-12)
    return want == got


def scan_difference(canonical: pa.Table, scanned: pa.Table) -> str | None:
    """None when ``scanned`` holds the canonical rows (by ``id``) once cast to its types; else what differs."""
    if scanned.column_names != canonical.column_names:
        return f"columns {scanned.column_names}, want {canonical.column_names}"
    if scanned.num_rows != canonical.num_rows:
        return f"{scanned.num_rows} rows, want {canonical.num_rows}"
    scanned = scanned.sort_by("id")
    problems = []
    for name in canonical.column_names:
        want_col, got_col = canonical.column(name), scanned.column(name)
        try:
            want_col = pc.cast(want_col, got_col.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            problems.append(f"{name}: cannot cast {want_col.type} to {got_col.type}: {exc}")
            continue
        want, got = want_col.to_pylist(), got_col.to_pylist()
        bad = [(i + 1, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True)) if not _same(w, g)]
        if bad:
            i, w, g = bad[0]
            problems.append(f"{name} ({got_col.type}): {len(bad)} rows differ, e.g. id {i}: {g!r}, want {w!r}")
    return "; ".join(problems) or None
