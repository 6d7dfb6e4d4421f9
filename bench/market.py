"""``dpn bench market``: the matching book against pyorderbook and a minimal floor book.

Modes (all print JSON on stdout; exit 1 if the books disagree, 2 on bad input):

- ``--json`` (default when no other mode is given; without ``--json`` a human summary is
  printed too): a seeded stream of ``--events`` events (90 % limit orders, half buys,
  prices around a mid with a fifth crossing it, quantities 1-100; 10 % cancels of one of
  the last 1,000 orders, which may already be gone) is fed to ``market.Book``, to
  ``pyorderbook`` 0.4.9 and to ``bench.floor_book.FloorBook``, in ``--runs`` rounds; the
  median rate of each is reported. One more, untimed round checks that the three agree
  on every trade (maker, taker, price, quantity, in order), every successful cancel and
  every resting order.
- ``--replay FILE --trades-out OUT``: JSON lines ``{"op":"limit","id":..,"side":..,
  "price":..,"qty":..}`` / ``{"op":"cancel","id":..}`` into a fresh book (each order its
  own owner); every trade to OUT as ``{"maker":..,"taker":..,"price":..,"qty":..}``.
- ``--memory``: ``--orders`` (1,000,000) resting orders in one book; peak RSS.

Timing follows ``timeit``'s convention: the garbage collector is off inside a timed
loop (after a full collection), for all three books alike. The same rounds are also run
with it on, reported under ``"gc_on"``.

Semantic mapping for pyorderbook: it takes ``float``-like prices and keeps them as
``Decimal``; integer prices map to it exactly. It generates its own UUID order ids, so
the adapter keeps a dict from our ids to its ``Order`` objects (for cancels and for
translating its trades back). It cancels only orders still in its id map, as we do. It
has no owners, so the stream gives every order its own owner and self-trade prevention
never fires; it has no market orders, time in force or amend, so the stream holds only
limit orders and cancels, which all three books agree on exactly.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from bench.floor_book import FloorBook
from market import Book, Cancelled, Rejected, Side, Trade

LIMIT = "limit"
CANCEL = "cancel"
MID_PRICE = 10_000
RECENT_ORDERS = 1_000
EVENTS_DEFAULT = 200_000
RUNS_DEFAULT = 5
MEMORY_ORDERS_DEFAULT = 1_000_000
REPLAY_LINE_MAX_BYTES = 1_024
REPLAY_EVENTS_MAX = 50_000_000
TARGET_PEER_RATIO = 4.0
TARGET_FLOOR_RATIO = 0.5

StreamEvent = tuple[Any, ...]
"""``(LIMIT, id, "buy"|"sell", price, qty)`` or ``(CANCEL, id)``."""


class Tally(NamedTuple):
    """What a book did with a stream; equal across books that agree."""

    fills: int
    filled_units: int
    resting: int
    cancelled: int


def make_stream(events: int, seed: int) -> list[StreamEvent]:
    """The benchmark's event stream, the same for the same ``events`` and ``seed``."""
    rng = random.Random(seed)
    recent: deque[int] = deque(maxlen=RECENT_ORDERS)
    stream: list[StreamEvent] = []
    next_id = 1
    for _ in range(events):
        if recent and rng.random() < 0.10:
            stream.append((CANCEL, recent[rng.randrange(len(recent))]))
            continue
        buy = rng.random() < 0.5
        crossing = rng.random() < 0.2
        if buy:
            price = MID_PRICE + rng.randint(0, 10) if crossing else MID_PRICE - rng.randint(1, 50)
        else:
            price = MID_PRICE - rng.randint(0, 10) if crossing else MID_PRICE + rng.randint(1, 50)
        stream.append((LIMIT, next_id, "buy" if buy else "sell", price, rng.randint(1, 100)))
        recent.append(next_id)
        next_id += 1
    return stream


# ---------------------------------------------------------------------- the three books
# Each runner feeds the whole stream and tallies from the book's own output as it goes,
# the way a consumer would; it returns the tally and the seconds the loop took.


