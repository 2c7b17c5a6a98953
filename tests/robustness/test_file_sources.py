"""Parquet/CSV sources: symbolic links cannot reach files outside the source folder, and one unreadable file
fails only its own table.

Everything runs on real files through the real REST app (``running_app``); expected values are written by
the test itself. Every message checked here names the source and the table and holds no absolute server path.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.catalog import TableRef
from gateway.api import create_app
from gateway.errors import SourceQueryError
from gateway.execution.engine import QueryEngine
from gateway.settings import settings_from_dict
from tests.demo_support import running_app

SECRET = {"secret": ["do-not-read"]}
LINK_REASON = ("it contains a symbolic link leading outside the source folder ({link}); "
               "set follow_symlinks = true on the source to allow it")


def no_server_path(text: str, root: Path) -> None:
    """Neither the absolute folder nor DataFusion's form of it (no leading slash) appears in ``text``."""
    for form in {str(root), os.path.realpath(root)}:
        assert form not in text and form.lstrip("/") not in text, text


@pytest.fixture
def lake(tmp_path) -> Path:
    """``lake/``: regions.parquet, orders/ (two files), and outside it ``outside/secret.parquet`` and
    ``outside/orders-extra.parquet`` (same columns as orders)."""
    lake, outside = tmp_path / "lake", tmp_path / "outside"
    (lake / "orders").mkdir(parents=True)
    outside.mkdir()
    pq.write_table(pa.table({"region": ["north", "south"]}), lake / "regions.parquet")
    pq.write_table(pa.table({"id": [1, 2]}), lake / "orders" / "a.parquet")
    pq.write_table(pa.table({"id": [3]}), lake / "orders" / "b.parquet")
    pq.write_table(pa.table(SECRET), outside / "secret.parquet")
    pq.write_table(pa.table({"id": [99]}), outside / "orders-extra.parquet")
    return lake


def serve(root: Path, kind: str = "parquet", **options) -> QueryEngine:
    """A gateway over one source ``lake`` of ``kind`` at ``root``."""
    source = {"name": "lake", "kind": kind, "path": str(root), **options}
    return QueryEngine(settings_from_dict({"sources": [source]}, base_dir=root.parent))


def query(base: str, sql: str) -> httpx.Response:
    return httpx.post(f"{base}/v1/query", json={"sql": sql}, timeout=30)


# -- symbolic links ---------------------------------------------------------------------------------------

def test_file_linked_out_of_the_folder_is_not_read(lake):
    (lake / "secret.parquet").symlink_to(lake.parent / "outside" / "secret.parquet")
    gateway = serve(lake)
    with running_app(create_app(gateway)) as base:
        refused = query(base, "SELECT * FROM lake.secret")
        regions = query(base, "SELECT count(*) AS n FROM regions")  # unqualified: the source still answers
    gateway.close()
    assert refused.status_code == 502
    assert refused.json()["error"]["message"] == (
        "source 'lake' failed the query: table 'secret' cannot be read: " + LINK_REASON.format(link="secret.parquet"))
    assert "do-not-read" not in refused.text
    no_server_path(refused.text, lake)
    assert regions.json()["rows"] == [[2]]


def test_file_linked_out_of_a_table_folder_fails_that_table(lake):
    (lake / "orders" / "c.parquet").symlink_to(lake.parent / "outside" / "orders-extra.parquet")
    gateway = serve(lake)
    with running_app(create_app(gateway)) as base:
        refused = query(base, "SELECT sum(id) AS s FROM lake.orders")
        regions = query(base, "SELECT count(*) AS n FROM lake.regions")
    gateway.close()
    assert refused.status_code == 502
    assert refused.json()["error"]["message"] == (
        "source 'lake' failed the query: table 'orders' cannot be read: " + LINK_REASON.format(link="orders/c.parquet"))
    no_server_path(refused.text, lake)
    assert regions.json()["rows"] == [[2]]


