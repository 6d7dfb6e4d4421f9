"""``/docs`` and ``/redoc`` through the real app, with nothing from another host: every
script, style, icon and spec a page names is a same-origin path the app answers; the
assets are the package's files, cached for good under a digest of their content,
gzipped on request, answered to HEAD and If-None-Match; nothing outside the four
files is served, however the path is spelled; each page's Content-Security-Policy
allows exactly the inline script it holds."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib.resources import files
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.docs import ASSETS_URL, DOCS_URL, REDOC_URL, install_docs
from api.settings import Settings

PAGES = (DOCS_URL, REDOC_URL)
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
STATIC = files("fastapi_offline").joinpath("static")
YEAR_S = 365 * 24 * 3600


def _app(engine: Engine) -> FastAPI:
    return create_app(Settings(), engine=engine)


@pytest.fixture
def client(sqlite_engine: Engine) -> Iterator[TestClient]:
    with TestClient(_app(sqlite_engine)) as test_client:
        yield test_client


class _Links(HTMLParser):
    """Every ``src`` and ``href`` of a page, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]
        self._in_inline_script = tag == "script" and "src" not in named

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts.append(data)


def _links(html: str) -> _Links:
    parsed = _Links()
    parsed.feed(html)
    parsed.close()
    return parsed


def _asset_url(client: TestClient, name: str) -> str:
    """Where the pages say the asset ``name`` is."""
    urls = {u for page in PAGES for u in _links(client.get(page).text).urls}
    (url,) = [u for u in urls if u.endswith(f"/{name}")]
    return url


def _directives(policy: str) -> dict[str, list[str]]:
    pairs = (d.split() for d in policy.split(";") if d.strip())
    return {name: sources for name, *sources in pairs}


