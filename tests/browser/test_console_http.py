"""The console's routes over plain HTTP (no browser needed): the page and its assets are local and listed,
nothing else is served from the file system, /docs and /redoc reference only local bundles, the catalog tree
honours auth and per-user sources, and the explain JSON carries what the plan graph draws.

Cost: 12 tests, 3-6 s (one demo server, one auth-enabled one).
"""

from __future__ import annotations

import base64
import re

import httpx
import pyarrow.parquet as pq
import pytest

from gateway.console import ASSETS, DOCS_ASSETS
from tests.browser.support import FEDERATED_SQL, console_server
from tests.demo_support import data_dir


def local_references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_console_page_is_served_with_local_assets_only(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    references = local_references(page.text)
    assert references and all(r.startswith("/console/") or r in ("/docs", "/redoc") for r in references)
    for name, media_type in ASSETS.items():
        asset = client.get(f"/console/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"] == media_type
        text = asset.text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a link
        assert "http://" not in text and "https://" not in text  # no CDN, no font service


@pytest.mark.parametrize("path", ["/console/index.html.bak", "/console/..%2F..%2Fapi%2Fapp.py", "/console/%2Fetc%2Fpasswd",
                                  "/docs-assets/..%2F__init__.py", "/console/"])
def test_only_listed_files_are_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] in ("unknown_object", "not_found")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_reference_only_local_bundles(client, path):
    page = client.get(path)
    assert page.status_code == 200
    references = local_references(page.text)
    assert references and all(r.startswith("/") for r in references), references
    assert "cdn.jsdelivr" not in page.text and "fonts.googleapis" not in page.text
    assert "img-src 'self' data:" in page.headers["content-security-policy"]
    for name, media_type in DOCS_ASSETS.items():
        asset = client.get(f"/docs-assets/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"] == media_type


def test_openapi_lists_the_catalog_tree_but_not_the_page(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/console/catalog" in paths
    assert not {"/", "/docs", "/redoc", "/console/{name}", "/docs-assets/{name}"} & set(paths)


def test_catalog_tree_matches_the_demo(client, demo_config):
    tree = {s["name"]: s for s in client.get("/v1/console/catalog").json()}
    assert {name: s["kind"] for name, s in tree.items()} == {"demo_db": "sqlite", "demo_lake": "parquet"}
    lake = {t["name"]: t for t in tree["demo_lake"]["schemas"][0]["tables"]}
    regions = pq.read_schema(data_dir(demo_config) / "lake" / "regions.parquet")
    assert lake["regions"]["columns"] == [{"name": f.name, "type": str(f.type), "nullable": f.nullable}
                                          for f in regions]
    customers = next(t for t in tree["demo_db"]["schemas"][0]["tables"] if t["name"] == "customers")
    assert customers["type"] == "TABLE"
    assert [c["name"] for c in customers["columns"]] == ["id", "name", "email", "region", "signup_date",
                                                          "credit_limit", "active"]


def test_explain_json_has_what_the_plan_graph_draws(client):
    plan = client.post("/v1/explain", json={"sql": FEDERATED_SQL}).json()
    by_source = {f["source"]: f for f in plan["fragments"]}
    assert set(by_source) == {"demo_db", "demo_lake"}
    assert by_source["demo_db"]["estimated_rows"] == 200
    assert plan["residual_sql"] and plan["pushed_whole"] is False


def test_catalog_tree_honours_auth_and_sources(demo_config):
    users = [{"name": "ann", "password": "pw-ann"}, {"name": "dbonly", "password": "pw-db", "sources": ["demo_db"]}]
    with console_server(demo_config, auth_users=users) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/").status_code == 200  # the page itself holds no data
        denied = client.get("/v1/console/catalog")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "authentication_failed"

        def token(user: str, password: str) -> str:
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            return client.post("/v1/auth/token", headers={"Authorization": f"Basic {basic}"}).json()["token"]

        everything = client.get("/v1/console/catalog", headers={"Authorization": f"Bearer {token('ann', 'pw-ann')}"})
        assert [s["name"] for s in everything.json()] == ["demo_db", "demo_lake"]
        limited = client.get("/v1/console/catalog", headers={"Authorization": f"Bearer {token('dbonly', 'pw-db')}"})
        assert [s["name"] for s in limited.json()] == ["demo_db"]
