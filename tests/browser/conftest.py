"""Fixtures of the browser tests: Debian's Chromium driven headless by Playwright, one page per test that may
reach nothing but 127.0.0.1 (every other request is blocked and fails the test: the console, Swagger UI and
ReDoc must work offline), and the demo gateway served over HTTP.

Chromium: ``GATEWAY_CHROMIUM`` or ``/usr/bin/chromium`` (Debian's package; ``.ci/run`` installs it).
Playwright's own browser downloads are never used. Without Chromium or Playwright the tests fail when
``CI=true`` and are skipped, saying what to install, otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.support import console_server
from tests.conftest import IN_CI

CHROMIUM = Path(os.environ.get("GATEWAY_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1440, "height": 900}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401 (an optional test dependency: checked, not used here)
    except ImportError:
        return "Playwright is not installed: pip install -e '.[test]'"
    if not (CHROMIUM.exists() or shutil.which(str(CHROMIUM))):
        return f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set GATEWAY_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's), launched once per module. Not per session: Playwright's sync API keeps
    an asyncio loop marked running on the main thread while it is open, and DataFusion's Python bindings
    refuse to run their own loop then (later test modules would fail)."""
    missing = _missing()
    if missing:
        if IN_CI:
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def base_url(demo_config) -> Iterator[str]:
    """The demo gateway (auth off) served on a free port for this module's tests."""
    with console_server(demo_config) as url:
        yield url


@pytest.fixture
def page(browser):
    """A fresh page (own context: no storage shared between tests). Any request to a host other than
    127.0.0.1 is aborted and recorded, and the test fails afterwards if there was one, or if a script on
    the page threw."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    offsite: list[str] = []
    errors: list[str] = []

    def guard(route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            offsite.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not offsite, f"the page tried to load from elsewhere than the gateway: {offsite}"
    assert not errors, f"scripts on the page threw: {errors}"

