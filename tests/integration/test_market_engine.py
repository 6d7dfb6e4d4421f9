"""The market engine on both databases: orders held, matched, settled and stored.

Every test ends with ``assert_consistent``: ``verify`` passes; each open order's hold
holds exactly what the order needs and no other hold is open; every account's ``held``
is the sum of its open orders' needs; the trades stored are those the order log gives
when replayed into fresh books; and the books rebuilt from the database (``rebuild`` and
``forget``) have the engine's state hashes. Every refusal leaves the journal head, the
holds and the market's tables as they were.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text

from ledger.core import AccountKey, Entry, HoldChange, HoldOp, Posting, with_check_character
from ledger.core.accounts import FEES, currency_of, member_holder, units_of
from ledger.core.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    LedgerError,
    NotFound,
    Refused,
)
from ledger.db.engine import make_engine
from ledger.db.schema import (
    Account,
    Balance,
    Hold,
    MarketBook,
    MarketCommand,
    MarketLease,
    MarketOrder,
    MarketTrade,
    Member,
    table,
)
from ledger.funding import ProjectTerms, create_project, open_project
from ledger.funding.contributions import record_manual_pledge
from ledger.journal.entries import load_entries
from ledger.journal.reads import digest
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.registry.members import register_member
from market.book import Book, SelfTradePrevention, Side, TimeInForce, Trade
from market.engine import (
    AmendRequest,
    BookKey,
    CancelRequest,
    MarketEngine,
    OrderRequest,
    OrderType,
    Outcome,
    TermsRequest,
    UnitTransferRequest,
    rebuild,
)
from market.engine.codec import OpenBook, decode
from market.engine.reads import order_outcome
from market.engine.rows import MarketRows
from tests.conftest import StepClock

from .network import ANN, ASSET, BOB, CAT, DAN, build_network

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK, GTD = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD
STP = SelfTradePrevention
T0_MS = 1_800_000_000_000  # 2027-01-15, after the ledger's StepClock start
UNITS = units_of(ASSET)
USD = currency_of("USD")
CASH_MINOR = 1_000_000
BOOK = BookKey(ASSET, "USD")


class Clock:
    """The engine's injected clock: milliseconds that move only when a test says so."""

    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Market:
    """A market engine over a ledger, with short ways to ask it things."""

    ledger: Ledger
    engine: MarketEngine
    clock: Clock
    asset: str = ASSET
    keys: Iterator[int] = field(default_factory=itertools.count)

    def key(self) -> str:
        return f"k{next(self.keys)}"

    def order(
        self,
        owner: str,
        side: Side,
        price: int | None = None,
        qty: int | None = None,
        *,
        type: OrderType = LIMIT,
        key: str | None = None,
        currency: str = "USD",
        **more: Any,
    ) -> OrderRequest:
        return OrderRequest(
            owner, self.asset, currency, side, type, key=key or self.key(), actor="test",
            price_minor=price, qty_units=qty, **more,
        )  # fmt: skip

    def place(self, owner: str, side: Side, price: int | None = None, qty: int | None = None,
              **more: Any) -> Outcome:  # fmt: skip
        return self.engine.place(self.order(owner, side, price, qty, **more))

    def cancel(self, owner: str, order_id: int, key: str | None = None) -> Outcome:
        return self.engine.cancel(CancelRequest(owner, order_id, key or self.key(), "test"))

    def amend(
        self,
        owner: str,
        order_id: int,
        price: int | None = None,
        qty: int | None = None,
        key: str | None = None,
    ) -> Outcome:
        return self.engine.amend(
            AmendRequest(owner, order_id, key or self.key(), "test", price, qty)
        )

    def stored(self, order_id: int) -> Outcome:
        with self.ledger.engine.connect() as conn:
            return order_outcome(conn, order_id)


@pytest.fixture
def market(ledger: Ledger) -> Iterator[Market]:
    build_network(ledger, cash_minor=CASH_MINOR)
    clock = Clock()
    m = Market(ledger, MarketEngine(ledger, now_ms=clock), clock)
    yield m
    try:
        assert_consistent(ledger.engine, m.engine)
    finally:
        m.engine.stop()


@pytest.fixture
def fee_market(ledger: Ledger) -> Iterator[Market]:
    build_network(ledger, cash_minor=CASH_MINOR)
    clock = Clock()
    m = Market(ledger, MarketEngine(ledger, fee_bps=25, now_ms=clock), clock)
    yield m
    try:
        assert_consistent(ledger.engine, m.engine)
    finally:
        m.engine.stop()


# -- reading the database ---------------------------------------------------------------


def balances(conn: Connection) -> dict[AccountKey, tuple[int, int]]:
    """Every account's (balance, held)."""
    a, b = table(Account), table(Balance)
    rows = conn.execute(
        select(a.c.holder, a.c.instrument, b.c.balance, b.c.held).join(b, b.c.account_id == a.c.id)
    )
    return {AccountKey(r.holder, r.instrument): (int(r.balance), int(r.held)) for r in rows}


def open_holds(conn: Connection) -> dict[str, tuple[AccountKey, int]]:
    """Every open hold: its account and what remains of it."""
    a, h = table(Account), table(Hold)
    rows = conn.execute(
        select(h.c.id, a.c.holder, a.c.instrument, h.c.remaining)
        .join(a, a.c.id == h.c.account_id)
        .where(h.c.closed_seq.is_(None))
    )
    return {r.id: (AccountKey(r.holder, r.instrument), int(r.remaining)) for r in rows}


def order_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(table(MarketOrder)).order_by(table(MarketOrder).c.id)))


def trade_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(table(MarketTrade)).order_by(table(MarketTrade).c.id)))


def need(order: Any) -> int:
    """What an open order's hold must cover: units for a sell, price x units for a buy."""
    if order.side == "sell":
        return int(order.remaining_units)
    return int(order.price_minor) * int(order.remaining_units)


def hold_account(order: Any) -> AccountKey:
    instrument = units_of(order.asset_id) if order.side == "sell" else currency_of(order.currency)
    return AccountKey(member_holder(order.owner), instrument)


@dataclass(frozen=True)
class Snapshot:
    """What a refusal must leave as it was."""

    head: Any
    holds: dict[str, tuple[AccountKey, int]]
    balances: dict[AccountKey, tuple[int, int]]
    orders: list[Any]
    commands: int
    trades: int
    books: int


def snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as conn:
        return Snapshot(
            digest(conn),
            open_holds(conn),
            balances(conn),
            [tuple(r) for r in order_rows(conn)],
            conn.execute(select(func.count()).select_from(table(MarketCommand))).scalar_one(),
            len(trade_rows(conn)),
            conn.execute(select(func.count()).select_from(table(MarketBook))).scalar_one(),
        )


def refused(
    m: Market, kind: type[LedgerError], code: str, act: Callable[[], object]
) -> LedgerError:
    """``act`` raises ``kind`` with ``code`` and changes nothing stored or in memory."""
    before = snapshot(m.ledger.engine)
    hashes = m.engine.state_hashes()
    with pytest.raises(kind) as caught:
        act()
    assert caught.value.code == code, caught.value
    assert snapshot(m.ledger.engine) == before
    assert m.engine.state_hashes() == hashes
    return caught.value


