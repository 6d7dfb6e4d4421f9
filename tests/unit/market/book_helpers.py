"""Small builders shared by the matching book's unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from market import Book, Event, Side, Trade

BUY, SELL = Side.BUY, Side.SELL


def trades(events: Sequence[Event]) -> list[tuple[int, int, int, int]]:
    """(maker, taker, price, qty) of every trade, in order."""
    return [
        (e.maker_id, e.taker_id, e.price_minor, e.qty_units) for e in events if isinstance(e, Trade)
    ]


def kinds(events: Sequence[Event]) -> list[str]:
    """The event class names, in order."""
    return [type(e).__name__ for e in events]


def book_with(*orders: tuple[int, int, Side, int, int], **config: int) -> Book:
    """A book holding the given (id, owner, side, price, qty) GTC orders, none crossing."""
    book = Book(**config)
    for order_id, owner, side, price, qty in orders:
        events = book.place_limit(order_id, owner, side, price, qty)
        if trades(events):
            raise ValueError("book_with orders must not cross")
    return book
