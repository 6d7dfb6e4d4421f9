"""The benchmark's event stream: limit orders and cancels, the same for the same seed."""

from __future__ import annotations

import random
from collections import deque
from typing import Any

__all__ = ["CANCEL", "LIMIT", "MID_PRICE", "StreamEvent", "make_stream"]

LIMIT = "limit"
CANCEL = "cancel"
MID_PRICE = 10_000
RECENT_ORDERS = 1_000

StreamEvent = tuple[Any, ...]
"""``(LIMIT, id, "buy"|"sell", price, qty)`` or ``(CANCEL, id)``."""


def make_stream(events: int, seed: int) -> list[StreamEvent]:
    """The benchmark's event stream, the same for the same ``events`` and ``seed``."""
    rng = random.Random(seed)
    recent: deque[int] = deque(maxlen=RECENT_ORDERS)
    stream: list[StreamEvent] = []
    next_id = 1
    for _ in range(events):
        if recent and rng.random() < 0.10:
            stream.append((CANCEL, recent[rng.randrange(len(recent))]))
            continue
        buy = rng.random() < 0.5
        crossing = rng.random() < 0.2
        if buy:
            price = MID_PRICE + rng.randint(0, 10) if crossing else MID_PRICE - rng.randint(1, 50)
        else:
            price = MID_PRICE - rng.randint(0, 10) if crossing else MID_PRICE + rng.randint(1, 50)
        stream.append((LIMIT, next_id, "buy" if buy else "sell", price, rng.randint(1, 100)))
        recent.append(next_id)
        next_id += 1
    return stream
