"""Events: what a command did, in the order it happened.

Each command returns a sequence of events, a list or a tuple (an order that is simply
accepted and rests gets one shared tuple); treat it as read-only. Events are immutable
``NamedTuple`` s: comparable by value, matchable with ``match``/``case``. A command's
events are, in order: ``Expired`` for every GTD order that fell due at ``now_ms``, then
either one ``Rejected`` or the command's own events:

- place: ``Accepted``; then ``Trade`` s and self-trade ``Cancelled`` s in matching order;
  then at most one ``Cancelled`` for the incoming order's unfilled rest (IOC, market,
  self-trade); what is left of a GTC/GTD limit order rests silently.
- cancel: one ``Cancelled`` (reason ``user``).
- amend: ``Amended``; then, if the new price crosses, trades as for a place.
- expire: only the ``Expired`` events.

Conservation, for every order: quantity placed (plus amend changes) equals units traded
plus units cancelled plus units expired plus units resting.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from market.book.reasons import CancelReason, RejectReason
from market.book.terms import Owner, Side

__all__ = ["ACCEPTED", "Accepted", "Amended", "Cancelled", "Event", "Expired", "Rejected", "Trade"]


class Accepted(NamedTuple):
    """The command's order passed every check and was matched (and may rest).

    It has no fields: it always answers the command it is returned for, whose order id
    and owner the caller holds. There is one instance, ``ACCEPTED``, so acknowledging an
    order allocates nothing.
    """


ACCEPTED: Final = Accepted()
"""The only ``Accepted`` there is."""


class Rejected(NamedTuple):
    """The command changed nothing; ``order_id`` is the order it named."""

    order_id: int
    reason: RejectReason


class Trade(NamedTuple):
    """``qty_units`` changed hands at the resting (maker) order's price."""

    maker_id: int
    taker_id: int
    maker_owner: Owner
    taker_owner: Owner
    price_minor: int
    qty_units: int
    taker_side: Side


class Cancelled(NamedTuple):
    """``qty_units`` of the order were removed; ``left_units`` of it still rest.

    ``left_units`` is non-zero only for a DECREMENT self-trade prevention on an order that
    goes on. For a spend-based market buy, units are not known in advance: its final
    ``market_remainder`` cancel carries ``qty_units == 0``.
    """

    order_id: int
    owner: Owner
    reason: CancelReason
    qty_units: int
    left_units: int


class Expired(NamedTuple):
    """A GTD order reached its expiry; its ``qty_units`` left the book."""

    order_id: int
    owner: Owner
    qty_units: int


class Amended(NamedTuple):
    """The order now has this price and remaining quantity.

    ``priority_kept`` is true when only the quantity went down (or nothing changed); a new
    price or a larger quantity sends the order to the back of its new price level.
    """

    order_id: int
    owner: Owner
    price_minor: int
    qty_units: int
    old_price_minor: int
    old_qty_units: int
    priority_kept: bool


Event = Accepted | Rejected | Trade | Cancelled | Expired | Amended
"""Anything a command can emit."""
