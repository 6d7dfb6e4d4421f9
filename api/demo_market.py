"""``dpn demo``'s market: live books on the greenhouse, to trade and to lease, at once.

The demo's members trade units of the greenhouse they already hold through the real
market engine, on two books: in euros and in US dollars (prices in cents per unit; the
greenhouse is worth about EUR 250,000.00 over 1,000,000 units, as the demo's private
sale of 1 % for EUR 2,500.00 says, so a unit is about 25 euro cents, 27 US cents). The
members who hold no cash in a book's currency get a deposit first.

What stands after it (tick 1, lot 1), best first::

    EUR  bids 25 (GTD, a day), 24 (part filled), 23, 22, 20   asks 26 (part filled), 27, 28, 30
    USD  bids 26 (part filled), 25, 24, 23                    asks 28 (part filled), 29, 31

and nine trades, EUR at 25, 25, 26, 24, 24 and USD at 27, 26, 27, 28, spread over the
five and a half hours before the demo's present, so the tape and the 1-minute to 1-hour
candles have a past. The co-op only rests orders, so it keeps its 20 %.

**Leases.** Then, in the minutes before the present, the greenhouse's EUR lease books
(``LEASE_CURRENCY``) over the quarter under way at the present and the next
(``market.engine.lease_terms.next_terms``; the asset's lease period is the engine's
default, the quarter). A price there is a unit's rent for the whole term, in cents: the
output and usage rights of a unit of a 25-cent greenhouse over a quarter::

    this quarter  bids 1 (North)          offers 2 (River, part leased), 3 (Hill)
    next quarter  bids 2 (North), 1 (Mara)  offers 3 (co-op), 4 (Hill)

and one lease, on this quarter: Mara's bid for 8,000 units at 2 meets River's offer, so
over the quarter (under way at the present) Mara holds the output and usage rights of
8,000 of River's units, for EUR 160.00; 12,000 more of River's stay offered. The units
never move: River's leased ones are promised, not sold, until the quarter ends. Each
member offers or bids on a book, never both (a lease to oneself leases nothing).

**Time.** The engine this module starts has its clock set to each order's moment, minutes
before the demo's present (the journal records when the entries were written, the market
rows when the orders were placed). The present is the time the first deposit below was
recorded: the same on every run, so the GTD order, which expires a day after it, is the
same request on every run. An engine passed in keeps its own clock.

**Idempotent.** Every deposit and order has a fixed key (``demo:market:<n>``, a lease
order's ``demo:market:lease:<n>``); a second run replays them all and writes nothing. The
terms come from the present, which is the same on every run, so a lease order is the
same request on every run too, even one made after its quarter ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from api.demo import DEMO_ASSET_ID, DEMO_MEMBERS
from ledger.core.timestamps import ms_of
from ledger.journal.write import Ledger
from ledger.money import deposit
from market.book import Side, TimeInForce
from market.engine import MarketEngine, OrderRequest, OrderType, Outcome
from market.engine.lease_terms import LEASE_PERIOD_DEFAULT, next_terms

__all__ = ["GTD_AHEAD_MS", "LEASE_CURRENCY", "MARKET_CURRENCIES", "demo_terms", "run_market_demo"]

MARKET_CURRENCIES: Final = ("EUR", "USD")
"""The greenhouse's books the demo fills."""
GTD_AHEAD_MS: Final = 24 * 3600 * 1000
"""The demo's good-till-date bid lives a day past the demo's present."""
LEASE_CURRENCY: Final = "EUR"
"""The currency of the greenhouse's lease books the demo fills."""

_ACTOR = "dpn-demo"
_MINUTE_MS = 60_000
_COOP, _NORTH, _RIVER, _HILL, _MARA = range(5)  # places in DEMO_MEMBERS

# Cash for the members api/demo.py leaves without any in a book's currency (only Mara
# and North hold euros there): (member, currency, amount in minor units, reference).
_CASH: Final = (
    (_COOP, "EUR", 600_000, "SEPA 2027-0101"),
    (_RIVER, "EUR", 200_000, "SEPA 2027-0102"),
    (_HILL, "EUR", 300_000, "SEPA 2027-0103"),
    (_COOP, "USD", 500_000, "wire 2027-0201"),
    (_NORTH, "USD", 600_000, "wire 2027-0202"),
    (_RIVER, "USD", 300_000, "wire 2027-0203"),
    (_HILL, "USD", 300_000, "wire 2027-0204"),
    (_MARA, "USD", 150_000, "wire 2027-0205"),
)


