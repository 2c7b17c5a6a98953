"""The fuzzer's view of the data world: its group ``fz`` (``t1``, ``t2``, ``t3``, ``dim``; tests/world.py) in
all five sources, and the local reference.

``FuzzSources`` names the group's tables in each source of a loaded ``World`` (tests/sources.py): the session's
(the ``world`` fixture) in tests, or with ``FuzzSources.fresh`` a world of the group alone in fresh databases and
files, dropped on ``close`` (bench/fuzz_bench.py). ``Reference`` reads every (source, table) once through the
gateway and registers that Arrow table in a local DataFusion session under ``<table>_<source>``: the data exactly
as the gateway's catalog types it.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from tests import world as world_tables
from tests.sources import World, database_name

SOURCES = ("pg", "maria", "lite", "pq", "csv")
GROUP = "fz"
#: logical type of each column (``tests.sources.column_kind`` of its Arrow type), per table
COLUMNS = world_tables.FUZZ_COLUMNS


@dataclass
class FuzzSources:
    """The fuzz tables in a loaded ``world``; ``names[source]`` is the ``catalog.schema`` prefix of the tables
    in that source. ``owned``: the world was made for them, and ``close`` drops it."""

    world: World
    owned: bool = False

    @classmethod
    def fresh(cls, pg_admin_uri: str, mysql_uri: str) -> FuzzSources:
        """The group alone loaded into a fresh PostgreSQL database, a fresh MariaDB database and files under a
        temporary folder."""
        tables = tuple(t for t in world_tables.TABLES if t.group == GROUP)
        placed = World(root=Path(tempfile.mkdtemp(prefix="gw_fuzz_")), tables=tables, database=database_name("gw_fuzz_"))
        try:
            placed.postgres(pg_admin_uri)
            placed.mysql(mysql_uri)
            placed.files()
        except BaseException:
            placed.close()
            raise
        return cls(placed, owned=True)

    @property
    def tables(self) -> dict[str, pa.Table]:
        return self.world.group(GROUP)

    @property
    def names(self) -> dict[str, str]:
        return {source: self.world.prefix(source, GROUP) for source in SOURCES}

    def settings(self, limits: dict | None = None):
        """Gateway settings with the five sources (and ``limits``, the ``[limits]`` section)."""
        return self.world.settings(limits)

    def close(self) -> None:
        """Drop the world when it was made for the fuzzer."""
        if self.owned:
            self.world.close()


# -- the reference ---------------------------------------------------------------------------------------------

class Reference:
    """A local DataFusion session holding every (source, table) as the gateway scans it, as ``<table>_<source>``.

    ``scan_findings`` lists (source, table, difference) where a scan differs from the canonical data after
    casting the canonical columns to the scanned types.
    """

    def __init__(self, gateway, sources: FuzzSources) -> None:
        from datafusion import SessionConfig, SessionContext

        from connectors.arrow.datafusion import CORRECTNESS_SETTINGS

        def correct(config: SessionConfig) -> SessionConfig:  # the gateway's own defect avoidance, as reference
            for key, value in CORRECTNESS_SETTINGS.items():
                config = config.set(key, value)
            return config

        self.ctx = SessionContext(correct(SessionConfig()))
        # a second session planned differently (more partitions, small batches, data in two partitions, sort-merge
        # instead of hash joins): when the two disagree, DataFusion's own answer is not stable and a difference is
        # no gateway bug (DataFusion 55's hash join drops the row of `t RIGHT JOIN u ON .. WHERE t.x IS NULL`
        # whose match has a NULL x; its sort-merge join keeps it)
        config = correct(SessionConfig().with_target_partitions(4).with_batch_size(64))
        self.alternative = SessionContext(config.set("datafusion.optimizer.prefer_hash_join", "false"))
        # and a third on one partition: DataFusion 52 answers a window over `ORDER BY .. OFFSET 5` in a
        # sub-query differently on one partition than on several (regression: the fuzzer's seed 424242)
        self.single = SessionContext(correct(SessionConfig().with_target_partitions(1)))
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

    @property
    def schemas(self) -> dict[str, pa.Schema]:
        """``<table>_<source>`` -> the schema of that scan, as registered."""
        return {f"{table}_{source}": scanned.schema for (source, table), scanned in self.scans.items()}

    def output_names(self, sql: str) -> list[str]:
        """The names DataFusion gives the outputs of ``sql``, planned only (no row is read)."""
        return self.ctx.sql(sql).schema().names

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
