"""The floor: the least a price-time order book can do, as a speed reference.

A heap of prices per side (lazily cleaned), a deque of ``[order_id, qty]`` per price, and
a dict from id to that entry for cancels, which only zero the quantity. No validation,
no events, no owners, no self-trade prevention, no depth, no expiry: what is left is the
matching itself, the work any book must do. ``bench.market`` runs it on the same stream
as ``market.Book`` and expects the same fills.
"""

from __future__ import annotations

import heapq
from collections import deque

__all__ = ["FloorBook", "FloorFill"]

FloorFill = tuple[int, int, int, int]
"""(maker id, taker id, price, qty)."""


class FloorBook:
    """Limit orders and cancels only; trades at the resting order's price."""

    __slots__ = ("_ask_heap", "_asks", "_bid_heap", "_bids", "_live")

    def __init__(self) -> None:
        self._bid_heap: list[int] = []  # minus prices, so the best bid is on top
        self._ask_heap: list[int] = []
        self._bids: dict[int, deque[list[int]]] = {}  # keyed like the heap
        self._asks: dict[int, deque[list[int]]] = {}
        self._live: dict[int, list[int]] = {}

    def limit(self, order_id: int, is_buy: bool, price: int, qty: int) -> list[FloorFill]:
        """Match a limit order, rest what is left; return its fills in order."""
        fills: list[FloorFill] = []
        live = self._live
        if is_buy:
            heap, queues, sign = self._ask_heap, self._asks, 1
            own_heap, own_queues, own_key = self._bid_heap, self._bids, -price
        else:
            heap, queues, sign = self._bid_heap, self._bids, -1
            own_heap, own_queues, own_key = self._ask_heap, self._asks, price
        while qty and heap:
            key = heap[0]
            level_price = key * sign
            if (level_price > price) if is_buy else (level_price < price):
                break
            queue = queues[key]
            while queue and qty:
                entry = queue[0]
                resting = entry[1]
                if not resting:  # cancelled
                    queue.popleft()
                    continue
                traded = resting if resting < qty else qty
                entry[1] = resting - traded
                qty -= traded
                fills.append((entry[0], order_id, level_price, traded))
                if not entry[1]:
                    queue.popleft()
                    del live[entry[0]]
            if not queue:
                heapq.heappop(heap)
                del queues[key]
        if qty:
            own_queue = own_queues.get(own_key)
            if own_queue is None:
                own_queue = own_queues[own_key] = deque()
                heapq.heappush(own_heap, own_key)
            entry = [order_id, qty]
            own_queue.append(entry)
            live[order_id] = entry
        return fills

    def cancel(self, order_id: int) -> bool:
        """Cancel a resting order; False if it is not resting."""
        entry = self._live.pop(order_id, None)
        if entry is None:
            return False
        entry[1] = 0
        return True

    def resting(self) -> dict[int, int]:
        """Resting order id -> remaining quantity."""
        return {order_id: entry[1] for order_id, entry in self._live.items()}