@dataclass(frozen=True, slots=True)
class _Order:
    """One order of the demo: placed ``minutes_before`` the demo's present; a market
    order when ``price_minor`` is None (a market sell, by ``qty_units``)."""

    minutes_before: int
    who: int
    currency: str
    side: Side
    price_minor: int | None
    qty_units: int
    gtd: bool = False


@dataclass(frozen=True, slots=True)
class _LeaseOrder:
    """One lease order of the demo, a GTC limit (it rests until its term ends): on the
    ``term``-th of the terms ``demo_terms`` gives, placed ``minutes_before`` the present;
    an offer (``_SELL``) or a bid (``_BUY``) of ``price_minor`` a unit for the term."""

    minutes_before: int
    who: int
    term: int
    side: Side
    price_minor: int
    qty_units: int


_BUY, _SELL = Side.BUY, Side.SELL
_TIME_IN_FORCE: Final = {True: TimeInForce.GTC, False: TimeInForce.IOC}  # limit: rests
# In time order. Comments give what the order meets and what it leaves.
_ORDERS: Final = (
    _Order(330, _NORTH, "EUR", _BUY, 24, 8_000),
    _Order(320, _RIVER, "EUR", _SELL, 26, 6_000),
    _Order(310, _RIVER, "USD", _SELL, 27, 8_000),
    _Order(300, _HILL, "EUR", _SELL, 25, 10_000),
    _Order(295, _HILL, "USD", _SELL, 28, 5_000),
    _Order(280, _NORTH, "USD", _BUY, 26, 6_000),
    _Order(270, _NORTH, "EUR", _BUY, 25, 4_000),  # 4,000 at 25 from Hill
    _Order(235, _MARA, "EUR", _BUY, 25, 6_000),  # 6,000 at 25: Hill's ask is filled
    _Order(225, _MARA, "USD", _BUY, 27, 3_000),  # 3,000 at 27 from River
    _Order(190, _NORTH, "EUR", _BUY, 26, 2_000),  # 2,000 at 26: River's ask rests, 4,000
    _Order(170, _HILL, "USD", _SELL, None, 2_000),  # market: 2,000 at 26 to North
    _Order(150, _HILL, "EUR", _SELL, 24, 3_000),  # 3,000 at 24 to North's bid
    _Order(110, _NORTH, "USD", _BUY, 28, 7_000),  # 5,000 at 27 (River), 2,000 at 28 (Hill)
    _Order(95, _MARA, "EUR", _SELL, None, 1_500),  # market: 1,500 at 24; North's bid 3,500
    _Order(70, _COOP, "USD", _SELL, 31, 10_000),
    _Order(60, _RIVER, "EUR", _SELL, 27, 10_000),
    _Order(55, _RIVER, "USD", _SELL, 29, 6_000),
    _Order(50, _HILL, "EUR", _SELL, 28, 15_000),
    _Order(45, _COOP, "EUR", _SELL, 30, 20_000),
    _Order(40, _MARA, "EUR", _BUY, 23, 4_000),
    _Order(35, _RIVER, "USD", _BUY, 25, 6_000),
    _Order(30, _HILL, "EUR", _BUY, 22, 10_000),
    _Order(25, _HILL, "USD", _BUY, 24, 10_000),
    _Order(20, _COOP, "EUR", _BUY, 20, 25_000),
    _Order(15, _MARA, "USD", _BUY, 23, 2_000),
    _Order(10, _NORTH, "EUR", _BUY, 25, 5_000, gtd=True),  # the best bid, for a day
)


