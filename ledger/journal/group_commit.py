"""Group commit: concurrent single appends share one transaction.

Writers are serialized on the journal, so a write's cost is mostly its round trips and
its commit. Appends are therefore queued, and one committer thread per ledger opens a
write transaction, takes every draft waiting once it holds the journal lock (up to
``BATCH_MAX``), appends them with ``WriteTx.append_each`` (each draft stands or falls
alone) and commits once. While it commits, the next batch gathers. Each submitter
holds a future: a thread blocks on it, an event loop awaits it (``asyncio.wrap_future``)
without tying up a thread per request.

The committer starts with the first append and ends after ``IDLE_S`` without any, so an
idle ledger holds no thread. A draft whose future was cancelled before its batch began
(its requester went away) is dropped; once its batch has begun it is committed anyway,
and a retry under the same idempotency key returns it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Generic, Protocol, TypeVar

from ledger.core import EntryDraft
from ledger.core.errors import LedgerError

__all__ = ["BATCH_MAX", "IDLE_S", "GroupCommit"]

BATCH_MAX = 256
IDLE_S = 1.0

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Appender(Protocol[T_co]):
    def append_each(self, drafts: Sequence[EntryDraft]) -> Sequence[T_co | LedgerError]: ...


class GroupCommit(Generic[T]):
    """Funnels concurrent appends into shared write transactions."""

    def __init__(
        self,
        write: Callable[[], AbstractContextManager[_Appender[T]]],
        batch_max: int = BATCH_MAX,
        idle_s: float = IDLE_S,
    ) -> None:
        self._write = write
        self._batch_max = batch_max
        self._idle_s = idle_s
        self._changed = threading.Condition()
        self._waiting: deque[tuple[EntryDraft, Future[T]]] = deque()
        self._committer: threading.Thread | None = None

    def submit(self, draft: EntryDraft) -> Future[T]:
        """Queue ``draft`` for the next batch; the future gives what ``append_each``
        returned for it, or raises its error."""
        future: Future[T] = Future()
        with self._changed:
            self._waiting.append((draft, future))
            if self._committer is None:
                self._committer = threading.Thread(
                    target=self._run, name="dpn-group-commit", daemon=True
                )
                self._committer.start()
            else:
                self._changed.notify()
        return future

    @property
    def waiting(self) -> int:
        """How many drafts wait for a batch."""
        return len(self._waiting)

    @property
    def running(self) -> bool:
        """Whether the committer thread is alive."""
        return self._committer is not None

    def _run(self) -> None:
        try:
            while self._work_waiting():
                self._commit()
        finally:
            with self._changed:
                if self._committer is threading.current_thread():  # ended by an error
                    self._committer = None

    def _work_waiting(self) -> bool:
        """True when drafts wait; False, and the committer ends, after an idle spell."""
        with self._changed:
            if not self._waiting:
                self._changed.wait(self._idle_s)
            if not self._waiting:
                self._committer = None
                return False
            return True

    def _take(self) -> list[tuple[EntryDraft, Future[T]]]:
        """The drafts waiting now (up to ``batch_max``) whose requesters still want them."""
        with self._changed:
            count = min(self._batch_max, len(self._waiting))
            taken = [self._waiting.popleft() for _ in range(count)]
        return [(draft, f) for draft, f in taken if f.set_running_or_notify_cancel()]

    def _commit(self) -> None:
        """One transaction. Its batch is taken once the journal lock is held: drafts that
        arrived while another process held the lock ride along, instead of waiting for
        this process's next turn."""
        batch: list[tuple[EntryDraft, Future[T]]] | None = None
        try:
            with self._write() as tx:
                batch = self._take()
                outcomes = tx.append_each([draft for draft, _ in batch]) if batch else []
        except BaseException as error:  # the transaction failed as a whole: tell everyone
            for _, future in batch if batch is not None else self._take():
                future.set_exception(error)
            if isinstance(error, Exception):
                return
            raise
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, LedgerError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
