"""``/docs`` and ``/redoc`` in a real browser (Chromium through Playwright) against a real
``dpn serve``, with every request to another origin refused, as on a machine without
internet: Swagger UI lists every operation of the OpenAPI document and runs "Try it out"
under its Content-Security-Policy; ReDoc shows every operation and its search (a blob
worker) finds one; no request fails, no script errs.

The one request a page makes elsewhere is ReDoc's own "API docs by Redocly" logo, which
its bundle hard-codes (https://cdn.redoc.ly/redoc/logo-mini.svg, hidden when it does not
load): the page's policy blocks it before it leaves, and the test holds exactly that.

Skips, saying what to install, without Playwright for Python or a Chromium (Debian:
``apt-get install chromium``; ``DPN_CHROMIUM`` names another binary).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.test_server import Server, migrate, start, stop, wait_until_ready

INSTALL = (
    "apt-get install -y chromium && .venv/bin/pip install playwright"
    " (not `playwright install`: the browser is Debian's)"
)
sync_api = pytest.importorskip("playwright.sync_api", reason=f"no Playwright: {INSTALL}")
CHROMIUM = os.environ.get("DPN_CHROMIUM") or shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(f"no Chromium on PATH (or DPN_CHROMIUM): {INSTALL}", allow_module_level=True)

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
RENDER_TIMEOUT_MS = 30_000
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A migrated SQLite file and ``dpn serve`` over it, serving its docs itself."""
    where = tmp_path_factory.mktemp("docs-server")
    url = f"sqlite:///{where / 'dpn.sqlite3'}"
    migrate(url)
    running = start(url, where / "server.log")
    try:
        wait_until_ready(running)
        yield running
    finally:
        stop(running)


@pytest.fixture(scope="module")
def spec(server: Server) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{server.base_url}/openapi.json", timeout=10.0).json()
    return document


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """One page in its own context, cut off from every other origin, and what went wrong
    on it: requests that failed or were answered with an error, console errors, uncaught
    script errors, and attempts to reach another origin."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.failed: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        origin = urlsplit(base_url)

        def only_here(route: Any) -> None:
            url = urlsplit(route.request.url)
            if url.scheme in ("data", "blob") or url.netloc == origin.netloc:
                route.continue_()
            else:
                self.elsewhere.append(route.request.url)
                route.abort("internetdisconnected")

        def answered(response: Any) -> None:
            if response.status >= 400:
                self.failed.append((response.url, str(response.status)))

        def logged(message: Any) -> None:
            if message.type == "error":
                self.errors.append(f"console: {message.text}")

        self.context.route("**/*", only_here)
        self.page.on("requestfailed", lambda r: self.failed.append((r.url, r.failure or "")))
        self.page.on("response", answered)
        self.page.on("console", logged)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, server: Server) -> Iterator[Visit]:
    opened = Visit(browser, server.base_url)
    try:
        yield opened
    finally:
        opened.close()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(path, method, operationId) of every operation of the OpenAPI document."""
    return [
        (path, method, operation["operationId"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def test_swagger_ui_lists_every_operation_and_tries_one_out(
    visit: Visit, server: Server, spec: dict[str, Any], tmp_path: Path
) -> None:
    page = visit.page
    page.goto(f"{server.base_url}/docs")
    operations = _operations(spec)
    assert operations
    page.wait_for_selector(".opblock", timeout=RENDER_TIMEOUT_MS)
    assert page.locator(".opblock").count() == len(operations)

    health = page.locator(
        ".opblock", has=page.locator(".opblock-summary-path[data-path='/healthz']")
    )
    health.locator(".opblock-summary").click()
    health.locator("button.try-out__btn").click()
    health.locator("button.execute").click()
    status = health.locator(".live-responses-table .response .response-col_status")
    status.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert status.first.inner_text().strip() == "200"

    page.screenshot(path=tmp_path / "docs.png")
    assert visit.elsewhere == [] and visit.failed == [] and visit.errors == []


def test_redoc_shows_every_operation_and_finds_one(
    visit: Visit, server: Server, spec: dict[str, Any], tmp_path: Path
) -> None:
    page = visit.page
    page.goto(f"{server.base_url}/redoc")
    operations = _operations(spec)
    sections = page.locator("[data-section-id^='operation/']")
    sections.first.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert sections.count() == len(operations)

    (healthz,) = [
        op_id for path, method, op_id in operations if (path, method) == ("/healthz", "get")
    ]
    page.fill("input[role='searchbox'], [role='search'] input", "healthz")
    found = page.locator(f"[data-role='search:results'] [data-item-id$='operation/{healthz}']")
    found.wait_for(timeout=RENDER_TIMEOUT_MS)

    page.screenshot(path=tmp_path / "redoc.png")
    # The Redocly logo, and only it, was stopped by the page's policy, before it left.
    assert visit.failed == [(REDOCLY_LOGO, "csp")]
    assert all(REDOCLY_LOGO in error for error in visit.errors), visit.errors
    assert visit.elsewhere == []
