"""The book's errors, each with a stable ``code``.

Rejected orders are events (``market.book.events.Rejected``), never exceptions. These are
raised only for misuse of the book itself, and for broken invariants. ``MarketError`` is
the base the rest of ``market`` shares::

    MarketError                      code: str, message: str
    ├── BookConfigError              a book cannot be built this way
    │     bad_tick_size, bad_lot_size, bad_orders_max
    ├── QueryOutOfRange              a read asks for more than a limit allows
    │     levels_out_of_range
    ├── UnknownCommand               ``Book.apply`` got something that is not a command
    │     unknown_command
    └── BookInvariantError           the book's own state is inconsistent; never swallowed
          book_crossed, ranks_out_of_step, level_out_of_step, order_out_of_step,
          order_count_mismatch, fok_partial
"""

from __future__ import annotations

__all__ = [
    "BookConfigError",
    "BookInvariantError",
    "MarketError",
    "QueryOutOfRange",
    "UnknownCommand",
]


class MarketError(Exception):
    """Base of every market error: a stable machine code and a one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BookConfigError(MarketError):
    """A book was constructed with a tick size, lot size or order maximum it cannot use."""


class QueryOutOfRange(MarketError):
    """A query asked for more than its named maximum (e.g. ``DEPTH_LEVELS_MAX``)."""


class UnknownCommand(MarketError):
    """``Book.apply`` was given an object that is not one of ``market.book.commands``."""


class BookInvariantError(MarketError):
    """The book's internal state broke an invariant (crossed, counts out of step)."""