def replayed_log(
    conn: Connection, term: str = ""
) -> tuple[list[tuple[Any, ...]], dict[BookKey, str]]:
    """The order log replayed into fresh books: the matches on the trading books (on
    the lease books, with ``term="*"``) and every book's state hash."""
    ids = {r.id: r.address for r in conn.execute(select(table(Member)))}
    books: dict[BookKey, Book] = {}
    trades: list[tuple[Any, ...]] = []
    c = table(MarketCommand).c
    for asset_id, currency, book_term, body in conn.execute(
        select(c.asset_id, c.currency, c.term, c.body).order_by(c.seq)
    ):
        key = BookKey(asset_id, currency, book_term)
        for command in decode(body):
            if isinstance(command, OpenBook):
                books[key] = Book(command.tick_size_minor, command.lot_size_units)
                continue
            for event in books[key].apply(command):
                if type(event) is Trade and (book_term == term or (term == "*" and book_term)):
                    trades.append((
                        asset_id, currency, event.maker_id, event.taker_id,
                        ids[event.maker_owner], ids[event.taker_owner], event.price_minor,
                        event.qty_units, event.taker_side.value,
                    ))  # fmt: skip
    return trades, {k: b.state_hash() for k, b in sorted(books.items())}


def lease_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(table(MarketLease)).order_by(table(MarketLease).c.id)))


def assert_consistent(engine: Engine, *engines: MarketEngine) -> None:
    """The invariants every test ends with (see the module docstring)."""
    with engine.connect() as conn:
        report = verify(conn)
        assert report.ok, report.problems
        orders = order_rows(conn)
        holds = open_holds(conn)
        accounts = balances(conn)
        trades = trade_rows(conn)
        # Each open order's hold covers exactly what it needs; no other hold is open.
        wanted = {o.hold_id: (hold_account(o), need(o)) for o in orders if o.status == "open"}
        assert holds == wanted
        held: dict[AccountKey, int] = {}
        for account, remaining in wanted.values():
            held[account] = held.get(account, 0) + remaining
        for account, (balance, on_hold) in accounts.items():
            assert on_hold == held.get(account, 0), account
            if not account.holder.startswith("external:"):
                assert balance - on_hold >= 0, account
        # Each order's fills are the sum of its trades; no order fills beyond its size.
        filled: dict[int, tuple[int, int]] = {}
        leases = lease_rows(conn)
        for t in [*trades, *leases]:
            for order_id in (t.maker_order_id, t.taker_order_id):
                units, value = filled.get(order_id, (0, 0))
                filled[order_id] = (units + t.qty_units, value + t.price_minor * t.qty_units)
        for o in orders:
            assert (o.filled_units, int(o.filled_minor)) == filled.get(o.id, (0, 0)), o.id
            if o.status != "open":
                assert o.remaining_units == 0, o.id
        # The trades stored are the trades the order log gives, and the books it gives
        # are the ones a rebuild makes and the engine holds.
        replayed, hashes = replayed_log(conn)
        assert replayed == [
            (t.asset_id, t.currency, t.maker_order_id, t.taker_order_id, t.maker_owner,
             t.taker_owner, t.price_minor, t.qty_units, t.taker_side)
            for t in trades
        ]  # fmt: skip
        assert replayed_log(conn, "*")[0] == [
            (t.asset_id, t.currency, t.maker_order_id, t.taker_order_id,
             t.lessor if t.taker_side == "buy" else t.lessee,
             t.lessee if t.taker_side == "buy" else t.lessor, t.price_minor, t.qty_units,
             t.taker_side)
            for t in leases
        ]  # fmt: skip
        assert rebuild(conn).state_hashes() == hashes
    for market_engine in engines:
        assert market_engine.state_hashes() == hashes
        market_engine.forget()
        assert market_engine.state_hashes() == hashes


def entries_of(engine: Engine, seqs: list[int]) -> list[Entry]:
    with engine.connect() as conn:
        return load_entries(conn, seqs)


def entries_after(engine: Engine, seq: int) -> list[Entry]:
    with engine.connect() as conn:
        head = digest(conn).seq
        return load_entries(conn, list(range(seq + 1, head + 1)))


def head_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return digest(conn).seq


def account_of(member: str, instrument: str) -> AccountKey:
    return AccountKey(member_holder(member), instrument)


def state_of(engine: Engine, member: str, instrument: str) -> tuple[int, int]:
    with engine.connect() as conn:
        return balances(conn).get(account_of(member, instrument), (0, 0))


# -- placing and settling ---------------------------------------------------------------


def test_a_trade_is_one_entry_moving_units_and_cash_and_consuming_both_holds(
    market: Market,
) -> None:
    engine = market.ledger.engine
    ask = market.place(ANN, SELL, 50, 100)
    assert ask.order.status == "open" and ask.order.hold_id == f"order:{ask.order.id}"
    assert state_of(engine, ANN, UNITS) == (500_000, 100)
    place = entries_of(engine, [ask.order.id])[0]
    assert place.kind == "order.place"
    assert place.hold_changes == (
        HoldChange(ask.order.hold_id, account_of(ANN, UNITS), HoldOp.PLACE, 100),
    )
    before = head_seq(engine)
    bid = market.place(BOB, BUY, 50, 40)
    assert bid.order.status == "filled" and bid.order.filled_units == 40
    assert bid.order.filled_minor == 2_000 and bid.order.hold_left == 0
    [trade] = bid.trades
    assert (trade.price_minor, trade.qty_units, trade.fee_minor) == (50, 40, 0)
    assert (trade.maker_order_id, trade.taker_order_id) == (ask.order.id, bid.order.id)
    assert (trade.maker_owner, trade.taker_owner, trade.taker_side) == (ANN, BOB, "buy")
    entries = entries_after(engine, before)
    assert [e.kind for e in entries] == ["order.place", "trade"]
    settled = entries[1]
    assert settled.seq == trade.id
    assert set(settled.postings) == {
        Posting(account_of(ANN, UNITS), -40),
        Posting(account_of(BOB, UNITS), 40),
        Posting(account_of(BOB, USD), -2_000),
        Posting(account_of(ANN, USD), 2_000),
    }
    assert set(settled.hold_changes) == {
        HoldChange(ask.order.hold_id, account_of(ANN, UNITS), HoldOp.CONSUME, 40),
        HoldChange(bid.order.hold_id, account_of(BOB, USD), HoldOp.CONSUME, 2_000),
    }
    assert settled.payload["maker_order_id"] == ask.order.id
    assert state_of(engine, ANN, UNITS) == (499_960, 60)
    assert state_of(engine, ANN, USD) == (CASH_MINOR + 2_000, 0)
    assert state_of(engine, BOB, UNITS) == (300_040, 0)
    assert state_of(engine, BOB, USD) == (CASH_MINOR - 2_000, 0)
    maker = market.stored(ask.order.id).order
    assert (maker.status, maker.remaining_units, maker.filled_units) == ("open", 60, 40)


def test_one_taker_across_levels_is_one_trade_entry_per_maker(market: Market) -> None:
    engine = market.ledger.engine
    asks = [market.place(who, SELL, price, 10).order.id
            for who, price in ((ANN, 50), (CAT, 50), (BOB, 51))]  # fmt: skip
    before = head_seq(engine)
    taker = market.place(DAN, BUY, 51, 25)
    assert [(t.maker_order_id, t.price_minor, t.qty_units) for t in taker.trades] == [
        (asks[0], 50, 10),
        (asks[1], 50, 10),
        (asks[2], 51, 5),
    ]
    kinds = [e.kind for e in entries_after(engine, before)]
    assert kinds == ["order.place", "trade", "trade", "trade"]
    # DAN paid 50 x 20 + 51 x 5 = 1,255; the hold was 51 x 25 = 1,275 and nothing is left.
    assert state_of(engine, DAN, USD) == (CASH_MINOR - 1_255, 0)
    assert taker.order.status == "filled"


