"""Who is calling: bearer credentials resolved to principals, remembered briefly.

Resolving a credential costs a transaction and three queries, as much as the transfer it
authorizes. A worker therefore keeps what it resolved for a few seconds (the setting
``principals_fresh_s``, ``FRESH_S`` by default; never past the credential's own expiry),
keyed by the credential's SHA-256, at most ``ENTRIES_MAX`` of them.

On the worker that revokes a key or grants a role, the remembered principals are
forgotten as soon as that transaction has committed, whichever route or command made the
change (``PrincipalCache.follow``); on PostgreSQL every other worker hears of it
(LISTEN/NOTIFY) and forgets them too. On SQLite, or while a listener reconnects,
another worker may go on using what it remembered for that long.

While a worker's listener shows it is connected (it answers a round trip at least every
``POLL_S``, and vouches for ``VOUCH_S`` after each), nothing can change without it
hearing, so what it remembered stays fresh for ``HEARD_FRESH_S``. Without that, every
principal a worker resolved went stale ``FRESH_S`` after it was resolved, all of those
resolved together at once: under load every client's was resolved again in the same
moment, every two seconds, and those requests waited (the HTTP order load's p99 fell
from 115 to 72 ms once they did not). A listener that stops answering stops vouching,
and the cache is back to ``FRESH_S`` within ``VOUCH_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, event

from ledger.access import Principal, digest_of
from ledger.access.principals import PRINCIPALS_CHANGED, PRINCIPALS_CHANNEL

__all__ = ["ENTRIES_MAX", "FRESH_S", "HEARD_FRESH_S", "ChangeListener", "PrincipalCache"]

FRESH_S = 2.0
HEARD_FRESH_S = 60.0  # while a live listener would have heard of any change
VOUCH_S = 2.0  # how long one round trip of the listener vouches for it
ENTRIES_MAX = 10_000
POLL_S = 0.5  # how often the listener looks up from waiting to see if it should stop
RECONNECT_S = 1.0

log = logging.getLogger("dpn.principals")


class PrincipalCache:
    """Principals by credential, each fresh for ``fresh_s`` seconds of monotonic time,
    or ``heard_fresh_s`` while a change listener vouches for the worker (``vouch``)."""

    def __init__(
        self,
        fresh_s: float = FRESH_S,
        entries_max: int = ENTRIES_MAX,
        monotonic: Callable[[], float] = time.monotonic,
        heard_fresh_s: float = HEARD_FRESH_S,
    ) -> None:
        self._fresh_s = fresh_s
        self._heard_fresh_s = max(fresh_s, heard_fresh_s)
        self._entries_max = entries_max
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._generation = 0
        self._vouched_until = float("-inf")

    key = staticmethod(digest_of)  # the cache key of a credential: never the credential

    def follow(self, engine: Engine) -> None:
        """Forget everything whenever a connection of ``engine`` that announced changed
        principals (``ledger.access.announce_principals_changed``) comes back to the
        pool: its transaction has ended then, so no request can resolve the old roles
        after the forgetting. (A change rolled back makes it forget for nothing, which
        is harmless. A pool event, not a connection event: those would slow every
        statement of every connection.)"""

        def checked_in(_dbapi_connection: Any, record: Any) -> None:
            if record.info.pop(PRINCIPALS_CHANGED, False):
                self.forget_all()

        event.listen(engine.pool, "checkin", checked_in)

    def get(self, key: str, now: datetime) -> Principal | None:
        """The remembered principal, if still fresh and its credential unexpired."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            principal, resolved_at = found
            ticks = self._monotonic()
            fresh_s = self._heard_fresh_s if ticks < self._vouched_until else self._fresh_s
            if ticks - resolved_at >= fresh_s or (
                principal.expires_at is not None and now >= principal.expires_at
            ):
                del self._entries[key]
                return None
            return principal

    @property
    def generation(self) -> int:
        """Changes whenever everything is forgotten: read it before resolving a
        credential and hand it to ``put``."""
        return self._generation

    def put(self, key: str, principal: Principal, generation: int) -> None:
        """Remember ``principal``, resolved when the cache was at ``generation``; a
        principal resolved before a ``forget_all`` is not remembered. The oldest entry
        goes when the cache is full."""
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (principal, self._monotonic())
            self._entries.move_to_end(key)
            while len(self._entries) > self._entries_max:
                self._entries.popitem(last=False)

    def forget_all(self) -> None:
        """Forget everything: a credential was revoked or a role changed."""
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def vouch(self, seconds: float) -> None:
        """A change listener has just shown it is connected: for ``seconds``, it would
        hear of any change, so what is remembered stays fresh for ``heard_fresh_s``."""
        with self._lock:
            self._vouched_until = self._monotonic() + seconds

    @property
    def vouched(self) -> bool:
        """Whether a change listener vouches for the worker now."""
        return self._monotonic() < self._vouched_until

    def unvouch(self) -> None:
        """The listener lost its connection: back to ``fresh_s`` at once."""
        with self._lock:
            self._vouched_until = float("-inf")


class ChangeListener:
    """On PostgreSQL, forgets the cache whenever any worker announces a revoked key or a
    changed role (``ledger.access.announce_principals_changed``, a NOTIFY sent when its
    transaction commits), so the change counts on every worker at once. If the listening
    connection is lost, the cache is forgotten and the listener connects again; meanwhile
    ``FRESH_S`` still bounds how stale a principal can be."""

    def __init__(self, engine: Engine, cache: PrincipalCache) -> None:
        self._engine = engine
        self._cache = cache
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dpn-principals", daemon=True)
        self.backend_pid: int | None = None  # its connection's server process, once open

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=POLL_S * 4)

    def wait_listening(self, timeout_s: float) -> bool:
        """True once the listener is connected and listening."""
        return self._listening.wait(timeout_s)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception:  # the connection failed: forget, wait a little, reconnect
                log.warning("principal change listener lost its connection", exc_info=True)
            self._listening.clear()
            self._cache.forget_all()
            self._stopping.wait(RECONNECT_S)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        try:
            connection = raw.driver_connection
            if not isinstance(connection, psycopg.Connection):
                raise TypeError(f"not a psycopg connection: {type(connection).__name__}")
            connection.autocommit = True
            self.backend_pid = connection.info.backend_pid
            row = connection.execute("SELECT current_schema()").fetchone()
            schema = None if row is None else row[0]
            connection.execute(f"LISTEN {PRINCIPALS_CHANNEL}")
            self._cache.forget_all()  # anything announced before we listened
            self._listening.set()
            while not self._stopping.is_set():
                self._hear(connection, schema, POLL_S)
                # A round trip shows the connection is alive; what was announced before
                # its answer waits in the backlog, heard before the vouching.
                connection.execute("SELECT 1")
                self._hear(connection, schema, 0.0)
                self._cache.vouch(VOUCH_S)
        finally:
            self._cache.unvouch()
            raw.invalidate()  # never back to the pool: it is in autocommit and LISTENing

    def _hear(
        self, connection: psycopg.Connection[Any], schema: str | None, timeout_s: float
    ) -> None:
        """Forget everything if a change to ``schema``'s principals is announced within
        ``timeout_s`` (or was, while the connection did something else)."""
        for notice in connection.notifies(timeout=timeout_s):
            if notice.payload == schema:
                self._cache.forget_all()
