"""Reading orders and trades back: one order with its trades, a member's orders and
trades, page by page (newest first, by id cursor)."""

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


def order_outcome(conn: Connection, order_id: int, *, owner: str | None = None) -> Outcome:
    """The order as stored, with its first trades (as maker or taker). Given ``owner``,
    another member's order is ``not_your_order`` (as the engine answers a cancel)."""
    row = conn.execute(
        select(*(_orders.c[name] for name in _ORDER_COLUMNS)).where(_orders.c.id == order_id)
    ).first()
    if row is None:
        raise NotFound("unknown_order", f"no order {order_id}")
    order = order_state(row)
    if owner is not None and order.owner != owner:
        raise Forbidden("not_your_order", f"order {order_id} is another member's")
    trades = conn.execute(
        select(*_TRADE_COLUMNS)
        .where(or_(_trades.c.taker_order_id == order_id, _trades.c.maker_order_id == order_id))
        .order_by(_trades.c.id)
        .limit(ORDER_TRADES_SHOWN_MAX)
    )
    return Outcome(order, [TradeRow(*t) for t in trades])


def member_orders(
    conn: Connection, owner: str, *, status: str | None, before_id: int | None, limit: int
) -> list[OrderState]:
    """A member's orders, newest first; ``status`` filters, ``before_id`` pages."""
    query = select(*(_orders.c[name] for name in _ORDER_COLUMNS)).where(_orders.c.owner == owner)
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
