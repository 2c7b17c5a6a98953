"""The freshness manifest of an answer: which data state each table read was in, and how fresh it was.

For every table a query reads, the manifest records the source's fingerprint (``Connector.fingerprint``, the
same token the partition cache compares: PostgreSQL's WAL insert LSN, MariaDB's InnoDB LSN, a file's
name/mtime/size, an SQLite file's mtime/size), read once before the table is read and once after the query
ended (``changed_during_read`` when they differ); when it was read; whether cached partitions served it and
how old they were; and the staleness bound the answer honours (0: read from the source, or cached partitions
a fingerprint proved current). ``content_hash`` is a SHA-256 over (query text, parameters, each table's
fingerprint and the fetch time of each cached partition served): two answers with the same hash come from
the same data state. Database fingerprints are server-wide log positions (conservative: any committed write
in the server moves them), so equal hashes prove equal data, while different hashes do not prove a change.

Shape of ``Manifest.to_dict()``::

    {"query_id": "9f2c...", "sql": "...", "params": [...], "status": "ok", "started_at": "2026-...Z",
     "finished_at": "2026-...Z", "content_hash": "sha256:...", "provable": true, "staleness_bound_s": 0.0,
     "tables": [{"table": "pg.public.orders", "source": "pg", "kind": "postgresql",
                 "fingerprint": "lsn:0/1A2B3C", "fingerprint_after": "lsn:0/1A2B3C",
                 "changed_during_read": false, "read_at": "2026-...Z", "from_cache": false,
                 "cached_partitions": [], "max_cached_age_s": null, "staleness_bound_s": 0.0}]}
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from catalog import Catalog
from connectors.arrow import workers
from connectors.errors import GatewayError
from connectors.fresh_reads import FreshReads
from gateway.errors import UnknownObjectError
from gateway.metrics import QueryStats
from planner import FederatedPlan

#: manifest header names of REST answers (``summary_headers``)
HASH_HEADER = "x-manifest-hash"
TABLES_HEADER = "x-manifest-tables"
STALENESS_HEADER = "x-manifest-staleness-s"


def iso(seconds: float | None) -> str | None:
    """``seconds`` since the epoch as an ISO-8601 UTC timestamp with milliseconds (None stays None)."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TableRead:
    """One table a query read: its source fingerprint before (``fingerprint``) and after the read, when it was
    read (epoch seconds), and the cached partitions that served it (``{partition, status, age_s}``)."""

    table: str
    source: str
    kind: str
    fingerprint: str
    read_at: float
    fingerprint_after: str | None = None
    cached_partitions: list[dict] = field(default_factory=list)
    staleness_bound_s: float | None = 0.0
    rows: int | None = None
    bytes: int | None = None

    @property
    def from_cache(self) -> bool:
        return any(p["status"] == "cached" for p in self.cached_partitions)

    @property
    def max_cached_age_s(self) -> float | None:
        ages = [p["age_s"] for p in self.cached_partitions if p.get("age_s") is not None]
        return max(ages) if ages else None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["read_at"] = iso(self.read_at)
        out["changed_during_read"] = self.fingerprint_after is not None and self.fingerprint_after != self.fingerprint
        out["from_cache"] = self.from_cache
        out["max_cached_age_s"] = self.max_cached_age_s
        return out