def test_price_improvement_of_a_taker_buy_is_released(market: Market) -> None:
    engine = market.ledger.engine
    market.place(ANN, SELL, 40, 10)
    taker = market.place(BOB, BUY, 50, 25)  # 10 fill at 40, 15 rest at 50
    [trade] = taker.trades
    assert (trade.price_minor, trade.qty_units) == (40, 10)
    settled = entries_of(engine, [trade.id])[0]
    assert set(settled.hold_changes) >= {
        HoldChange(taker.order.hold_id, account_of(BOB, USD), HoldOp.CONSUME, 400),
        HoldChange(taker.order.hold_id, account_of(BOB, USD), HoldOp.RELEASE, 100),
    }
    assert taker.order.status == "open" and taker.order.remaining_units == 15
    assert taker.order.hold_left == 15 * 50
    assert state_of(engine, BOB, USD) == (CASH_MINOR - 400, 750)


def test_ioc_remainder_is_cancelled_and_its_hold_released(market: Market) -> None:
    engine = market.ledger.engine
    market.place(ANN, SELL, 40, 10)
    before = head_seq(engine)
    taker = market.place(BOB, BUY, 45, 30, time_in_force=IOC)
    assert taker.order.status == "cancelled" and taker.order.reason == "ioc_remainder"
    assert taker.order.filled_units == 10 and taker.order.remaining_units == 0
    entries = entries_after(engine, before)
    assert [e.kind for e in entries] == ["order.place", "trade", "order.release"]
    assert entries[0].hold_changes[0].amount == 45 * 30
    # The trade gives back 5 x 10 of improvement; the release the 20 units not bought.
    assert entries[2].hold_changes == (
        HoldChange(taker.order.hold_id, account_of(BOB, USD), HoldOp.RELEASE, 45 * 20),
    )
    assert state_of(engine, BOB, USD) == (CASH_MINOR - 400, 0)
    nothing = market.place(CAT, SELL, 60, 5, time_in_force=IOC)  # nothing to meet
    assert nothing.order.status == "cancelled" and nothing.trades == []
    assert state_of(engine, CAT, UNITS) == (200_000, 0)


def test_fok_fills_whole_or_is_refused_writing_nothing(market: Market) -> None:
    engine = market.ledger.engine
    market.place(ANN, SELL, 40, 10)
    market.place(CAT, SELL, 41, 10)
    refused(market, Refused, "fok_unfillable",
            lambda: market.place(BOB, BUY, 41, 21, time_in_force=FOK))  # fmt: skip
    refused(market, Refused, "fok_unfillable",
            lambda: market.place(BOB, BUY, 40, 11, time_in_force=FOK))  # fmt: skip
    taker = market.place(BOB, BUY, 41, 20, time_in_force=FOK)
    assert taker.order.status == "filled" and len(taker.trades) == 2
    assert state_of(engine, BOB, USD) == (CASH_MINOR - 810, 0)


def test_a_market_buy_holds_its_spend_and_releases_what_it_did_not_spend(
    market: Market,
) -> None:
    engine = market.ledger.engine
    market.place(ANN, SELL, 30, 10)
    market.place(CAT, SELL, 40, 50)
    before = head_seq(engine)
    taker = market.place(BOB, BUY, type=MARKET, spend_minor=1_000)
    # 10 at 30 (300), then 17 at 40 (680): 980 spent, 20 given back.
    assert [(t.price_minor, t.qty_units) for t in taker.trades] == [(30, 10), (40, 17)]
    entries = entries_after(engine, before)
    assert [e.kind for e in entries] == ["order.place", "trade", "trade", "order.release"]
    assert entries[0].hold_changes == (
        HoldChange(taker.order.hold_id, account_of(BOB, USD), HoldOp.PLACE, 1_000),
    )
    assert entries[-1].hold_changes == (
        HoldChange(taker.order.hold_id, account_of(BOB, USD), HoldOp.RELEASE, 20),
    )
    assert taker.order.filled_units == 27 and taker.order.filled_minor == 980
    # The 20 left cannot buy a unit at 40, where asks still rest: it bought all it could.
    assert taker.order.status == "filled" and taker.order.reason is None
    assert market.stored(taker.order.id).order.status == "filled"
    assert state_of(engine, BOB, USD) == (CASH_MINOR - 980, 0)
    assert state_of(engine, BOB, UNITS) == (300_027, 0)
    # A budget larger than the book: it buys the 33 left, and the rest is a remainder.
    emptied = market.place(DAN, BUY, type=MARKET, spend_minor=10_000)
    assert [(t.price_minor, t.qty_units) for t in emptied.trades] == [(40, 33)]
    assert emptied.order.status == "cancelled" and emptied.order.reason == "market_remainder"
    assert market.stored(emptied.order.id).order.reason == "market_remainder"
    refused(market, Refused, "insufficient_funds",
            lambda: market.place(DAN, BUY, type=MARKET, spend_minor=CASH_MINOR + 1))  # fmt: skip


def test_a_market_sell_remainder_is_released(market: Market) -> None:
    engine = market.ledger.engine
    market.place(BOB, BUY, 50, 10)
    market.place(DAN, BUY, 45, 5)
    taker = market.place(ANN, SELL, None, 40, type=MARKET)
    assert [(t.price_minor, t.qty_units) for t in taker.trades] == [(50, 10), (45, 5)]
    assert taker.order.status == "cancelled" and taker.order.reason == "market_remainder"
    assert state_of(engine, ANN, UNITS) == (499_985, 0)
    assert state_of(engine, ANN, USD) == (CASH_MINOR + 725, 0)
    empty = market.place(CAT, SELL, None, 5, type=MARKET)
    assert empty.order.status == "cancelled" and empty.trades == []
    assert state_of(engine, CAT, UNITS) == (200_000, 0)


def test_the_fee_is_rounded_down_and_credited_to_the_fees_account(fee_market: Market) -> None:
    engine = fee_market.ledger.engine
    fee_market.place(ANN, SELL, 333, 10)
    taker = fee_market.place(BOB, BUY, 333, 10)
    [trade] = taker.trades
    # 3,330 x 25 / 10,000 = 8.325: the fee is 8, the seller gets 3,322, the buyer pays 3,330.
    assert trade.fee_minor == 8
    settled = entries_of(engine, [trade.id])[0]
    assert settled.payload["fee_minor"] == 8
    assert set(settled.postings) == {
        Posting(account_of(ANN, UNITS), -10),
        Posting(account_of(BOB, UNITS), 10),
        Posting(account_of(BOB, USD), -3_330),
        Posting(account_of(ANN, USD), 3_322),
        Posting(AccountKey(FEES, USD), 8),
    }
    assert FEES == "external:fees"
    assert state_of(engine, ANN, USD) == (CASH_MINOR + 3_322, 0)
    with engine.connect() as conn:
        assert balances(conn)[AccountKey(FEES, USD)] == (8, 0)
    # A trade worth less than 400 pays no fee at 25 bp, and its entry names none.
    fee_market.place(ANN, SELL, 39, 10)
    [small] = fee_market.place(BOB, BUY, 39, 10).trades
    assert small.fee_minor == 0
    assert "fee_minor" not in entries_of(engine, [small.id])[0].payload
    assert state_of(engine, ANN, USD) == (CASH_MINOR + 3_322 + 390, 0)
    total = sum(
        state_of(engine, m, USD)[0] for m in (ANN, BOB, CAT, DAN)
    ) + 8  # fmt: skip
    assert total == 4 * CASH_MINOR
    with pytest.raises(InvalidInput) as caught:
        MarketEngine(fee_market.ledger, fee_bps=1_001)
    assert caught.value.code == "fee_bps_range"


