"""Who is calling: bearer credentials resolved to principals, remembered briefly.

Resolving a credential costs a transaction and three queries, as much as the transfer it
authorizes. A worker therefore keeps what it resolved for ``FRESH_S`` seconds (never past
the credential's own expiry), keyed by the credential's SHA-256, at most ``ENTRIES_MAX``
of them. What that costs in freshness, and only on other workers: a revoked API key or a
new role takes effect there within ``FRESH_S``. On the worker that revoked or granted it,
the remembered principals are forgotten at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from ledger.access import Principal

__all__ = ["ENTRIES_MAX", "FRESH_S", "PrincipalCache"]

FRESH_S = 2.0
ENTRIES_MAX = 10_000


class PrincipalCache:
    """Principals by credential, each fresh for ``fresh_s`` seconds of monotonic time."""

    def __init__(
        self,
        fresh_s: float = FRESH_S,
        entries_max: int = ENTRIES_MAX,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fresh_s = fresh_s
        self._entries_max = entries_max
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._generation = 0

    @staticmethod
    def key(credential: str) -> str:
        """The cache key of a credential: never the credential itself."""
        return hashlib.sha256(credential.encode()).hexdigest()

    def get(self, key: str, now: datetime) -> Principal | None:
        """The remembered principal, if still fresh and its credential unexpired."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            principal, fresh_until = found
            if self._monotonic() >= fresh_until or (
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
            self._entries[key] = (principal, self._monotonic() + self._fresh_s)
            self._entries.move_to_end(key)
            while len(self._entries) > self._entries_max:
                self._entries.popitem(last=False)

    def forget_all(self) -> None:
        """Forget everything: a credential was revoked or a role changed."""
        with self._lock:
            self._entries.clear()
            self._generation += 1