def test_folder_linked_out_of_the_folder_is_not_read(lake):
    (lake / "archive").symlink_to(lake.parent / "outside", target_is_directory=True)
    gateway = serve(lake)
    try:
        assert gateway.catalog.table_errors("lake") == {
            TableRef("lake", "main", "archive"): LINK_REASON.format(link="archive")}
        with pytest.raises(SourceQueryError) as excinfo:
            gateway.execute("SELECT * FROM lake.archive").reader.read_all()
        assert excinfo.value.message == (
            "source 'lake' failed the query: table 'archive' cannot be read: " + LINK_REASON.format(link="archive"))
        assert gateway.execute("SELECT count(*) AS n FROM lake.orders").reader.read_all().to_pylist() == [{"n": 3}]
    finally:
        gateway.close()


def test_link_added_after_the_folder_was_listed_is_refused(lake):
    gateway = serve(lake)
    with running_app(create_app(gateway)) as base:
        before = query(base, "SELECT sum(id) AS s FROM lake.orders")
        (lake / "orders" / "c.parquet").symlink_to(lake.parent / "outside" / "orders-extra.parquet")
        after = query(base, "SELECT sum(id) AS s FROM lake.orders")
    gateway.close()
    assert before.json()["rows"] == [[6]]
    assert after.status_code == 502
    assert after.json()["error"]["message"] == (
        "source 'lake' failed the query: table 'orders' cannot be read: " + LINK_REASON.format(link="orders/c.parquet"))
    assert "99" not in after.text


def test_link_inside_the_folder_is_read(lake):
    (lake / "orders" / "c.parquet").symlink_to(lake / "regions.parquet")  # a file of the same folder
    (lake / "places.parquet").symlink_to(lake / "regions.parquet")
    gateway = serve(lake)
    try:
        places = gateway.execute("SELECT region FROM lake.places ORDER BY 1").reader.read_all()
    finally:
        gateway.close()
    assert places.column("region").to_pylist() == ["north", "south"]


def test_follow_symlinks_true_reads_outside_files(lake):
    (lake / "secret.parquet").symlink_to(lake.parent / "outside" / "secret.parquet")
    (lake / "orders" / "c.parquet").symlink_to(lake.parent / "outside" / "orders-extra.parquet")
    gateway = serve(lake, follow_symlinks=True)
    try:
        secret = gateway.execute("SELECT * FROM lake.secret").reader.read_all()
        total = gateway.execute("SELECT sum(id) AS s FROM lake.orders").reader.read_all()
    finally:
        gateway.close()
    assert secret.to_pydict() == SECRET
    assert total.column("s").to_pylist() == [1 + 2 + 3 + 99]


# -- one unreadable file ------------------------------------------------------------------------------------

@pytest.fixture
def csv_folder(tmp_path) -> Path:
    """cities.csv and people/ (two files) are fine; broken.csv has a row with four fields under a
    two-column header."""
    folder = tmp_path / "csv"
    (folder / "people").mkdir(parents=True)
    (folder / "cities.csv").write_text("city,population\nOslo,700000\nBergen,290000\n")
    (folder / "people" / "1.csv").write_text("name,age\nAnn,31\n")
    (folder / "people" / "2.csv").write_text("name,age\nBo,42\n")
    (folder / "broken.csv").write_text("a,b\n1,2,3,4\n")
    return folder


BROKEN_REASON = ("DataFusion error: Error when processing CSV file broken.csv: Arrow error: Csv error: Encountered "
                 "unequal lengths between records on CSV file. Expected 2 records, found 4 records at line 2")


def test_unparseable_csv_fails_only_its_table(csv_folder):
    gateway = serve(csv_folder, kind="csv")
    with running_app(create_app(gateway)) as base:
        cities = query(base, "SELECT sum(population) AS p FROM cities")  # unqualified names still resolve
        people = query(base, "SELECT name FROM lake.people ORDER BY name")
        broken = query(base, "SELECT * FROM broken")
        listed = httpx.get(f"{base}/v1/sources/lake/tables", timeout=30)
    gateway.close()
    assert cities.json()["rows"] == [[990000]]
    assert people.json()["rows"] == [["Ann"], ["Bo"]]
    assert broken.status_code == 502
    assert broken.json()["error"]["message"] == (
        f"source 'lake' failed the query: table 'broken' cannot be read: {BROKEN_REASON}")
    no_server_path(broken.text, csv_folder)
    assert [t["table"] for t in listed.json()] == ["broken", "cities", "people"]


