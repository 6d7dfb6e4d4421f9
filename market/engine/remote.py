"""One matching process that the workers hand orders to.

With ``dpn serve --workers N`` (N > 1) the supervisor starts one engine process beside
the workers (``EngineServer`` around a ``MarketEngine``), and each worker's app talks to
it through a ``RemoteEngine``: the face of ``MarketEngine`` a worker uses (``submit``,
``status``, ``start``, ``stop``), with the engine elsewhere.

Why: an engine in every worker is correct (each batch catches up on the others'
commands under the journal lock; see ``market.engine.engine``), but the workers then
take turns on the lock, and each turn replays the other's commands and reads again
every balance and hold the other may have moved. One engine keeps its books, balances
and holds warm from batch to batch, batches every worker's orders together, and leaves
the workers' interpreters to HTTP. The cost: a local round trip per request (two
pickles and a Unix socket), and one more process. The journal lock still guards every
batch, so two engines at once (a restarted one whose predecessor is not yet gone, or a
``dpn`` command writing) still cannot fill an order twice.

**The wire.** A Unix socket in a directory only the server's user may enter, opened
with ``multiprocessing.connection``'s HMAC handshake on a random key the supervisor
hands its children; the messages are pickles, so nothing without the key is read. A
worker keeps one connection with any number of requests in flight on it, each under a
tag; the engine sends the answers of a batch together as it commits.

**Failure.** If the engine process dies, each request in flight on it fails with 503
``market_unavailable``: it may or may not have been stored, and asking again with the
same ``Idempotency-Key`` answers what was. The supervisor starts a new engine, which
rebuilds its books from the database; a worker connects again on its next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import struct
import threading
import time
import typing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Final, cast

from ledger.core.errors import InvalidInput, LedgerError, Unavailable
from market.engine.engine import Answer, EngineStatus, MarketEngine
from market.engine.requests import Request

__all__ = ["CONNECT_WAIT_S", "SEND_TIMEOUT_S", "STATUS_WAIT_S", "EngineServer", "RemoteEngine"]

CONNECT_WAIT_S: Final = 20.0
"""How long a starting worker waits for the engine process to listen."""
STATUS_WAIT_S: Final = 1.0
"""How long ``status`` waits for the engine process to answer."""
SEND_TIMEOUT_S: Final = 2.0
"""How long a worker waits to hand a request over before it counts the engine as gone
(only an engine that stopped reading makes a send wait)."""
FRAME_BYTES_MAX: Final = 1 << 30
"""The largest message an event loop's link takes from the engine (as
``multiprocessing.connection`` frames them: a 4-byte length, or -1 and an 8-byte one)."""
_CONNECT_RETRY_S: Final = 0.05
_SUBMIT: Final = "submit"
_STATUS: Final = "status"
_FAMILY: Final = "AF_UNIX"
_REQUESTS: Final = typing.get_args(Request)  # every kind the engine takes, none forgotten

log = logging.getLogger("dpn.market.remote")

Reply = tuple[int, bool, Any]
"""``(tag, ok, answer or the LedgerError refusing it)``: errors pickle as they are
(``LedgerError.__reduce__``), class, code, message and detail."""


def _dumps(message: object) -> bytes:
    """``message`` pickled as ``Connection.send`` would, without its cost: ``send``
    builds a ``ForkingPickler`` for every message, copying the whole ``copyreg``
    dispatch table, which cost the workers 5 % of their CPU (no message here holds a
    socket or a lock, the things that pickler is for)."""
    return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def _framed(payload: bytes) -> bytes:
    """``payload`` as ``Connection.send_bytes`` frames it, for the engine's
    ``recv_bytes``."""
    size = len(payload)
    if size > 0x7FFFFFFF:
        return struct.pack("!iQ", -1, size) + payload
    return struct.pack("!i", size) + payload


def _refusal(error: BaseException) -> LedgerError:
    """``error`` as a worker may raise it: a ledger error as it is, anything else (the
    engine's batch failed) as 503 ``market_unavailable``."""
    if isinstance(error, LedgerError):
        return error
    return Unavailable(
        "market_unavailable",
        f"the market engine failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}",
    )


def _gone(why: str) -> Unavailable:
    return Unavailable(
        "market_unavailable",
        f"the market engine is not reachable ({why}); a request in flight may or may not"
        " have been stored: ask again with the same Idempotency-Key",
    )


def _send_timeout(conn: Connection, seconds: float) -> None:
    """Give up a send after ``seconds`` (``SO_SNDTIMEO``; the socket stays blocking): a
    worker's event loop sends, and must not hang on an engine that stopped reading."""
    whole = int(seconds)
    limit = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    with socket.socket(fileno=os.dup(conn.fileno())) as same:
        same.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)


