"""The engine's rows: the order log, orders, trades, candles and books, read and written
inside the engine's transactions (and read back when it rebuilds).

Writes are buffered by a session and stored at once (``store``): one multi-row
statement per table, whatever the number of orders in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, insert, select

from ledger.core import validate_asset_id
from ledger.core.accounts import currency_of
from ledger.core.errors import NotFound
from ledger.db.bulk import bulk_insert, pg_array, pg_array_insert_sql
from ledger.db.params import (
    pg_int_array,
    pg_nullable_int_array,
    pg_nullable_text_array,
    pg_text_array,
)
from ledger.db.schema import (
    Asset,
    Currency,
    MarketBook,
    MarketCandle,
    MarketCommand,
    MarketLease,
    MarketOrder,
    MarketTerms,
    MarketTrade,
    Member,
    table,
)
from ledger.funding.standing import funded_project_of
from market.book import SelfTradePrevention, Side, TimeInForce
from market.engine.lease_terms import LEASE_PERIOD_DEFAULT, Span
from market.engine.requests import OrderType
from market.engine.state import AssetFacts, BookKey, OrderState

__all__ = ["CANDLE_INTERVALS_S", "LeaseRow", "MarketRows", "TradeRow", "order_state"]

CANDLE_INTERVALS_S = (60, 300, 3600, 86400)
"""The candles kept per book: 1m, 5m, 1h and 1d."""

_orders = table(MarketOrder)
_trades = table(MarketTrade)
_commands = table(MarketCommand)
_books = table(MarketBook)
_candles = table(MarketCandle)
_terms = table(MarketTerms)
_leases = table(MarketLease)


class TradeRow(NamedTuple):
    """A trade as stored; ``id`` is the seq of the entry that settled it."""

    id: int
    asset_id: str
    currency: str
    price_minor: int
    qty_units: int
    fee_minor: int
    maker_order_id: int
    taker_order_id: int
    maker_owner: str
    taker_owner: str
    taker_side: str
    executed_ms: int


class LeaseRow(NamedTuple):
    """A lease as stored; ``id`` is the seq of the entry that settled it."""

    id: int
    asset_id: str
    currency: str
    term: str
    starts_ms: int
    ends_ms: int
    price_minor: int
    qty_units: int
    fee_minor: int
    maker_order_id: int
    taker_order_id: int
    lessor: str
    lessee: str
    taker_side: str
    executed_ms: int


_ORDER_COLUMNS = (
    "id", "asset_id", "currency", "owner", "side", "type", "time_in_force", "price_minor",
    "qty_units", "spend_minor", "remaining_units", "filled_units", "filled_minor", "status",
    "reason", "post_only", "self_trade", "expires_at_ms", "hold_id", "placed_ms",
    "updated_seq", "term",
)  # fmt: skip
_ORDER_CHANGING = (
    "price_minor", "remaining_units", "filled_units", "filled_minor", "status", "reason",
    "hold_id", "updated_seq",
)  # fmt: skip


_SQLITE_ORDERS_UPDATE = (
    f"UPDATE market_orders SET {', '.join(f'{n} = ?' for n in _ORDER_CHANGING)} WHERE id = ?"
)
_PG_ORDERS_UPDATE = (
    f"UPDATE market_orders AS o SET {', '.join(f'{name} = v.{name}' for name in _ORDER_CHANGING)}"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::numeric[], %s::text[],"
    " %s::text[], %s::text[], %s::bigint[], %s::bigint[])"
    f" AS v({', '.join(_ORDER_CHANGING)}, id) WHERE o.id = v.id"
)

_SIDES = {m.value: m for m in Side}  # by dict: a rebuild reads 100,000s of rows
_TYPES = {m.value: m for m in OrderType}
_TIFS = {m.value: m for m in TimeInForce}
_STPS = {m.value: m for m in SelfTradePrevention}


def order_state(row: Any) -> OrderState:
    """An ``OrderState`` from a ``market_orders`` row, its values in ``_ORDER_COLUMNS``
    order (what its hold still holds is what the order needs: the engine keeps the two
    equal)."""
    (
        order_id, asset_id, currency, owner, side, kind, tif, price, qty, spend, remaining,
        filled_units, filled_minor, status, reason, post_only, stp, expires, hold_id, placed,
        updated, term,
    ) = row  # fmt: skip
    # Amounts arrive as text from SQLite and as int or Decimal from PostgreSQL.
    order = OrderState(
        order_id, asset_id, currency, owner, _SIDES[side], _TYPES[kind], _TIFS[tif], price,
        qty, None if spend is None else int(spend), remaining, filled_units, int(filled_minor),
        status, reason, bool(post_only), _STPS[stp], expires, hold_id, 0, placed, updated,
        None, term,
    )  # fmt: skip
    order.hold_left = order.need()
    return order


_COMMAND_COLUMNS = ("seq", "asset_id", "currency", "term", "body")
_CANDLE_COLUMNS = (
    "asset_id", "currency", "interval_s", "bucket_ms", "open_minor", "high_minor", "low_minor",
    "close_minor", "volume_units", "notional_minor", "trades",
)  # fmt: skip
_CANDLE_CHANGING = (
    "high_minor", "low_minor", "close_minor", "volume_units", "notional_minor", "trades",
)  # fmt: skip
_PG_CANDLES_MERGE = (
    " ON CONFLICT (asset_id, currency, interval_s, bucket_ms) DO UPDATE SET"
    " high_minor = GREATEST(market_candles.high_minor, excluded.high_minor),"
    " low_minor = LEAST(market_candles.low_minor, excluded.low_minor),"
    " close_minor = excluded.close_minor,"
    " volume_units = market_candles.volume_units + excluded.volume_units,"
    " notional_minor = market_candles.notional_minor + excluded.notional_minor,"
    " trades = market_candles.trades + excluded.trades"
)


def _order_row(o: OrderState) -> tuple[object, ...]:
    """An order's values in ``_ORDER_COLUMNS`` order."""
    return (
        o.id, o.asset_id, o.currency, o.owner, o.side.value, o.type.value,
        o.time_in_force.value, o.price_minor, o.qty_units, o.spend_minor, o.remaining_units,
        o.filled_units, o.filled_minor, o.status, o.reason, o.post_only, o.self_trade.value,
        o.expires_at_ms, o.hold_id, o.placed_ms, o.updated_seq, o.term,
    )  # fmt: skip


