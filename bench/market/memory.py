"""``--memory``: how much one book with many resting orders takes (peak RSS)."""

from __future__ import annotations

import resource
from typing import Any

from bench.harness import stopwatch
from bench.market.stream import MID_PRICE
from market import Book, Side

__all__ = ["MEMORY_ORDERS_DEFAULT", "memory"]

MEMORY_ORDERS_DEFAULT = 1_000_000


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(orders: int) -> dict[str, Any]:
    """Rest ``orders`` non-crossing orders (5,000 levels a side, 1,000 owners) in one
    book and report the process's peak RSS."""
    baseline = _rss_mib()
    book = Book(orders_max=orders)
    place = book.place_limit
    buy, sell = Side.BUY, Side.SELL
    with stopwatch() as watch:
        for i in range(orders):
            level = (i >> 1) % 5_000
            if i & 1:
                place(i + 1, 1 + i % 1_000, sell, MID_PRICE + 1 + level, 1 + i % 100)
            else:
                place(i + 1, 1 + i % 1_000, buy, MID_PRICE - 1 - level, 1 + i % 100)
    peak = _rss_mib()
    depth = book.depth(1)
    return {
        "orders": orders,
        "resting": len(book),
        "best_bid": depth.bids[0].price_minor if depth.bids else None,
        "best_ask": depth.asks[0].price_minor if depth.asks else None,
        "peak_rss_mib": round(peak, 1),
        "baseline_rss_mib": round(baseline, 1),
        "target_mib": 1024,
        "met": peak < 1024,
        "seconds": round(watch.seconds, 2),
    }