def run_ours(stream: Sequence[StreamEvent]) -> tuple[Tally, float]:
    """``market.Book``: every order is checked, every outcome is an event."""
    book = Book()
    place = book.place_limit
    cancel = book.cancel
    sides = {"buy": Side.BUY, "sell": Side.SELL}
    fills = units = cancelled = 0
    start = time.perf_counter()
    for ev in stream:
        if ev[0] is LIMIT:
            events = place(ev[1], ev[1], sides[ev[2]], ev[3], ev[4])
            if len(events) > 1:
                for event in events:
                    if type(event) is Trade:
                        fills += 1
                        units += event.qty_units
        elif type(cancel(ev[1])[0]) is Cancelled:
            cancelled += 1
    seconds = time.perf_counter() - start
    return Tally(fills, units, len(book), cancelled), seconds


def run_peer(stream: Sequence[StreamEvent]) -> tuple[Tally, float]:
    """``pyorderbook`` 0.4.9 (one symbol)."""
    from pyorderbook import Book as PeerBook
    from pyorderbook import ask, bid

    book = PeerBook()
    makers = {"buy": bid, "sell": ask}
    by_id: dict[int, Any] = {}
    fills = units = cancelled = 0
    start = time.perf_counter()
    for ev in stream:
        if ev[0] is LIMIT:
            order = makers[ev[2]]("X", ev[3], ev[4])
            by_id[ev[1]] = order
            trades = book.match(order).trades
            fills += len(trades)
            for trade in trades:
                units += trade.fill_quantity
        else:
            order = by_id.get(ev[1])
            if order is not None and book.get_order(order.id) is not None:
                book.cancel(order)
                cancelled += 1
    seconds = time.perf_counter() - start
    return Tally(fills, units, len(book.order_map), cancelled), seconds


def run_floor(stream: Sequence[StreamEvent]) -> tuple[Tally, float]:
    """``bench.floor_book.FloorBook``."""
    book = FloorBook()
    limit = book.limit
    cancel = book.cancel
    sides = {"buy": True, "sell": False}
    fills = units = cancelled = 0
    start = time.perf_counter()
    for ev in stream:
        if ev[0] is LIMIT:
            for fill in limit(ev[1], sides[ev[2]], ev[3], ev[4]):
                fills += 1
                units += fill[3]
        elif cancel(ev[1]):
            cancelled += 1
    seconds = time.perf_counter() - start
    return Tally(fills, units, len(book.resting()), cancelled), seconds


RUNNERS: dict[str, Callable[[Sequence[StreamEvent]], tuple[Tally, float]]] = {
    "ours": run_ours,
    "peer": run_peer,
    "floor": run_floor,
}


# ------------------------------------------------------------------ exact agreement


class Outcome(NamedTuple):
    """Everything a book did with a stream, in our ids."""

    trades: list[tuple[int, int, int, int]]  # (maker, taker, price, qty) in order
    cancelled: list[int]
    resting: dict[int, int]  # id -> remaining qty


def outcome_ours(stream: Sequence[StreamEvent]) -> Outcome:
    """Our book's full outcome (untimed)."""
    book = Book()
    trades: list[tuple[int, int, int, int]] = []
    cancelled: list[int] = []
    for ev in stream:
        if ev[0] is LIMIT:
            side = Side.BUY if ev[2] == "buy" else Side.SELL
            for e in book.place_limit(ev[1], ev[1], side, ev[3], ev[4]):
                if isinstance(e, Trade):
                    trades.append((e.maker_id, e.taker_id, e.price_minor, e.qty_units))
        elif isinstance(book.cancel(ev[1])[0], Cancelled):
            cancelled.append(ev[1])
    book.check_invariants()
    return Outcome(trades, cancelled, {o.order_id: o.qty_units for o in book.resting()})


def outcome_peer(stream: Sequence[StreamEvent]) -> Outcome:
    """pyorderbook's full outcome (untimed), its UUIDs mapped back to our ids."""
    from pyorderbook import Book as PeerBook
    from pyorderbook import ask, bid

    book = PeerBook()
    by_id: dict[int, Any] = {}
    ours: dict[Any, int] = {}
    trades: list[tuple[int, int, int, int]] = []
    cancelled: list[int] = []
    for ev in stream:
        if ev[0] is LIMIT:
            order = (bid if ev[2] == "buy" else ask)("X", ev[3], ev[4])
            by_id[ev[1]] = order
            ours[order.id] = ev[1]
            for t in book.match(order).trades:
                price = int(t.fill_price)
                if price != t.fill_price:
                    raise ValueError(f"pyorderbook price {t.fill_price} is not an integer")
                trades.append(
                    (ours[t.standing_order_id], ours[t.incoming_order_id], price, t.fill_quantity)
                )
        else:
            order = by_id.get(ev[1])
            if order is not None and book.get_order(order.id) is not None:
                book.cancel(order)
                cancelled.append(ev[1])
    resting = {ours[uid]: o.quantity for uid, o in book.order_map.items()}
    return Outcome(trades, cancelled, resting)


