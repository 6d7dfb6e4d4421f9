"""Reading orders and trades back: one order with its trades, a member's orders and
trades, page by page (newest first, by id cursor).

Trading orders (``term`` empty) and lease orders (``term`` a lease term's key) share
``market_orders``; a member's reads show one kind at a time, so that a lease order is
never read as if it were a trading order (``lease``; trading unless asked). The
leases themselves are read in ``market.engine.lease_reads``."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, or_, select

from ledger.core.errors import Forbidden, NotFound
from ledger.db.schema import MarketOrder, MarketTrade, table
from market.engine.rows import _ORDER_COLUMNS, TradeRow, order_state
from market.engine.session import Outcome
from market.engine.state import OrderState

__all__ = ["ORDER_TRADES_SHOWN_MAX", "PAGE_MAX", "member_orders", "member_trades", "order_outcome"]

ORDER_TRADES_SHOWN_MAX: Final = 100
"""An order shows at most its first 100 trades; ``GET /v1/trades`` pages through all."""
PAGE_MAX: Final = 500

_orders = table(MarketOrder)
_trades = table(MarketTrade)
_TRADE_COLUMNS = [_trades.c[name] for name in TradeRow._fields]


def order_outcome(
    conn: Connection, order_id: int, *, owner: str | None = None, lease: bool | None = None
) -> Outcome:
    """The order as stored, with its first trades (as maker or taker), or a lease order's
    first leases. Given ``owner``,
    another member's order is ``not_your_order`` (as the engine answers a cancel).

    ``lease`` names the kind wanted: True a lease order, False a trading order, None
    either. A member's read (``owner`` given) wants a trading order unless it says
    otherwise; an order of the other kind is ``unknown_order``, whoever owns it."""
    if owner is not None and lease is None:
        lease = False
    row = conn.execute(
        select(*(_orders.c[name] for name in _ORDER_COLUMNS)).where(_orders.c.id == order_id)
    ).first()
    if row is None:
        raise NotFound("unknown_order", f"no order {order_id}")
    order = order_state(row)
    if lease is not None and bool(order.term) is not lease:
        kind = "lease order" if lease else "order"
        raise NotFound("unknown_order", f"no {kind} {order_id}")
    if owner is not None and order.owner != owner:
        raise Forbidden("not_your_order", f"order {order_id} is another member's")
    if order.term:  # a lease order matches leases, never trades
        from market.engine.lease_reads import order_leases  # it reads market data's books

        return Outcome(order, [], leases=order_leases(conn, order_id))
    trades = conn.execute(
        select(*_TRADE_COLUMNS)
        .where(or_(_trades.c.taker_order_id == order_id, _trades.c.maker_order_id == order_id))
        .order_by(_trades.c.id)
        .limit(ORDER_TRADES_SHOWN_MAX)
    )
    return Outcome(order, [TradeRow(*t) for t in trades])


def member_orders(
    conn: Connection,
    owner: str,
    *,
    status: str | None,
    before_id: int | None,
    limit: int,
    lease: bool = False,
) -> list[OrderState]:
    """A member's trading orders (its lease orders if ``lease``), newest first;
    ``status`` filters, ``before_id`` pages."""
    kind = _orders.c.term != "" if lease else _orders.c.term == ""
    query = select(*(_orders.c[name] for name in _ORDER_COLUMNS)).where(
        _orders.c.owner == owner, kind
    )
    if status is not None:
        query = query.where(_orders.c.status == status)
    if before_id is not None:
        query = query.where(_orders.c.id < before_id)
    rows = conn.execute(query.order_by(_orders.c.id.desc()).limit(min(limit, PAGE_MAX)))
    return [order_state(r) for r in rows]


def member_trades(
    conn: Connection, owner: str, *, before_id: int | None, limit: int
) -> list[TradeRow]:
    """A member's trades (as maker or taker), newest first."""
    page = min(limit, PAGE_MAX)
    found: dict[int, TradeRow] = {}
    for column in (_trades.c.maker_owner, _trades.c.taker_owner):
        query = select(*_TRADE_COLUMNS).where(column == owner)
        if before_id is not None:
            query = query.where(_trades.c.id < before_id)
        for t in conn.execute(query.order_by(_trades.c.id.desc()).limit(page)):
            found[t.id] = TradeRow(*t)
    return [found[i] for i in sorted(found, reverse=True)[:page]]
