"""``--replay FILE --trades-out OUT``: a JSON-lines event file into a fresh book.

Each input line is ``{"op":"limit","id":..,"side":..,"price":..,"qty":..}`` or
``{"op":"cancel","id":..}`` (each order its own owner); every trade goes to OUT as
``{"maker":..,"taker":..,"price":..,"qty":..}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.market.stream import CANCEL, LIMIT, StreamEvent
from ledger.core.errors import InvalidInput
from ledger.core.json_input import parse_json_input
from market import Book, Cancelled, Rejected, Side, Trade

__all__ = ["REPLAY_EVENTS_MAX", "REPLAY_LINE_MAX_BYTES", "ReplayInputError", "replay"]

REPLAY_LINE_MAX_BYTES = 1_024
REPLAY_EVENTS_MAX = 50_000_000


_REPLAY_FIELDS = {"limit": ("id", "side", "price", "qty"), "cancel": ("id",)}


class ReplayInputError(ValueError):
    """A replay line that is not a valid event."""


def _parse_line(line: str, number: int) -> StreamEvent:
    if len(line) > REPLAY_LINE_MAX_BYTES:
        raise ReplayInputError(f"line {number}: longer than {REPLAY_LINE_MAX_BYTES} bytes")
    try:
        # The JSON reader for outside input: nesting, numbers and keys held to limits.
        obj = parse_json_input(line.encode())
    except InvalidInput as exc:
        raise ReplayInputError(f"line {number}: {exc.code}: {exc.message}") from None
    if not isinstance(obj, dict):
        raise ReplayInputError(f"line {number}: not a JSON object")
    op = obj.get("op")
    fields = _REPLAY_FIELDS.get(op) if isinstance(op, str) else None
    if fields is None or set(obj) != {"op", *fields}:
        raise ReplayInputError(f"line {number}: expected a limit or cancel event, got {obj}")
    for key in fields:
        value = obj[key]
        if key == "side" and value not in ("buy", "sell"):
            raise ReplayInputError(f"line {number}: side must be buy or sell")
        if key != "side" and type(value) is not int:
            raise ReplayInputError(f"line {number}: {key} must be an integer")
    if op == "limit":
        return (LIMIT, obj["id"], obj["side"], obj["price"], obj["qty"])
    return (CANCEL, obj["id"])


def replay(source: Path, trades_out: Path) -> dict[str, Any]:
    """Feed a JSON-lines event file to a fresh book; write its trades; summarize."""
    book = Book()
    sides = {"buy": Side.BUY, "sell": Side.SELL}
    counts = {"events": 0, "fills": 0, "filled_units": 0, "cancelled": 0, "rejected": 0}
    start = time.perf_counter()
    with source.open(encoding="utf-8") as lines, trades_out.open("w", encoding="utf-8") as out:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if counts["events"] >= REPLAY_EVENTS_MAX:
                raise ReplayInputError(f"more than {REPLAY_EVENTS_MAX} events")
            ev = _parse_line(line, number)
            counts["events"] += 1
            if ev[0] is LIMIT:
                events = book.place_limit(ev[1], ev[1], sides[ev[2]], ev[3], ev[4])
            else:
                events = book.cancel(ev[1])
            for e in events:
                if isinstance(e, Trade):
                    counts["fills"] += 1
                    counts["filled_units"] += e.qty_units
                    record = {
                        "maker": e.maker_id,
                        "taker": e.taker_id,
                        "price": e.price_minor,
                        "qty": e.qty_units,
                    }
                    out.write(json.dumps(record, separators=(",", ":")) + "\n")
                elif isinstance(e, Cancelled):
                    counts["cancelled"] += 1
                elif isinstance(e, Rejected):
                    counts["rejected"] += 1
    return {
        **counts,
        "resting": len(book),
        "state_hash": book.state_hash(),
        "seconds": round(time.perf_counter() - start, 3),
    }
