"""Checking the market against its own records, for ``dpn verify``.

The journal's own checks (``ledger.journal.verify``) say every balance and hold is what
the entries imply. These say the market's rows agree with them and with each other:

- the order log replays into books whose resting orders are exactly the open orders,
  each with the quantity and price its row has;
- every open order's hold is open and holds exactly what the order still needs (a sell
  its remaining units, a limit buy its price times its remaining units), and every open
  hold the engine placed belongs to an open order;
- each order's filled units are the sum of its trades (a lease order's, of its leases);
- no lessor has leased out, over any instant from now on, more units than it owns.
"""

from __future__ import annotations

import time
from collections import defaultdict

from sqlalchemy import Connection, func, select

from ledger.core import AccountKey
from ledger.core.accounts import member_holder, units_of
from ledger.core.errors import LedgerError
from ledger.db.schema import Hold, MarketLease, MarketOrder, MarketTrade, table
from ledger.journal.reads import account_state
from market.engine.engine import rebuild
from market.engine.lease_terms import peak
from market.engine.rows import MarketRows

__all__ = ["PROBLEMS_SHOWN_MAX", "audit_market"]

PROBLEMS_SHOWN_MAX = 20
"""At most this many problems are named (the count says how many more there were)."""
_ENGINE_HOLD_PREFIX = "order:"


def audit_market(conn: Connection, now_ms: int | None = None) -> list[str]:
    """Every disagreement found (empty when the market's records agree), at most
    ``PROBLEMS_SHOWN_MAX`` of them named; leases are checked from ``now_ms`` on (the
    clock's now if None)."""
    problems: list[str] = []
    try:
        state = rebuild(conn)
    except LedgerError as error:
        return [f"the order log does not replay: {error}"]
    open_orders = MarketRows(conn).open_orders()
    for order in open_orders:
        book = state.books.get(order.book)
        resting = None if book is None else book.order(order.id)
        if resting is None:
            problems.append(f"order {order.id} is open but rests on no book")
        elif resting.qty_units != order.remaining_units or resting.price_minor != order.price_minor:
            problems.append(
                f"order {order.id} rests {resting.qty_units} at {resting.price_minor};"
                f" its row says {order.remaining_units} at {order.price_minor}"
            )
    holds = table(Hold)
    open_holds = {
        hold_id: int(remaining)
        for hold_id, remaining in conn.execute(
            select(holds.c.id, holds.c.remaining).where(
                holds.c.closed_seq.is_(None), holds.c.id.startswith(_ENGINE_HOLD_PREFIX)
            )
        )
    }
    for order in open_orders:
        held = open_holds.pop(order.hold_id, None)
        if held != order.need():
            problems.append(f"order {order.id} needs {order.need()} held; its hold has {held}")
    problems += [f"hold {h} is open but no open order has it" for h in sorted(open_holds)]
    problems += _fills_match_trades(conn)
    problems += _leases_covered(conn, int(time.time() * 1000) if now_ms is None else now_ms)
    if len(problems) > PROBLEMS_SHOWN_MAX:
        more = len(problems) - PROBLEMS_SHOWN_MAX
        problems = [*problems[:PROBLEMS_SHOWN_MAX], f"... and {more} more"]
    return problems


def _leases_covered(conn: Connection, now_ms: int) -> list[str]:
    """Every lessor owns, now, the most units its leases promise at any instant ahead."""
    problems = []
    for (lessor, asset_id), spans in sorted(MarketRows(conn).leases_out(now_ms).items()):
        promised = peak(spans, now_ms)
        owned = account_state(conn, AccountKey(member_holder(lessor), units_of(asset_id))).balance
        if promised > owned:
            problems.append(
                f"{lessor} has leased out {promised} units of {asset_id} but owns {owned}"
            )
    return problems


def _fills_match_trades(conn: Connection) -> list[str]:
    trades, orders, leases = table(MarketTrade), table(MarketOrder), table(MarketLease)
    traded: dict[int, int] = defaultdict(int)
    for matches in (trades, leases):
        for column in (matches.c.maker_order_id, matches.c.taker_order_id):
            for order_id, qty in conn.execute(
                select(column, func.sum(matches.c.qty_units)).group_by(column)
            ):
                traded[order_id] += int(qty)
    problems = []
    for order_id, filled in conn.execute(select(orders.c.id, orders.c.filled_units)):
        if traded.get(order_id, 0) != filled:
            problems.append(
                f"order {order_id} filled {filled} units but traded {traded.get(order_id, 0)}"
            )
    return problems
