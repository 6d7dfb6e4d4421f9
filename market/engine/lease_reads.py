"""Reading leases back: a member's leases, one lease order's, a lease book's tape, and
the lease books of an asset with their best prices.

Every read is bounded: a page holds at most ``LEASE_PAGE_MAX`` leases (a tape page
``LEASE_TAPE_PAGE_MAX``), an order shows at most ``ORDER_LEASES_SHOWN_MAX``, an asset
lists at most ``LEASE_BOOKS_SHOWN_MAX`` books. A limit outside ``1..max`` is
``limit_out_of_range``. Everything reads the tables the engine writes in the
transaction of each lease (``market_leases``, ``market_books``, ``market_orders``), so
any worker answers the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final, Literal, NamedTuple

from sqlalchemy import Connection, func, select

from ledger.core.errors import InvalidInput
from ledger.db.schema import MarketBook, MarketLease, MarketOrder, table
from market.data.books import best_price_columns
from market.engine.lease_terms import term_span
from market.engine.rows import LeaseRow

__all__ = [
    "LEASE_BOOKS_SHOWN_MAX",
    "LEASE_PAGE_MAX",
    "LEASE_TAPE_PAGE_DEFAULT",
    "LEASE_TAPE_PAGE_MAX",
    "ORDER_LEASES_SHOWN_MAX",
    "LeaseBook",
    "LeaseRole",
    "book_leases",
    "lease_books",
    "member_leases",
    "order_leases",
]

LEASE_PAGE_MAX: Final = 500
"""A page of a member's leases holds at most this many."""
LEASE_TAPE_PAGE_MAX: Final = 1_000
"""A page of a lease book's tape holds at most this many (as the trade tape)."""
LEASE_TAPE_PAGE_DEFAULT: Final = 100
ORDER_LEASES_SHOWN_MAX: Final = 100
"""A lease order shows at most its first 100 leases; ``GET /v1/leases`` pages all."""
LEASE_BOOKS_SHOWN_MAX: Final = 200
"""An asset lists at most this many lease books (those whose term has not ended)."""

LeaseRole = Literal["lessor", "lessee"]

_leases = table(MarketLease)
_books = table(MarketBook)
_orders = table(MarketOrder)
_DAY_LEN = len("YYYY-MM-DD")
_TERM_END_AT = _DAY_LEN + 2  # 1-based: the end day follows "YYYY-MM-DD/"
_LEASE_COLUMNS = [_leases.c[name] for name in LeaseRow._fields]


class LeaseBook(NamedTuple):
    """A lease book that exists: its currency and term, and its best bid and ask."""

    currency: str
    term: str
    starts_ms: int
    ends_ms: int
    best_bid_minor: int | None
    best_ask_minor: int | None


def _check_limit(limit: int, most: int) -> None:
    if type(limit) is not int or not 1 <= limit <= most:
        raise InvalidInput("limit_out_of_range", f"limit must be 1..{most}, not {limit!r}")


def member_leases(
    conn: Connection, member: str, *, role: LeaseRole | None, before_id: int | None, limit: int
) -> list[LeaseRow]:
    """``member``'s leases as ``role`` (as lessor or lessee, when None), newest first,
    those with an id below ``before_id`` if given; at most ``limit``
    (1..``LEASE_PAGE_MAX``)."""
    _check_limit(limit, LEASE_PAGE_MAX)
    columns = {"lessor": _leases.c.lessor, "lessee": _leases.c.lessee}
    found: dict[int, LeaseRow] = {}
    for name, column in columns.items():
        if role is not None and role != name:
            continue
        query = select(*_LEASE_COLUMNS).where(column == member)
        if before_id is not None:
            query = query.where(_leases.c.id < before_id)
        for row in conn.execute(query.order_by(_leases.c.id.desc()).limit(limit)):
            found[row.id] = LeaseRow(*row)
    return [found[i] for i in sorted(found, reverse=True)[:limit]]


def order_leases(conn: Connection, order_id: int) -> list[LeaseRow]:
    """The first ``ORDER_LEASES_SHOWN_MAX`` leases of an order (as maker or taker),
    oldest first."""
    found: dict[int, LeaseRow] = {}
    for column in (_leases.c.maker_order_id, _leases.c.taker_order_id):
        query = select(*_LEASE_COLUMNS).where(column == order_id)
        for row in conn.execute(query.order_by(_leases.c.id).limit(ORDER_LEASES_SHOWN_MAX)):
            found[row.id] = LeaseRow(*row)
    return [found[i] for i in sorted(found)[:ORDER_LEASES_SHOWN_MAX]]


def book_leases(
    conn: Connection,
    asset_id: str,
    currency: str,
    term: str,
    *,
    after_id: int | None,
    limit: int = LEASE_TAPE_PAGE_DEFAULT,
) -> list[LeaseRow]:
    """The lease book's tape: its leases with an id above ``after_id`` (all, if None),
    oldest first, at most ``limit`` (1..``LEASE_TAPE_PAGE_MAX``)."""
    _check_limit(limit, LEASE_TAPE_PAGE_MAX)
    query = select(*_LEASE_COLUMNS).where(
        _leases.c.asset_id == asset_id, _leases.c.currency == currency, _leases.c.term == term
    )
    if after_id is not None:
        query = query.where(_leases.c.id > after_id)
    return [LeaseRow(*row) for row in conn.execute(query.order_by(_leases.c.id).limit(limit))]


def lease_books(conn: Connection, asset_id: str, now_ms: int) -> list[LeaseBook]:
    """The asset's lease books whose term has not ended by ``now_ms``, by currency and
    term (the soonest first), at most ``LEASE_BOOKS_SHOWN_MAX``, each with its best bid
    and ask (None where nothing rests)."""
    bid, ask = best_price_columns(_books.c.asset_id, _books.c.currency, _books.c.term)
    # A term has ended once its end day has begun; ISO days compare as text.
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date().isoformat()
    rows = conn.execute(
        select(_books.c.currency, _books.c.term, bid, ask)
        .where(
            _books.c.asset_id == asset_id,
            _books.c.term != "",
            func.substr(_books.c.term, _TERM_END_AT, _DAY_LEN) > today,
        )
        .order_by(_books.c.currency, _books.c.term)
        .limit(LEASE_BOOKS_SHOWN_MAX)
    )
    found: list[LeaseBook] = []
    for currency, term, best_bid, best_ask in rows:
        starts_ms, ends_ms = term_span(term)
        found.append(LeaseBook(currency, term, starts_ms, ends_ms, best_bid, best_ask))
    return found
