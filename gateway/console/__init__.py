"""The web console's assets: one small, dependency-free page checked in under ``static/``.

Why no front-end build: the console is a SQL editor, a result grid, a plan graph and a few tables of JSON the
REST API already answers. Vanilla JavaScript and CSS (a tiny SQL highlighter of our own, the plan graph as
SVG, a grid that renders only the rows in view) do that in a few hundred lines, so there is no npm
dependency tree to pin, audit or rebuild, nothing to fetch at run time (no CDN: the page works offline, where
gateways usually run), and the files served are the files reviewed. They ship in the wheel as setuptools
package data (``[tool.setuptools.package-data]`` in pyproject.toml).

Swagger UI and ReDoc are not ours: their bundles come from the ``fastapi-offline`` package (its ``static``
folder; 2.8 MB, no dependency beyond FastAPI), served locally by ``gateway.api.console``.

``ASSETS`` names every file the gateway serves from here, with its media type: the router serves only these
names (no path from a request ever reaches the file system).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline

#: the console's own files
STATIC_DIR = Path(__file__).parent / "static"

#: console files served under ``/console/`` -> media type
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "sql.js": "text/javascript; charset=utf-8",
    "grid.js": "text/javascript; charset=utf-8",
    "plan.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

#: the Swagger UI and ReDoc bundles shipped by fastapi-offline
DOCS_DIR = Path(fastapi_offline.__file__).parent / "static"

#: their files served under ``/docs-assets/`` -> media type
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}


def index_html() -> str:
    """The console page (``static/index.html``)."""
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")
