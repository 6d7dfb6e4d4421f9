"""The FastAPI application: every route under ``/v1``, errors as problem+json, a request
id on every response and log line, and a limit on every request body."""

from __future__ import annotations

import contextvars
import email.message
import logging
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import Engine

from api.deps import IDEMPOTENCY_KEY_HEADER
from api.direct import PARSED_BODY
from api.docs import install_docs
from api.principals import ChangeListener, PrincipalCache
from api.problems import install_problem_handlers, problem_response
from api.settings import Settings
from ledger.chain.follower import ChainFollower
from ledger.chain.gateway import FundingChain
from ledger.core.errors import InvalidInput
from ledger.core.json_input import parse_json_input
from ledger.db.engine import make_engine
from ledger.funding.clock import DeadlineClock
from ledger.journal.reads import holdings_now
from ledger.journal.write import Clock, Ledger, system_clock
from ledger.outputs.buyout_clock import BuyoutClock
from ledger.registry.photos import PHOTO_BYTES_MAX
from market.engine import MarketEngine
from market.engine.remote import RemoteEngine

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/v1"
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_LEN_MAX = 64
PHOTOS_PATH = f"{API_PREFIX}/photos"
log = logging.getLogger("dpn.api")
access_log = logging.getLogger("dpn.access")

# The interpreter's own default. Imports may raise it (py_ecc, through eth_account, sets
# 100,000, deep enough for a C parser to overflow the stack before it raises): every
# request puts it back, and says so once.
RECURSION_LIMIT = 1_000
# How long shutdown waits for the chain follower to finish its round (it is a daemon
# thread: a round stuck on a silent node does not hold the process up past this).
FOLLOWER_STOP_S = 5.0
# How often each worker settles the buy-out installments that have fallen due.
BUYOUT_INTERVAL_S = 5.0

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def hold_recursion_limit(*, at_start: bool = False) -> None:
    """Put the recursion limit back to ``RECURSION_LIMIT`` if anything raised it (at the
    start, quietly: the imports are known to)."""
    if sys.getrecursionlimit() != RECURSION_LIMIT:
        log.log(
            logging.DEBUG if at_start else logging.WARNING,
            "the recursion limit was %d (raised by an import?): back to %d",
            sys.getrecursionlimit(),
            RECURSION_LIMIT,
        )
        sys.setrecursionlimit(RECURSION_LIMIT)


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
    them, and JSON bodies that nest too deep or hold what no one means (see
    ``ledger.core.json_input``) with 400 before any decoder sees them; answers HEAD as
    GET without the body; writes an access line when a request starts and when it ends
    (a worker that dies leaves a trace of what it was serving); and answers an
    unexpected error itself (500), while the id is still set."""

    def __init__(self, app: ASGIApp, body_bytes_max: int, photo_bytes_max: int) -> None:
        self.app = app
        self.body_bytes_max = body_bytes_max
        self.photo_bytes_max = photo_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hold_recursion_limit()
        started_at = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        ok = 0 < len(given) <= _REQUEST_ID_LEN_MAX and given.replace("-", "").isalnum()
        request_id = given if ok else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        method, path = scope["method"], scope["path"]
        access_log.info("> %s %s", method, path)
        head = method == "HEAD"
        if head:  # every GET route answers HEAD: the same headers, no body
            scope = {**scope, "method": "GET"}
        limit, too_large = self._limit_for(scope)
        declared = headers.get(b"content-length")
        started = overflowed = False
        status = 0
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
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

        async def run(app_receive: Receive) -> None:
            try:
                await self.app(scope, app_receive, app_send)
            except Exception:
                if not overflowed:
                    # Here, not in an exception handler: Starlette runs those outside
                    # every middleware, after this one has let the request id go.
                    log.exception("unexpected error")
                    if not started:
                        await answer(500, "internal_error", "an unexpected error occurred")

        try:
            try:
                if declared is not None and (not declared.isdigit() or int(declared) > limit):
                    overflowed = True
                elif is_json_media(first_header(scope, b"content-type")) and (
                    method in _METHODS_WITH_BODY
                ):
                    # Read the whole body (held to the limit), check it, then hand the
                    # app the same bytes.
                    body = await _read_body(limited_receive)
                    try:
                        if body:  # kept: a direct route reads it (``api.direct``)
                            scope["state"][PARSED_BODY] = parse_json_input(body)
                    except InvalidInput as refused:
                        await answer(400, refused.code, refused.message)
                    else:
                        await run(_replay(body, receive))
                else:
                    await run(limited_receive)
            except _BodyTooLarge:
                pass  # reading the body here overflowed: answered just below
            if overflowed and not started:
                await answer(413, too_large, f"the request body exceeds {limit} bytes")
        finally:
            elapsed_ms = (time.perf_counter() - started_at) * 1000
            access_log.info("< %s %s %s %.1fms", method, path, status or "-", elapsed_ms)
            request_id_var.reset(token)

    def _limit_for(self, scope: Scope) -> tuple[int, str]:
        """The body limit of this request, and the problem code for passing it. Photo
        uploads have their own, larger limit (the route checks it again)."""
        if scope.get("path") == PHOTOS_PATH and scope.get("method") == "POST":
            return self.photo_bytes_max, "photo_too_large"
        return self.body_bytes_max, "body_too_large"


_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_media(content_type: bytes | None) -> bool:
    """True for the bodies FastAPI decodes as JSON: ``application/json`` or
    ``application/*+json`` (without a content type it decodes none), decided as it
    decides (``fastapi.routing``: the header read as Latin-1 text by an
    ``email.message.Message``), so that no spelling of the header it takes for JSON,
    one ending in a byte only text stripping removes (0xA0, say), passes here as
    something else and skips the checks of ``parse_json_input``."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type.decode("latin-1")
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def first_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), as Starlette's ``Headers.get``
    reads it: a second ``Content-Type`` must not decide here while the first decides
    for the app."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: what came is all there is
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app ``body`` (already read) and then waits as the
    server's does (for a disconnect)."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class _BodyTooLarge(Exception):
    pass


def _declare_idempotency_keys_required(app: FastAPI) -> None:
    """Say in the OpenAPI document that ``Idempotency-Key`` is required where it is
    taken. The dependency declares it optional so that a missing key is its own 400
    (``idempotency_key_missing``), not a generic 422."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for parameter in operation.get("parameters", ()):
                    if parameter["in"] == "header" and parameter["name"] == IDEMPOTENCY_KEY_HEADER:
                        parameter["required"] = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Clock = system_clock,
    funding_chain: FundingChain | None = None,
    start_follower: bool | None = None,
    buyout_interval_s: float = BUYOUT_INTERVAL_S,
) -> FastAPI:
    """The DPN Ledger HTTP API over ``engine`` (default: one made from the settings).

    ``funding_chain`` is the chain the projects' escrows live on; by default the one the
    settings name (``DPN_CHAIN_RPC_URL``), or none. A chain given here brings its ledger,
    which the app then serves (its engine and clock; ``engine``, if given too, must be
    the same). With a chain, the app keeps one chain follower
    (``app.state.chain_follower``, which ``/readyz`` reports on) and, unless
    ``start_follower`` is False (default: the settings' ``chain_follow``, from
    ``DPN_CHAIN_FOLLOW``), runs it in a thread from startup to shutdown. Every worker may
    run one: the follower's database lease lets one write at a time.

    From startup to shutdown the app also runs the buy-out clock
    (``app.state.buyout_clock``, reported by ``/readyz``): every ``buyout_interval_s``
    seconds it settles the installments due at the ledger's clock. Every worker runs
    one; the journal's lock and the attempts' idempotency keys make that safe, and a
    tick with nothing due writes nothing. Where it follows the chain, it runs the
    funding clock too (``app.state.deadline_clock``, on ``/readyz`` as ``deadlines``):
    the open projects without an escrow whose deadline has passed fail."""
    from api.routes import ROUTERS, TAGS

    hold_recursion_limit(at_start=True)  # everything is imported by now
    settings = settings or Settings.from_env()
    _configure_logging()
    if funding_chain is not None:
        if engine is not None and engine is not funding_chain.ledger.engine:
            raise ValueError("the funding chain's ledger is over another engine")
        ledger = funding_chain.ledger
    else:
        ledger = Ledger(engine or make_engine(settings.database_url), clock=clock)
    principals = PrincipalCache(fresh_s=settings.principals_fresh_s)
    principals.follow(ledger.engine)
    if funding_chain is None and settings.funding_chain is not None:
        # Made here, not at import: a node that does not answer yet is no reason to fail
        # (nothing is asked of it until the follower's first round or an opening).
        funding_chain = FundingChain(ledger, settings.funding_chain)
    follower = None if funding_chain is None else funding_chain.follower()
    market: MarketEngine | RemoteEngine = (
        MarketEngine(ledger, fee_bps=settings.market_fee_bps)
        if settings.market_engine_address is None
        else RemoteEngine(settings.market_engine_address, settings.market_engine_key)
    )
    if start_follower is None:
        start_follower = settings.chain_follow
    buyout_clock = BuyoutClock(ledger, interval_s=buyout_interval_s)
    # Projects without an escrow fail by the ledger's clock (with one, by the chain's).
    deadline_clock = DeadlineClock(ledger)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # On PostgreSQL, hear of revoked keys and changed roles from every worker.
        listener = None
        if ledger.engine.dialect.name == "postgresql":
            listener = ChangeListener(ledger.engine, principals)
            listener.start()
            _app.state.principal_listener = listener
        following = _start_following(follower) if start_follower else None
        if start_follower:
            deadline_clock.start()
        market.start()  # GTD orders expire on time from the start
        buyout_clock.start()
        try:
            yield
        finally:
            buyout_clock.stop(timeout_s=FOLLOWER_STOP_S)
            market.stop(timeout_s=FOLLOWER_STOP_S)
            if following is not None:
                _stop_following(*following)
            deadline_clock.stop(timeout_s=FOLLOWER_STOP_S)
            if listener is not None:
                listener.stop()

    app = FastAPI(
        title="DPN Ledger",
        version="0.1.0",
        description="Ownership ledger and market engine of a Distributed Production Network.",
        openapi_url="/openapi.json",
        docs_url=None,  # served by api.docs, from the server itself
        redoc_url=None,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.principals = principals
    app.state.holdings_now = holdings_now(ledger.engine)
    app.state.funding_chain = funding_chain
    app.state.chain_follower = follower
    app.state.market = market
    app.state.buyout_clock = buyout_clock
    app.state.deadline_clock = deadline_clock
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _declare_idempotency_keys_required(app)
    install_docs(app)
    app.add_middleware(
        RequestIdAndLimits,
        body_bytes_max=settings.body_bytes_max,
        photo_bytes_max=min(settings.photo_bytes_max, PHOTO_BYTES_MAX),
    )
    return app


def _start_following(
    follower: ChainFollower | None,
) -> tuple[threading.Thread, threading.Event] | None:
    if follower is None:
        return None
    log.info("following the funding chain (confirmations %d)", follower.confirmations)
    return follower.start()


def _stop_following(thread: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    thread.join(timeout=FOLLOWER_STOP_S)
    if thread.is_alive():
        log.warning("the chain follower did not stop within %.0f s", FOLLOWER_STOP_S)
