"""Group read: concurrent reads of the same kind share one statement.

A read of a member's holdings now is one small statement, so its cost is the round trip
and the work around it (a thread to run it in, a pooled connection, the driver), not the
database's. Like appends (``group_commit``), such reads are therefore queued, and one
reader thread per ``GroupRead`` takes every key waiting (up to ``batch_max``) and reads
them all with one call of its ``read_many``, typically one statement in one
transaction: each key's answer is then as consistent as its own read would have been,
and all the answers of a batch are of the same moment. A key is never added to a batch
already begun, so a read asked for after a write committed sees that write.

On an event loop, ``read`` gathers the keys asked for during one turn of the loop and
hands them to the reader together, and their answers come back to the loop together:
one wake-up of each side per batch, not per read (a thread woken while the loop holds
the GIL costs both of them a switch). From a thread, ``submit`` gives a future.

The reader starts with the first read and ends after ``idle_s`` without any, so an idle
service holds no thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BATCH_MAX", "IDLE_S", "GroupRead"]

BATCH_MAX = 256
IDLE_S = 1.0

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Job(Generic[K, T]):
    """Keys asked for together, and how their answers (or the batch's error) go back."""

    keys: list[K]
    deliver: Callable[[Mapping[K, T] | BaseException], None]


class GroupRead(Generic[K, T]):
    """Funnels concurrent reads by key into shared calls of ``read_many``, which gets
    distinct keys (at most ``batch_max``) and answers each of them."""

    def __init__(
        self,
        read_many: Callable[[Sequence[K]], Mapping[K, T]],
        batch_max: int = BATCH_MAX,
        idle_s: float = IDLE_S,
        name: str = "dpn-group-read",
    ) -> None:
        if batch_max < 1:
            raise ValueError(f"batch_max must be at least 1, not {batch_max}")
        self._read_many = read_many
        self._batch_max = batch_max
        self._idle_s = idle_s
        self._name = name
        self._changed = threading.Condition()
        self._jobs: deque[_Job[K, T]] = deque()
        self._reader: threading.Thread | None = None
        self._gathering: dict[asyncio.AbstractEventLoop, list[tuple[K, asyncio.Future[T]]]] = {}

    async def read(self, key: K) -> T:
        """The answer for ``key``, read with the other keys asked for meanwhile; raises
        the batch's error."""
        loop = asyncio.get_running_loop()
        gathering = self._gathering.get(loop)
        if gathering is None:
            gathering = self._gathering[loop] = []
            loop.call_soon(self._hand_over, loop)  # once this turn's requests have asked
        future: asyncio.Future[T] = loop.create_future()
        gathering.append((key, future))
        return await future

    def submit(self, key: K) -> Future[T]:
        """Queue a read of ``key`` for the next batch; the future gives its answer, or
        raises the batch's error."""
        future: Future[T] = Future()

        def deliver(outcome: Mapping[K, T] | BaseException) -> None:
            if not future.set_running_or_notify_cancel():
                return  # cancelled meanwhile
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            elif key in outcome:
                future.set_result(outcome[key])
            else:
                future.set_exception(_unanswered(key))

        self._queue([_Job([key], deliver)])
        return future

    @property
    def running(self) -> bool:
        """Whether the reader thread is alive."""
        return self._reader is not None

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: queue what its requests asked for this turn, in jobs of at most
        ``batch_max`` keys, each answered on the loop with one call."""
        gathered = self._gathering.pop(loop)

        def job(part: list[tuple[K, asyncio.Future[T]]]) -> _Job[K, T]:
            def deliver(outcome: Mapping[K, T] | BaseException) -> None:
                with suppress(RuntimeError):  # the loop is closed: no one waits any more
                    loop.call_soon_threadsafe(_settle, part, outcome)

            return _Job(list(dict.fromkeys(key for key, _ in part)), deliver)

        wanted = [(key, f) for key, f in gathered if not f.done()]  # not cancelled
        step = self._batch_max
        self._queue([job(wanted[i : i + step]) for i in range(0, len(wanted), step)])

    def _queue(self, jobs: list[_Job[K, T]]) -> None:
        if not jobs:
            return
        with self._changed:
            self._jobs.extend(jobs)
            if self._reader is None:
                self._reader = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._reader.start()
            else:
                self._changed.notify()

    def _run(self) -> None:
        try:
            while batch := self._take():
                self._read(batch)
        finally:
            with self._changed:
                if self._reader is threading.current_thread():  # ended by an error
                    self._reader = None

    def _take(self) -> list[_Job[K, T]]:
        """The jobs waiting now, as many as hold ``batch_max`` keys together (at least
        one); after an idle spell, none, and the reader ends."""
        with self._changed:
            if not self._jobs:
                self._changed.wait(self._idle_s)
            if not self._jobs:
                self._reader = None
                return []
            taken = [self._jobs.popleft()]
            keys = len(taken[0].keys)
            while self._jobs and keys + len(self._jobs[0].keys) <= self._batch_max:
                keys += len(self._jobs[0].keys)
                taken.append(self._jobs.popleft())
            return taken

    def _read(self, batch: list[_Job[K, T]]) -> None:
        keys = list(dict.fromkeys(key for job in batch for key in job.keys))
        outcome: Mapping[K, T] | BaseException
        try:
            outcome = self._read_many(keys)
        except BaseException as error:  # the batch failed as a whole: tell everyone
            outcome = error
        for job in batch:
            job.deliver(outcome)
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome


def _settle(
    waiting: list[tuple[K, asyncio.Future[T]]], outcome: Mapping[K, T] | BaseException
) -> None:
    """On the loop: every future of a job gets its answer (or the batch's error)."""
    for key, future in waiting:
        if future.done():  # cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        elif key in outcome:
            future.set_result(outcome[key])
        else:
            future.set_exception(_unanswered(key))


def _unanswered(key: object) -> LookupError:
    return LookupError(f"the batch read gave no answer for {key!r}")
