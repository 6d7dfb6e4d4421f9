"""One transaction of the engine: requests in, entries and rows out.

For each request, in order: its checks; then, for an order, its hold, staged through the
ledger (``WriteTx.stage``), which refuses what the owner cannot cover; then the book;
then one ``trade`` entry per trade, moving units seller -> buyer and cash buyer ->
seller (less the network fee, to ``external:fees``) and consuming both holds; then one
``order.release`` entry (or more: an entry holds at most ``HOLD_CHANGES_PER_ENTRY_MAX``
hold changes) giving back what no longer needs holding. A request refused at
any step leaves nothing: a refusal before the book changes nothing, and one by the book
retracts the hold it staged.

Before a request touches a book, the GTD orders due on it expire as a command of their
own (``order.expire``), so the order log says exactly when each left. Every command the
books applied is one row of the order log at the seq of its first entry.

The fee is ``price * qty * fee_bps // 10_000``, rounded down (in the seller's favour):
the seller receives the trade's value less the fee, the buyer pays the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ledger.core import AccountKey, Entry, EntryDraft, EntryKind, HoldChange, HoldOp, Posting
from ledger.core.accounts import FEES, currency_of, member_holder, units_of
from ledger.core.canonical import JsonValue
from ledger.core.errors import Forbidden, IntegrityFailure, InvalidInput, NotFound, Refused
from ledger.core.limits import HOLD_CHANGES_PER_ENTRY_MAX
from ledger.funding.standing import check_retained
from ledger.journal.write import WriteTx
from ledger.money import transfer_draft
from market.book import (
    Amend,
    Book,
    Cancel,
    Cancelled,
    Command,
    Event,
    Expire,
    Expired,
    PlaceLimit,
    PlaceMarket,
    Rejected,
    Side,
    TimeInForce,
    Trade,
)
from market.engine.codec import LogCommand, OpenBook, encode
from market.engine.lease_terms import LEASE_PERIOD_DEFAULT, Span, check_term, peak, term_span
from market.engine.requests import (
    EXPIRES_AHEAD_MAX_MS,
    OPEN_ORDERS_PER_OWNER_MAX,
    AmendRequest,
    CancelRequest,
    OrderRequest,
    OrderType,
    TermsRequest,
    UnitTransferRequest,
    check_amend,
    check_key,
    check_order,
    check_terms,
)
from market.engine.rows import LeaseRow, MarketRows, TradeRow
from market.engine.state import AssetFacts, BookKey, EngineState, OrderState, OrderStatus

__all__ = ["FEE_BPS_MAX", "Outcome", "Session", "TermsSet", "new_order", "order_payload"]

FEE_BPS_MAX = 1_000
"""The network fee is at most 10 %."""
_ACTOR = "market"


@dataclass(frozen=True, slots=True)
class TermsSet:
    """An asset's trading terms, as set at ``seq``."""

    asset_id: str
    tick_size_minor: int
    lot_size_units: int
    seq: int
    lease_period: str = LEASE_PERIOD_DEFAULT


@dataclass(slots=True)
class Outcome:
    """What a request did: the order as it stands after it, and its trades."""

    order: OrderState
    trades: list[TradeRow] = field(default_factory=list)
    replayed: bool = False
    leases: list[LeaseRow] = field(default_factory=list)  # a lease order's matches


