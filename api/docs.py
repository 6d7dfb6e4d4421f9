"""The API's documentation pages, served by the server itself: Swagger UI at ``/docs``,
ReDoc at ``/redoc``, and their scripts, styles and icon under ``/docs/assets``, taken
from the ``fastapi-offline`` package. No page refers to another host, so the pages work
on a machine without internet (FastAPI's own pages load everything from a CDN).

Each asset's URL carries a digest of its content, so it is cached for a year and a new
package version gets new URLs; the pages themselves are revalidated on every load. Only
the four files named in ``_ASSETS`` are served (no directory is exposed), from memory,
gzipped for clients that accept it. Each page has a Content-Security-Policy that lets
it load nothing from elsewhere and run no script but its own.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import threading
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

__all__ = ["ASSETS_URL", "DOCS_URL", "REDOC_URL", "install_docs"]

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"

_PACKAGE = "fastapi_offline"
_ASSETS = {  # the package's static files, and what each is
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_DIGEST_CHARS = 16  # of the sha256 hex in an asset's URL: 64 bits tell versions apart
_GZIP_LEVEL = 6  # 2.8 MB become 0.8 MB in about 0.1 s, once per process
_ASSET_CACHE = "public, max-age=31536000, immutable"  # the URL changes with the content
_PAGE_CACHE = "no-cache"  # a page names the assets' digests: always ask for the current one
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

# Swagger UI's page starts itself with one inline script, allowed by its hash (computed
# from the page as sent, so it follows FastAPI's template). Its styles all come from its
# stylesheet. ReDoc writes its styles into <style> elements as it renders (styled-
# components), so its page needs 'unsafe-inline' styles; its scripts are only its own.
# 'data:' images are the icons inlined in their stylesheets; ReDoc's search runs in a
# worker it makes from a blob. ReDoc's bundle also shows Redocly's logo from
# cdn.redoc.ly (hidden if it does not load): img-src stops it before it leaves.
_POLICY_COMMON = (
    "default-src 'none'; connect-src 'self'; img-src 'self' data:; font-src 'self';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class _Asset:
    """One static file as it is served."""

    body: bytes
    gzipped: bytes
    media_type: str
    digest: str

    def etag(self, *, gzipped: bool) -> str:
        """A strong validator of one representation: the two codings differ in bytes."""
        return f'"{self.digest}-gzip"' if gzipped else f'"{self.digest}"'


_loaded: dict[str, _Asset] = {}
_loading = threading.Lock()


def _static(name: str) -> Traversable:
    return files(_PACKAGE).joinpath("static", name)


def _asset(name: str) -> _Asset:
    """The asset ``name`` (a key of ``_ASSETS``), read and compressed on first use: apps
    that no one asks for docs (every test) never pay for it."""
    found = _loaded.get(name)
    if found is not None:
        return found
    with _loading:
        found = _loaded.get(name)
        if found is None:
            body: bytes = _static(name).read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:_DIGEST_CHARS]
            gzipped = gzip.compress(body, _GZIP_LEVEL, mtime=0)
            found = _loaded[name] = _Asset(body, gzipped, _ASSETS[name], digest)
    return found


def _accepts_gzip(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() != "gzip":
            continue
        params = params.strip().lower()
        if not params.startswith("q="):
            return True
        try:
            return float(params[2:]) > 0  # "gzip;q=0" refuses it
        except ValueError:
            return False
    return False


def _matches(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    return given.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in given.split(","))


def _script_hashes(html: str) -> str:
    """The CSP sources that allow exactly the inline scripts of ``html``."""
    hashes = (hashlib.sha256(script.encode()).digest() for script in _INLINE_SCRIPT.findall(html))
    return " ".join(f"'sha256-{base64.b64encode(h).decode()}'" for h in hashes)


def _with_headers(page: HTMLResponse, policy: str) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = policy
    page.headers["Cache-Control"] = _PAGE_CACHE
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` on ``app``, with every asset
    from the server itself, none of them in the OpenAPI document.

    ``app`` must be made with ``docs_url=None, redoc_url=None`` (FastAPI's own pages load
    their assets from a CDN and would answer first) and must publish its OpenAPI document.
    The static files must be installed (``fastapi-offline``): checked here, not at the
    first request.
    """
    if app.docs_url is not None or app.redoc_url is not None:
        raise ValueError(
            "install_docs needs FastAPI(docs_url=None, redoc_url=None): the app has"
            f" FastAPI's own pages (docs_url={app.docs_url!r}, redoc_url={app.redoc_url!r})"
        )
    if app.openapi_url is None:
        raise ValueError("install_docs needs the app's OpenAPI document (openapi_url is None)")
    missing = [name for name in _ASSETS if not _static(name).is_file()]
    if missing:
        raise RuntimeError(f"{_PACKAGE} has no static {', '.join(missing)}: is it installed?")
    openapi_url = app.openapi_url
    # No OAuth2 redirect page: this API signs in with SIWE and bearer tokens, and has no
    # OAuth2 flow for Swagger UI to complete.

    def asset_url(root_path: str, name: str) -> str:
        return f"{root_path}{ASSETS_URL}/{_asset(name).digest}/{name}"

    # The handlers are sync: the first to need an asset reads and compresses it (about
    # 0.1 s) in the thread pool, not on the event loop.

    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset_url(root, "swagger-ui-bundle.js"),
            swagger_css_url=asset_url(root, "swagger-ui.css"),
            swagger_favicon_url=asset_url(root, "favicon.png"),
            # validatorUrl: by default Swagger UI asks validator.swagger.io about the spec.
            swagger_ui_parameters={"validatorUrl": None} | (app.swagger_ui_parameters or {}),
        )
        scripts = _script_hashes(bytes(page.body).decode())
        policy = f"script-src 'self' {scripts}; style-src 'self'; {_POLICY_COMMON}"
        return _with_headers(page, policy)

    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset_url(root, "redoc.standalone.js"),
            redoc_favicon_url=asset_url(root, "favicon.png"),
            with_google_fonts=False,
        )
        policy = (
            "script-src 'self'; style-src 'self' 'unsafe-inline'; worker-src blob:;"
            f" {_POLICY_COMMON}"
        )
        return _with_headers(page, policy)

    def asset(request: Request, digest: str, name: str) -> Response:
        if name not in _ASSETS or digest != _asset(name).digest:
            # The answer of a path no route matches: a stale digest looks like any other.
            raise HTTPException(status_code=404)
        found = _asset(name)
        zipped = _accepts_gzip(request)
        body = found.gzipped if zipped else found.body
        etag = found.etag(gzipped=zipped)
        headers = {
            "Cache-Control": _ASSET_CACHE,
            "ETag": etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if _matches(request, etag):
            return Response(status_code=304, headers=headers)
        if zipped:
            headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(body))
        sent = b"" if request.method == "HEAD" else body
        return Response(sent, media_type=found.media_type, headers=headers)

    app.add_api_route(DOCS_URL, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(REDOC_URL, redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        f"{ASSETS_URL}/{{digest}}/{{name}}", asset, methods=["GET", "HEAD"], include_in_schema=False
    )