# -- self-trade prevention ----------------------------------------------------------------


def test_self_trade_prevention_releases_the_holds_of_what_it_cancels(market: Market) -> None:
    engine = market.ledger.engine

    def ann() -> tuple[tuple[int, int], tuple[int, int]]:
        return state_of(engine, ANN, UNITS), state_of(engine, ANN, USD)

    # cancel_newest: the incoming sell goes, its units are free again; the buy rests.
    bid = market.place(ANN, BUY, 50, 10).order.id
    sell = market.place(ANN, SELL, 50, 10, self_trade=STP.CANCEL_NEWEST).order
    assert (sell.status, sell.reason, sell.filled_units) == ("cancelled", "self_trade", 0)
    assert market.stored(bid).order.status == "open"
    assert ann() == ((500_000, 0), (CASH_MINOR, 500))
    # cancel_oldest: the resting buy goes (its cash free again), the sell trades on.
    other = market.place(BOB, BUY, 50, 10).order.id
    sell = market.place(ANN, SELL, 50, 10, self_trade=STP.CANCEL_OLDEST).order
    assert sell.status == "filled"
    assert [t.maker_order_id for t in market.stored(sell.id).trades] == [other]
    assert (market.stored(bid).order.status, market.stored(bid).order.reason) == (
        "cancelled", "self_trade",
    )  # fmt: skip
    assert ann() == ((499_990, 0), (CASH_MINOR + 500, 0))
    # cancel_both: both go, both holds are given back.
    bid = market.place(ANN, BUY, 50, 10).order.id
    market.place(BOB, BUY, 50, 10)
    sell = market.place(ANN, SELL, 50, 10, self_trade=STP.CANCEL_BOTH).order
    assert sell.status == "cancelled" and market.stored(bid).order.status == "cancelled"
    assert ann() == ((499_990, 0), (CASH_MINOR + 500, 0))
    # decrement: both lose the smaller quantity; the buy goes on with a smaller hold.
    assert market.place(CAT, SELL, 50, 10).order.status == "filled"  # BOB's bid goes
    bid = market.place(ANN, BUY, 50, 10).order.id
    sell = market.place(ANN, SELL, 50, 4, self_trade=STP.DECREMENT).order
    assert sell.status == "cancelled" and sell.filled_units == 0
    resting = market.stored(bid).order
    assert (resting.status, resting.remaining_units, resting.hold_left) == ("open", 6, 300)
    assert ann() == ((499_990, 0), (CASH_MINOR + 500, 300))
    # A larger incoming order removes the resting one and rests, smaller.
    bigger = market.place(ANN, SELL, 50, 10, self_trade=STP.DECREMENT).order
    assert bigger.status == "open" and bigger.remaining_units == 4
    assert market.stored(bid).order.status == "cancelled"
    assert ann() == ((499_990, 4), (CASH_MINOR + 500, 0))


# -- cancel and amend -------------------------------------------------------------------


def test_cancel_releases_the_hold_once(market: Market) -> None:
    engine = market.ledger.engine
    bid = market.place(BOB, BUY, 50, 10)
    refused(market, Forbidden, "not_your_order", lambda: market.cancel(ANN, bid.order.id))
    done = market.cancel(BOB, bid.order.id)
    assert (done.order.status, done.order.reason) == ("cancelled", "user")
    assert state_of(engine, BOB, USD) == (CASH_MINOR, 0)
    cancel = entries_after(engine, bid.order.id)[-1]
    assert cancel.kind == "order.cancel" and cancel.payload == {"order_id": bid.order.id}
    refused(market, Refused, "order_not_open", lambda: market.cancel(BOB, bid.order.id))
    refused(market, NotFound, "unknown_order", lambda: market.cancel(BOB, 10**9))
    refused(market, Forbidden, "not_your_order", lambda: market.cancel(ANN, bid.order.id))


def test_amending_down_keeps_priority_and_up_or_to_a_new_price_loses_it(market: Market) -> None:
    def queue(price: int) -> tuple[int, int]:
        return (market.place(ANN, SELL, price, 10).order.id,
                market.place(CAT, SELL, price, 10).order.id)  # fmt: skip

    def next_filled(price: int) -> int:
        [trade] = market.place(DAN, BUY, price, 1).trades
        return trade.maker_order_id

    # Each case at a lower price than the one before, so that DAN's buy meets it first.
    first, second = queue(70)
    amended = market.amend(ANN, first, qty=5).order
    assert (amended.remaining_units, amended.hold_left) == (5, 5)
    assert state_of(market.ledger.engine, ANN, UNITS) == (500_000, 5)
    assert next_filled(70) == first
    for price, new_price, new_qty in ((60, None, 11), (50, 51, None)):
        first, second = queue(price)
        market.amend(ANN, first, new_price, new_qty)
        if new_price is not None:
            market.amend(ANN, first, price=price)  # back at its price, but behind CAT
        assert next_filled(price) == second
        market.cancel(ANN, first)
        market.cancel(CAT, second)


def test_amending_a_buy_up_holds_again_under_a_new_hold(market: Market) -> None:
    engine = market.ledger.engine
    bid = market.place(BOB, BUY, 50, 10).order
    first_hold = bid.hold_id
    before = head_seq(engine)
    up = market.amend(BOB, bid.id, qty=20).order
    new_hold = up.hold_id
    assert new_hold != first_hold and new_hold == f"order:{bid.id}:{before + 1}"
    [amend] = entries_after(engine, before)
    assert amend.kind == "order.amend"
    assert amend.hold_changes == (
        HoldChange(first_hold, account_of(BOB, USD), HoldOp.RELEASE, 500),
        HoldChange(new_hold, account_of(BOB, USD), HoldOp.PLACE, 1_000),
    )
    assert state_of(engine, BOB, USD) == (CASH_MINOR, 1_000)
    with engine.connect() as conn:
        assert first_hold not in open_holds(conn)
    down = market.amend(BOB, bid.id, price=30).order  # 20 x 30: 400 given back
    assert down.hold_id == new_hold and down.hold_left == 600
    assert state_of(engine, BOB, USD) == (CASH_MINOR, 600)
    assert market.stored(bid.id).order.hold_id == new_hold