# After the last trading order (10 minutes before the present), in time order.
_LEASES: Final = (
    _LeaseOrder(9, _RIVER, 0, _SELL, 2, 20_000),
    _LeaseOrder(8, _HILL, 0, _SELL, 3, 15_000),
    _LeaseOrder(7, _NORTH, 0, _BUY, 1, 10_000),
    _LeaseOrder(6, _MARA, 0, _BUY, 2, 8_000),  # 8,000 leased at 2 from River; 12,000 rest
    _LeaseOrder(5, _COOP, 1, _SELL, 3, 30_000),
    _LeaseOrder(4, _HILL, 1, _SELL, 4, 10_000),
    _LeaseOrder(3, _NORTH, 1, _BUY, 2, 20_000),
    _LeaseOrder(2, _MARA, 1, _BUY, 1, 5_000),
)


def demo_terms(now_ms: int) -> list[str]:
    """The keys of the demo's lease terms at the demo's present ``now_ms``: the quarter
    under way, then the next."""
    return next_terms(LEASE_PERIOD_DEFAULT, now_ms, 2)


class _SteppedClock:
    """The clock of the engine this module starts: set to each order's moment in turn."""

    def __init__(self, start_ms: int) -> None:
        self.at_ms = start_ms

    def __call__(self) -> int:
        return self.at_ms


def run_market_demo(
    ledger: Ledger, engine: MarketEngine | None = None, now_ms: int | None = None
) -> list[Outcome]:
    """Fill the greenhouse's EUR and USD books (see the module docstring); idempotent.

    ``engine``: the market engine to place through, with its own clock; by default one
    is started here, on a clock stepped to each order's moment, and stopped after.
    ``now_ms``: the demo's present, by default when its first deposit was recorded.
    Returns each order's outcome in placing order, the lease orders last (replayed on
    a second run). Raises
    the engine's ``LedgerError`` if the journal holds something else under its keys.
    """
    deposits = [
        deposit(
            ledger,
            member=DEMO_MEMBERS[who].address,
            currency=currency,
            amount=amount,
            reference=f"demo market: {reference}",
            key=f"demo:market:cash:{n}",
            actor=_ACTOR,
        )
        for n, (who, currency, amount, reference) in enumerate(_CASH, start=1)
    ]
    if now_ms is None:  # a replayed deposit is the stored entry: the same time every run
        now_ms = ms_of(deposits[0].recorded_at)
    clock = _SteppedClock(now_ms - _ORDERS[0].minutes_before * _MINUTE_MS)
    own = engine is None
    market = MarketEngine(ledger, now_ms=clock) if engine is None else engine
    terms = demo_terms(now_ms)
    try:
        trading = [_place(market, clock, now_ms, n, o) for n, o in enumerate(_ORDERS, start=1)]
        leasing = [
            _place_lease(market, clock, now_ms, n, o, terms[o.term])
            for n, o in enumerate(_LEASES, start=1)
        ]
        return trading + leasing
    finally:
        if own:
            market.stop()


def _place(
    market: MarketEngine, clock: _SteppedClock, now_ms: int, n: int, order: _Order
) -> Outcome:
    clock.at_ms = now_ms - order.minutes_before * _MINUTE_MS
    limit = order.price_minor is not None
    return market.place(
        OrderRequest(
            owner=DEMO_MEMBERS[order.who].address,
            asset_id=DEMO_ASSET_ID,
            currency=order.currency,
            side=order.side,
            type=OrderType.LIMIT if limit else OrderType.MARKET,
            key=f"demo:market:{n}",
            actor=_ACTOR,
            price_minor=order.price_minor,
            qty_units=order.qty_units,
            time_in_force=TimeInForce.GTD if order.gtd else _TIME_IN_FORCE[limit],
            expires_at_ms=now_ms + GTD_AHEAD_MS if order.gtd else None,
        )
    )


def _place_lease(
    market: MarketEngine, clock: _SteppedClock, now_ms: int, n: int, order: _LeaseOrder, term: str
) -> Outcome:
    clock.at_ms = now_ms - order.minutes_before * _MINUTE_MS
    return market.place(
        OrderRequest(
            owner=DEMO_MEMBERS[order.who].address,
            asset_id=DEMO_ASSET_ID,
            currency=LEASE_CURRENCY,
            side=order.side,
            type=OrderType.LIMIT,
            key=f"demo:market:lease:{n}",
            actor=_ACTOR,
            price_minor=order.price_minor,
            qty_units=order.qty_units,
            term=term,
        )
    )