def _changing_row(o: OrderState) -> tuple[object, ...]:
    """An order's values in ``_ORDER_CHANGING`` order, then its id."""
    return (
        o.price_minor, o.remaining_units, o.filled_units, o.filled_minor, o.status, o.reason,
        o.hold_id, o.updated_seq, o.id,
    )  # fmt: skip


class MarketRows:
    """Reads and buffered writes of the market's tables on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._commands: list[tuple[int, str, str, str, str]] = []
        self._books: list[dict[str, Any]] = []
        self._terms: dict[str, dict[str, Any]] = {}

    # -- reads for the checks ------------------------------------------------------------

    def asset_facts(self, asset_id: str) -> AssetFacts:
        """The asset's terms and operator; ``unknown_asset``, or ``project_not_funded``
        while the project that buys it has not been funded."""
        validate_asset_id(asset_id)
        project = funded_project_of(
            self.conn, asset_id, refusal="nothing of it trades before the project is funded"
        )
        assets = table(Asset)
        if self.conn.execute(select(assets.c.id).where(assets.c.id == asset_id)).first() is None:
            raise NotFound("unknown_asset", f"no asset {asset_id!r}")
        operator, retained = None, 0
        if project is not None:
            operator, retained = project.organizer, project.retained_min_units
        tick, lot, period = self.terms_of(asset_id)
        return AssetFacts(tick, lot, operator, retained, period)

    def terms_of(self, asset_id: str) -> tuple[int, int, str]:
        """The asset's (tick, lot, lease period): (1, 1, quarter) until they are set."""
        terms = self.conn.execute(
            select(_terms.c.tick_size_minor, _terms.c.lot_size_units, _terms.c.lease_period).where(
                _terms.c.asset_id == asset_id
            )
        ).first()
        if terms is None:
            return 1, 1, LEASE_PERIOD_DEFAULT
        return terms.tick_size_minor, terms.lot_size_units, terms.lease_period

    def require_currency(self, code: str) -> None:
        """``unknown_currency`` unless money may be kept in ``code``."""
        currency_of(code)  # refuses a malformed code
        currencies = table(Currency)
        if (
            self.conn.execute(select(currencies.c.code).where(currencies.c.code == code)).first()
            is None
        ):
            raise NotFound("unknown_currency", f"no currency {code!r}")

    def member_id(self, address: str) -> int | None:
        """The id of the member at ``address``, if it is one."""
        members = table(Member)
        found = self.conn.execute(select(members.c.id).where(members.c.address == address)).first()
        return None if found is None else int(found[0])

    def order_owner_status(self, order_id: int) -> tuple[str, str, str] | None:
        """(owner, status, term) of a stored order (a trading order's term is empty)."""
        row = self.conn.execute(
            select(_orders.c.owner, _orders.c.status, _orders.c.term).where(
                _orders.c.id == order_id
            )
        ).first()
        return None if row is None else (row.owner, row.status, row.term)

    # -- reads for a rebuild -------------------------------------------------------------

    def log(self, after_seq: int) -> Iterator[tuple[int, BookKey, str]]:
        """The order log after ``after_seq``, in order."""
        c = _commands.c
        rows = self.conn.execute(
            select(c.seq, c.asset_id, c.currency, c.term, c.body)
            .where(c.seq > after_seq)
            .order_by(c.seq)
        )
        for seq, asset_id, currency, term, body in rows:
            yield seq, BookKey(asset_id, currency, term), body

    def leases_out(
        self, now_ms: int, asset_ids: Iterable[str] | None = None
    ) -> dict[tuple[str, str], list[Span]]:
        """Every lease whose term has not ended by ``now_ms`` (of ``asset_ids``, if given),
        by (lessor, asset)."""
        found: dict[tuple[str, str], list[Span]] = {}
        query = select(
            _leases.c.lessor, _leases.c.asset_id, _leases.c.starts_ms, _leases.c.ends_ms,
            _leases.c.qty_units,
        ).where(_leases.c.ends_ms > now_ms)  # fmt: skip
        if asset_ids is not None:
            query = query.where(_leases.c.asset_id.in_(sorted(set(asset_ids))))
        for lessor, asset_id, starts_ms, ends_ms, units in self.conn.execute(query):
            found.setdefault((lessor, asset_id), []).append(Span(starts_ms, ends_ms, units))
        return found

    def open_orders(self, ids: Iterable[int] | None = None) -> list[OrderState]:
        """The resting orders (of ``ids``, if given)."""
        # By driver SQL: a rebuild reads every open order, and SQLAlchemy's row
        # processing cost more than the read itself.
        sql = f"SELECT {', '.join(_ORDER_COLUMNS)} FROM market_orders WHERE status = 'open'"
        if ids is None:
            return [order_state(r) for r in self.conn.exec_driver_sql(sql)]
        found: list[OrderState] = []
        wanted = sorted(set(ids))
        mark = "?" if self.conn.dialect.name == "sqlite" else "%s"
        for start in range(0, len(wanted), 500):
            part = tuple(wanted[start : start + 500])
            marks = ", ".join(mark for _ in part)
            rows = self.conn.exec_driver_sql(f"{sql} AND id IN ({marks})", part)
            found += [order_state(r) for r in rows]
        return found

    # -- buffered writes -----------------------------------------------------------------

    def command(self, seq: int, key: BookKey, body: str) -> None:
        """A row of the order log."""
        self._commands.append((seq, key.asset_id, key.currency, key.term, body))

    def book_opened(self, seq: int, key: BookKey) -> None:
        """A book's first order."""
        self._books.append(
            {
                "asset_id": key.asset_id,
                "currency": key.currency,
                "term": key.term,
                "opened_seq": seq,
            }
        )

    def terms(
        self, asset_id: str, tick_size_minor: int, lot_size_units: int, seq: int, lease_period: str
    ) -> None:
        """An asset's new trading terms."""
        self._terms[asset_id] = {
            "asset_id": asset_id,
            "tick_size_minor": tick_size_minor,
            "lot_size_units": lot_size_units,
            "set_seq": seq,
            "lease_period": lease_period,
        }

    def store(
        self,
        touched: dict[int, OrderState],
        new_orders: set[int],
        trades: list[TradeRow],
        leases: list[LeaseRow],
    ) -> None:
        """Write what the session decided."""
        conn = self.conn
        if self._terms:
            conn.execute(delete(_terms).where(_terms.c.asset_id.in_(list(self._terms))))
            conn.execute(insert(_terms), list(self._terms.values()))
        if self._books:
            conn.execute(insert(_books), self._books)
        bulk_insert(conn, _commands, _COMMAND_COLUMNS, self._commands)
        bulk_insert(
            conn,
            _orders,
            _ORDER_COLUMNS,
            [_order_row(o) for i, o in touched.items() if i in new_orders],
        )
        changed = [_changing_row(o) for i, o in touched.items() if i not in new_orders]
        if changed:
            self._update_orders(changed)
        if trades:
            bulk_insert(conn, _trades, TradeRow._fields, trades)
            self._candles(trades)
        if leases:
            bulk_insert(conn, _leases, LeaseRow._fields, leases)

    def _update_orders(self, changed: list[tuple[object, ...]]) -> None:
        """Write the changing columns of orders stored before (values in
        ``_ORDER_CHANGING`` order, then the id): by driver SQL, one statement over arrays
        on PostgreSQL, an ``executemany`` on SQLite (``filled_minor``, an amount, as
        decimal text there)."""
        if self.conn.dialect.name == "postgresql":
            price, remaining, units, minor, status, reason, hold, updated, ids = zip(
                *changed, strict=True
            )
            self.conn.exec_driver_sql(
                _PG_ORDERS_UPDATE,
                (
                    pg_nullable_int_array(price), pg_int_array(remaining), pg_int_array(units),
                    pg_int_array(minor), pg_text_array(status), pg_nullable_text_array(reason),
                    pg_text_array(hold), pg_int_array(updated), pg_int_array(ids),
                ),
            )  # fmt: skip
            return
        self.conn.exec_driver_sql(
            _SQLITE_ORDERS_UPDATE, [(p, r, u, str(m), *rest) for p, r, u, m, *rest in changed]
        )

    def _candles(self, trades: list[TradeRow]) -> None:
        """Fold the trades into every interval's candles: merged by an upsert on
        PostgreSQL; read, merged and written back on SQLite, whose arithmetic on the
        decimal text of ``notional_minor`` would not be exact beyond 64 bits."""
        merged: dict[tuple[str, str, int, int], list[int]] = {}
        for t in trades:
            for interval in CANDLE_INTERVALS_S:
                span = interval * 1000
                key = (t.asset_id, t.currency, interval, t.executed_ms // span * span)
                value = t.price_minor * t.qty_units
                c = merged.get(key)
                if c is None:
                    merged[key] = [t.price_minor, t.price_minor, t.price_minor, t.price_minor,
                                   t.qty_units, value, 1]  # fmt: skip
                else:
                    c[1] = max(c[1], t.price_minor)
                    c[2] = min(c[2], t.price_minor)
                    c[3] = t.price_minor
                    c[4] += t.qty_units
                    c[5] += value
                    c[6] += 1
        conn = self.conn
        if conn.dialect.name == "postgresql":
            # Merged by the database, nothing read: one statement over arrays for every
            # interval's candle (an ``executemany`` was a statement a candle, four or
            # more a batch with trades). Each key comes once, as ON CONFLICT requires.
            sql = pg_array_insert_sql(_candles, _CANDLE_COLUMNS) + _PG_CANDLES_MERGE
            columns = zip(*[(*k, *c) for k, c in merged.items()], strict=True)
            conn.exec_driver_sql(sql, tuple(pg_array(column) for column in columns))
            return
        mark = "?"
        keys = list(merged)
        rows = ", ".join([f"({mark}, {mark}, {mark}, {mark})"] * len(keys))
        stored = {
            (r[0], r[1], r[2], r[3]): r[4:]
            for r in conn.exec_driver_sql(
                f"SELECT {', '.join(_CANDLE_COLUMNS)} FROM market_candles"
                f" WHERE (asset_id, currency, interval_s, bucket_ms) IN (VALUES {rows})",
                tuple(v for key in keys for v in key),
            )
        }
        amount = str  # notional_minor, an Amount: decimal text on SQLite
        fresh: list[tuple[object, ...]] = []
        changed: list[tuple[object, ...]] = []
        for key, (o, h, lo, cl, vol, value, count) in merged.items():
            old = stored.get(key)
            if old is None:
                fresh.append((*key, o, h, lo, cl, vol, value, count))
            else:
                _, old_high, old_low, _, old_volume, old_notional, old_trades = old
                changed.append((
                    max(old_high, h), min(old_low, lo), cl, old_volume + vol,
                    amount(int(old_notional) + value), old_trades + count, *key,
                ))  # fmt: skip
        if fresh:
            bulk_insert(conn, _candles, _CANDLE_COLUMNS, fresh)
        if changed:
            conn.exec_driver_sql(
                f"UPDATE market_candles SET {', '.join(f'{n} = {mark}' for n in _CANDLE_CHANGING)}"
                f" WHERE asset_id = {mark} AND currency = {mark} AND interval_s = {mark}"
                f" AND bucket_ms = {mark}",
                changed,
            )