class Session:
    """The engine's decisions inside one write transaction (see the module docstring)."""

    def __init__(
        self, state: EngineState, tx: WriteTx, rows: MarketRows, now_ms: int, fee_bps: int
    ) -> None:
        self.state = state
        self.tx = tx
        self.rows = rows
        self.now_ms = now_ms
        self.fee_bps = fee_bps
        self.trades: list[TradeRow] = []
        self.leases: list[LeaseRow] = []
        self.touched: dict[int, OrderState] = {}
        self.new_orders: set[int] = set()

    # -- requests ------------------------------------------------------------------------

    def place(self, r: OrderRequest) -> Outcome:
        """Check, hold, match and settle one order."""
        check_order(r, self.now_ms)
        facts = self._asset(r.asset_id)
        self._currency(r.currency)
        owner_id = self._member_id(r.owner)
        self._check_terms(facts, r.price_minor, r.qty_units)
        if self.state.open_by_owner.get(r.owner, 0) >= OPEN_ORDERS_PER_OWNER_MAX:
            raise Refused(
                "too_many_open_orders",
                f"a member may have at most {OPEN_ORDERS_PER_OWNER_MAX} orders resting",
            )
        window: tuple[int, int | None] = (self.now_ms, None)  # when a sell's units are promised
        if r.term:
            window = check_term(r.term, facts.lease_period, self.now_ms)
            self._check_not_to_self(r)
        key = BookKey(r.asset_id, r.currency, r.term)
        book, opening = self._book(key, facts)
        self._expire_due(key, book)
        seq = self.tx.next_seq
        order = new_order(r, seq, self.now_ms)
        hold = HoldChange(order.hold_id, order.hold_account, HoldOp.PLACE, order.hold_left)
        self.tx.stage(
            EntryDraft(
                kind=EntryKind.ORDER_PLACE,
                idempotency_key=r.key,
                actor=r.actor,
                payload=order_payload(order),
                hold_changes=(hold,),
            ),
            fresh_holds=True,
            retractable=True,
        )
        if r.side is Side.SELL:
            if facts.operator == r.owner and not r.term:
                self._check_retained(order.hold_account, facts)
            self._check_unpromised(order, window)
        if r.term and r.type is OrderType.LIMIT:
            _rest_within_term(order, window[1] or 0, self.now_ms)
        command: Command
        if r.type is OrderType.LIMIT:
            command = PlaceLimit(
                seq, owner_id, r.side, order.price_minor or 0, order.qty_units,
                order.time_in_force, order.expires_at_ms, r.post_only, r.self_trade, self.now_ms,
            )  # fmt: skip
        else:
            command = PlaceMarket(
                seq, owner_id, r.side, r.qty_units or 0, r.spend_minor or 0, r.self_trade,
                self.now_ms,
            )  # fmt: skip
        events = book.apply(command)
        if events and type(events[0]) is Rejected:
            self.tx.retract()
            raise _rejection(events[0])
        log: list[LogCommand] = []
        if opening:
            self.state.books[key] = book
            log.append(OpenBook(facts.tick_size_minor, facts.lot_size_units))
        self._log(seq, key, [*log, command])
        self.state.add_open(order)
        self.touched[seq] = order
        self.new_orders.add(seq)
        trades, leases = self._settle(key, book, seq, events, taker=order)
        return Outcome(order, trades, leases=leases)

    def cancel(self, r: CancelRequest) -> Outcome:
        """Cancel what rests of the owner's order, releasing its hold."""
        check_key(r.key)
        order = self._own_open_order(r.owner, r.order_id, r.lease)
        key = order.book
        book = self.state.books[key]
        self._expire_due(key, book)
        if order.status != OrderStatus.OPEN:  # it expired just now
            raise Refused("order_not_open", f"order {r.order_id} is {order.status}")
        seq = self.tx.next_seq
        self.tx.stage(
            EntryDraft(
                kind=EntryKind.ORDER_CANCEL,
                idempotency_key=r.key,
                actor=r.actor,
                payload={"order_id": order.id},
                hold_changes=tuple(order.release()),
            )
        )
        command = Cancel(order.id, self.now_ms)
        events = book.apply(command)
        if not events or type(events[0]) is not Cancelled:
            raise IntegrityFailure(
                "book_disagrees", f"order {order.id} was open but not on its book"
            )
        self._log(seq, key, [command])
        order.remaining_units = 0
        self._finish(order, OrderStatus.CANCELLED, "user", seq)
        return Outcome(order)

    def amend(self, r: AmendRequest) -> Outcome:
        """Give the owner's resting order a new price and/or quantity; the hold follows."""
        check_amend(r)
        order = self._own_open_order(r.owner, r.order_id, r.lease)
        key = order.book
        book = self.state.books[key]
        facts = self._asset(order.asset_id)  # not cached after a rebuild or a catch-up
        self._check_terms(facts, r.price_minor, r.qty_units)
        self._expire_due(key, book)
        if order.status != OrderStatus.OPEN:
            raise Refused("order_not_open", f"order {r.order_id} is {order.status}")
        price = order.price_minor if r.price_minor is None else r.price_minor
        qty = order.remaining_units if r.qty_units is None else r.qty_units
        if price is None:  # pragma: no cover - market orders never rest
            raise IntegrityFailure("market_order_rests", f"order {order.id} has no price")
        need = qty if order.side is Side.SELL else price * qty
        seq = self.tx.next_seq
        account = order.hold_account
        changes: tuple[HoldChange, ...]
        hold_id = order.hold_id
        if need <= order.hold_left:
            changes = (
                (HoldChange(hold_id, account, HoldOp.RELEASE, order.hold_left - need),)
                if need < order.hold_left
                else ()
            )
        else:  # a larger hold: the old one is given back and a new one taken
            hold_id = f"order:{order.id}:{seq}"
            changes = (
                HoldChange(order.hold_id, account, HoldOp.RELEASE, order.hold_left),
                HoldChange(hold_id, account, HoldOp.PLACE, need),
            )
        self.tx.stage(
            EntryDraft(
                kind=EntryKind.ORDER_AMEND,
                idempotency_key=r.key,
                actor=r.actor,
                payload={"order_id": order.id, "price_minor": price, "qty_units": qty},
                hold_changes=changes,
            ),
            fresh_holds=True,
            retractable=True,
        )
        if order.side is Side.SELL and qty > order.remaining_units:
            if facts.operator == order.owner and not order.term:
                self._check_retained(order.hold_account, facts)
            window = term_span(order.term) if order.term else (self.now_ms, None)
            self._check_unpromised(order, window)  # the staged hold is the new one
        command = Amend(order.id, r.price_minor, r.qty_units, self.now_ms)
        events = book.apply(command)
        if events and type(events[0]) is Rejected:
            self.tx.retract()
            raise _rejection(events[0])
        self._log(seq, key, [command])
        order.hold_id, order.hold_left = hold_id, need
        order.price_minor, order.remaining_units = price, qty
        order.updated_seq = seq
        self.touched[order.id] = order
        trades, leases = self._settle(key, book, seq, events, taker=order)
        return Outcome(order, trades, leases=leases)

    def set_terms(self, r: TermsRequest) -> TermsSet:
        """Give an asset a new tick and lot; each of its books reopens with them."""
        check_terms(r)
        facts = self._asset(r.asset_id)
        books = [(k, b) for k, b in self.state.books.items() if k.asset_id == r.asset_id]
        for key, book in books:
            self._expire_due(key, book)
        if any(len(book) for _, book in books):
            raise Refused(
                "market_busy",
                f"orders rest on a book of {r.asset_id}: its terms change only while none does",
            )
        seq = self.tx.next_seq
        self.tx.stage(
            EntryDraft(
                kind=EntryKind.MARKET_TERMS,
                idempotency_key=r.key,
                actor=r.actor,
                payload={
                    "asset_id": r.asset_id,
                    "tick_size_minor": r.tick_size_minor,
                    "lot_size_units": r.lot_size_units,
                    **({"lease_period": r.lease_period} if r.lease_period else {}),
                },
            )
        )
        opening = OpenBook(r.tick_size_minor, r.lot_size_units)
        for key, _ in books:
            self.rows.command(seq, key, encode([opening]))
            self.state.books[key] = Book(r.tick_size_minor, r.lot_size_units)
        period = r.lease_period or facts.lease_period
        self.rows.terms(r.asset_id, r.tick_size_minor, r.lot_size_units, seq, period)
        self.state.assets[r.asset_id] = AssetFacts(
            r.tick_size_minor, r.lot_size_units, facts.operator, facts.retained_min_units, period
        )
        return TermsSet(r.asset_id, r.tick_size_minor, r.lot_size_units, seq, period)

    def expire_due(self) -> None:
        """Expire the GTD orders due now on every book (the engine's clock)."""
        for key, book in list(self.state.books.items()):
            self._expire_due(key, book)

    # -- settlement ----------------------------------------------------------------------

    def _settle(
        self, key: BookKey, book: Book, seq: int, events: Sequence[Event], taker: OrderState
    ) -> tuple[list[TradeRow], list[LeaseRow]]:
        """The entries of a command's trades (or leases) and of the holds it no longer
        needs."""
        orders = self.state.orders
        releases: list[HoldChange] = []
        trades: list[TradeRow] = []
        leases: list[LeaseRow] = []
        for event in events:
            if type(event) is Trade:
                maker = orders[event.maker_id]
                if key.term:
                    leases.append(self._lease(key, maker, taker, event))
                else:
                    trades.append(self._trade(key, maker, taker, event))
                if maker.remaining_units == 0:
                    self._finish(maker, OrderStatus.FILLED, None, seq)
            elif type(event) is Cancelled:
                releases += self._cancelled(orders[event.order_id], event, seq, taker)
        if taker.status == OrderStatus.OPEN:
            resting = book.order(taker.id)
            if resting is None:
                if taker.reason == _MARKET_REMAINDER and _spent_what_it_could(book, taker):
                    taker.reason = None  # its budget ran out, not the book: filled
                filled = taker.reason is None and taker.filled_units > 0
                releases += taker.release()
                taker.remaining_units = 0
                if filled:
                    self._finish(taker, OrderStatus.FILLED, None, seq)
                else:
                    default = (
                        _MARKET_REMAINDER if taker.type is OrderType.MARKET else "ioc_remainder"
                    )
                    self._finish(taker, OrderStatus.CANCELLED, taker.reason or default, seq)
            elif resting.qty_units != taker.remaining_units or taker.hold_left != taker.need():
                raise IntegrityFailure(
                    "book_disagrees", f"order {taker.id}: the book and its hold disagree"
                )
        for start in range(0, len(releases), HOLD_CHANGES_PER_ENTRY_MAX):
            self.tx.stage(
                EntryDraft(
                    kind=EntryKind.ORDER_RELEASE,
                    idempotency_key=f"market:release:{self.tx.next_seq}",
                    actor=_ACTOR,
                    payload={"order_id": taker.id},
                    hold_changes=tuple(releases[start : start + HOLD_CHANGES_PER_ENTRY_MAX]),
                )
            )
        return trades, leases

    def _trade(self, key: BookKey, maker: OrderState, taker: OrderState, t: Trade) -> TradeRow:
        """One ``trade`` entry: the units seller -> buyer, the value buyer -> seller (less
        the fee), consuming both holds."""
        seller, buyer = (taker, maker) if t.taker_side is Side.SELL else (maker, taker)
        value = t.price_minor * t.qty_units
        units = units_of(key.asset_id)
        paid, fee = self._paid(key, buyer, seller, value)
        postings = [
            Posting(AccountKey(member_holder(seller.owner), units), -t.qty_units),
            Posting(AccountKey(member_holder(buyer.owner), units), t.qty_units),
            *paid,
        ]
        holds = [
            HoldChange(seller.hold_id, seller.hold_account, HoldOp.CONSUME, t.qty_units),
            HoldChange(buyer.hold_id, buyer.hold_account, HoldOp.CONSUME, value),
        ]
        seller.hold_left -= t.qty_units
        buyer.hold_left -= value
        holds += _improvement(buyer, taker, t)
        payload: dict[str, JsonValue] = {"asset_id": key.asset_id, "currency": key.currency}
        seq = self._match(EntryKind.TRADE, payload, postings, holds, maker, taker, t, value, fee)
        row = TradeRow(
            seq, key.asset_id, key.currency, t.price_minor, t.qty_units, fee, maker.id,
            taker.id, maker.owner, taker.owner, t.taker_side.value, self.now_ms,
        )  # fmt: skip
        self.trades.append(row)
        return row

    def _lease(self, key: BookKey, maker: OrderState, taker: OrderState, t: Trade) -> LeaseRow:
        """One ``lease`` entry: the rent, lessee -> lessor (less the fee), consuming the
        bid's hold; the offer's hold on the units is released, for the units stay the
        lessor's: what they promise from now on is the lease itself."""
        lessor, lessee = (taker, maker) if t.taker_side is Side.SELL else (maker, taker)
        rent = t.price_minor * t.qty_units
        postings, fee = self._paid(key, lessee, lessor, rent)
        holds = [
            *lessor.release(t.qty_units),
            HoldChange(lessee.hold_id, lessee.hold_account, HoldOp.CONSUME, rent),
        ]
        lessee.hold_left -= rent
        holds += _improvement(lessee, taker, t)
        starts_ms, ends_ms = term_span(key.term)
        payload: dict[str, JsonValue] = {
            "asset_id": key.asset_id,
            "currency": key.currency,
            "term": key.term,
            "lessor": lessor.owner,
            "lessee": lessee.owner,
        }
        seq = self._match(EntryKind.LEASE, payload, postings, holds, maker, taker, t, rent, fee)
        self.state.leases_out.setdefault((lessor.owner, key.asset_id), []).append(
            Span(starts_ms, ends_ms, t.qty_units)
        )
        row = LeaseRow(
            seq, key.asset_id, key.currency, key.term, starts_ms, ends_ms, t.price_minor,
            t.qty_units, fee, maker.id, taker.id, lessor.owner, lessee.owner,
            t.taker_side.value, self.now_ms,
        )  # fmt: skip
        self.leases.append(row)
        return row

    def _paid(
        self, key: BookKey, payer: OrderState, payee: OrderState, value: int
    ) -> tuple[list[Posting], int]:
        """The postings of a match's ``value`` (a price, or a rent), payer -> payee less
        the network fee (rounded down), the fee to ``external:fees``; and the fee."""
        fee = value * self.fee_bps // 10_000
        cash = currency_of(key.currency)
        postings = [
            Posting(AccountKey(member_holder(payer.owner), cash), -value),
            Posting(AccountKey(member_holder(payee.owner), cash), value - fee),
        ]
        if fee:
            postings.append(Posting(AccountKey(FEES, cash), fee))
        return postings, fee

    def _match(
        self,
        kind: EntryKind,
        payload: dict[str, JsonValue],
        postings: list[Posting],
        holds: list[HoldChange],
        maker: OrderState,
        taker: OrderState,
        t: Trade,
        value: int,
        fee: int,
    ) -> int:
        """Stage a match's entry (a trade or a lease): ``payload`` with the match's price,
        quantity, orders, taker side and fee added; then both orders filled by it.
        Returns its seq."""
        seq = self.tx.next_seq
        payload["price_minor"] = t.price_minor
        payload["qty_units"] = t.qty_units
        payload["maker_order_id"] = maker.id
        payload["taker_order_id"] = taker.id
        payload["taker_side"] = t.taker_side.value
        if fee:
            payload["fee_minor"] = fee
        self.tx.stage(
            EntryDraft(
                kind=kind,
                idempotency_key=f"market:{kind.value}:{seq}",
                actor=_ACTOR,
                payload=payload,
                postings=tuple(postings),
                hold_changes=tuple(holds),
            )
        )
        self._filled(maker, taker, t.qty_units, value, seq)
        return seq

    def _filled(
        self, maker: OrderState, taker: OrderState, units: int, value: int, seq: int
    ) -> None:
        """Both sides of a match (a trade or a lease) filled by ``units`` worth ``value``."""
        for order in (maker, taker):
            order.filled_units += units
            order.filled_minor += value
            order.remaining_units = max(order.remaining_units - units, 0)
            order.updated_seq = seq
            self.touched[order.id] = order

    def _cancelled(
        self, order: OrderState, event: Cancelled, seq: int, taker: OrderState
    ) -> list[HoldChange]:
        """The release a self-trade or remainder cancel calls for."""
        if event.left_units:  # DECREMENT: the order goes on, smaller
            order.remaining_units = event.left_units
            order.updated_seq = seq
            self.touched[order.id] = order
            return order.release(order.hold_left - order.need())
        if order is taker:  # its rest is released once, after all its trades
            order.reason = event.reason.value
            return []
        order.remaining_units = 0
        self._finish(order, OrderStatus.CANCELLED, event.reason.value, seq)
        return order.release()

    def _expire_due(self, key: BookKey, book: Book) -> None:
        due = book.next_expiry_ms()
        if due is None or due > self.now_ms:
            return
        seq = self.tx.next_seq
        command = Expire(self.now_ms)
        events = book.apply(command)
        if not events:
            return
        expired: list[tuple[int, list[HoldChange]]] = []
        for event in events:
            if type(event) is not Expired:
                raise IntegrityFailure("book_disagrees", f"an expiry returned {event!r}")
            order = self.state.orders[event.order_id]
            expired.append((order.id, order.release()))
            order.remaining_units = 0
            self._finish(order, OrderStatus.EXPIRED, "expired", seq)
        # Any number of orders may fall due at once; an entry holds only so many changes.
        for start in range(0, len(expired), HOLD_CHANGES_PER_ENTRY_MAX):
            part = expired[start : start + HOLD_CHANGES_PER_ENTRY_MAX]
            order_ids: list[JsonValue] = [order_id for order_id, _ in part]
            self.tx.stage(
                EntryDraft(
                    kind=EntryKind.ORDER_EXPIRE,
                    idempotency_key=f"market:expire:{self.tx.next_seq}",
                    actor=_ACTOR,
                    payload={
                        "asset_id": key.asset_id,
                        "currency": key.currency,
                        "order_ids": order_ids,
                    },
                    hold_changes=tuple(c for _, changes in part for c in changes),
                )
            )
        self._log(seq, key, [command])

    # -- helpers -------------------------------------------------------------------------

    def _finish(self, order: OrderState, status: str, reason: str | None, seq: int) -> None:
        order.status = status
        order.reason = reason
        order.updated_seq = seq
        self.touched[order.id] = order
        self.state.finish(order)

    def _log(self, seq: int, key: BookKey, commands: list[LogCommand]) -> None:
        self.rows.command(seq, key, encode(commands))
        if isinstance(commands[0], OpenBook):
            self.rows.book_opened(seq, key)

    def _check_retained(self, units: AccountKey, facts: AssetFacts) -> None:
        """An operator's sell holds, and its transfer moves, units only above the asset's
        retained minimum: what it keeps unheld after the draft staged last (taken back
        if it breaks the rule) covers the minimum, so no trade takes it below."""
        try:
            check_retained(facts.retained_min_units, self.tx.available(units))
        except Refused:
            self.tx.retract()
            raise

    def transfer(self, r: UnitTransferRequest) -> Entry:
        """Move the owner's units to another member, keeping what its leases and lease
        offers promise (see ``_check_unpromised``); a repeated request answers the entry
        stored."""
        check_key(r.key)
        draft = transfer_draft(
            sender=r.owner, recipient=r.recipient, instrument=units_of(r.asset_id),
            amount=r.qty_units, memo=r.memo, key=r.key, actor=r.actor,
        )  # fmt: skip
        stored = self.tx.replay_of(draft)
        if stored is not None:
            return stored
        facts = self._asset(r.asset_id)  # unknown_asset, project_not_funded
        units = AccountKey(member_holder(r.owner), units_of(r.asset_id))
        entry = self.tx.stage(draft, retractable=True)
        if facts.operator == r.owner:
            self._check_retained(units, facts)
        self._check_promised(r.owner, r.asset_id, units, (self.now_ms, None), None, "move of units")
        return entry

    def _check_unpromised(self, order: OrderState, window: tuple[int, int | None]) -> None:
        """A sell (or more of one, amended) holds only units not promised to a lease
        over ``window``: from now on for a trading sell, the term for a lease offer.

        The units an owner keeps out of its sells must cover, at every instant from now
        on, its leases out and its resting lease offers; and a lease offer's units must
        not be leased out or offered already over any instant of its term. The ledger
        has already held the units (its own check: no more than the owner has); here
        the offers' holds count as free, since what they promise is in the spans."""
        amended = order if order.id in self.state.orders and order.term else None
        what = "offer" if order.term else "sell"
        self._check_promised(order.owner, order.asset_id, order.hold_account, window, amended, what)

    def _check_promised(
        self,
        owner: str,
        asset_id: str,
        units: AccountKey,
        window: tuple[int, int | None],
        amended: OrderState | None,
        what: str,
    ) -> None:
        """The rule of ``_check_unpromised`` for ``owner``'s units of ``asset_id``
        (``units``, its account) after the draft staged last (taken back if it breaks
        it); ``amended``, an offer being amended, counts as it will stand."""
        state = self.state
        if (owner, asset_id) not in state.leases_out and (owner, asset_id) not in (
            state.lease_orders
        ):
            return  # nothing promised: the ledger's check is the whole rule
        spans = state.lease_spans(owner, asset_id, self.now_ms)
        offered = state.offered_units(owner, asset_id)
        if amended is not None:  # its old span and hold go; the staged hold is the new one
            starts_ms, ends_ms = term_span(amended.term)
            spans.remove(Span(starts_ms, ends_ms, amended.remaining_units))
            offered -= amended.hold_left
        free = self.tx.available(units) + offered
        promised = peak(spans, window[0], window[1])
        if promised > free:
            self.tx.retract()
            raise Refused(
                "units_leased_out",
                f"{promised} units of {asset_id} are leased out or offered for lease"
                f" {'from now on' if window[1] is None else 'over the term'}; this {what}"
                f" would leave {free}",
                promised_units=str(promised),
                unpromised_units=str(max(free, 0)),
            )

    def _check_not_to_self(self, r: OrderRequest) -> None:
        """A lease order does not meet its owner's own resting order of the other side on
        the same book: a lease to oneself leases nothing."""
        for order_id in self.state.lease_orders.get((r.owner, r.asset_id), ()):
            mine = self.state.orders[order_id]
            if mine.term == r.term and mine.currency == r.currency and mine.side is not r.side:
                raise Refused(
                    "lease_to_self",
                    f"your {'offer' if mine.side is Side.SELL else 'bid'} {order_id} rests on"
                    " this lease book: cancel it first, a lease to yourself leases nothing",
                    order_id=str(order_id),
                )

    def _check_terms(self, facts: AssetFacts, price: int | None, qty: int | None) -> None:
        if price is not None and price % facts.tick_size_minor:
            raise InvalidInput(
                "price_off_tick", f"the price must be a multiple of {facts.tick_size_minor}",
                tick_size_minor=str(facts.tick_size_minor),
            )  # fmt: skip
        if qty is not None and qty % facts.lot_size_units:
            raise InvalidInput(
                "qty_off_lot", f"the quantity must be a multiple of {facts.lot_size_units}",
                lot_size_units=str(facts.lot_size_units),
            )  # fmt: skip

    def _asset(self, asset_id: str) -> AssetFacts:
        facts = self.state.assets.get(asset_id)
        if facts is None:
            facts = self.rows.asset_facts(asset_id)  # raises unknown_asset, project_not_funded
            self.state.assets[asset_id] = facts
        return facts

    def _currency(self, code: str) -> None:
        if code not in self.state.currencies:
            self.rows.require_currency(code)
            self.state.currencies.add(code)

    def _member_id(self, address: str) -> int:
        member_id = self.state.member_ids.get(address)
        if member_id is None:
            member_id = self.rows.member_id(address)
            if member_id is None:
                raise NotFound("unknown_member", f"{address} is not a member: it holds nothing")
            self.state.member_ids[address] = member_id
        return member_id

    def _book(self, key: BookKey, facts: AssetFacts) -> tuple[Book, bool]:
        """The book of ``key``, or a new one (kept by ``place`` once an order is accepted:
        a book the order log never opened must not outlive a refused first order)."""
        book = self.state.books.get(key)
        if book is not None:
            return book, False
        return Book(facts.tick_size_minor, facts.lot_size_units), True

    def _own_open_order(self, owner: str, order_id: int, lease: bool | None) -> OrderState:
        if type(order_id) is not int or not 0 < order_id < 2**63:
            raise NotFound("unknown_order", f"no order {order_id!r}")
        order = self.state.orders.get(order_id)
        if order is None:
            # An order this batch finished is not stored yet (or stored as it was before);
            # one the engine finished lately it remembers; others it reads.
            done = self.touched.get(order_id)
            found = (
                (done.owner, done.status, done.term)
                if done is not None
                else self.state.finished.get(order_id) or self.rows.order_owner_status(order_id)
            )
            if found is None:
                raise NotFound("unknown_order", f"no order {order_id}")
            who, status, term = found
            _require_kind(order_id, term, lease)
            if who != owner:
                raise Forbidden("not_your_order", f"order {order_id} is another member's")
            raise Refused("order_not_open", f"order {order_id} is {status}")
        _require_kind(order_id, order.term, lease)
        if order.owner != owner:
            raise Forbidden("not_your_order", f"order {order_id} is another member's")
        return order

    def flush(self) -> list[Entry]:
        """Store the staged entries and the market's rows."""
        return self.tx.flush(
            then=lambda: self.rows.store(self.touched, self.new_orders, self.trades, self.leases)
        )