def _hang_up(conn: Connection) -> None:
    """Shut the connection down, then close it: a thread blocked reading it wakes (to
    an end of file), and so does the other side. Closing alone wakes neither."""
    with (
        contextlib.suppress(OSError, ValueError),  # already closed
        socket.socket(fileno=os.dup(conn.fileno())) as same,
    ):
        same.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        conn.close()


# -- the worker's side --------------------------------------------------------------------


@dataclass
class _Link:
    """One connection to the engine process and the requests waiting on it."""

    conn: Connection
    pending: dict[int, Future[Any]] = field(default_factory=dict)
    open: bool = True


class RemoteEngine:
    """A worker's handle on the engine process at ``address`` (see the module
    docstring). Thread-safe; ``submit`` never blocks on the engine's work."""

    def __init__(
        self, address: str, authkey: bytes, *, send_timeout_s: float = SEND_TIMEOUT_S
    ) -> None:
        self._address = address
        self._authkey = authkey
        self._send_timeout_s = send_timeout_s
        self._lock = threading.Lock()  # the link, its pending futures, sending on it
        self._link: _Link | None = None
        self._tags = itertools.count(1)
        self._stopping = False
        self._last_error: str | None = None
        self._loop_link: _LoopLink | None = None  # the event loop's own link
        self._connecting: asyncio.Task[_LoopLink] | None = None

    async def ask(self, request: Request) -> Answer:
        """What ``submit``'s future gives, awaited on the running event loop over a link
        the loop reads itself (see the module docstring). A loop other than the one
        that made the link (a second test client's, while the first's is open) is
        answered through ``submit``."""
        link = await self._link_of_this_loop()
        if link is None:
            return await asyncio.wrap_future(self.submit(request))
        answer: Answer = await link.ask(_SUBMIT, request)
        return answer

    def submit(self, request: Request) -> Future[Answer]:
        """Send ``request`` to the engine; the future gives what ``MarketEngine.submit``'s
        would, or 503 ``market_unavailable`` if the engine cannot be reached."""
        future: Future[Answer] = Future()
        self._send(_SUBMIT, request, future)
        return future

    def status(self) -> EngineStatus:
        """The engine process's status, or a stopped one naming why it did not answer."""
        future: Future[Any] = Future()
        self._send(_STATUS, None, future)
        try:
            status = future.result(STATUS_WAIT_S)
        except Exception as error:
            return EngineStatus(False, 0, 0, 0, 0, f"{type(error).__name__}: {error}")
        if not isinstance(status, EngineStatus):  # pragma: no cover - the engine answers in kind
            raise TypeError(f"the engine answered a status request with {status!r}")
        return status

    def start(self) -> None:
        """Connect now, waiting up to ``CONNECT_WAIT_S`` for the engine process to
        listen (a worker and the engine start together); if it does not, requests try
        again as they come."""
        deadline = time.monotonic() + CONNECT_WAIT_S
        while True:
            with self._lock:
                try:
                    self._connected()
                    return
                except Unavailable:
                    if time.monotonic() >= deadline or self._stopping:
                        log.warning("market engine not reachable at start: %s", self._last_error)
                        return
            time.sleep(_CONNECT_RETRY_S)

    def stop(self, timeout_s: float = 0.0) -> None:
        """Close the connection; requests still waiting fail with ``market_unavailable``
        (the engine process goes on, and finishes them)."""
        del timeout_s  # nothing here waits: the engine process stops on its own
        with self._lock:
            self._stopping = True
            link, self._link = self._link, None
            loop_link, self._loop_link = self._loop_link, None
        if link is not None:
            self._close(link, "this worker is stopping")
        if loop_link is not None:
            loop_link.close_soon("this worker is stopping")

    async def _link_of_this_loop(self) -> _LoopLink | None:
        """The running loop's open link, connecting first if it has none; None if another
        loop, still running, holds the link."""
        loop = asyncio.get_running_loop()
        link = self._loop_link
        if link is not None and link.loop is loop and link.open:
            return link
        if link is not None and link.open and not link.loop.is_closed():
            return None  # another loop's
        connecting = self._connecting
        if connecting is None or connecting.get_loop() is not loop:
            connecting = self._connecting = loop.create_task(self._connect_loop(loop))
        # Shielded: a request given up while the link connects leaves it to the others.
        return await asyncio.shield(connecting)

    async def _connect_loop(self, loop: asyncio.AbstractEventLoop) -> _LoopLink:
        try:
            if self._stopping:
                raise _gone("this worker is stopping")
            sock = await asyncio.to_thread(self._handshake)  # market_unavailable if none
            try:
                _, link = await loop.create_unix_connection(
                    lambda: _LoopLink(loop, self._send_timeout_s), sock=sock
                )
            except OSError as error:
                sock.close()
                self._last_error = f"{type(error).__name__}: {error}"
                raise _gone(self._last_error) from None
            with self._lock:
                if self._stopping:
                    link.close_soon("this worker is stopping")
                    raise _gone("this worker is stopping")
                self._loop_link = link
                self._last_error = None
            return link
        finally:
            self._connecting = None

    def _handshake(self) -> socket.socket:
        """A socket to the engine, past the key's handshake (blocking: run in a thread)."""
        conn = self._dial()
        try:
            return socket.socket(fileno=os.dup(conn.fileno()))
        finally:
            conn.close()

    def _dial(self) -> Connection:
        """A connection to the engine, past the key's handshake, its sends bounded by
        ``send_timeout_s``; ``market_unavailable`` naming why there is none."""
        try:
            conn = Client(self._address, family=_FAMILY, authkey=self._authkey)
            _send_timeout(conn, self._send_timeout_s)
        except (OSError, EOFError, AuthenticationError) as error:
            self._last_error = f"{type(error).__name__}: {error}"
            raise _gone(self._last_error) from None
        return conn

    def _send(self, op: str, body: Request | None, future: Future[Any]) -> None:
        with self._lock:
            if self._stopping:
                future.set_exception(_gone("this worker is stopping"))
                return
            try:
                link = self._connected()
            except Unavailable as error:
                future.set_exception(error)
                return
            tag = next(self._tags)
            link.pending[tag] = future
            try:
                link.conn.send_bytes(_dumps((tag, op, body)))
            except (OSError, ValueError) as error:
                self._last_error = f"{type(error).__name__}: {error}"
                self._link = None
                broken = link
            else:
                return
        self._close(broken, self._last_error or "the connection broke")

    def _connected(self) -> _Link:
        """The open link, connecting first if there is none (the caller holds the lock)."""
        if self._link is not None and self._link.open:
            return self._link
        link = self._link = _Link(self._dial())
        threading.Thread(
            target=self._read, args=(link,), name="dpn-market-remote", daemon=True
        ).start()
        self._last_error = None
        return link

    def _read(self, link: _Link) -> None:
        why = "the engine process closed the connection"
        try:
            while True:
                replies: list[Reply] = pickle.loads(link.conn.recv_bytes())
                for tag, ok, answer in replies:
                    with self._lock:
                        future = link.pending.pop(tag, None)
                    if future is not None and future.set_running_or_notify_cancel():
                        if ok:  # (a future cancelled, its request given up, takes none)
                            future.set_result(answer)
                        else:
                            future.set_exception(answer)
        except (EOFError, OSError) as error:
            if not isinstance(error, EOFError):
                why = f"{type(error).__name__}: {error}"
        with self._lock:
            if self._link is link:
                self._link = None
                self._last_error = why
        self._close(link, why)

    def _close(self, link: _Link, why: str) -> None:
        with self._lock:
            link.open = False
            waiting = list(link.pending.values())
            link.pending.clear()
        _hang_up(link.conn)
        for future in waiting:
            if future.set_running_or_notify_cancel():
                future.set_exception(_gone(why))


