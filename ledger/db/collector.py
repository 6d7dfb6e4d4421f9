"""Holding Python's cyclic garbage collector while a block keeps many new objects alive.

A write transaction, a rights table or a rebuild of the books allocates rows, entries
and orders by the hundred thousand and keeps them to its end. Each collection run
meanwhile finds them alive and moves them on to an older generation, and so makes full
collections, which walk the whole heap, frequent: a sixth of the engine's CPU in
``dpn bench engine``, half the time of a rights table of 100,000 holders. Held, the
collector runs after the block, when reference counting has freed nearly all of them.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_held"]

_lock = threading.Lock()


@contextmanager
def collector_held() -> Iterator[None]:
    """Hold the collector for the block (see the module docstring). Whoever disabled it
    enables it again: a block that finds it disabled (by the program, or by another
    block in another thread) leaves it alone, so it is never held longer than one
    block."""
    with _lock:
        mine = gc.isenabled()
        if mine:
            gc.disable()
    try:
        yield
    finally:
        if mine:
            gc.enable()
