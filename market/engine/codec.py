"""The order log's words: a book's commands as compact JSON, and back.

A row of ``market_commands`` holds a JSON array of commands, applied in order: usually
one; a book's first row opens it with its terms first (``["B", tick, lot]``), and a
change of an asset's terms reopens each of its (empty) books. Each command is an array
whose first element says what it is::

    ["B", tick_size_minor, lot_size_units]
    ["L", order_id, owner, side, price, qty, tif, expires_at_ms, post_only, stp, now_ms]
    ["M", order_id, owner, side, qty, spend, stp, now_ms]
    ["C", order_id, now_ms]
    ["A", order_id, price | null, qty | null, now_ms]
    ["E", now_ms]

The strings are the book's own enum values, which never change once released.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ledger.core.errors import IntegrityFailure
from market.book import (
    Amend,
    Cancel,
    Command,
    Expire,
    PlaceLimit,
    PlaceMarket,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

__all__ = ["OpenBook", "decode", "encode"]


@dataclass(frozen=True, slots=True)
class OpenBook:
    """(Re)open a book, empty, with these terms."""

    tick_size_minor: int
    lot_size_units: int


LogCommand = Command | OpenBook


def _one(c: LogCommand) -> list[object]:
    if type(c) is PlaceLimit:
        return [
            "L", c.order_id, c.owner, c.side.value, c.price_minor, c.qty_units, c.tif.value,
            c.expires_at_ms, int(c.post_only), c.stp.value, c.now_ms,
        ]  # fmt: skip
    if type(c) is PlaceMarket:
        return ["M", c.order_id, c.owner, c.side.value, c.qty_units, c.spend_minor,
                c.stp.value, c.now_ms]  # fmt: skip
    if type(c) is Cancel:
        return ["C", c.order_id, c.now_ms]
    if type(c) is Amend:
        return ["A", c.order_id, c.price_minor, c.qty_units, c.now_ms]
    if type(c) is Expire:
        return ["E", c.now_ms]
    if type(c) is OpenBook:
        return ["B", c.tick_size_minor, c.lot_size_units]
    raise TypeError(f"not a market command: {c!r}")


def encode(commands: list[LogCommand]) -> str:
    """The JSON text of a row of the order log."""
    if len(commands) == 1 and type(commands[0]) is PlaceLimit:
        c = commands[0]  # the most frequent row, written out (json.dumps costs 3x more)
        expires = "null" if c.expires_at_ms is None else int(c.expires_at_ms)
        return (
            f'[["L",{int(c.order_id)},{int(c.owner)},"{c.side.value}",{int(c.price_minor)},'
            f'{int(c.qty_units)},"{c.tif.value}",{expires},{int(c.post_only)},'
            f'"{c.stp.value}",{int(c.now_ms)}]]'
        )
    return json.dumps([_one(c) for c in commands], separators=(",", ":"))


def decode(text: str) -> list[LogCommand]:
    """Read a row of the order log back; ``IntegrityFailure`` if it is not one."""
    try:
        return [_decode_one(item) for item in json.loads(text)]
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise IntegrityFailure(
            "order_log_unreadable", f"an order log row is not valid: {error}"
        ) from error


def _decode_one(item: list[object]) -> LogCommand:
    tag = item[0]
    if tag == "L":
        _, oid, owner, side, price, qty, tif, expires, post_only, stp, now = item
        return PlaceLimit(
            _int(oid), _int(owner), _SIDES[side], _int(price), _int(qty), _TIFS[tif],
            None if expires is None else _int(expires), bool(post_only), _STPS[stp], _int(now),
        )  # fmt: skip
    if tag == "M":
        _, oid, owner, side, qty, spend, stp, now = item
        return PlaceMarket(
            _int(oid), _int(owner), _SIDES[side], _int(qty), _int(spend), _STPS[stp],
            _int(now),
        )  # fmt: skip
    if tag == "C":
        _, oid, now = item
        return Cancel(_int(oid), _int(now))
    if tag == "A":
        _, oid, price, qty, now = item
        return Amend(
            _int(oid), None if price is None else _int(price),
            None if qty is None else _int(qty), _int(now),
        )  # fmt: skip
    if tag == "E":
        return Expire(_int(item[1]))
    if tag == "B":
        return OpenBook(_int(item[1]), _int(item[2]))
    raise ValueError(f"unknown command tag {tag!r}")


# Value -> member, by dict: calling an enum costs ten times more, and a rebuild decodes a
# million of these. An unknown value is a KeyError: the row is not a valid one.
_SIDES: dict[object, Side] = {m.value: m for m in Side}
_TIFS: dict[object, TimeInForce] = {m.value: m for m in TimeInForce}
_STPS: dict[object, SelfTradePrevention] = {m.value: m for m in SelfTradePrevention}


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    return value
