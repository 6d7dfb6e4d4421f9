"""The FastAPI application: every route under ``/v1``, errors as problem+json, a request
id on every response and log line, and a limit on every request body."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import Engine

from api.principals import ChangeListener, PrincipalCache
from api.problems import install_problem_handlers, problem_response
from api.settings import Settings
from ledger.db.engine import make_engine
from ledger.journal import Clock, Ledger, system_clock
from ledger.photos import PHOTO_BYTES_MAX

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/v1"
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_LEN_MAX = 64
PHOTOS_PATH = f"{API_PREFIX}/photos"
log = logging.getLogger("dpn.api")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _configure_logging() -> None:
    root = logging.getLogger("dpn")
    if not any(isinstance(f, _RequestIdFilter) for f in root.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
        handler.addFilter(_RequestIdFilter())
        root.addHandler(handler)
        root.addFilter(_RequestIdFilter())
        root.setLevel(logging.INFO)


class RequestIdAndLimits:
    """Pure ASGI middleware, around everything the app does: gives each request an id
    (the client's ``X-Request-ID`` if sane, else a new one) that every log line and
    every response carries; refuses bodies over the limit with 413 before the app reads
    them; and answers an unexpected error itself (500), while the id is still set."""

    def __init__(self, app: ASGIApp, body_bytes_max: int, photo_bytes_max: int) -> None:
        self.app = app
        self.body_bytes_max = body_bytes_max
        self.photo_bytes_max = photo_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        ok = 0 < len(given) <= _REQUEST_ID_LEN_MAX and given.replace("-", "").isalnum()
        request_id = given if ok else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        limit, too_large = self._limit_for(scope)
        declared = headers.get(b"content-length")
        started = overflowed = False
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        async def app_send(message: Message) -> None:
            # Once the body overflowed, the app's answer (FastAPI makes a 400 of a body
            # it could not read) gives way to the 413 below.
            if not overflowed:
                await send_with_id(message)

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                overflowed = True
                raise _BodyTooLarge
            return message

        async def answer(status: int, code: str, detail: str) -> None:
            response = problem_response(status, code, detail, Request(scope))
            await response(scope, receive, send_with_id)

        try:
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                overflowed = True
            else:
                try:
                    await self.app(scope, limited_receive, app_send)
                except Exception:
                    if not overflowed:
                        # Here, not in an exception handler: Starlette runs those outside
                        # every middleware, after this one has let the request id go.
                        log.exception("unexpected error")
                        if not started:
                            await answer(500, "internal_error", "an unexpected error occurred")
            if overflowed and not started:
                await answer(413, too_large, f"the request body exceeds {limit} bytes")
        finally:
            request_id_var.reset(token)

    def _limit_for(self, scope: Scope) -> tuple[int, str]:
        """The body limit of this request, and the problem code for passing it. Photo
        uploads have their own, larger limit (the route checks it again)."""
        if scope.get("path") == PHOTOS_PATH and scope.get("method") == "POST":
            return self.photo_bytes_max, "photo_too_large"
        return self.body_bytes_max, "body_too_large"


class _BodyTooLarge(Exception):
    pass


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, clock: Clock = system_clock
) -> FastAPI:
    """The DPN Ledger HTTP API over ``engine`` (default: one made from the settings)."""
    from api.routes import ROUTERS, TAGS

    settings = settings or Settings.from_env()
    _configure_logging()
    ledger = Ledger(engine or make_engine(settings.database_url), clock=clock)
    principals = PrincipalCache(fresh_s=settings.principals_fresh_s)
    principals.follow(ledger.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # On PostgreSQL, hear of revoked keys and changed roles from every worker.
        listener = None
        if ledger.engine.dialect.name == "postgresql":
            listener = ChangeListener(ledger.engine, principals)
            listener.start()
            _app.state.principal_listener = listener
        try:
            yield
        finally:
            if listener is not None:
                listener.stop()

    app = FastAPI(
        title="DPN Ledger",
        version="0.1.0",
        description="Ownership ledger and market engine of a Distributed Production Network.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.principals = principals
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(
        RequestIdAndLimits,
        body_bytes_max=settings.body_bytes_max,
        photo_bytes_max=min(settings.photo_bytes_max, PHOTO_BYTES_MAX),
    )
    return app