def _require_kind(order_id: int, term: str, lease: bool | None) -> None:
    """A request that names the kind of order it acts on (``lease``) finds no order of
    the other kind, open or finished, whoever owns it."""
    if lease is not None and bool(term) is not lease:
        raise NotFound("unknown_order", f"no {'lease order' if lease else 'order'} {order_id}")


def _improvement(buyer: OrderState, taker: OrderState, t: Trade) -> list[HoldChange]:
    """The release of a taker buy's price improvement: it held its own limit price for
    what it bought at the resting order's lower price."""
    if buyer is not taker or buyer.price_minor is None or buyer.price_minor <= t.price_minor:
        return []
    return buyer.release((buyer.price_minor - t.price_minor) * t.qty_units)


def _spent_what_it_could(book: Book, order: OrderState) -> bool:
    """Whether ``order`` is a market buy that traded and whose budget left cannot pay for
    one lot at the best ask still resting: it bought all its budget could (``filled``),
    rather than finding too few asks (``cancelled``, ``market_remainder``)."""
    if order.type is not OrderType.MARKET or order.side is not Side.BUY or not order.filled_units:
        return False
    best = book.best_ask()
    return best is not None and order.hold_left < best * book.lot_size_units


def new_order(r: OrderRequest, seq: int, now_ms: int) -> OrderState:
    """The order ``r`` places at ``seq``, before it meets the book: holding all it needs."""
    if r.type is OrderType.MARKET and r.side is Side.BUY:
        hold_left = r.spend_minor or 0
        qty = 0
    else:
        qty = r.qty_units or 0
        hold_left = qty if r.side is Side.SELL else (r.price_minor or 0) * qty
    return OrderState(
        id=seq, asset_id=r.asset_id, currency=r.currency, owner=r.owner, side=r.side,
        type=r.type, time_in_force=r.time_in_force, price_minor=r.price_minor,
        qty_units=qty, spend_minor=r.spend_minor, remaining_units=qty, filled_units=0,
        filled_minor=0, status=OrderStatus.OPEN, reason=None, post_only=r.post_only,
        self_trade=r.self_trade, expires_at_ms=r.expires_at_ms,
        hold_id=f"order:{seq}", hold_left=hold_left, placed_ms=now_ms, updated_seq=seq,
        term=r.term,
    )  # fmt: skip