def test_catalog_lists_the_unreadable_table_with_its_reason(csv_folder):
    gateway = serve(csv_folder, kind="csv")
    try:
        assert gateway.catalog.reload("lake")  # the background load keeps the readable tables
        assert gateway.catalog.table_errors("lake") == {TableRef("lake", "main", "broken"): BROKEN_REASON}
        assert gateway.catalog.list_tables("lake", "main") == ["broken", "cities", "people"]
        assert gateway.catalog.table_schema(TableRef("lake", "main", "cities")).names == ["city", "population"]
    finally:
        gateway.close()


def test_repaired_file_is_read_after_refresh(csv_folder):
    gateway = serve(csv_folder, kind="csv")
    try:
        assert TableRef("lake", "main", "broken") in gateway.catalog.table_errors("lake")
        (csv_folder / "broken.csv").write_text("a,b\n1,2\n")
        gateway.catalog.refresh("lake")
        assert gateway.catalog.table_errors("lake") == {}
        assert gateway.execute("SELECT a + b AS s FROM lake.broken").reader.read_all().to_pylist() == [{"s": 3}]
    finally:
        gateway.close()


@pytest.mark.parametrize(("content", "reason"), [
    (b"not a parquet file at all", "Parquet error"),
    (b"PAR1 a footer length pointing before the file start PAR1", "a file could not be parsed (DataFusion panicked"),
])
def test_corrupt_parquet_file_fails_only_its_table(lake, content, reason):
    (lake / "orders" / "c.parquet").write_bytes(content)
    gateway = serve(lake)
    with running_app(create_app(gateway)) as base:
        orders = query(base, "SELECT sum(id) AS s FROM orders")
        regions = query(base, "SELECT count(*) AS n FROM regions")
    gateway.close()
    message = orders.json()["error"]["message"]
    assert orders.status_code == 502
    assert message.startswith("source 'lake' failed the query: table 'orders' cannot be read: ")
    assert reason in message
    no_server_path(orders.text, lake)
    assert regions.json()["rows"] == [[2]]


def test_error_while_reading_names_table_without_server_path(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    # schema inference reads the first 1,000 rows; the bad row comes later, so it fails while reading
    rows = "".join(f"{i},{i}\n" for i in range(2000))
    (folder / "late.csv").write_text("a,b\n" + rows + "x,y,z\n")
    (folder / "fine.csv").write_text("a\n1\n")
    gateway = serve(folder, kind="csv")
    with running_app(create_app(gateway)) as base:
        late = query(base, "SELECT sum(a) AS s FROM late")
        fine = query(base, "SELECT a FROM fine")
    gateway.close()
    assert late.status_code == 502
    message = late.json()["error"]["message"]
    assert message.startswith("source 'lake' failed the query: table 'late': ")
    no_server_path(late.text, folder)
    assert fine.json()["rows"] == [[1]]


def test_mixed_case_file_names_are_tables(tmp_path):
    """``MixedCase.parquet`` is table ``MixedCase``: scanned alone, aggregated (the whole query in the source's
    session) and joined in place (DataFusion used to lower-case the name it was registered under)."""
    lake = tmp_path / "lake"
    lake.mkdir()
    pq.write_table(pa.table({"x": [1, 2, 3]}), lake / "MixedCase.parquet")
    gateway = serve(lake)
    try:
        assert gateway.execute('SELECT x FROM lake.main."MixedCase" ORDER BY x').reader.read_all()["x"].to_pylist() \
            == [1, 2, 3]
        assert gateway.execute('SELECT sum(x) AS s FROM lake.main."MixedCase"').reader.read_all()["s"][0].as_py() == 6
        joined = gateway.execute('SELECT count(*) AS n FROM lake.main."MixedCase" a JOIN lake.main."MixedCase" b '
                                 "ON a.x = b.x").reader.read_all()
        assert joined["n"][0].as_py() == 3
    finally:
        gateway.close()
