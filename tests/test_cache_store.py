"""The hot-partition cache's storage: admission, freshness, budgets, tiers, restart, corruption and
single-flight. Real files in ``tmp_path``; time comes from a fake clock, except in the single-flight tests
(threads).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry

from gateway.cache.store import CachedPartition, PartitionCache, PartitionKey

ROWS = 1000  # int64 + float64 columns: 16_000 bytes per table
TABLE_BYTES = 16 * ROWS


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pkey(partition: str = "p0", source: str = "lake", table: str = "events") -> PartitionKey:
    return PartitionKey(source, "main", table, partition, ("id", "v"))


def make_table(seed: int = 0, rows: int = ROWS) -> pa.Table:
    ids = pa.array(range(seed, seed + rows), pa.int64())
    return pa.table({"id": ids, "v": pa.array([i * 0.5 for i in range(seed, seed + rows)], pa.float64())})


def admit(cache: PartitionCache, key: PartitionKey, times: int = 2) -> None:
    for _ in range(times):
        cache.record_access(key)


def files_of(folder: Path, key: PartitionKey) -> tuple[Path, Path]:
    return folder / f"{key.id()}.arrow", folder / f"{key.id()}.json"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


class CountingFetch:
    """A fetch that counts its calls (thread-safe) and can sleep or fail."""

    def __init__(
        self, table: pa.Table, fingerprint: str = "v1", sleep_s: float = 0.0, error: Exception | None = None
    ) -> None:
        self.table, self.fingerprint, self.sleep_s, self.error = table, fingerprint, sleep_s, error
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> tuple[pa.Table, str]:
        with self._lock:
            self.calls += 1
        time.sleep(self.sleep_s)
        if self.error is not None:
            raise self.error
        return self.table, self.fingerprint


NO_FRESHNESS = {"max_staleness_s": None, "current_fingerprint": None}


def test_partition_key_id_is_stable_and_distinguishes_fields():
    a = PartitionKey("lake", "main", "events", "p0", ["id", "v"])  # a list is kept as a tuple
    assert a == pkey() and hash(a) == hash(pkey())
    assert a.id() == pkey().id() and len(a.id()) == 32 and set(a.id()) <= set("0123456789abcdef")
    fewer_columns = PartitionKey("lake", "main", "events", "p0", ("id",))
    others = [pkey("p1"), pkey(source="shop"), pkey(table="users"), fewer_columns]
    assert len({a.id(), *(k.id() for k in others)}) == 5


def test_admission_after_n_uses_not_on_first_touch():
    clock = FakeClock()
    cache = PartitionCache(10 * TABLE_BYTES, None, 0, admit_after=3, admission_window_s=10, clock=clock)
    k, t = pkey(), make_table()
    assert cache.put(k, t, "v1") is False  # never used
    assert cache.record_access(k) is False
    assert cache.put(k, t, "v1") is False
    assert cache.record_access(k) is False
    assert cache.record_access(k) is True
    assert cache.put(k, t, "v1") is True
    assert cache.lookup(k, **NO_FRESHNESS).table.equals(t)
    # warm: force stores an unused key
    assert cache.put(pkey("p9"), t, "v1", force=True) is True


def test_admission_window_slides_and_history_stays_bounded():
    clock = FakeClock()
    cache = PartitionCache(10 * TABLE_BYTES, None, 0, admit_after=2, admission_window_s=10, clock=clock)
    k = pkey()
    assert cache.record_access(k) is False
    clock.advance(11)
    assert cache.record_access(k) is False  # the first use fell out of the window
    assert cache.put(k, make_table(), "v1") is False
    clock.advance(1)
    assert cache.record_access(k) is True
    assert cache.put(k, make_table(), "v1") is True

    for i in range(100):
        cache.record_access(pkey(f"cold{i}"))
    assert cache.status()["admission"]["tracked_keys"] == 101
    clock.advance(11)
    cache.record_access(pkey("late"))
    assert cache.status()["admission"]["tracked_keys"] == 1  # keys idle for a whole window are forgotten


def test_get_or_fetch_stores_once_admitted_and_hit_returns_same_data():
    cache = PartitionCache(10 * TABLE_BYTES, None, 0, admit_after=2, clock=FakeClock())
    k, t = pkey(), make_table(7)
    fetch = CountingFetch(t)
    assert cache.get_or_fetch(k, fetch, **NO_FRESHNESS) == (t, False)
    assert cache.status()["entries"] == []  # first touch: not admitted
    table, from_cache = cache.get_or_fetch(k, fetch, **NO_FRESHNESS)
    assert (from_cache, fetch.calls) == (False, 2)
    table, from_cache = cache.get_or_fetch(k, fetch, **NO_FRESHNESS)
    assert from_cache is True and fetch.calls == 2 and table.equals(t)
    s = cache.stats
    assert (s.hits, s.misses, s.bytes_served, s.bytes_fetched) == (1, 2, t.nbytes, 2 * t.nbytes)


def test_ttl_staleness_rejects_old_entries_and_a_refetch_counts_as_refresh():
    clock = FakeClock()
    cache = PartitionCache(10 * TABLE_BYTES, None, 0, clock=clock)
    k = pkey()
    cache.put(k, make_table(1), "v1", force=True)
    clock.advance(5)
    hit = cache.lookup(k, max_staleness_s=10, current_fingerprint=None)
    assert isinstance(hit, CachedPartition) and hit.tier == "memory" and hit.age_s() == 5
    clock.advance(6)
    assert cache.lookup(k, max_staleness_s=10, current_fingerprint=None) is None
    assert cache.stats.stale_rejections == 1
    assert cache.lookup(k, **NO_FRESHNESS) is not None  # kept for readers that accept older data
    _, from_cache = cache.get_or_fetch(k, CountingFetch(make_table(2)), max_staleness_s=10,
                                       current_fingerprint=None, force_admit=True)
    assert from_cache is False and cache.stats.refreshes == 1
    assert cache.lookup(k, max_staleness_s=10, current_fingerprint=None).table.equals(make_table(2))


def test_changed_fingerprint_is_stale_and_dropped_from_both_tiers(tmp_path):
    cache = PartitionCache(10 * TABLE_BYTES, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    k = pkey()
    cache.put(k, make_table(), "v1", force=True)
    assert all(p.exists() for p in files_of(tmp_path, k))
    assert cache.lookup(k, max_staleness_s=None, current_fingerprint=lambda: "v1") is not None
    assert cache.lookup(k, max_staleness_s=None, current_fingerprint=lambda: "v2") is None
    assert cache.stats.stale_rejections == 1
    assert cache.status()["entries"] == [] and not any(p.exists() for p in files_of(tmp_path, k))
    assert cache.lookup(k, **NO_FRESHNESS) is None
    cache.put(k, make_table(1), "v2", force=True)
    assert cache.stats.refreshes == 1


def test_strict_freshness_requires_a_fingerprint():
    cache = PartitionCache(10 * TABLE_BYTES, None, 0, clock=FakeClock())
    k = pkey()
    cache.put(k, make_table(), "v1", force=True)
    assert cache.lookup(k, max_staleness_s=0, current_fingerprint=None) is None
    assert cache.stats.stale_rejections == 1
    fetch = CountingFetch(make_table())
    for _ in range(3):  # admitted, stored, still never served without a fingerprint
        assert cache.get_or_fetch(k, fetch, max_staleness_s=0, current_fingerprint=None)[1] is False
    assert fetch.calls == 3
    # age does not matter in strict mode: a matching fingerprint proves the data current
    hit = cache.lookup(k, max_staleness_s=0, current_fingerprint=lambda: "v1")
    assert hit is not None and hit.table.equals(make_table())
    with pytest.raises(ValueError):
        cache.lookup(k, max_staleness_s=-1, current_fingerprint=None)


def test_memory_budget_is_never_exceeded_and_hot_entries_survive_churn():
    budget = 10 * TABLE_BYTES
    cache = PartitionCache(budget, None, 0, clock=FakeClock())
    hot = pkey("hot")
    cache.put(hot, make_table(), "v1", force=True)
    for _ in range(10):
        assert cache.lookup(hot, **NO_FRESHNESS) is not None
    for i in range(50):  # 5x the budget, each key admitted by two uses
        k = pkey(f"p{i}")
        admit(cache, k)
        assert cache.put(k, make_table(i), "v1") is True
        status = cache.status()
        assert cache.memory_used_bytes <= budget and status["memory"]["used_bytes"] <= budget
        assert sum(e["bytes"] for e in status["entries"] if e["in_memory"]) == cache.memory_used_bytes
    assert cache.stats.evictions == 41
    assert len(cache.status()["entries"]) == 10
    assert cache.lookup(hot, **NO_FRESHNESS).tier == "memory"  # used more than any newcomer
    # bigger than the whole memory budget and no disk: not kept
    assert cache.put(pkey("huge"), make_table(rows=11 * ROWS), "v1", force=True) is False
    assert cache.memory_used_bytes <= budget


def test_disk_budget_is_never_exceeded(tmp_path):
    budget = 60_000  # three entries of ~16.5 kB (IPC file + sidecar)
    cache = PartitionCache(0, tmp_path, budget, clock=FakeClock())
    for i in range(15):
        k = pkey(f"p{i}")
        admit(cache, k)
        assert cache.put(k, make_table(i), "v1") is True
        assert cache.disk_used_bytes <= budget and folder_bytes(tmp_path) <= budget
        assert folder_bytes(tmp_path) == cache.disk_used_bytes  # the accounting matches the real files
    assert cache.stats.evictions == 12
    assert not list(tmp_path.glob("*.tmp"))
    ids_on_disk = sorted(p.stem for p in tmp_path.glob("*.arrow"))
    assert ids_on_disk == sorted(e["id"] for e in cache.status()["entries"])
    assert cache.lookup(pkey("p14"), **NO_FRESHNESS).table.equals(make_table(14))


def test_demotion_to_disk_and_promotion_back(tmp_path):
    cache = PartitionCache(TABLE_BYTES + 100, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    a, b = pkey("a"), pkey("b")
    cache.put(a, make_table(1), "v1", force=True)
    cache.put(b, make_table(2), "v1", force=True)
    tiers = {e["partition"]: e["tier"] for e in cache.status()["entries"]}
    assert tiers == {"a": "disk", "b": "memory"} and cache.stats.demotions == 1
    hit = cache.lookup(a, **NO_FRESHNESS)
    assert hit.tier == "disk" and hit.table.equals(make_table(1))
    tiers = {e["partition"]: e["tier"] for e in cache.status()["entries"]}
    assert tiers == {"a": "memory", "b": "disk"} and cache.stats.promotions == 1
    assert cache.lookup(a, **NO_FRESHNESS).tier == "memory"
    assert cache.memory_used_bytes <= TABLE_BYTES + 100


def test_restart_serves_fresh_disk_entries(tmp_path):
    clock = FakeClock()
    first = PartitionCache(10 * TABLE_BYTES, tmp_path, 10 * TABLE_BYTES, clock=clock)
    k = pkey()
    first.put(k, make_table(3), "v1", force=True)
    clock.advance(10)
    second = PartitionCache(10 * TABLE_BYTES, tmp_path, 10 * TABLE_BYTES, clock=clock)
    assert [e["tier"] for e in second.status()["entries"]] == ["disk"]
    hit = second.lookup(k, max_staleness_s=60, current_fingerprint=lambda: "v1")
    assert hit.tier == "disk" and hit.table.equals(make_table(3)) and hit.age_s() == 10
    assert second.stats.corruptions == 0
    clock.advance(100)  # fetched_at survives the restart, so age still counts from the original fetch
    third = PartitionCache(10 * TABLE_BYTES, tmp_path, 10 * TABLE_BYTES, clock=clock)
    assert third.lookup(k, max_staleness_s=60, current_fingerprint=None) is None


def test_restart_with_a_smaller_disk_budget_evicts_down_to_it(tmp_path):
    first = PartitionCache(0, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    for i in range(4):
        first.put(pkey(f"p{i}"), make_table(i), "v1", force=True)
    second = PartitionCache(0, tmp_path, 40_000, clock=FakeClock())
    assert second.disk_used_bytes <= 40_000 and folder_bytes(tmp_path) <= 40_000
    assert len(second.status()["entries"]) == 2


def stored_entry(folder: Path) -> None:
    """``pkey()`` stored on disk by a cache instance that is then gone (as before a restart)."""
    PartitionCache(0, folder, 10 * TABLE_BYTES, clock=FakeClock()).put(pkey(), make_table(), "v1", force=True)


def _serve_after_damage(cache: PartitionCache, folder: Path, k: PartitionKey) -> None:
    """The damaged entry is a miss, its files are gone, and a refetch stores and serves it again."""
    assert cache.lookup(k, **NO_FRESHNESS) is None
    assert cache.stats.corruptions == 1
    assert not any(p.exists() for p in files_of(folder, k))
    fetch = CountingFetch(make_table(5))
    assert cache.get_or_fetch(k, fetch, **NO_FRESHNESS, force_admit=True) == (fetch.table, False)
    assert fetch.calls == 1
    hit = cache.lookup(k, **NO_FRESHNESS)
    assert hit is not None and hit.table.equals(make_table(5))


def test_flipped_bytes_in_the_data_file_are_a_miss_and_deleted(tmp_path):
    cache = PartitionCache(0, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())  # served from disk
    k = pkey()
    cache.put(k, make_table(), "v1", force=True)
    data, _ = files_of(tmp_path, k)
    raw = bytearray(data.read_bytes())
    for i in range(len(raw) // 2, len(raw) // 2 + 8):
        raw[i] ^= 0xFF
    data.write_bytes(bytes(raw))
    _serve_after_damage(cache, tmp_path, k)


def test_truncated_sidecar_is_a_miss_and_deleted(tmp_path):
    cache = PartitionCache(0, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    k = pkey()
    cache.put(k, make_table(), "v1", force=True)
    _, meta = files_of(tmp_path, k)
    meta.write_bytes(meta.read_bytes()[: meta.stat().st_size // 2])
    _serve_after_damage(cache, tmp_path, k)


def test_truncated_sidecar_found_at_restart(tmp_path):
    stored_entry(tmp_path)
    _, meta = files_of(tmp_path, pkey())
    meta.write_bytes(meta.read_bytes()[:10])
    cache = PartitionCache(0, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    assert cache.stats.corruptions == 1 and list(tmp_path.iterdir()) == []
    assert cache.lookup(pkey(), **NO_FRESHNESS) is None


def test_data_that_is_not_arrow_is_a_miss_even_with_a_matching_checksum(tmp_path):
    import zlib

    stored_entry(tmp_path)
    data, meta = files_of(tmp_path, pkey())
    junk = b"not an arrow file " * 100
    data.write_bytes(junk)
    doc = json.loads(meta.read_bytes())
    doc.update(file_bytes=len(junk), checksum=f"crc32:{zlib.crc32(junk):08x}")
    meta.write_text(json.dumps(doc))
    cache = PartitionCache(0, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    _serve_after_damage(cache, tmp_path, pkey())


def test_start_removes_temp_files_and_half_written_entries(tmp_path):
    stored_entry(tmp_path)
    (tmp_path / "0123abcd.1234.arrow.tmp").write_bytes(b"partial")
    (tmp_path / "0123abcd.5678.json.tmp").write_bytes(b"{")
    (tmp_path / "0123abcd.arrow").write_bytes(b"no sidecar")
    cache = PartitionCache(0, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files_of(tmp_path, pkey()))
    assert cache.stats.corruptions == 0
    assert cache.lookup(pkey(), **NO_FRESHNESS).table.equals(make_table())


def _run_concurrently(n: int, call) -> list:
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait()
        try:
            return call()
        except Exception as exc:  # the test inspects it
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_single_flight_runs_fetch_once_for_concurrent_misses():
    cache = PartitionCache(10 * TABLE_BYTES, None, 0)
    k, fetch = pkey(), CountingFetch(make_table(4), sleep_s=0.2)
    results = _run_concurrently(8, lambda: cache.get_or_fetch(k, fetch, **NO_FRESHNESS))
    assert fetch.calls == 1
    assert all(table.equals(make_table(4)) for table, _ in results)
    assert cache.stats.coalesced + cache.stats.hits == 7
    assert cache.stats.bytes_fetched == make_table(4).nbytes
    assert cache.get_or_fetch(k, fetch, **NO_FRESHNESS)[1] is True  # 8 uses admitted it


def test_single_flight_shares_the_error_and_the_next_call_retries():
    cache = PartitionCache(10 * TABLE_BYTES, None, 0)
    k, fetch = pkey(), CountingFetch(make_table(), sleep_s=0.2, error=RuntimeError("source down"))
    results = _run_concurrently(8, lambda: cache.get_or_fetch(k, fetch, **NO_FRESHNESS))
    assert fetch.calls == 1 and all(isinstance(r, RuntimeError) for r in results)
    fetch.error = None
    assert cache.get_or_fetch(k, fetch, **NO_FRESHNESS)[0].equals(make_table())
    assert fetch.calls == 2


def test_single_flight_in_strict_mode_shares_only_with_a_matching_fingerprint():
    cache = PartitionCache(10 * TABLE_BYTES, None, 0)
    k, fetch = pkey(), CountingFetch(make_table(), fingerprint="v1", sleep_s=0.2)
    results = _run_concurrently(
        4, lambda: cache.get_or_fetch(k, fetch, max_staleness_s=0, current_fingerprint=lambda: "v1")
    )
    assert fetch.calls == 1 and all(table.equals(make_table()) for table, _ in results)
    other = pkey("p1")
    fetch_blind = CountingFetch(make_table(), sleep_s=0.2)
    _run_concurrently(
        4, lambda: cache.get_or_fetch(other, fetch_blind, max_staleness_s=0, current_fingerprint=None)
    )
    assert fetch_blind.calls == 4  # nothing proves a shared fetch saw every write before each start


def test_concurrent_mixed_workload_keeps_budgets_and_files_consistent(tmp_path):
    """Random gets, puts, invalidations and source changes from 8 threads for about a second."""
    import random

    memory_budget, disk_budget = 60_000, 90_000
    cache = PartitionCache(memory_budget, tmp_path, disk_budget, admission_window_s=5, frequency_half_life_s=1)
    tables = {i: make_table(i * 100, rows=200 + 150 * (i % 5)) for i in range(20)}
    versions = dict.fromkeys(tables, "v1")
    stop, problems = threading.Event(), []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        while not stop.is_set():
            i = int(rnd.paretovariate(1.2)) % 20
            k = pkey(f"p{i}")
            op = rnd.random()
            if op < 0.03:
                cache.invalidate(partition=f"p{i}")
            elif op < 0.06:
                versions[i] = f"v{rnd.randint(1, 3)}"
            elif op < 0.08:
                cache.put(k, tables[i], versions[i], force=True)
            else:
                fingerprint = rnd.choice([None, lambda i=i: versions[i]])
                table, _ = cache.get_or_fetch(k, lambda i=i: (tables[i], versions[i]),
                                              max_staleness_s=rnd.choice([None, 0, 1.0]),
                                              current_fingerprint=fingerprint)
                if not table.equals(tables[i]):
                    problems.append(f"wrong data for p{i}")
            if cache.memory_used_bytes > memory_budget or cache.disk_used_bytes > disk_budget:
                problems.append("budget exceeded")

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert problems == []
    status = cache.status()
    on_disk = [e["id"] for e in status["entries"] if e["on_disk"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{i}.arrow" for i in on_disk]
                                                                + [f"{i}.json" for i in on_disk])
    assert folder_bytes(tmp_path) == cache.disk_used_bytes <= disk_budget
    assert sum(e["bytes"] for e in status["entries"] if e["in_memory"]) == cache.memory_used_bytes
    assert cache.stats.corruptions == 0 and cache.stats.hits > 0 and cache.stats.evictions > 0
    restarted = PartitionCache(memory_budget, tmp_path, disk_budget)
    assert restarted.stats.corruptions == 0 and len(restarted.status()["entries"]) == len(on_disk)


def test_invalidate_during_a_fetch_keeps_its_result_out_of_the_cache():
    cache = PartitionCache(10 * TABLE_BYTES, None, 0)
    k = pkey()
    started, release = threading.Event(), threading.Event()

    def fetch():
        started.set()
        release.wait(5)
        return make_table(), "v1"

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(cache.get_or_fetch, k, fetch, **NO_FRESHNESS, force_admit=True)
        assert started.wait(5)
        assert cache.invalidate(source="lake") == 0
        release.set()
        assert future.result(5)[0].equals(make_table())
    assert cache.lookup(k, **NO_FRESHNESS) is None and cache.status()["entries"] == []


def test_invalidate_by_source_table_partition_and_clear(tmp_path):
    cache = PartitionCache(10 * TABLE_BYTES, tmp_path, 10 * TABLE_BYTES, clock=FakeClock())
    keys = [pkey("p0"), pkey("p1"), pkey("all", table="users"), pkey("all", source="shop", table="orders")]
    for i, k in enumerate(keys):
        cache.put(k, make_table(i), "v1", force=True)
    assert len(list(tmp_path.glob("*.arrow"))) == 4
    assert cache.invalidate(table="events", partition="p0") == 1
    assert cache.invalidate(source="nowhere") == 0
    assert cache.invalidate(table="events") == 1
    assert cache.invalidate(source="lake") == 1
    assert [e["source"] for e in cache.status()["entries"]] == ["shop"]
    assert cache.clear() == 1
    assert list(tmp_path.iterdir()) == [] and cache.disk_used_bytes == 0 and cache.memory_used_bytes == 0


def test_status_lists_entries_totals_and_budgets(tmp_path):
    clock = FakeClock()
    cache = PartitionCache(TABLE_BYTES + 100, tmp_path, 10 * TABLE_BYTES, admit_after=2, clock=clock)
    cache.put(pkey("a"), make_table(1), "fa", force=True)
    clock.advance(3)
    cache.put(pkey("b"), make_table(2), "fb", force=True)
    cache.lookup(pkey("b"), **NO_FRESHNESS)
    clock.advance(2)
    status = cache.status()
    by_partition = {e["partition"]: e for e in status["entries"]}
    b = by_partition["b"]
    shown = ("source", "schema", "table", "columns", "tier", "bytes", "fingerprint", "hits")
    assert {k: b[k] for k in shown} == {
        "source": "lake", "schema": "main", "table": "events", "columns": ["id", "v"], "tier": "memory",
        "bytes": TABLE_BYTES, "fingerprint": "fb", "hits": 1,
    }
    assert b["age_s"] == 2 and b["on_disk"] and b["disk_bytes"] > TABLE_BYTES and b["id"] == pkey("b").id()
    a = by_partition["a"]
    assert (a["tier"], a["age_s"], a["fingerprint"], a["hits"], a["in_memory"]) == ("disk", 5, "fa", 0, False)
    assert status["entries"][0]["partition"] == "b"  # hottest first
    assert status["memory"] == {"used_bytes": TABLE_BYTES, "budget_bytes": TABLE_BYTES + 100, "entries": 1}
    assert status["disk"]["budget_bytes"] == 10 * TABLE_BYTES and status["disk"]["entries"] == 2
    assert status["disk"]["used_bytes"] == folder_bytes(tmp_path) and status["disk"]["path"] == str(tmp_path)
    assert status["stats"]["hits"] == 1 and status["admission"]["admit_after"] == 2


def test_prometheus_metrics_read_the_cache_at_scrape_time():
    registry = CollectorRegistry()
    cache = PartitionCache(10 * TABLE_BYTES, None, 0, clock=FakeClock())
    cache.register_metrics(registry)
    cache.put(pkey(), make_table(), "v1", force=True)
    cache.lookup(pkey(), **NO_FRESHNESS)
    cache.lookup(pkey("missing"), **NO_FRESHNESS)
    assert registry.get_sample_value("gateway_cache_hits_total") == 1
    assert registry.get_sample_value("gateway_cache_misses_total") == 1
    assert registry.get_sample_value("gateway_cache_bytes_served_total") == TABLE_BYTES
    assert registry.get_sample_value("gateway_cache_memory_used_bytes") == TABLE_BYTES
    assert registry.get_sample_value("gateway_cache_entries", {"tier": "memory"}) == 1
    for name in ("bytes_fetched", "evictions", "refreshes", "corruptions", "stale_rejections"):
        assert registry.get_sample_value(f"gateway_cache_{name}_total") == 0
    with pytest.raises(ValueError):
        cache.register_metrics(registry)


def test_invalid_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError):
        PartitionCache(-1, None, 0)
    with pytest.raises(ValueError):
        PartitionCache(1, tmp_path, 1, admit_after=0)
    with pytest.raises(ValueError):
        PartitionCache(1, tmp_path, 1, admission_window_s=0)