class _LoopLink(asyncio.Protocol):
    """A connection to the engine read and written by one event loop: each request a
    future of that loop under a tag, resolved as the engine's answers come in."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send_timeout_s: float) -> None:
        self.loop = loop
        self.open = True
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._tags = itertools.count(1)
        self._transport: asyncio.Transport | None = None
        self._received = bytearray()
        self._send_timeout_s = send_timeout_s
        self._stalled: asyncio.TimerHandle | None = None
        self._why = "the engine process closed the connection"

    def ask(self, op: str, body: Request | None) -> asyncio.Future[Any]:
        """Send ``(tag, op, body)``; the future gives the engine's answer."""
        future: asyncio.Future[Any] = self.loop.create_future()
        if not self.open or self._transport is None:
            future.set_exception(_gone(self._why))
            return future
        tag = next(self._tags)
        self._pending[tag] = future
        self._transport.write(_framed(_dumps((tag, op, body))))
        return future

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream's transport (uvloop's derive from no asyncio class).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        received = self._received
        received += data
        while len(received) >= 4:
            (size,) = struct.unpack_from("!i", received)
            start = 4
            if size == -1:
                if len(received) < 12:
                    return
                (size,) = struct.unpack_from("!Q", received, 4)
                start = 12
            if not 0 <= size <= FRAME_BYTES_MAX:
                self.close(f"the engine sent a message of {size} bytes")
                return
            end = start + size
            if len(received) < end:
                return
            try:
                replies: list[Reply] = pickle.loads(received[start:end])
            except Exception as error:  # not the engine's pickle: this link is broken
                self.close(f"the engine sent what does not unpickle: {type(error).__name__}")
                return
            del received[:end]
            for tag, ok, answer in replies:
                future = self._pending.pop(tag, None)
                if future is None or future.done():
                    continue  # its request was given up
                if ok:
                    future.set_result(answer)
                else:
                    future.set_exception(answer)

    def pause_writing(self) -> None:
        # Only an engine that stopped reading fills the socket's buffer.
        self._stalled = self.loop.call_later(
            self._send_timeout_s,
            self.close,
            f"the engine read nothing for {self._send_timeout_s:g} s",
        )

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.open:
            self._why = f"{type(exc).__name__}: {exc}"
        self._fail_pending()

    def close(self, why: str) -> None:
        """Close the link (on its loop); what waits on it fails with
        ``market_unavailable``, naming ``why``."""
        if self.open:
            self._why = why
        self._fail_pending()
        if self._transport is not None:
            self._transport.abort()

    def close_soon(self, why: str) -> None:
        """``close``, from any thread."""
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.close(why)
        elif not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.loop.call_soon_threadsafe(self.close, why)

    def _fail_pending(self) -> None:
        self.open = False
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        waiting = list(self._pending.values())
        self._pending.clear()
        for future in waiting:
            if not future.done():
                future.set_exception(_gone(self._why))