def outcome_floor(stream: Sequence[StreamEvent]) -> Outcome:
    """The floor book's full outcome (untimed)."""
    book = FloorBook()
    trades: list[tuple[int, int, int, int]] = []
    cancelled: list[int] = []
    for ev in stream:
        if ev[0] is LIMIT:
            trades.extend(book.limit(ev[1], ev[2] == "buy", ev[3], ev[4]))
        elif book.cancel(ev[1]):
            cancelled.append(ev[1])
    return Outcome(trades, cancelled, book.resting())


def disagreements(stream: Sequence[StreamEvent]) -> list[str]:
    """How the three books' outcomes differ (empty when they agree exactly)."""
    ours = outcome_ours(stream)
    problems = []
    for name, other in (("peer", outcome_peer(stream)), ("floor", outcome_floor(stream))):
        for field in Outcome._fields:
            if getattr(ours, field) != getattr(other, field):
                problems.append(f"{name} differs from ours in {field}")
    return problems


# ------------------------------------------------------------------------- the modes


def _timed(
    runner: Callable[[Sequence[StreamEvent]], tuple[Tally, float]],
    stream: Sequence[StreamEvent],
    gc_off: bool,
) -> tuple[Tally, float]:
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        return runner(stream)
    finally:
        gc.enable()


def compare(events: int, runs: int, seed: int) -> tuple[dict[str, Any], bool]:
    """Time the three books on one stream; the summary and whether they all agree."""
    stream = make_stream(events, seed)
    problems = disagreements(stream)
    rates: dict[str, dict[str, list[float]]] = {"off": {}, "on": {}}
    tallies: dict[str, set[Tally]] = {name: set() for name in RUNNERS}
    names = list(RUNNERS)
    for round_no in range(runs):
        order = names[round_no % 3 :] + names[: round_no % 3]  # rotate who goes first
        for mode in ("off", "on"):
            for name in order:
                tally, seconds = _timed(RUNNERS[name], stream, gc_off=mode == "off")
                rates[mode].setdefault(name, []).append(events / seconds)
                tallies[name].add(tally)
    distinct = set().union(*tallies.values())
    if len(distinct) != 1:
        problems.append(f"tallies differ: { {n: sorted(t) for n, t in tallies.items()} }")
    tally = tallies["ours"].pop()

    def medians(mode: str) -> dict[str, Any]:
        ours, peer, floor = (statistics.median(rates[mode][n]) for n in names)
        return {
            "events_per_s": round(ours),
            "peer_events_per_s": round(peer),
            "floor_events_per_s": round(floor),
            "ratio_vs_peer": round(ours / peer, 3),
            "ratio_vs_floor": round(ours / floor, 3),
            # Judged unrounded: 0.497 must not pass for 0.5.
            "met": ours / peer >= TARGET_PEER_RATIO and ours / floor >= TARGET_FLOOR_RATIO,
        }

    primary = medians("off")
    gc_on = medians("on")
    met, met_gc_on = primary.pop("met"), gc_on.pop("met")
    summary: dict[str, Any] = {
        **primary,
        "fills": tally.fills,
        "filled_units": tally.filled_units,
        "resting": tally.resting,
        "cancelled": tally.cancelled,
        "events": events,
        "runs": runs,
        "seed": seed,
        "agree": not problems,
        "problems": problems,
        "targets": {
            "ratio_vs_peer_min": TARGET_PEER_RATIO,
            "ratio_vs_floor_min": TARGET_FLOOR_RATIO,
            "met": met,
            "met_with_gc_on": met_gc_on,
        },
        "gc_on": gc_on,
        "timing": "median of runs; gc off in timed loops (timeit's convention), see gc_on",
        "python": sys.version.split()[0],
    }
    return summary, not problems


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(orders: int) -> dict[str, Any]:
    """Rest ``orders`` non-crossing orders (5,000 levels a side, 1,000 owners) in one
    book and report the process's peak RSS."""
    baseline = _rss_mib()
    book = Book(orders_max=orders)
    place = book.place_limit
    buy, sell = Side.BUY, Side.SELL
    start = time.perf_counter()
    for i in range(orders):
        level = (i >> 1) % 5_000
        if i & 1:
            place(i + 1, 1 + i % 1_000, sell, MID_PRICE + 1 + level, 1 + i % 100)
        else:
            place(i + 1, 1 + i % 1_000, buy, MID_PRICE - 1 - level, 1 + i % 100)
    seconds = time.perf_counter() - start
    peak = _rss_mib()
    depth = book.depth(1)
    return {
        "orders": orders,
        "resting": len(book),
        "best_bid": depth.bids[0].price_minor if depth.bids else None,
        "best_ask": depth.asks[0].price_minor if depth.asks else None,
        "peak_rss_mib": round(peak, 1),
        "baseline_rss_mib": round(baseline, 1),
        "target_mib": 1024,
        "met": peak < 1024,
        "seconds": round(seconds, 2),
    }


