"""One bucket, two credentials: two sources on the same S3 bucket (moto, the ``s3`` fixture) whose keys differ,
joined in one query whose residual plan reads both in place. The ``limited`` key may read ``public/`` only, so
a session that handed one source's store to the other (DataFusion registers stores by scheme and host) would
read ``private/`` with the limited key and be refused."""

from __future__ import annotations

import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.objectstore import ObjectStore
from gateway.errors import SourceQueryError, SourceUnavailableError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict


@pytest.fixture(scope="module")
def prefixes(s3) -> dict[str, str]:
    """``private/<run>/facts.parquet`` (only the full key reads it) and ``public/<run>/dims.parquet``."""
    run = secrets.token_hex(3)
    fs = s3.filesystem()
    facts = pa.table({"f_id": pa.array(range(40), pa.int64()), "d_id": pa.array([i % 4 for i in range(40)],
                                                                                 pa.int64())})
    dims = pa.table({"d_id": pa.array(range(4), pa.int64()), "d_name": ["a", "b", "c", "d"]})
    pq.write_table(facts, f"{s3.bucket}/private/{run}/facts.parquet", filesystem=fs)
    pq.write_table(dims, f"{s3.bucket}/public/{run}/dims.parquet", filesystem=fs)
    return {"private": f"s3://{s3.bucket}/private/{run}", "public": f"s3://{s3.bucket}/public/{run}"}


def _engine(s3, prefixes, order: tuple[str, str], base: Path) -> QueryEngine:
    sources = {
        "full": {"name": "full", "kind": "parquet", "path": prefixes["private"], **s3.options()},
        "limited": {"name": "limited", "kind": "parquet", "path": prefixes["public"],
                    **s3.options(access_key_id=s3.limited_access_key_id,
                                 secret_access_key=s3.limited_secret_access_key)},
    }
    # every fragment read in place by the residual session (no small-fragment fetch, no dynamic-filter build)
    raw = {"sources": [sources[name] for name in order],
           "limits": {"in_place_min_rows": 0, "dynamic_filters": False}}
    return QueryEngine(settings_from_dict(raw, base_dir=base))


JOIN = ("SELECT d.d_name, COUNT(*) AS c FROM {a} JOIN {b} ON f.d_id = d.d_id GROUP BY d.d_name ORDER BY d.d_name")


@pytest.mark.parametrize("order", [("full", "limited"), ("limited", "full")])
def test_join_reads_each_source_with_its_own_credentials(s3, prefixes, order, tmp_path):
    engine = _engine(s3, prefixes, order, tmp_path)
    tables = {"full": "full.facts f", "limited": "limited.dims d"}
    for a, b in (order, order[::-1]):  # both registration orders inside the residual session
        sql = JOIN.format(a=tables[a], b=tables[b])
        rows = engine.execute(sql, max_staleness_s=0).reader.read_all().to_pylist()
        assert rows == [{"d_name": n, "c": 10} for n in "abcd"], sql


def test_limited_key_really_lacks_access(s3, prefixes, tmp_path):
    """The premise of the test above: the limited key cannot read the private prefix."""
    raw = {"sources": [{"name": "peek", "kind": "parquet", "path": prefixes["private"],
                        **s3.options(access_key_id=s3.limited_access_key_id,
                                     secret_access_key=s3.limited_secret_access_key)}]}
    engine = QueryEngine(settings_from_dict(raw, base_dir=tmp_path))
    with pytest.raises((SourceUnavailableError, SourceQueryError)):
        engine.execute("SELECT COUNT(*) FROM peek.facts").reader.read_all()


def test_stores_with_other_credentials_get_other_urls(s3):
    """Same bucket and endpoint, other key: another DataFusion store URL; the same settings: the same URL."""
    path = f"s3://{s3.bucket}/p"
    full = ObjectStore.from_options(path, s3.options())
    again = ObjectStore.from_options(path, s3.options())
    limited = ObjectStore.from_options(path, s3.options(access_key_id=s3.limited_access_key_id,
                                                        secret_access_key=s3.limited_secret_access_key))
    assert full.datafusion_uri("x") == again.datafusion_uri("x")
    assert full.datafusion_uri("x") != limited.datafusion_uri("x")
    assert full.uri("x") == limited.uri("x") == f"s3://{s3.bucket}/p/x"
    assert s3.limited_secret_access_key not in limited.datafusion_uri("x")