def order_payload(order: OrderState) -> dict[str, JsonValue]:
    payload: dict[str, JsonValue] = {
        "asset_id": order.asset_id,
        "currency": order.currency,
        "side": order.side.value,
        "type": order.type.value,
        "time_in_force": order.time_in_force.value,
    }
    if order.price_minor is not None:
        payload["price_minor"] = order.price_minor
    if order.type is OrderType.MARKET and order.side is Side.BUY:
        payload["spend_minor"] = order.spend_minor
    else:
        payload["qty_units"] = order.qty_units
    if order.expires_at_ms is not None:
        payload["expires_at_ms"] = order.expires_at_ms
    if order.post_only:
        payload["post_only"] = True
    payload["self_trade"] = order.self_trade.value
    if order.term:
        payload["term"] = order.term
    return payload


def _rest_within_term(order: OrderState, ends_ms: int, now_ms: int) -> None:
    """A lease order rests at most until its term ends (and no longer than any order
    may): a GTC one rests as GTD to then, a GTD one to the earlier of the two. What it
    asked for is what its placing entry records."""
    if order.time_in_force not in (TimeInForce.GTC, TimeInForce.GTD):
        return
    until = min(ends_ms, now_ms + EXPIRES_AHEAD_MAX_MS)
    order.expires_at_ms = min(order.expires_at_ms or until, until)
    order.time_in_force = TimeInForce.GTD


_MARKET_REMAINDER = "market_remainder"
_REJECTIONS: dict[str, tuple[type[InvalidInput] | type[Refused], str]] = {
    "post_only_would_cross": (Refused, "the post-only order would trade on arrival"),
    "fok_unfillable": (Refused, "the fill-or-kill order cannot be filled at once in full"),
    "book_full": (Refused, "the book holds its maximum number of orders"),
    "bad_tick": (InvalidInput, "the price is off the book's tick"),
    "bad_lot": (InvalidInput, "the quantity is off the book's lot"),
    "expired": (InvalidInput, "the order's expiry has passed"),
}


def _rejection(event: Rejected) -> InvalidInput | Refused:
    reason = event.reason.value
    kind, message = _REJECTIONS.get(reason, (InvalidInput, f"the book refused the order: {reason}"))
    return kind(reason, message)