_REPLAY_FIELDS = {"limit": ("id", "side", "price", "qty"), "cancel": ("id",)}


class ReplayInputError(ValueError):
    """A replay line that is not a valid event."""


def _parse_line(line: str, number: int) -> StreamEvent:
    if len(line) > REPLAY_LINE_MAX_BYTES:
        raise ReplayInputError(f"line {number}: longer than {REPLAY_LINE_MAX_BYTES} bytes")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReplayInputError(f"line {number}: not JSON ({exc.msg})") from None
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


def _human(summary: dict[str, Any]) -> str:
    gc_on = summary["gc_on"]
    return "\n".join(
        [
            f"market book bench: {summary['events']} events, median of {summary['runs']} runs",
            f"  ours   {summary['events_per_s']:>10,} events/s"
            f"   (gc on: {gc_on['events_per_s']:,})",
            f"  peer   {summary['peer_events_per_s']:>10,} events/s   pyorderbook 0.4.9"
            f"   ours/peer {summary['ratio_vs_peer']} (target >= {TARGET_PEER_RATIO})",
            f"  floor  {summary['floor_events_per_s']:>10,} events/s   heap+deque minimum"
            f"   ours/floor {summary['ratio_vs_floor']} (target >= {TARGET_FLOOR_RATIO})",
            f"  fills {summary['fills']}, filled units {summary['filled_units']}, "
            f"resting {summary['resting']}, cancelled {summary['cancelled']}, "
            f"agree: {summary['agree']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``dpn bench market ARGS``; 0 when the books agree, 1 when not, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="dpn bench market", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.add_argument("--events", type=int, default=EVENTS_DEFAULT)
    parser.add_argument("--runs", type=int, default=RUNS_DEFAULT)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replay", type=Path, metavar="FILE")
    parser.add_argument("--trades-out", type=Path, metavar="OUT")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--orders", type=int, default=MEMORY_ORDERS_DEFAULT)
    args = parser.parse_args(argv)
    if args.replay is not None or args.trades_out is not None:
        if args.replay is None or args.trades_out is None:
            parser.error("--replay and --trades-out go together")
        try:
            print(json.dumps(replay(args.replay, args.trades_out)))
        except (OSError, ReplayInputError) as exc:
            print(f"replay: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.memory:
        if not 1 <= args.orders <= 10 * MEMORY_ORDERS_DEFAULT:
            parser.error(f"--orders must be 1..{10 * MEMORY_ORDERS_DEFAULT}")
        print(json.dumps(memory(args.orders)))
        return 0
    if not 1 <= args.events <= 10 * EVENTS_DEFAULT or not 1 <= args.runs <= 50:
        parser.error(f"--events must be 1..{10 * EVENTS_DEFAULT}, --runs 1..50")
    summary, agree = compare(args.events, args.runs, args.seed)
    if not args.json:
        print(_human(summary))
    print(json.dumps(summary))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
