"""The web console in a real browser (headless Chromium) against the real gateway over HTTP: a federated
query runs from the editor (Ctrl-Enter), the grid shows the right rows and types, the plan graph shows both
sources with rows estimated and actual, a slow query is cancelled from the page, downloads come in each
format, the history, catalog and cache/health views show what the REST API answers, and sign-in works with
auth on. Each view's screenshot is saved under docs/screenshots/.

Cost: 14 tests, 35-65 s on this shared 2-core machine depending on its load (Chromium starts once, ~0.5 s;
Swagger UI, sign-in and cancel take ~3 s each; every other test 1-2 s).
"""

from __future__ import annotations

import csv
import io
import re
import time

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.browser.support import FEDERATED_SQL, SLOW_SQL, console_server, federated_expected, screenshot

#: seconds from the Cancel click to the page showing the query cancelled, at most
CANCEL_BOUND_S = 5.0


def open_console(page, base_url: str) -> None:
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready=true]")


def run_sql(page, sql: str) -> None:
    """Type ``sql`` into the editor and run it with Ctrl-Enter; wait until it ends (done, error, cancelled)."""
    page.fill("#sql", sql)
    page.press("#sql", "Control+Enter")
    page.wait_for_selector("#status.ok, #status.error, #status.cancelled")


def grid_rows(page) -> list[list[str]]:
    """The cells of the rows the grid shows (without the row-number column)."""
    return page.eval_on_selector_all(
        ".grid-window .grid-row", "rows => rows.map(r => [...r.children].slice(1).map(c => c.textContent))")


def test_federated_query_shows_rows_types_and_stats(page, base_url, demo_config):
    open_console(page, base_url)
    run_sql(page, FEDERATED_SQL)
    assert page.inner_text("#status") == "done", page.inner_text("#status-line")
    assert grid_rows(page) == federated_expected(demo_config)[0]
    headers = page.eval_on_selector_all(".grid-header .grid-cell",
                                        "cells => cells.map(c => [c.children[0].textContent, c.children[1].textContent])")
    assert headers == [["region", "string"], ["orders", "int64"], ["total", "decimal128(20, 2)"]]
    assert page.inner_text("#stat-rows") == "4 rows"
    assert re.fullmatch(r"\d+\.\d{3} s", page.inner_text("#stat-time"))
    assert re.fullmatch(r"\d+ B|\d+\.\d (KiB|MiB)", page.inner_text("#stat-bytes"))
    # the editor highlights keywords and comments
    assert page.locator("#editor-highlight .tok-keyword", has_text="SELECT").count() >= 1
    assert page.locator("#editor-highlight .tok-comment").count() == 1
    screenshot(page, "console", height=500)  # the README's first picture: editor, status line and grid


def node_text(page, selector: str) -> str:
    """The text of a plan graph node, its lines joined by spaces (the graph wraps lines at spaces)."""
    return page.eval_on_selector(selector, "n => [...n.querySelectorAll('text')].map(t => t.textContent).join(' ')")


def test_an_error_names_its_code_and_place(page, base_url):
    open_console(page, base_url)
    run_sql(page, "SELECT id,\nFROM demo_db.main.customers WHERE")
    status = page.inner_text("#status")
    assert page.locator("#status.error").count() == 1
    assert status.startswith("syntax_error:") and "line 2" in status


def test_grid_renders_only_the_rows_in_view(page, base_url):
    open_console(page, base_url)
    run_sql(page, "SELECT order_id, total FROM demo_lake.orders ORDER BY order_id")
    assert page.inner_text("#stat-rows") == "5,000 rows"
    assert page.locator(".grid-window .grid-row").count() < 100  # of 5,000
    page.eval_on_selector(".grid-body", "b => { b.scrollTop = b.scrollHeight; }")
    page.wait_for_selector(".grid-row[data-row='4999']")
    assert grid_rows(page)[-1][0] == "5000"
    assert page.locator(".grid-window .grid-row").count() < 100