# -- the engine process's side ------------------------------------------------------------


class EngineServer:
    """Serves ``market`` to the workers on the Unix socket ``address``: listens as soon as
    it is made, so workers may connect while the engine still rebuilds its books."""

    def __init__(self, market: MarketEngine, address: str, authkey: bytes) -> None:
        self.market = market
        self._listener = Listener(address, family=_FAMILY, backlog=128, authkey=authkey)
        self._closed = threading.Event()
        self._writers: list[_Writer] = []
        self._writers_lock = threading.Lock()

    def serve(self) -> None:
        """Accept workers until ``close``, each served by a thread of its own."""
        while not self._closed.is_set():
            try:
                conn = self._listener.accept()
            except Exception as error:  # a wrong key, a peer gone mid-handshake, or closed
                if not self._closed.is_set():
                    log.warning("market engine: a connection was refused: %s", error)
                continue
            writer = _Writer(conn)
            with self._writers_lock:
                self._writers = [w for w in self._writers if w.open] + [writer]
            threading.Thread(
                target=self._serve_one, args=(conn, writer), name="dpn-market-link", daemon=True
            ).start()

    def close(self) -> None:
        """Stop accepting and close every connection, after sending what is answered."""
        self._closed.set()
        self._listener.close()
        with self._writers_lock:
            writers, self._writers = self._writers, []
        for writer in writers:
            writer.close()

    def _serve_one(self, conn: Connection, writer: _Writer) -> None:
        threading.Thread(target=writer.run, name="dpn-market-send", daemon=True).start()
        try:
            while True:
                tag, op, body = pickle.loads(conn.recv_bytes())
                if op == _STATUS:
                    writer.put((tag, True, self.market.status()))
                elif op == _SUBMIT and isinstance(body, _REQUESTS):
                    self._submit(tag, body, writer)
                else:
                    refused = InvalidInput("market_request", f"not a market request: {op!r}")
                    writer.put((tag, False, refused))
        except (EOFError, OSError, TypeError, ValueError):
            pass  # the worker went away (or sent what is not a message): drop the link
        writer.close()

    def _submit(self, tag: int, request: Request, writer: _Writer) -> None:
        try:
            future = self.market.submit(request)
        except Exception as error:  # the engine is stopping
            writer.put((tag, False, _refusal(error)))
            return
        future.add_done_callback(_replier(tag, writer))


def _replier(tag: int, writer: _Writer) -> Callable[[Future[Answer]], None]:
    def reply(future: Future[Answer]) -> None:
        error = future.exception()
        if error is None:
            writer.put((tag, True, future.result()))
        else:
            writer.put((tag, False, _refusal(error)))

    return reply


class _Writer:
    """Sends a connection's answers from a thread of its own, as many to a message as
    are ready: the engine's thread only queues them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.open = True
        self._ready: deque[Reply] = deque()
        self._changed = threading.Condition()

    def put(self, reply: Reply) -> None:
        with self._changed:
            self._ready.append(reply)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self.open = False
            self._changed.notify()

    def run(self) -> None:
        while True:
            with self._changed:
                while self.open and not self._ready:
                    self._changed.wait()
                replies = list(self._ready)
                self._ready.clear()
                closing = not self.open
            try:
                if replies:
                    self.conn.send_bytes(_dumps(replies))
            except (OSError, ValueError):
                closing = True
            if closing:
                _hang_up(self.conn)
                return