# -- the pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_a_page_names_only_what_this_server_answers(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "http://" not in answer.text and "https://" not in answer.text
    assert "fonts.googleapis" not in answer.text
    urls = _links(answer.text).urls
    assert any(u.endswith("/favicon.png") for u in urls)
    assert any(u.endswith(".js") for u in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        assert url.startswith(f"{ASSETS_URL}/"), url
        got = client.get(url)
        assert got.status_code == 200, url
        assert got.content, url
        suffix = url[url.rindex(".") :]
        assert got.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url


@pytest.mark.parametrize("page", PAGES)
def test_a_page_loads_the_apps_openapi_document(client: TestClient, page: str) -> None:
    html = client.get(page).text
    named = re.search(r"url: '([^']+)'|spec-url=\"([^\"]+)\"", html)
    assert named is not None
    spec_url = named.group(1) or named.group(2)
    assert spec_url == "/openapi.json"
    spec = client.get(spec_url).json()
    assert spec["paths"] and not any(p.startswith((DOCS_URL, REDOC_URL)) for p in spec["paths"]), (
        "the docs routes stay out of the OpenAPI document"
    )


def test_swagger_ui_asks_no_online_validator(client: TestClient) -> None:
    (script,) = _links(client.get(DOCS_URL).text).inline_scripts
    assert '"validatorUrl": null' in script


def test_swagger_ui_may_run_only_its_own_scripts(client: TestClient) -> None:
    answer = client.get(DOCS_URL)
    policy = _directives(answer.headers["content-security-policy"])
    scripts = _links(answer.text).inline_scripts
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert policy["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # "Try it out" calls this server only
    assert policy["frame-ancestors"] == ["'none'"]
    assert answer.headers["cache-control"] == "no-cache"


def test_redoc_may_run_only_its_own_scripts(client: TestClient) -> None:
    answer = client.get(REDOC_URL)
    policy = _directives(answer.headers["content-security-policy"])
    assert _links(answer.text).inline_scripts == []
    assert policy["script-src"] == ["'self'"]
    # ReDoc writes its styles into <style> elements as it renders: the one thing inline.
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["worker-src"] == ["blob:"]  # its search runs in a worker
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["default-src"] == ["'none'"]


def test_pages_follow_the_root_path_of_a_proxy(sqlite_engine: Engine) -> None:
    with TestClient(_app(sqlite_engine), root_path="/ledger") as client:
        html = client.get(f"/ledger{DOCS_URL}").text
        urls = _links(html).urls
        assert urls and all(u.startswith(f"/ledger{ASSETS_URL}/") for u in urls), urls
        assert "url: '/ledger/openapi.json'" in html
        assert client.get(urls[0]).status_code == 200


# -- the assets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"]
)
def test_an_asset_is_the_packages_file_under_its_digest(client: TestClient, name: str) -> None:
    url = _asset_url(client, name)
    file = STATIC.joinpath(name).read_bytes()
    digest = url.split("/")[-2]
    assert hashlib.sha256(file).hexdigest().startswith(digest) and len(digest) >= 16
    answer = client.get(url, headers={"Accept-Encoding": "identity"})
    assert answer.content == file
    assert "content-encoding" not in answer.headers
    assert answer.headers["content-length"] == str(len(file))
    cache = {d.strip() for d in answer.headers["cache-control"].split(",")}
    assert {"public", f"max-age={YEAR_S}", "immutable"} <= cache
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_an_asset_is_gzipped_for_a_client_that_accepts_it(client: TestClient) -> None:
    url = _asset_url(client, "swagger-ui-bundle.js")
    file = STATIC.joinpath("swagger-ui-bundle.js").read_bytes()
    # httpx decodes the body itself: read it as it came over the wire.
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as answer:
        wire = b"".join(answer.iter_raw())
        headers = answer.headers
    assert headers["content-encoding"] == "gzip" and "accept-encoding" in headers["vary"].lower()
    assert gzip.decompress(wire) == file and len(wire) < len(file) // 2
    assert headers["content-length"] == str(len(wire))
    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers and refused.content == file


def test_an_asset_answers_head_with_the_headers_of_get(client: TestClient) -> None:
    url = _asset_url(client, "swagger-ui.css")
    for coding in ("identity", "gzip"):
        got = client.get(url, headers={"Accept-Encoding": coding})
        head = client.head(url, headers={"Accept-Encoding": coding})
        assert head.status_code == 200 and head.content == b""
        for name in ("content-type", "content-length", "etag", "cache-control"):
            assert head.headers.get(name) == got.headers.get(name), (coding, name)


def test_an_asset_the_client_holds_is_not_sent_again(client: TestClient) -> None:
    url = _asset_url(client, "swagger-ui.css")
    etags = set()
    for coding in ("identity", "gzip"):
        first = client.get(url, headers={"Accept-Encoding": coding})
        etag = first.headers["etag"]
        etags.add(etag)
        again = client.get(url, headers={"Accept-Encoding": coding, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    assert len(etags) == 2, "the two codings are two representations"
    other = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content


@pytest.mark.parametrize(
    "path",
    [
        "{digest}/..%2f..%2fcore.py",  # a file next to the static folder
        "{digest}/%2e%2e%2f%2e%2e%2fcore.py",
        "{digest}/..%2F..%2F..%2F..%2Fpyproject.toml",
        "..%2f..%2f..%2fpyproject.toml",
        "{digest}/%2e%2e",
        "{digest}/swagger-ui.css%00.png",
        "{digest}/__init__.py",
        "{digest}/SWAGGER-UI.CSS",
        "0000000000000000/swagger-ui.css",  # a digest that is not this file's
        "swagger-ui.css",
    ],
)
def test_nothing_but_the_four_files_is_served(client: TestClient, path: str) -> None:
    digest = _asset_url(client, "swagger-ui.css").split("/")[-2]
    answer = client.get(f"{ASSETS_URL}/{path.format(digest=digest)}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] != "text/css"
    assert b"import" not in answer.content and b"[project]" not in answer.content


# -- install_docs --------------------------------------------------------------------------


def test_install_docs_refuses_an_app_with_fastapis_own_pages() -> None:
    with pytest.raises(ValueError, match="docs_url=None, redoc_url=None"):
        install_docs(FastAPI())
    with pytest.raises(ValueError, match="docs_url=None, redoc_url=None"):
        install_docs(FastAPI(docs_url=None))
    with pytest.raises(ValueError, match="openapi_url"):
        install_docs(FastAPI(docs_url=None, redoc_url=None, openapi_url=None))


def test_a_bare_app_serves_the_docs_too() -> None:
    app = FastAPI(title="Bare", docs_url=None, redoc_url=None)
    install_docs(app)
    with TestClient(app) as client:
        urls = _links(client.get(REDOC_URL).text).urls
        assert urls and all(client.get(u).status_code == 200 for u in urls)
        head = client.head(_asset_url(client, "favicon.png"))
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 0


def test_create_app_serves_the_docs_from_itself(sqlite_engine: Engine) -> None:
    app = _app(sqlite_engine)
    assert app.docs_url is None and app.redoc_url is None, "FastAPI's own pages use a CDN"
    paths = [getattr(route, "path", None) for route in app.routes]
    assert paths.count(DOCS_URL) == 1 and paths.count(REDOC_URL) == 1
    assert app.swagger_ui_oauth2_redirect_url not in paths
