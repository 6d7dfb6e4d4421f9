"""``dpn bench market``: the matching book against pyorderbook and a minimal floor book.

Modes, one module each (all print JSON on stdout; exit 1 if the books disagree, 2 on bad
input):

- ``compare``, ``--json`` (default when no other mode is given; without ``--json`` a
  human summary is printed too): a seeded stream of ``--events`` events (90 % limit
  orders, half buys, prices around a mid with a fifth crossing it, quantities 1-100;
  10 % cancels of one of the last 1,000 orders, which may already be gone) is fed to
  ``market.Book``, to ``pyorderbook`` 0.4.9 and to ``bench.market.floor_book.FloorBook``,
  in ``--runs`` rounds; the median rate of each is reported. One more, untimed round
  checks that the three agree on every trade (maker, taker, price, quantity, in order),
  every successful cancel and every resting order.
- ``replay``, ``--replay FILE --trades-out OUT``: JSON lines ``{"op":"limit","id":..,"side":..,
  "price":..,"qty":..}`` / ``{"op":"cancel","id":..}`` into a fresh book (each order its
  own owner); every trade to OUT as ``{"maker":..,"taker":..,"price":..,"qty":..}``.
- ``memory``, ``--memory``: ``--orders`` (1,000,000) resting orders in one book; peak RSS.

Timing follows ``timeit``'s convention: the garbage collector is off inside a timed
loop (after a full collection), for all three books alike. The same rounds are also run
with it on, reported under ``"gc_on"``.

Semantic mapping for pyorderbook: it takes ``float``-like prices and keeps them as
``Decimal``; integer prices map to it exactly. It generates its own UUID order ids, so
the adapter keeps a dict from our ids to its ``Order`` objects (for cancels and for
translating its trades back). It cancels only orders still in its id map, as we do. It
has no owners, so the stream gives every order its own owner and self-trade prevention
never fires; it has no market orders, time in force or amend, so the stream holds only
limit orders and cancels, which all three books agree on exactly. The stream itself is
``bench.market.stream``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.market.compare import EVENTS_DEFAULT, RUNS_DEFAULT, compare, human
from bench.market.memory import MEMORY_ORDERS_DEFAULT, memory
from bench.market.replay import ReplayInputError, replay

__all__ = ["main"]


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
        print(human(summary))
    print(json.dumps(summary))
    return 0 if agree else 1
