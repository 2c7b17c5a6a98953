"""One fuzz run: the sources and the reference set up once, N generated queries checked, failures shrunk.

Used by ``tests/fuzz/test_fuzz.py`` (CI) and ``bench/fuzz_bench.py``. ``append_regression`` adds a shrunk
failure to ``tests/fuzz/regressions.json``, which ``test_fuzz.py`` replays query by query.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.compare import ERROR, INVALID, NAMES, OK, UNSTABLE, WRONG, Outcome, check, error_class
from tests.fuzz.data import FuzzSources, Reference
from tests.fuzz.generator import FuzzQuery, QueryGenerator
from tests.fuzz.shrink import shrink
from tests.sources import World

REGRESSIONS = Path(__file__).with_name("regressions.json")
CATEGORIES = (OK, WRONG, ERROR, INVALID, NAMES, UNSTABLE, "fallback", "types")


@dataclass
class Failure:
    """A failing query as found and as shrunk, with the shrunk query's outcome."""

    original: FuzzQuery
    outcome: Outcome
    shrunk: FuzzQuery | None = None
    shrunk_outcome: Outcome | None = None
    checks: int = 0

    @property
    def query(self) -> FuzzQuery:
        return self.shrunk or self.original

    def describe(self) -> str:
        """The failure as text: kind, placed shrunk query, placement, the error or the difference."""
        outcome = self.shrunk_outcome or self.outcome
        placement = ", ".join(f"{a}->{s}" for a, s in sorted(self.query.placement.items()))
        return (f"[{outcome.category}] query #{self.original.number} ({'shrunk' if self.shrunk else 'not shrunk'}; "
                f"gateway {FuzzSession.variant(self.original)})\n"
                f"  sql: {self.query.placed_sql()}\n  placement: {placement}\n  {outcome.detail}")

    def as_json(self) -> dict:
        outcome = self.shrunk_outcome or self.outcome
        return {"kind": outcome.category, "sql": self.query.placed_sql(), "placement": self.query.placement,
                "gateway": FuzzSession.variant(self.original),
                "detail": outcome.detail, "class": error_class(outcome), "number": self.original.number,
                "original_sql": self.original.placed_sql(), "shapes": sorted(self.original.shapes)}


@dataclass
class FuzzReport:
    """Counts per category, per shape and category, names findings and failures (shrunk ones first)."""

    queries: int = 0
    counts: Counter = field(default_factory=Counter)
    by_shape: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[Failure] = field(default_factory=list)
    names: list[Outcome] = field(default_factory=list)
    unstable: list[Outcome] = field(default_factory=list)
    types: list[Outcome] = field(default_factory=list)
    fallbacks: list[Outcome] = field(default_factory=list)
    invalid_reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def record(self, query: FuzzQuery, outcome: Outcome) -> None:
        self.queries += 1
        tags = ["all", *sorted(query.shapes), f"gw:{FuzzSession.variant(query)}",
                *(["plan:reordered"] if outcome.reordered else []), *(["plan:late"] if outcome.late else [])]
        extras = (["fallback"] if outcome.fallback else []) + (["types"] if outcome.types else [])
        for category in [outcome.category, *extras]:
            self.counts[category] += 1
            for tag in tags:
                self.by_shape[tag][category] += 1
        if outcome.fallback:
            self.fallbacks.append(outcome)
        if outcome.category == NAMES:
            self.names.append(outcome)
        if outcome.category == UNSTABLE:
            self.unstable.append(outcome)
        if outcome.types:
            self.types.append(outcome)
        if outcome.category == INVALID:
            self.invalid_reasons[error_class(outcome)[:90]] += 1

    def table(self) -> str:
        """The counts by shape as a text table."""
        rows = [f"{'shape':<16}" + "".join(f"{c:>15}" for c in CATEGORIES)]
        for tag in sorted(self.by_shape, key=lambda t: (t != "all", t)):
            rows.append(f"{tag:<16}" + "".join(f"{self.by_shape[tag][c]:>15}" for c in CATEGORIES))
        return "\n".join(rows)


@contextlib.contextmanager
def forced_paths(semi_joins: bool = True) -> Iterator[None]:
    """For the duration of one check: dynamic filters on file fragments (read in place, or fetched from the
    source's own session) as semi-joins at any key count (``runtime_filters.SEMI_JOIN_MIN_KEYS``; with
    ``semi_joins`` False, literal key lists as the small fuzz tables give), and every key condition on a file
    fragment without conditions of its own decoded late (``dynamic_filters.LATE_MATERIALIZATION_SHARE``): paths
    the small fuzz tables would not reach. Restored after, so that other tests of the session see the defaults."""
    from gateway.execution import runtime_filters
    from planner import dynamic_filters

    saved = runtime_filters.SEMI_JOIN_MIN_KEYS, dynamic_filters.LATE_MATERIALIZATION_SHARE
    runtime_filters.SEMI_JOIN_MIN_KEYS = 1 if semi_joins else saved[0]
    dynamic_filters.LATE_MATERIALIZATION_SHARE = 1.0
    try:
        yield
    finally:
        runtime_filters.SEMI_JOIN_MIN_KEYS, dynamic_filters.LATE_MATERIALIZATION_SHARE = saved


