"""The engine under test, watched: how many batches it committed and how large, how
many statements it sent through SQLAlchemy, and (optionally) a cProfile of its own thread.

``MarketEngine`` batches on a thread of its own, which ``cProfile`` run from the
benchmark's thread would not see; so the probe is a subclass that wraps the two
methods its thread runs (``_run``, the loop, and ``_commit``, one batch). They are
the engine's private methods: if they are renamed, this module and its smoke test
(``tests/integration/test_bench_engine.py``) say so at once.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

from market.engine import MarketEngine

__all__ = ["ProbedEngine", "StatementCount", "counting_statements", "profile_text"]


class ProbedEngine(MarketEngine):
    """A ``MarketEngine`` that counts its batches and the CPU its thread spends in
    them, and can profile its thread."""

    batches: int = 0
    requests: int = 0
    largest: int = 0
    commit_cpu_s: float = 0.0  # CPU of the engine's thread inside its batches
    profile: cProfile.Profile | None = None

    def _run(self) -> None:
        if self.profile is None:
            super()._run()
            return
        self.profile.enable()
        try:
            super()._run()
        finally:
            self.profile.disable()

    def _commit(self, batch: Any) -> None:  # the engine's list of (request, future)
        self.batches += 1
        self.requests += len(batch)
        self.largest = max(self.largest, len(batch))
        started = time.thread_time()
        try:
            super()._commit(batch)
        finally:
            self.commit_cpu_s += time.thread_time() - started


def profile_text(profile: cProfile.Profile, lines: int, restrict: str | None = None) -> str:
    """The top ``lines`` functions by cumulative time, then by own time (only those
    whose file matches the regular expression ``restrict``, when given)."""
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    wanted: tuple[str | int, ...] = (lines,) if restrict is None else (restrict, lines)
    stats.sort_stats("cumulative").print_stats(*wanted)
    stats.sort_stats("tottime").print_stats(*wanted)
    return out.getvalue()


@dataclass
class StatementCount:
    """The statements sent (an ``executemany`` is one), known when the block ends."""

    statements: int = 0


@contextmanager
def counting_statements(engine: Engine) -> Iterator[StatementCount]:
    """Count the statements every connection of ``engine`` sends through SQLAlchemy
    inside the block (not those sent on the driver's own cursors): round trips to the
    database, whatever the machine's load (a figure the time of a noisy run cannot
    give)."""
    count = StatementCount()

    def seen(*_: Any) -> None:
        count.statements += 1

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", seen)