@dataclass
class Manifest:
    """The freshness manifest of one query (see the module docstring for its JSON shape)."""

    query_id: str
    sql: str
    params: list
    started_at: float
    tables: list[TableRead]
    status: str = "running"
    finished_at: float | None = None

    def content_hash(self) -> str:
        """``sha256:<hex>`` over the query text, its parameters, each table's fingerprint (before the read) and
        the fetch time (ms) of each cached partition served: the cache entry's own stamp, the same in every answer
        it serves (derived from its age as ``read_at - age_s``, it was taken at two instants and could round
        differently: a flaky test in CI). Times of the query itself are left out."""
        state = []
        for t in sorted(self.tables, key=lambda t: t.table):
            fetched = sorted(
                (p["partition"], round(p["fetched_at"], 3) if p.get("fetched_at") is not None
                 else round(t.read_at - p["age_s"], 1))
                for p in t.cached_partitions if p["status"] == "cached" and p.get("age_s") is not None
            )
            state.append([t.table, t.fingerprint, fetched])
        doc = json.dumps({"sql": self.sql, "params": self.params, "tables": state}, sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()

    @property
    def provable(self) -> bool:
        """Whether every table has a known fingerprint (else equal hashes do not prove equal data)."""
        return all(t.fingerprint for t in self.tables)

    @property
    def staleness_bound_s(self) -> float | None:
        """The answer's staleness bound: the largest of its tables' (None: unbounded, a cache without TTL)."""
        bounds = [t.staleness_bound_s for t in self.tables]
        if any(b is None for b in bounds):
            return None
        return max(bounds, default=0.0)

    def to_dict(self) -> dict:
        return {"query_id": self.query_id, "sql": self.sql, "params": self.params, "status": self.status,
                "started_at": iso(self.started_at), "finished_at": iso(self.finished_at),
                "content_hash": self.content_hash(), "provable": self.provable,
                "staleness_bound_s": self.staleness_bound_s, "tables": [t.to_dict() for t in self.tables]}

    def summary_headers(self, link: str) -> dict[str, str]:
        """Compact HTTP headers: the content hash, ``table@fingerprint`` per table (cached ones marked
        ``cached``), the staleness bound, and a ``link`` to the whole manifest (RFC 8288, rel="manifest")."""
        parts = []
        for t in self.tables:
            mark = ";cached" if t.from_cache else ""
            parts.append(f"{t.table}@{t.fingerprint or 'unknown'}{mark}")
        bound = self.staleness_bound_s
        return {HASH_HEADER: self.content_hash(), TABLES_HEADER: ", ".join(parts)[:2000],
                STALENESS_HEADER: "unbounded" if bound is None else f"{bound:g}",
                "link": f'<{link}>; rel="manifest"'}


def json_params(params: Sequence[object] | None) -> list:
    """Parameters as JSON values (anything else as its ``str``), for hashing and display."""
    return json.loads(json.dumps(list(params or []), default=str))


#: seconds a query waits for its tables' fingerprints (one cheap statement each, ~1 ms); a source that does not
#: answer in time (stalled, unreachable) leaves them unknown rather than holding the query outside its time limit
FINGERPRINT_TIMEOUT_S = 2.0


def read_fingerprints(catalog: Catalog, tables: Sequence[str], timeout_s: float = FINGERPRINT_TIMEOUT_S
                      ) -> dict[str, str]:
    """``{source.schema.table: fingerprint}``; a source that cannot answer, or not within ``timeout_s``
    seconds, gives "" (unknown), never an error: the manifest must not fail or hang a query. The reads run on
    a daemon worker thread (``connectors.arrow.workers``: one that a stalled source keeps waiting never holds the
    process at exit). Concurrent queries share each table's read (``connectors.fresh_reads``): every one gets a
    fingerprint read after it asked, as fresh as its own, and the source answers one read per batch of them."""
    out = dict.fromkeys(tables, "")
    done = threading.Event()

    def read() -> None:
        for name in tables:
            source, schema, table = name.split(".", 2)
            try:
                connector = catalog.connector(source)
                out[name] = _shared_reads(connector).get((schema, table),
                                                         functools.partial(connector.fingerprint, schema, table))
            except (GatewayError, NotImplementedError, OSError):
                out[name] = ""
        done.set()

    workers.start(read, "trust-fingerprints")
    done.wait(timeout_s)
    return dict(out)


_READS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connector -> FreshReads of its fingerprints
_READS_LOCK = threading.Lock()


def _shared_reads(connector) -> FreshReads:
    with _READS_LOCK:
        reads = _READS.get(connector)
        if reads is None:
            reads = _READS[connector] = FreshReads()
        return reads


def plan_tables(plan: FederatedPlan) -> list[str]:
    """The ``source.schema.table`` names a plan's fragments read, sorted, each once."""
    return sorted({t for f in plan.fragments for t in f.tables})


def begin(catalog: Catalog, query_id: str, sql: str, params: Sequence[object] | None, plan: FederatedPlan,
          bounds: dict[str, float | None]) -> Manifest:
    """The manifest of a query about to read ``plan``: fingerprints read now. ``bounds``: per source, the
    staleness bound its cached partitions are served under (absent: the source is not cached)."""
    now = time.time()
    fingerprints = read_fingerprints(catalog, plan_tables(plan))
    tables = []
    for name, fp in fingerprints.items():
        source = name.split(".", 1)[0]
        tables.append(TableRead(name, source, catalog.connector(source).kind, fp, now,
                                staleness_bound_s=bounds.get(source, 0.0)))
    return Manifest(query_id, sql, json_params(params), now, tables)


def settle(manifest: Manifest, plan: FederatedPlan, stats: QueryStats) -> None:
    """Fill in what the run showed: cached partitions per table (from the fragments' ``PartitionUse``), rows
    and bytes per table (a fragment over several tables counts against each), and the effective staleness
    bound (0 where nothing was served from the cache)."""
    by_id = {f.id: f for f in plan.fragments}
    reads = {t.table: t for t in manifest.tables}
    for read in manifest.tables:  # settled again as the run goes on: counted afresh each time
        read.rows = read.bytes = None
    for fs in stats.fragments:
        fragment = by_id.get(fs.id)
        if fragment is None:
            continue
        for name in fragment.tables:
            read = reads.get(name)
            if read is None:
                continue
            read.rows = (read.rows or 0) + fs.rows
            read.bytes = (read.bytes or 0) + fs.bytes
            if len(fragment.tables) == 1:
                read.cached_partitions = [
                    {"partition": u.partition, "status": u.status, "age_s": u.age_s, "fetched_at": u.fetched_at}
                    for u in fs.partitions
                ]
    for read in manifest.tables:
        if read.cached_partitions and not read.from_cache:
            read.staleness_bound_s = 0.0  # every partition was read from the source


class ManifestStore:
    """The most recent ``size`` manifests by query id (oldest dropped first); thread-safe."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._items: OrderedDict[str, Manifest] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, manifest: Manifest) -> None:
        with self._lock:
            self._items[manifest.query_id] = manifest
            self._items.move_to_end(manifest.query_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, query_id: str) -> Manifest:
        """The manifest of ``query_id``; UnknownObjectError when it is unknown or no longer kept."""
        with self._lock:
            manifest = self._items.get(query_id)
        if manifest is None:
            raise UnknownObjectError("query manifest", query_id, [])
        return manifest

    def __len__(self) -> int:
        return len(self._items)