def test_amending_beyond_the_funds_is_refused_and_changes_nothing(market: Market) -> None:
    bid = market.place(BOB, BUY, 50, 10)
    refused(market, Refused, "insufficient_funds",
            lambda: market.amend(BOB, bid.order.id, qty=CASH_MINOR // 50 + 1))  # fmt: skip
    refused(market, Refused, "insufficient_funds",
            lambda: market.amend(BOB, bid.order.id, price=CASH_MINOR // 10 + 1))  # fmt: skip
    ask = market.place(CAT, SELL, 60, 10)
    refused(market, Refused, "insufficient_units",
            lambda: market.amend(CAT, ask.order.id, qty=200_001))  # fmt: skip
    stored = market.stored(bid.order.id).order
    assert (stored.hold_id, stored.remaining_units, stored.price_minor) == (
        bid.order.hold_id, 10, 50,
    )  # fmt: skip


def test_amending_to_a_crossing_price_trades_and_gives_back_the_improvement(
    market: Market,
) -> None:
    engine = market.ledger.engine
    market.place(ANN, SELL, 40, 10)
    bid = market.place(BOB, BUY, 30, 10)
    crossed = market.amend(BOB, bid.order.id, price=45)  # hold 300 -> 450, fills at 40
    assert [(t.price_minor, t.qty_units) for t in crossed.trades] == [(40, 10)]
    assert crossed.order.status == "filled"
    assert state_of(engine, BOB, USD) == (CASH_MINOR - 400, 0)
    post = market.place(DAN, BUY, 30, 5, post_only=True)
    market.place(CAT, SELL, 35, 5)
    refused(market, Refused, "post_only_would_cross",
            lambda: market.amend(DAN, post.order.id, price=35))  # fmt: skip
    refused(market, InvalidInput, "not_amendable", lambda: market.amend(DAN, post.order.id))
    refused(market, Refused, "order_not_open", lambda: market.amend(BOB, bid.order.id, qty=1))


# -- expiry -----------------------------------------------------------------------------


def test_gtd_orders_expire_by_the_engines_own_clock(ledger: Ledger) -> None:
    build_network(ledger, cash_minor=CASH_MINOR)
    clock = Clock()
    engine = MarketEngine(ledger, now_ms=clock, poll_s=0.01)
    market = Market(ledger, engine, clock)
    try:
        engine.start()
        gtd = market.place(BOB, BUY, 50, 10, time_in_force=GTD, expires_at_ms=T0_MS + 5_000)
        gtc = market.place(CAT, SELL, 70, 10)
        assert state_of(ledger.engine, BOB, USD) == (CASH_MINOR, 500)
        clock.now_ms = T0_MS + 5_000  # due now; nobody asks the engine anything
        expired = _wait_for(lambda: market.stored(gtd.order.id).order.status == "expired")
        assert expired, "the engine's clock did not expire the order"
        stored = market.stored(gtd.order.id).order
        assert (stored.reason, stored.remaining_units) == ("expired", 0)
        assert state_of(ledger.engine, BOB, USD) == (CASH_MINOR, 0)
        last = entries_after(ledger.engine, gtc.order.id)[-1]
        assert last.kind == "order.expire" and last.payload["order_ids"] == [gtd.order.id]
        assert last.hold_changes == (
            HoldChange(gtd.order.hold_id, account_of(BOB, USD), HoldOp.RELEASE, 500),
        )
        assert market.stored(gtc.order.id).order.status == "open"
        assert engine.status().running
        assert_consistent(ledger.engine, engine)
    finally:
        engine.stop()
    assert not engine.status().running


def _wait_for(condition: Callable[[], bool], tries: int = 1_000) -> bool:
    """Poll ``condition`` (up to ~10 s); the engine's thread works on its own time."""
    stop = threading.Event()
    for _ in range(tries):
        if condition():
            return True
        stop.wait(0.01)
    return False


def test_expire_now_expires_what_is_due_before_anything_trades(market: Market) -> None:
    engine = market.ledger.engine
    gtd = market.place(ANN, SELL, 40, 10, time_in_force=GTD, expires_at_ms=T0_MS + 1_000)
    market.place(CAT, SELL, 45, 10)
    market.engine.expire_now()  # not due yet
    assert market.stored(gtd.order.id).order.status == "open"
    market.clock.now_ms = T0_MS + 1_000
    market.engine.expire_now()
    assert market.stored(gtd.order.id).order.status == "expired"
    assert state_of(engine, ANN, UNITS) == (500_000, 0)
    # An order due at the moment another arrives never trades: it expires first.
    late = market.place(ANN, SELL, 40, 10, time_in_force=GTD, expires_at_ms=T0_MS + 2_000)
    market.clock.now_ms = T0_MS + 2_000
    taker = market.place(BOB, BUY, 45, 5)
    assert [t.maker_order_id for t in taker.trades] != [late.order.id]
    assert market.stored(late.order.id).order.status == "expired"
    refused(market, InvalidInput, "order_expired",
            lambda: market.place(ANN, SELL, 40, 1, time_in_force=GTD,
                                 expires_at_ms=T0_MS + 2_000))  # fmt: skip
    refused(market, Refused, "order_not_open", lambda: market.cancel(ANN, late.order.id))


# -- who may sell -------------------------------------------------------------------------

TRACTOR = ASSET
UNFUNDED = with_check_character("1M8GDM9AXKP042799")
DEADLINE = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def _terms(asset_id: str, organizer: str) -> ProjectTerms:
    return ProjectTerms(
        title="A tractor for the valley",
        description="Shared by its owners; the organizer operates it.",
        organizer=organizer,
        asset_id=asset_id,
        jurisdiction="US-IA",
        currency="USD",
        goal_minor=3_000_000,
        deadline=DEADLINE,
        min_pledge_minor=1,
        organizer_contribution_minor=600_000,
        retained_min_units=100_000,
        operator_share_bp=1_000,
        manual_pledges_allowed=True,
        total_units=1_000_000,
    )


@pytest.fixture
def funded(ledger: Ledger) -> Iterator[Market]:
    """TRACTOR bought by a funded project: BOB operates it (200,000 units, keeping at
    least 100,000), CAT and DAN own 400,000 each. UNFUNDED is a project still open."""
    register_member(ledger, ANN, "finance_node", "North", key="m1", actor="admin")
    for i, who in enumerate((BOB, CAT, DAN)):
        register_member(ledger, who, "individual", f"m{i}", key=f"m:{who}", actor="admin")
    project = create_project(ledger, ANN, _terms(TRACTOR, BOB), key="p1", actor=ANN).id
    open_project(ledger, project, by=ANN, key="open", actor=ANN)
    for who in (CAT, DAN):
        record_manual_pledge(
            ledger, project, who, 1_200_000, who[2:].lower().ljust(64, "0"), by=ANN,
            key=f"pl:{who}", actor=ANN,
        )  # fmt: skip
    waiting = create_project(ledger, ANN, _terms(UNFUNDED, CAT), key="p2", actor=ANN).id
    open_project(ledger, waiting, by=ANN, key="open2", actor=ANN)
    for who in (BOB, CAT, DAN):
        deposit(ledger, member=who, currency="USD", amount=CASH_MINOR, reference="wire",
                key=f"d:{who}", actor="admin")  # fmt: skip
    clock = Clock()
    m = Market(ledger, MarketEngine(ledger, now_ms=clock), clock, asset=TRACTOR)
    yield m
    try:
        assert_consistent(ledger.engine, m.engine)
    finally:
        m.engine.stop()


def test_the_operator_cannot_sell_below_its_retained_minimum(funded: Market) -> None:
    engine = funded.ledger.engine
    assert state_of(engine, BOB, units_of(TRACTOR)) == (200_000, 0)
    funded.place(CAT, SELL, 30, 10)
    error = refused(funded, Refused, "operator_retained_minimum",
                    lambda: funded.place(BOB, SELL, 10, 100_001))  # fmt: skip
    assert error.detail == {"retained_min_units": "100000"}
    refused(funded, Refused, "operator_retained_minimum",
            lambda: funded.place(BOB, SELL, None, 100_001, type=MARKET))  # fmt: skip
    ask = funded.place(BOB, SELL, 10, 60_000)
    kept = funded.place(BOB, SELL, 11, 40_000)  # exactly 100,000 left unreserved
    refused(funded, Refused, "operator_retained_minimum",
            lambda: funded.place(BOB, SELL, 12, 1))  # fmt: skip
    refused(funded, Refused, "operator_retained_minimum",
            lambda: funded.amend(BOB, ask.order.id, qty=60_001))  # fmt: skip
    funded.amend(BOB, kept.order.id, qty=30_000)  # down is always allowed
    funded.place(BOB, SELL, 12, 10_000)
    # Other owners sell all they have.
    funded.place(CAT, SELL, 20, 399_990)
    funded.place(DAN, BUY, 10, 1_000)
    assert state_of(engine, BOB, units_of(TRACTOR)) == (199_000, 99_000)


def test_the_operator_cannot_move_away_what_its_resting_sells_stand_on(funded: Market) -> None:
    """A transfer keeps the retained minimum unreserved too: else the operator could
    sell down to it, give the minimum away, and the sells' trades would take it below."""
    engine = funded.ledger.engine

    def move(units: int, key: str) -> object:
        return funded.engine.transfer(UnitTransferRequest(BOB, CAT, TRACTOR, units, key, "t"))

    sell = funded.place(BOB, SELL, 10, 100_000)  # exactly the minimum left unreserved
    error = refused(funded, Refused, "operator_retained_minimum", lambda: move(1, "move-1"))
    assert error.detail == {"retained_min_units": "100000"}
    funded.amend(BOB, sell.order.id, qty=60_000)
    move(40_000, "move-2")  # down to the minimum again
    refused(funded, Refused, "operator_retained_minimum", lambda: move(1, "move-3"))
    funded.place(DAN, BUY, 10, 60_000)  # the sell fills: the minimum stays
    assert state_of(engine, BOB, units_of(TRACTOR)) == (100_000, 0)
    refused(funded, Refused, "operator_retained_minimum", lambda: move(1, "move-4"))
    funded.engine.transfer(UnitTransferRequest(CAT, DAN, TRACTOR, 10, "cat", "t"))


def test_an_asset_whose_project_is_not_funded_does_not_trade(funded: Market) -> None:
    unfunded = Market(funded.ledger, funded.engine, funded.clock, asset=UNFUNDED)
    refused(funded, Refused, "project_not_funded", lambda: unfunded.place(CAT, BUY, 10, 1))
    refused(funded, Refused, "project_not_funded",
            lambda: unfunded.place(CAT, SELL, None, 1, type=MARKET))  # fmt: skip
    # Nor does it lease (DESIGN.md, invariant 4), whatever the term.
    refused(funded, Refused, "project_not_funded",
            lambda: unfunded.place(CAT, SELL, 10, 1, term="2027-04-01/2027-07-01"))  # fmt: skip
    assert funded.engine.books() == {}


# -- refusals ---------------------------------------------------------------------------

OTHER_ASSET = with_check_character("1M8GDM9AXKP042711")
STRANGER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"


REFUSALS: list[tuple[type[LedgerError], str, Callable[[Market], OrderRequest]]] = [
        (Refused, "insufficient_units", lambda m: m.order(DAN, SELL, 10, 1)),
        (Refused, "insufficient_units", lambda m: m.order(CAT, SELL, 10, 200_001)),
        (Refused, "insufficient_funds", lambda m: m.order(DAN, BUY, 10**6, 2)),
        (InvalidInput, "price_out_of_range", lambda m: m.order(ANN, SELL, 0, 1)),
        (InvalidInput, "price_out_of_range", lambda m: m.order(ANN, SELL, 2**63, 1)),
        (InvalidInput, "qty_out_of_range", lambda m: m.order(ANN, SELL, 1, 10**12 + 1)),
        (InvalidInput, "expiry_missing", lambda m: m.order(ANN, SELL, 1, 1, time_in_force=GTD)),
        (InvalidInput, "order_expired",
         lambda m: m.order(ANN, SELL, 1, 1, time_in_force=GTD, expires_at_ms=T0_MS)),
        (InvalidInput, "bad_time_in_force",
         lambda m: m.order(ANN, SELL, None, 1, type=MARKET, time_in_force=FOK)),
        (InvalidInput, "bad_time_in_force",
         lambda m: m.order(ANN, SELL, 1, 1, time_in_force=IOC, post_only=True)),
        (NotFound, "unknown_asset",
         lambda m: OrderRequest(ANN, OTHER_ASSET, "USD", SELL, LIMIT, "x", "t", 1, 1)),
        (NotFound, "unknown_currency",
         lambda m: OrderRequest(ANN, ASSET, "XTS", SELL, LIMIT, "x", "t", 1, 1)),
        (NotFound, "unknown_member",
         lambda m: OrderRequest(STRANGER, ASSET, "USD", SELL, LIMIT, "x", "t", 1, 1)),
        (Refused, "fok_unfillable", lambda m: m.order(BOB, BUY, 59, 1, time_in_force=FOK)),
]  # fmt: skip


def test_a_refused_order_writes_nothing(market: Market) -> None:
    market.place(CAT, SELL, 60, 10)
    market.place(ANN, BUY, 40, 10)
    for kind, code, request_of in REFUSALS:
        request = request_of(market)
        refused(market, kind, code, partial(market.engine.place, request))
    refused(market, Refused, "post_only_would_cross",
            lambda: market.place(BOB, BUY, 60, 1, post_only=True))  # fmt: skip


def test_a_refusal_is_answered_without_the_frames_of_its_batch(market: Market) -> None:
    """The frames hold the batch's session, transaction and futures; with them on the
    answer, an asker that raises it from its future makes a reference cycle that keeps
    the whole batch alive until a full collection of the heap."""
    futures = [
        market.engine.submit(market.order(STRANGER, SELL, 60, 1)),
        market.engine.submit(market.order(CAT, SELL, 60, 10**9)),
        market.engine.submit(CancelRequest(ANN, 10**9, market.key(), "test")),
    ]
    errors = [future.exception(timeout=30) for future in futures]
    assert [type(e) for e in errors] == [NotFound, Refused, NotFound], errors
    assert all(e is not None and e.__traceback__ is None for e in errors)


# -- idempotency ------------------------------------------------------------------------


def test_the_same_key_and_request_answers_the_same_order(market: Market) -> None:
    engine = market.ledger.engine
    request = market.order(ANN, SELL, 50, 10, key="sell-1")
    first = market.engine.place(request)
    market.place(BOB, BUY, 50, 4)
    head = snapshot(engine)
    again = market.engine.place(request)
    assert again.replayed and not first.replayed
    assert again.order.id == first.order.id and again.order.remaining_units == 6
    assert [t.qty_units for t in again.trades] == [4]
    assert snapshot(engine) == head
    error = refused(market, Conflict, "idempotency_conflict",
                    lambda: market.place(ANN, SELL, 51, 10, key="sell-1"))  # fmt: skip
    assert "already used" in error.message
    refused(market, Conflict, "idempotency_conflict",
            lambda: market.cancel(ANN, first.order.id, key="sell-1"))  # fmt: skip
    cancelled = market.cancel(ANN, first.order.id, key="cancel-1")
    replay = market.cancel(ANN, first.order.id, key="cancel-1")
    assert replay.replayed and replay.order.status == "cancelled"
    assert cancelled.order.id == replay.order.id
    refused(market, Conflict, "idempotency_conflict",
            lambda: market.place(ANN, SELL, 50, 10, key="cancel-1"))  # fmt: skip


def test_a_replayed_amend_answers_the_order_and_a_different_one_conflicts(
    market: Market,
) -> None:
    bid = market.place(BOB, BUY, 50, 10)
    market.amend(BOB, bid.order.id, qty=8, key="amend-1")
    again = market.amend(BOB, bid.order.id, qty=8, key="amend-1")
    assert again.replayed and again.order.remaining_units == 8
    refused(market, Conflict, "idempotency_conflict",
            lambda: market.amend(BOB, bid.order.id, qty=7, key="amend-1"))  # fmt: skip
    refused(market, Conflict, "idempotency_conflict",
            lambda: market.amend(BOB, bid.order.id, price=49, key="amend-1"))  # fmt: skip
    # A key the ledger used for something else entirely conflicts too.
    refused(market, Conflict, "idempotency_conflict",
            lambda: market.place(BOB, BUY, 50, 1, key="d:" + BOB))  # fmt: skip


# -- rebuild and several engines ----------------------------------------------------------


def test_a_rebuild_reproduces_every_book(market: Market) -> None:
    for i in range(20):
        market.place(ANN, SELL, 50 + i % 5, 3 + i)
        market.place(BOB, BUY, 45 + i % 7, 2 + i, self_trade=STP.CANCEL_OLDEST)
        if i % 4 == 0:
            market.place(CAT, BUY, 48, 5, time_in_force=GTD, expires_at_ms=T0_MS + 1_000 * i + 1)
        market.clock.now_ms += 700
    market.engine.expire_now()
    hashes = market.engine.state_hashes()
    assert hashes and any(len(b) for b in market.engine.books().values())
    market.engine.forget()
    assert market.engine.state_hashes() == hashes
    with market.ledger.engine.connect() as conn:
        state = rebuild(conn)
        assert state.state_hashes() == hashes
        assert len(state.orders) == sum(len(b) for b in state.books.values())


def _second_engine(engine: Engine) -> Engine:
    """Another connection pool on the same database (as another process would have)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        return make_engine(url)
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return make_engine(url, connect_args={"options": f"-csearch_path={schema}"})


@pytest.mark.parametrize("how", ["one ledger", "two ledgers"])
def test_two_engines_on_one_database_never_fill_an_order_twice(ledger: Ledger, how: str) -> None:
    build_network(ledger, cash_minor=CASH_MINOR)
    clock = Clock()
    other_db = None if how == "one ledger" else _second_engine(ledger.engine)
    other = ledger if other_db is None else Ledger(other_db, clock=StepClock())
    engines = [MarketEngine(ledger, now_ms=clock), MarketEngine(other, now_ms=clock)]
    markets = [Market(ledger, engines[0], clock), Market(other, engines[1], clock)]
    errors: list[BaseException] = []
    sellers, buyers = (ANN, CAT), (BOB, DAN)

    def trade(n: int) -> None:
        m = markets[n]
        try:
            for i in range(30):
                m.place(sellers[n], SELL, 50 + (i * 7 + n) % 5, 1 + i % 6, key=f"{n}-s{i}")
                m.place(buyers[n], BUY, 50 + (i * 3 + n) % 5, 1 + i % 4, key=f"{n}-b{i}")
                if i % 5 == 4:
                    m.place(buyers[1 - n], BUY, type=MARKET, spend_minor=300, key=f"{n}-m{i}")
        except BaseException as error:  # handed to the test's thread
            errors.append(error)

    threads = [threading.Thread(target=trade, args=(n,)) for n in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        # Interleaved one by one: each engine must first take in what the other stored.
        for i in range(10):
            markets[i % 2].place(ANN, SELL, 49, 2, key=f"x-s{i}")
            markets[(i + 1) % 2].place(BOB, BUY, 52, 3, key=f"x-b{i}")
        with ledger.engine.connect() as conn:
            trades = trade_rows(conn)
            orders = {o.id: o for o in order_rows(conn)}
        assert len(trades) > 20
        for o in orders.values():
            if o.type == "limit":
                assert o.filled_units + o.remaining_units <= o.qty_units
                assert o.filled_units <= o.qty_units
        assert engines[0].state_hashes() == engines[1].state_hashes()
        assert_consistent(ledger.engine, *engines)
    finally:
        for e in engines:
            e.stop()
        if other_db is not None:
            other_db.dispose()


# -- regressions: bugs these tests found ------------------------------------------------


def test_a_refused_first_order_leaves_no_book_behind(market: Market) -> None:
    # A book made for an order the book or the ledger then refused stayed in memory,
    # unopened in the order log: the next order on it was logged without the book's
    # opening, and every rebuild and catch-up after failed with order_log_unopened.
    refused(market, Refused, "insufficient_units", lambda: market.place(DAN, SELL, 10, 1))
    refused(market, Refused, "fok_unfillable",
            lambda: market.place(BOB, BUY, 10, 1, time_in_force=FOK))  # fmt: skip
    assert market.engine.books() == {}
    market.place(ANN, SELL, 10, 5)
    market.engine.forget()
    assert list(market.engine.state_hashes()) == [BOOK]


def test_an_order_is_amended_after_a_rebuild_and_after_another_engine_opens_a_book(
    market: Market,
) -> None:
    # Amend read the asset's terms from a cache that a rebuild empties (and a catch-up
    # of another book's opening clears): KeyError, the whole batch failed, and every
    # amend on the asset kept failing until someone placed an order on it.
    ask = market.place(ANN, SELL, 50, 10).order.id
    market.engine.forget()
    assert market.amend(ANN, ask, qty=8).order.remaining_units == 8
    other = MarketEngine(market.ledger, now_ms=market.clock)
    try:
        other.place(market.order(CAT, SELL, 7, 5, currency="EUR"))
    finally:
        other.stop()
    assert market.amend(ANN, ask, price=51).order.price_minor == 51


def test_terms_another_engine_set_hold_here_at_once(market: Market) -> None:
    # Terms set while the asset has no book are logged on no book: the other engine's
    # catch-up saw nothing, and it kept taking orders by the terms it had cached.
    refused(market, Refused, "insufficient_funds",
            lambda: market.place(DAN, BUY, 10, 10**9))  # fmt: skip  # its terms cached
    other = MarketEngine(market.ledger, now_ms=market.clock)
    try:
        other.set_terms(TermsRequest(ASSET, 5, 10, "terms", "admin"))
    finally:
        other.stop()
    refused(market, InvalidInput, "price_off_tick", lambda: market.place(ANN, SELL, 7, 10))
    refused(market, InvalidInput, "qty_off_lot", lambda: market.place(ANN, SELL, 5, 3))
    assert market.place(ANN, SELL, 5, 10).order.status == "open"


MANY = 260  # more hold changes than one entry may carry (HOLD_CHANGES_PER_ENTRY_MAX)


def _place_many(market: Market, requests: list[OrderRequest]) -> list[int]:
    """Place many orders at once (they share a few batches)."""
    futures = [market.engine.submit(r) for r in requests]
    ids = []
    for future in futures:
        outcome = future.result()
        assert isinstance(outcome, Outcome) and outcome.order.status == "open"
        ids.append(outcome.order.id)
    return ids


def test_any_number_of_orders_expire_at_once(market: Market) -> None:
    # One order.expire entry took every order due: past 256 hold changes the ledger
    # refused it, and since every batch expires first, the engine refused everything.
    due = T0_MS + 1_000
    ids = _place_many(market, [
        market.order(CAT, SELL, 100 + i, 1, time_in_force=GTD, expires_at_ms=due)
        for i in range(MANY)
    ])  # fmt: skip
    assert state_of(market.ledger.engine, CAT, UNITS) == (200_000, MANY)
    market.clock.now_ms = due
    market.engine.expire_now()
    assert state_of(market.ledger.engine, CAT, UNITS) == (200_000, 0)
    assert {market.stored(i).order.status for i in (ids[0], ids[-1])} == {"expired"}
    assert market.place(BOB, BUY, 50, 1).order.status == "open"


def test_an_order_cancelling_any_number_of_its_owners_orders_releases_them_all(
    market: Market,
) -> None:
    # The release of a command's holds was one entry: an order whose self-trade
    # prevention cancelled more than 255 resting orders was refused after its book had
    # changed, and the orders it cancelled kept their holds, open for ever.
    ids = _place_many(market, [market.order(CAT, SELL, 50, 1) for _ in range(MANY)])
    market.place(ANN, SELL, 55, 10)
    taker = market.place(CAT, BUY, 60, 20, self_trade=STP.CANCEL_OLDEST)
    assert [(t.maker_owner, t.qty_units) for t in taker.trades] == [(ANN, 10)]
    assert (taker.order.status, taker.order.remaining_units) == ("open", 10)
    assert {market.stored(i).order.reason for i in (ids[0], ids[-1])} == {"self_trade"}
    assert state_of(market.ledger.engine, CAT, UNITS) == (200_010, 0)
    assert state_of(market.ledger.engine, CAT, USD) == (CASH_MINOR - 550, 600)


def _one_batch(market: Market, requests: list[Any]) -> list[Outcome | LedgerError]:
    """Submit ``requests`` so that one batch takes them all: the engine's thread waits
    on the queue's lock, which this holds while it queues them."""
    with market.engine._changed:
        futures = [market.engine.submit(r) for r in requests]
    answers: list[Outcome | LedgerError] = []
    for future in futures:
        try:
            answer = future.result()
        except LedgerError as error:
            answers.append(error)
        else:
            assert isinstance(answer, Outcome)
            answers.append(answer)
    return answers


def test_the_same_key_twice_in_one_batch_for_two_requests_conflicts(market: Market) -> None:
    # The second request under a key already used in the same batch was answered with
    # the first one's order, as a replay, whatever it asked.
    first = market.order(ANN, SELL, 50, 10, key="twice")
    same = market.order(ANN, SELL, 50, 10, key="twice")
    other = market.order(ANN, SELL, 60, 5, key="twice")
    placed, replayed, refused_ = _one_batch(market, [first, same, other])
    assert isinstance(placed, Outcome) and isinstance(replayed, Outcome)
    assert replayed.replayed and replayed.order.id == placed.order.id
    assert isinstance(refused_, Conflict) and refused_.code == "idempotency_conflict"
    assert state_of(market.ledger.engine, ANN, UNITS) == (500_000, 10)


def test_an_integrity_failure_fails_its_batch_and_stores_nothing(market: Market) -> None:
    # A request that found the engine's books out of step with its orders was answered
    # with the IntegrityFailure like any refusal, and the rest of its batch committed:
    # here the cancel's release of the hold, with the order left open in its row.
    engine = market.ledger.engine
    ask = market.place(ANN, SELL, 50, 10).order.id
    market.engine.books()[BOOK].cancel(ask)  # the engine's memory, broken behind its back
    before = snapshot(engine)
    with pytest.raises(IntegrityFailure) as caught:
        market.cancel(ANN, ask)
    assert caught.value.code == "book_disagrees"
    assert snapshot(engine) == before
    assert market.cancel(ANN, ask).order.status == "cancelled"  # the books read again


def test_an_answer_shows_the_order_as_its_own_request_left_it(market: Market) -> None:
    # Answers were copied once the batch had committed, so an order that a later
    # request of the same batch filled was answered as filled, with none of its trades.
    ask, bid = _one_batch(market, [market.order(ANN, SELL, 50, 10), market.order(BOB, BUY, 50, 4)])
    assert isinstance(ask, Outcome) and isinstance(bid, Outcome)
    assert (ask.order.status, ask.order.remaining_units, ask.order.filled_units) == ("open", 10, 0)
    assert ask.order.hold_left == 10 and ask.trades == []
    assert (bid.order.status, bid.order.filled_units) == ("filled", 4)
    assert market.stored(ask.order.id).order.remaining_units == 6


def test_an_order_finished_earlier_in_the_batch_is_not_open_and_not_unknown(
    market: Market,
) -> None:
    # A cancel of an order that an earlier request of the same batch had placed and
    # filled was refused as unknown_order: the order's row was not stored yet.
    market.place(CAT, SELL, 90, 1)
    placed = head_seq(market.ledger.engine) + 1  # the next order's id
    answers = _one_batch(market, [
        market.order(ANN, SELL, 50, 10),
        market.order(BOB, BUY, 50, 10),
        CancelRequest(ANN, placed, "c-ann", "test"),
        CancelRequest(BOB, placed, "c-bob", "test"),
    ])  # fmt: skip
    ask, _, mine, theirs = answers
    assert isinstance(ask, Outcome) and ask.order.id == placed
    assert isinstance(mine, Refused) and mine.code == "order_not_open"
    assert mine.message == f"order {placed} is filled"
    assert isinstance(theirs, Forbidden) and theirs.code == "not_your_order"


def test_books_read_outside_a_batch_are_read_from_one_snapshot(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebuild outside a batch (when the engine starts, or for state_hashes) read the
    # order log and then the open orders in statements of their own: on PostgreSQL an
    # order another worker filled in between was on the books but not open, and the
    # rebuild failed with order_log_mismatch.
    ask = market.place(ANN, SELL, 50, 10).order.id
    other = MarketEngine(market.ledger, now_ms=market.clock)
    read = MarketRows.open_orders
    meddled: list[int] = []

    def open_orders(rows: MarketRows, ids: Any = None) -> list[Any]:
        if ids is None and not meddled:  # the rebuild's read, after the log's
            meddled.append(ask)
            other.place(market.order(BOB, BUY, 50, 10))
        return read(rows, ids)

    try:
        market.engine.forget()
        monkeypatch.setattr(MarketRows, "open_orders", open_orders)
        hashes = market.engine.state_hashes()
        assert meddled == [ask]
        monkeypatch.undo()
        assert market.engine.state_hashes() != hashes  # the fill, caught up since
        assert market.stored(ask).order.status == "filled"
    finally:
        other.stop()