def test_plan_graph_shows_both_sources_with_estimated_and_actual_rows(page, base_url, demo_config):
    joined = federated_expected(demo_config)[1]
    open_console(page, base_url)
    run_sql(page, FEDERATED_SQL)
    page.click("#result-tabs button[data-pane=plan]")
    page.wait_for_selector(".plan-fragment")
    sources = page.eval_on_selector_all(".plan-fragment", "nodes => nodes.map(n => n.dataset.source)")
    assert sorted(sources) == ["demo_db", "demo_lake"]
    customers = node_text(page, ".plan-fragment[data-source=demo_db]")
    assert "demo_db (sqlite)" in customers and "reads demo_db.main.customers" in customers
    assert 'FROM "customers"' in customers  # the SQL pushed to SQLite
    assert "estimated 200 rows · actual 200 rows" in customers  # the LIKE did not go to SQLite
    orders = node_text(page, ".plan-fragment[data-source=demo_lake]")
    assert '"year" = 2023' in orders and "partial aggregation" in orders  # filter and partial aggregate pushed
    assert f"actual {joined} rows" in orders and f"dynamic filter: customer_id IN ({joined} values)" in orders
    residual = node_text(page, ".plan-residual")
    assert "stayed local" in residual and "2 sources (demo_db, demo_lake)" in residual
    assert "LIKE ignores case in this source's dialect" in residual
    assert "4 rows" in node_text(page, ".plan-result")
    screenshot(page.locator("#plan svg"), "plan-graph")
    page.click("#result-tabs button[data-pane=plantext]")
    assert "Fragment __fragment_0 -> source 'demo_db'" in page.inner_text("#plan-text")
    # Ctrl-Shift-Enter plans without running: one source computes all of this query
    page.fill("#sql", "SELECT name FROM demo_db.main.customers WHERE id < 3")
    page.press("#sql", "Control+Shift+Enter")
    page.wait_for_selector("#status.ok")
    assert page.inner_text("#status") == "planned (not run)" and page.is_visible("#pane-plan")
    assert page.locator(".plan-fragment").count() == 1 and page.locator(".plan-residual").count() == 0
    assert "whole query pushed down" in node_text(page, ".plan-result")


