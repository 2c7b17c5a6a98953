"""The web console and the API docs, all from local files: ``GET /`` (the console page), ``GET
/console/{asset}``, ``GET /docs`` (Swagger UI), ``GET /redoc`` (ReDoc), ``GET /docs-assets/{asset}``, and the
one call the console needs beyond the REST API: ``GET /v1/console/catalog`` (the catalog as a tree).

Auth: the page and its assets hold no data, so they load without credentials (a browser cannot send a bearer
token with a page load, and Basic credentials sent by the browser on every call could never be dropped). With
auth on, the page asks for a user name and password once, exchanges them on ``POST /v1/auth/token`` for a bearer
token that expires (``auth.token_ttl_s``) and is kept in the tab's ``sessionStorage`` only, then sends it on every
API call: the console reaches exactly what the REST API lets that user reach, through the same checks.

The page is served with a Content-Security-Policy that allows no origin but the gateway's own: a console
that tried to load anything from a CDN would fail in every browser, not only offline.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from catalog.catalog import Catalog, TableRef
from gateway.api.deps import Engine, User, visible_catalog
from gateway.console import ASSETS, DOCS_ASSETS, DOCS_DIR, STATIC_DIR, index_html
from gateway.errors import GatewayError, UnknownObjectError

router = APIRouter()

#: the console page may load and call nothing but the gateway itself
CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")
#: Swagger UI and ReDoc pages: their inline bootstrap script is allowed, nothing from another origin (ReDoc's
#: bundle would fetch its logo from its CDN: refused, the logo hides itself)
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'")
#: assets change with the installed version only; the page itself is always revalidated
ASSET_CACHE = "public, max-age=3600"


def _asset(folder, assets: dict[str, str], name: str) -> FileResponse:
    """One listed file of ``folder``; 404 (UnknownObjectError) for any other name."""
    media_type = assets.get(name)
    if media_type is None:
        error = UnknownObjectError("asset", name, list(assets))
        error.phase = "request"
        raise error
    return FileResponse(folder / name, media_type=media_type, headers={"Cache-Control": ASSET_CACHE})


@router.get("/", include_in_schema=False)
def console_page() -> HTMLResponse:
    """The web console (``gateway/console/static/index.html``); it calls the REST API with the user's token."""
    return HTMLResponse(index_html(), headers={"Content-Security-Policy": CONSOLE_CSP,
                                               "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/console/{name}", include_in_schema=False)
def console_asset(name: str) -> FileResponse:
    """A file of the console (``gateway.console.ASSETS``)."""
    return _asset(STATIC_DIR, ASSETS, name)


@router.get("/docs-assets/{name}", include_in_schema=False)
def docs_asset(name: str) -> FileResponse:
    """A Swagger UI or ReDoc file shipped by fastapi-offline (``gateway.console.DOCS_ASSETS``)."""
    return _asset(DOCS_DIR, DOCS_ASSETS, name)


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, its script and style served by the gateway (no CDN; ``DOCS_CSP``)."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs-assets/favicon.png",
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/docs/oauth2-redirect", include_in_schema=False)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over ``/openapi.json``, its script served by the gateway (no CDN, no web fonts; ``DOCS_CSP``)."""
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
        redoc_favicon_url=f"{root}/docs-assets/favicon.png", with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/v1/console/catalog")
def catalog_tree(user: User, engine: Engine) -> list[dict]:
    """The catalog the caller may see, as a tree, from the gateway's in-memory copy (no query runs):
    ``[{"name", "kind", "schemas": [{"name", "tables": [{"name", "type", "columns": [{"name", "type",
    "nullable"}]}]}]}]``. A source or table the catalog cannot read has ``"error"`` (its message) instead
    of its children, so one broken source does not hide the others. Statistics per table:
    ``GET /v1/sources/{source}/tables/{table}/statistics``."""
    catalog = visible_catalog(engine, user)  # named views (kind "view") over the caller's sources too
    return [_source_tree(catalog, name) for name in catalog.list_catalogs()]


def _source_tree(catalog: Catalog, source: str) -> dict:
    node: dict = {"name": source, "kind": catalog.connector(source).kind}
    try:
        node["schemas"] = [
            {"name": schema, "tables": [_table_node(catalog, TableRef(source, schema, table))
                                        for table in catalog.list_tables(source, schema)]}
            for schema in catalog.list_schemas(source)
        ]
    except GatewayError as exc:
        node["error"] = str(exc)
    return node


def _table_node(catalog: Catalog, ref: TableRef) -> dict:
    node: dict = {"name": ref.table}
    try:
        node["type"] = catalog.table_type(ref)
        node["columns"] = [{"name": f.name, "type": str(f.type), "nullable": f.nullable}
                           for f in catalog.table_schema(ref)]
    except GatewayError as exc:
        node["error"] = str(exc)
    return node