class FuzzSession:
    """The five sources loaded, a gateway over them and the reference; ``close()`` drops everything."""

    def __init__(self, pg_admin_uri: str | None = None, mysql_uri: str | None = None,
                 world: World | None = None) -> None:
        """Over the loaded ``world`` (the tests' session world), or else a world of the fuzz tables alone loaded
        into fresh databases on the servers of ``pg_admin_uri`` and ``mysql_uri`` (bench/fuzz_bench.py)."""
        from gateway.execution.engine import QueryEngine

        self.sources = FuzzSources(world) if world else FuzzSources.fresh(pg_admin_uri, mysql_uri)
        try:
            self.gateway = QueryEngine(self.sources.settings())
            # file fragments scanned inside the residual plan, however small (another execution path), their
            # dynamic filters as semi-joins against tables of keys at any key count (``forced_paths``, per check)
            self.in_place = QueryEngine(self.sources.settings({"in_place_min_rows": 0}))
            self.reference = Reference(self.gateway, self.sources)
        except BaseException:
            self.sources.close()
            raise

    @staticmethod
    def variant(query: FuzzQuery) -> str:
        """Which gateway checks ``query``: every third query the one reading files in place."""
        return "in_place" if query.number % 3 == 2 else "default"

    def check(self, query: FuzzQuery, variant: str | None = None) -> Outcome:
        """Check ``query`` on the gateway ``variant`` ("default" or "in_place"; by default by its number), with
        the execution paths that the fuzz tables are too small to reach forced (``forced_paths``): semi-joins
        of keys always in place, and on fetched file fragments for every other query of the default gateway
        (the others keep the literal key lists those fragments get below ``SEMI_JOIN_MIN_KEYS``)."""
        in_place = (variant or self.variant(query)) == "in_place"
        gateway = self.in_place if in_place else self.gateway
        with forced_paths(semi_joins=in_place or query.number % 2 == 1):
            return check(gateway, self.reference, self.sources.names, query)

    def run(self, seed: int, queries: int, max_shrinks: int = 10, shrink_seconds: float = 20.0,
            progress: Callable[[int, FuzzReport], None] | None = None, progress_every: int = 200) -> FuzzReport:
        """Generate and check ``queries`` queries; shrink up to ``max_shrinks`` failures (one per error class
        first, then wrong answers with new shapes)."""
        report = FuzzReport()
        t0 = time.perf_counter()
        generator = QueryGenerator(seed)
        for i in range(queries):
            query = generator.generate()
            outcome = self.check(query)
            report.record(query, outcome)
            if outcome.failed:
                report.failures.append(Failure(query, outcome))
            if progress and (i + 1) % progress_every == 0:
                progress(i + 1, report)
        self.shrink_failures(report.failures, max_shrinks, shrink_seconds)
        report.seconds = time.perf_counter() - t0
        return report

    def shrink_failures(self, failures: list[Failure], limit: int, seconds: float) -> None:
        """Shrink up to ``limit`` failures: first one of each error class, then the others in order."""
        seen: set[str] = set()
        first = [f for f in failures if not (error_class(f.outcome) in seen or seen.add(error_class(f.outcome)))]
        chosen = first + [f for f in failures if f not in first]
        for failure in chosen[:limit]:
            shrunk, outcome, checks = shrink(failure.original, self.check, failure.outcome.signature(),
                                             seconds=seconds)
            failure.checks = checks
            if outcome is not None:
                failure.shrunk, failure.shrunk_outcome = shrunk, outcome
        failures.sort(key=lambda f: (f.shrunk is None, len(f.query.placed_sql())))

    def close(self) -> None:
        try:
            self.gateway.close()
            self.in_place.close()
        finally:
            self.sources.close()


def load_regressions(path: Path = REGRESSIONS) -> list[dict]:
    """The recorded failing queries (placed SQL with kind and detail as found)."""
    return json.loads(path.read_text()) if path.exists() else []


def append_regression(failure: Failure, path: Path = REGRESSIONS) -> bool:
    """Add a (shrunk) failure to the regression file unless its SQL is already there; True when added."""
    entries = load_regressions(path)
    entry = failure.as_json()
    if any(e["sql"] == entry["sql"] for e in entries):
        return False
    entries.append({k: entry[k] for k in ("sql", "gateway", "kind", "detail", "class", "shapes")})
    path.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    return True