def test_cancel_button_stops_a_slow_query(page, base_url):
    open_console(page, base_url)
    page.fill("#sql", SLOW_SQL)
    page.click("#run")
    page.wait_for_selector("#status.running")
    assert page.is_enabled("#cancel")
    time.sleep(1.0)  # the query is running in DataFusion by now
    assert page.inner_text("#status") == "running…"
    query_id = page.inner_text("#stat-id").removeprefix("query ")
    clicked = time.monotonic()
    page.click("#cancel")
    page.wait_for_selector("#status.cancelled", timeout=CANCEL_BOUND_S * 1000)
    assert time.monotonic() - clicked < CANCEL_BOUND_S
    assert page.inner_text("#status").startswith("cancelled:")
    assert page.is_disabled("#cancel") and page.is_enabled("#run")
    history = httpx.get(f"{base_url}/v1/history", params={"limit": 1000}).json()
    assert [h["status"] for h in history if h["query_id"] == query_id] == ["cancelled"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_downloads_the_result(page, base_url, demo_config, fmt):
    open_console(page, base_url)
    run_sql(page, FEDERATED_SQL)
    with page.expect_download() as download_info:
        page.click(f".download[data-format={fmt}]")
    download = download_info.value
    data = download.path().read_bytes()
    expected = federated_expected(demo_config)[0]
    if fmt == "arrow":
        assert download.suggested_filename == "result.arrows"
        table = pa.ipc.open_stream(data).read_all()
    elif fmt == "parquet":
        assert download.suggested_filename == "result.parquet"
        table = pq.read_table(io.BytesIO(data))
    else:
        assert download.suggested_filename == "result.csv"
        rows = list(csv.reader(io.StringIO(data.decode())))
        assert rows == [["region", "orders", "total"], *expected]
        return
    assert [[r["region"], str(r["orders"]), f"{r['total']:.2f}"] for r in table.to_pylist()] == expected


def test_history_shows_status_user_duration_and_rows_per_source(page, base_url, demo_config):
    joined = federated_expected(demo_config)[1]
    open_console(page, base_url)
    run_sql(page, FEDERATED_SQL)
    query_id = page.inner_text("#stat-id").removeprefix("query ")
    page.click("#tabs button[data-view=history]")
    row = page.locator(f"#history-table tr[data-query-id='{query_id}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    # started, status, user, protocol, seconds, rows, rows per source, SQL
    assert cells[1:4] == ["ok", "—", "rest"]
    assert re.fullmatch(r"\d+\.\d{3}", cells[4]) and cells[5] == "4"
    assert cells[6] == f"demo_db: 200, demo_lake: {joined}"
    assert cells[7].startswith("SELECT c.region, count(*) AS orders")  # one line, comment folded
    screenshot(page, "console-history")
    row.click()  # opens the query in the editor
    assert page.is_visible("#view-query") and page.input_value("#sql").strip() == FEDERATED_SQL


def test_catalog_tree_shows_columns_with_types_and_statistics(page, base_url):
    open_console(page, base_url)
    page.click("#tabs button[data-view=catalog]")
    page.wait_for_selector("#tree .tree-source")
    sources = page.eval_on_selector_all("#tree > .tree-source > .tree-label", "ls => ls.map(l => l.textContent)")
    assert sources == ["demo_db", "demo_lake"]
    tables = page.eval_on_selector_all(".tree-table", "ts => ts.map(t => t.dataset.table)")
    assert set(tables) == {"demo_db.main.customers", "demo_db.main.products", "demo_lake.main.orders",
                           "demo_lake.main.regions"}
    page.click(".tree-table[data-table='demo_lake.main.orders'] > .tree-label")
    page.wait_for_selector("#table-detail table.data tbody tr")
    detail = page.inner_text("#table-detail")
    assert "demo_lake.main.orders" in detail and "5,000 rows" in detail
    columns = page.eval_on_selector_all("#table-detail tbody tr",
                                        "rows => rows.map(r => [...r.children].slice(0, 4).map(c => c.textContent))")
    by_name = {c[0]: c for c in columns}
    assert by_name["order_id"] == ["order_id", "int64", "yes", "5,000"]
    assert by_name["total"][1] == "decimal128(10, 2)"
    assert by_name["customer_id"][3] == "200"
    # the tree lists the columns with their types under the table
    column_items = page.eval_on_selector_all(
        ".tree-table[data-table='demo_lake.main.orders'] .tree-column",
        "cs => cs.map(c => c.children[0].textContent + ' ' + c.children[1].textContent)")
    assert "order_date date32[day]" in column_items
    screenshot(page, "console-catalog")


def test_cache_and_health_view(page, base_url):
    warmed = httpx.post(f"{base_url}/v1/cache/warm", json={"table": "demo_lake.main.orders"}, timeout=30)
    assert warmed.status_code == 200, warmed.text
    open_console(page, base_url)
    run_sql(page, FEDERATED_SQL)  # reads the year=2023 partition from the cache: one hit
    page.click("#tabs button[data-view=status]")
    page.wait_for_selector("#health-table tbody tr")
    health = page.eval_on_selector_all("#health-table tbody tr",
                                       "rows => rows.map(r => [...r.children].slice(0, 3).map(c => c.textContent))")
    assert health == [["demo_db", "sqlite", "ok"], ["demo_lake", "parquet", "ok"]]
    page.wait_for_selector("#cache-summary .card")
    labels = page.eval_on_selector_all("#cache-summary .card-label", "ls => ls.map(l => l.textContent)")
    assert {"memory", "disk", "partitions", "hit rate"} <= set(labels)
    cards = dict(zip(labels, page.eval_on_selector_all("#cache-summary .card-value", "vs => vs.map(v => v.textContent)"),
                     strict=True))
    assert cards["partitions"] == "3"
    assert re.fullmatch(r"\d+\.\d % of \d+", cards["hit rate"])
    entries = page.eval_on_selector_all("#cache-table tbody tr",
                                        "rows => rows.map(r => [...r.children].slice(0, 5).map(c => c.textContent))")
    assert sorted(e[2] for e in entries) == ["year=2022", "year=2023", "year=2024"]
    assert {(e[0], e[1], e[4]) for e in entries} == {("demo_lake", "main.orders", "memory")}
    screenshot(page, "console-status")
    httpx.delete(f"{base_url}/v1/cache").raise_for_status()  # the other tests read the sources themselves


@pytest.mark.parametrize(("path", "name", "title", "operations"), [
    ("/docs", "docs-swagger", ".swagger-ui .info .title", ".opblock-summary-path"),
    ("/redoc", "docs-redoc", ".api-info h1", "[data-section-id^='operation/']"),
])
def test_api_docs_render_offline(page, base_url, path, name, title, operations):
    page.goto(f"{base_url}{path}")  # the page fixture blocks (and fails on) every request off 127.0.0.1
    page.wait_for_selector(title)
    assert "Federated SQL gateway" in page.inner_text(title)
    page.wait_for_selector(operations)
    described = " ".join(page.locator(operations).all_text_contents()).replace("\u200b", "")
    assert "/v1/query" in described or "Query" in described
    screenshot(page, name)


def test_sign_in_with_auth_on(page, demo_config):
    users = [{"name": "ann", "password": "pw-ann"}]
    with console_server(demo_config, auth_users=users) as url:
        page.goto(f"{url}/")
        page.wait_for_selector("#login[open]")
        page.fill("#login-user", "ann")
        page.fill("#login-password", "wrong")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:not(:empty)")
        assert "invalid user name or password" in page.inner_text("#login-error")
        page.fill("#login-password", "pw-ann")
        screenshot(page, "console-sign-in")
        page.click("#login-submit")
        page.wait_for_selector("body[data-ready=true]")
        assert page.inner_text("#who") == "signed in as ann"
        run_sql(page, "SELECT count(*) AS n FROM demo_db.main.customers")
        assert grid_rows(page) == [["200"]]
        history = page.evaluate("fetch('/v1/history').then(r => r.status)")
        assert history == 401  # the page's own calls carry the token; a bare call does not get in
