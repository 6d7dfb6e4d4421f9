"""Group commit: concurrent single appends share one transaction.

Writers are serialized on the journal, so a write's cost is mostly its round trips and
its commit. When several threads of one process append at once, the first becomes the
leader: it takes every draft waiting (up to ``BATCH_MAX``), appends them with
``WriteTx.append_each`` (each draft stands or falls alone) and commits once; then it
hands leadership to the first thread still waiting. A thread alone pays nothing extra:
it leads a batch of one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ledger.core import EntryDraft
from ledger.errors import LedgerError

__all__ = ["BATCH_MAX", "GroupCommit"]

BATCH_MAX = 256


class _Appender(Protocol):
    def append_each(self, drafts: Sequence[EntryDraft]) -> Sequence[Any]: ...


class _Waiter:
    __slots__ = ("done", "draft", "error", "lead", "result", "wake")

    def __init__(self, draft: EntryDraft) -> None:
        self.draft = draft
        self.wake = threading.Event()
        self.lead = False
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Funnels concurrent appends into shared write transactions."""

    def __init__(
        self, write: Callable[[], AbstractContextManager[_Appender]], batch_max: int = BATCH_MAX
    ) -> None:
        self._write = write
        self._batch_max = batch_max
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._leading = False

    def submit(self, draft: EntryDraft) -> Any:
        """Append ``draft`` in some batch; return its ``Appended`` or raise its error."""
        me = _Waiter(draft)
        with self._lock:
            self._waiting.append(me)
            if not self._leading:
                self._leading = me.lead = True
        while not me.done:
            if me.lead:
                me.lead = False
                self._lead()
            else:
                me.wake.wait()
                me.wake.clear()
        if me.error is not None:
            raise me.error
        return me.result

    def _lead(self) -> None:
        with self._lock:
            batch = self._waiting[: self._batch_max]
            del self._waiting[: self._batch_max]
        try:
            with self._write() as tx:
                outcomes = tx.append_each([w.draft for w in batch])
        except BaseException as error:  # the transaction failed as a whole: tell everyone
            for waiter in batch:
                waiter.error = error
        else:
            for waiter, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, LedgerError):
                    waiter.error = outcome
                else:
                    waiter.result = outcome
        for waiter in batch:
            waiter.done = True
            waiter.wake.set()
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.lead = True
                successor.wake.set()
            else:
                self._leading = False
