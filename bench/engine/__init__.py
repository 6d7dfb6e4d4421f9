"""``dpn bench engine``: orders through the market engine, against the ledger's own
batched append rate on the same database, and the engine's rebuild.

For each database (a fresh SQLite file always, unless ``--no-sqlite``; a fresh
PostgreSQL schema, dropped after, when ``--postgres URL`` or ``DPN_TEST_POSTGRES_URL``
is given, unless ``--sqlite-only``), not timed: ``--owners`` members with cash in USD
and EUR and units of ``--books`` assets (``bench.engine.traders``); one resting order
per book, so every book is open and the engine warm. Then:

- ``orders_per_s``: ``--orders`` requests of the mix of ``bench.engine.flow`` (limit
  GTC and IOC around each book's mid, market orders, cancels of resting orders) sent
  to ``MarketEngine.submit`` from ``--threads`` threads, each keeping ``--window``
  waiting, until every one is answered; ``entries_per_s`` counts the journal entries
  they wrote (placings, trades, releases, cancels). Figures a busy machine does not
  move: ``sa_statements_per_order`` and ``_per_batch`` (statements sent through
  SQLAlchemy, an executemany one; the journal's own COPY and its lock and head reads go
  to the driver directly and are not in it, nor are BEGIN and COMMIT) and
  ``cpu_ms_per_order`` (this process's CPU, every thread; not the database server's),
  of which ``batch_cpu_ms_per_order`` in the engine's batches (the rest: the asking
  threads, the engine's queue);
- ``lease_orders_per_s``: after the trading flow and the floor, on the same database
  and engine, ``--lease-orders`` requests (as many as ``--orders`` unless given; 0
  skips) of the same mix on lease books (``bench.engine.flow.lease_slots``): each
  book's asset and currency over the asset's next ``LEASE_TERMS`` quarter terms
  (``market.engine.lease_terms.next_terms`` at the ledger's clock, the engine's: the
  one under way first), a rent mid of 5 % of the unit's price, each owner a lessor or a
  lessee on each lease book; one resting bid per lease book first, untimed.
  ``lease_orders``, ``leases`` (matches, checked against ``market_leases``),
  ``lease_seconds``, and ``lease_refused`` counted as the trading flow counts its
  (every owner holds 10^9 units of each asset and offers at most 100 at a time, so the
  encumbrance rule, ``units_leased_out``, rarely if ever refuses); no target;
- ``floor_entries_per_s``: the ledger's batched appends (``bench.ledger``'s "batched"
  figure: ``--floor-n`` transfers, 1,000 to a transaction) on the same database, after;
  ``ratio_to_floor = orders_per_s / floor_entries_per_s``;
- ``verify``: ``dpn verify`` over the whole journal (``verify_ok``, leases included),
  and the trades the answers reported checked against ``market_trades``;
- ``rebuild``: on a database of its own, ``--rebuild-orders`` resting orders, then
  ``rebuild`` timed (``bench.engine.rebuild``); ``--rebuild-orders 0`` skips it;
- ``rights``: on a database of its own, the rights table of one asset held by
  ``--rights-holders`` members, ``min(10,000, holders / 2)`` of them leasing to as many
  others, read as of an instant inside the term (``bench.engine.rights``: its
  ``rights_as_of_s``, also beside the other figures, and ``sum_ok``, the rights summing
  to the asset's units; a run whose rights do not sum is wrong); ``--rights-holders 0``
  skips it.

``--profile LINES`` runs the order flow (SQLite only) with the engine's thread under
cProfile and prints the top LINES functions to stderr, all of them and then the
repository's own (``market/``, ``ledger/``); the figures are then not comparable. The
rebuild is profiled too, in one more run after the timed one, printed after.
Targets (issue): 5,000 orders/s on SQLite, 3,000 on PostgreSQL, a rebuild of 100,000
resting orders in under 5 s, the rights table of 100,000 holders with 10,000 leases in
under 1 s (issue 13: ``rights.meets_target``); reported (``meets_target``), never
asserted.

Prints JSON. Exit 0 when the run is right (targets met or not), 1 when it is wrong (a
JSON error on stdout and one line on stderr), 2 on bad arguments.
Run: ``dpn bench engine --json``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, text

from bench.engine.flow import (
    LeaseMarket,
    Mix,
    Tally,
    lease_market,
    lease_slots,
    run_flow,
    trading_slots,
)
from bench.engine.probe import ProbedEngine, counting_statements, profile_text
from bench.engine.rebuild import RebuildWrong, measure_rebuild
from bench.engine.rights import measure_rights
from bench.engine.traders import BOOKS_MAX, OWNERS_MAX, Market, open_market
from bench.harness import fresh_database, pick_postgres_url, stopwatch
from bench.ledger import _batched, _transfers
from ledger.core.timestamps import ms_of
from ledger.db.engine import make_engine, read_connection
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from market.book import Side
from market.engine import OPEN_ORDERS_PER_OWNER_MAX, OrderRequest, OrderType
from market.engine.lease_terms import LEASE_PERIOD_DEFAULT, next_terms

__all__ = ["EXIT_USAGE", "EXIT_WRONG", "EngineWrong", "Options", "main", "measure"]

ORDERS_DEFAULT: Final = 50_000
ORDERS_MAX: Final = 1_000_000
BOOKS_DEFAULT: Final = 4
OWNERS_DEFAULT: Final = 300
THREADS_DEFAULT: Final = 8
THREADS_MAX: Final = 64
WINDOW_DEFAULT: Final = 64
WINDOW_MAX: Final = 1_024
REBUILD_ORDERS_DEFAULT: Final = 100_000
FLOOR_N_DEFAULT: Final = 20_000
FLOOR_BATCH: Final = 1_000  # bench.ledger's default batch
FEE_BPS_DEFAULT: Final = 10
LEASE_TERMS: Final = 2  # the quarter under way and the next
RIGHTS_HOLDERS_DEFAULT: Final = 100_000
RIGHTS_HOLDERS_MAX: Final = 1_000_000
RIGHTS_LEASES_MAX: Final = 10_000  # issue 13's data set: 100,000 holders, 10,000 leases
TARGET_ORDERS_PER_S: Final = {"sqlite": 5_000, "postgresql": 3_000}
EXIT_WRONG, EXIT_USAGE = 1, 2


class EngineWrong(RuntimeError):
    """The engine answered other than the database holds, or the journal fails verify."""


@dataclass(frozen=True, slots=True)
class Options:
    """What one run measures (see the module docstring)."""

    orders: int = ORDERS_DEFAULT
    books: int = BOOKS_DEFAULT
    owners: int = OWNERS_DEFAULT
    threads: int = THREADS_DEFAULT
    window: int = WINDOW_DEFAULT
    rebuild_orders: int = REBUILD_ORDERS_DEFAULT
    floor_n: int = FLOOR_N_DEFAULT
    fee_bps: int = FEE_BPS_DEFAULT
    seed: int = 1
    lease_orders: int = ORDERS_DEFAULT
    rights_holders: int = RIGHTS_HOLDERS_DEFAULT


def _count(engine: Engine, sql: str) -> int:
    with read_connection(engine, snapshot=False) as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def _warm_up(market_engine: ProbedEngine, market: Market) -> None:
    """One resting bid per book, far under its mid: every book open, the engine's state
    loaded, its thread running."""
    for n, book in enumerate(market.books):
        bid = OrderRequest(
            market.owners[0], book.asset_id, book.currency, Side.BUY, OrderType.LIMIT,
            f"warm{n}", "bench", price_minor=book.mid_minor // 2, qty_units=1,
        )  # fmt: skip
        market_engine.place(bid)
    market_engine.batches = market_engine.requests = market_engine.largest = 0
    market_engine.commit_cpu_s = 0.0


def _verify(engine: Engine) -> dict[str, Any]:
    with read_connection(engine) as conn, stopwatch() as watch:
        report = verify(conn)
    if not report.ok:
        raise EngineWrong(f"verify failed after the run: {report.problems[0]}")
    return {
        "verify_ok": True,
        "verify_entries": report.entries,
        "verify_s": round(watch.seconds, 2),
    }


def _warm_up_leases(market_engine: ProbedEngine, market: Market, seed: int) -> LeaseMarket:
    """The lease books of the asset's next ``LEASE_TERMS`` terms, each opened by one
    resting bid far under its rent mid, from an owner who bids there."""
    now_ms = ms_of(market_engine.ledger.clock())  # the engine's own clock
    leases = lease_market(market, next_terms(LEASE_PERIOD_DEFAULT, now_ms, LEASE_TERMS), seed)
    for n, book in enumerate(leases.books):
        bidder = next(o for o in market.owners if (o, n) not in leases.lessors)
        bid = OrderRequest(
            bidder, book.asset_id, book.currency, Side.BUY, OrderType.LIMIT, f"lwarm{n}",
            "bench", price_minor=max(book.mid_minor // 2, 1), qty_units=1, term=book.term,
        )  # fmt: skip
        market_engine.place(bid)
    return leases


def _lease_flow(
    engine: Engine, market_engine: ProbedEngine, market: Market, options: Options
) -> dict[str, Any]:
    """The lease flow (see the module docstring) on the engine, stopped after."""
    market_engine.profile = None  # a profile is of the trading flow only
    market_engine.start()
    leases = _warm_up_leases(market_engine, market, options.seed)
    slots = lease_slots(
        market, leases, options.threads, options.lease_orders, Mix(), options.seed, "l"
    )
    head = _count(engine, "SELECT max(seq) FROM journal_entries")
    stored_before = _count(engine, "SELECT count(*) FROM market_leases")
    with stopwatch() as watch:
        tally = run_flow(market_engine, slots, options.window)
    market_engine.stop()
    if tally.unexpected:
        raise EngineWrong(f"the engine failed a lease batch: {tally.unexpected[0]}")
    stored = _count(engine, "SELECT count(*) FROM market_leases") - stored_before
    if stored != tally.leases or tally.trades:
        raise EngineWrong(
            f"{tally.leases} leases and {tally.trades} trades answered, {stored} leases stored"
        )
    requests = tally.placed + tally.cancels
    return {
        "lease_orders_per_s": round(requests / watch.seconds),
        "lease_orders": requests,
        "lease_placed": tally.placed,
        "lease_cancels": tally.cancels,
        "leases": tally.leases,
        "lease_rested": tally.resting,
        "lease_refused": dict(sorted(tally.refused.items())),
        "lease_seconds": round(watch.seconds, 3),
        "lease_entries": _count(engine, "SELECT max(seq) FROM journal_entries") - head,
        "lease_terms": sorted({b.term for b in leases.books}),
        "lease_books": len(leases.books),
    }


def _flow_figures(
    tally: Tally, seconds: float, entries: int, engine: ProbedEngine
) -> dict[str, Any]:
    requests = tally.placed + tally.cancels
    return {
        "orders_per_s": round(requests / seconds),
        "orders": requests,
        "placed": tally.placed,
        "cancels": tally.cancels,
        "trades": tally.trades,
        "rested": tally.resting,
        "refused": dict(sorted(tally.refused.items())),
        "seconds": round(seconds, 3),
        "entries": entries,
        "entries_per_s": round(entries / seconds),
        "batches": engine.batches,
        "mean_batch": round(engine.requests / engine.batches, 1) if engine.batches else None,
        "largest_batch": engine.largest,
    }


def measure(
    kind: str,
    postgres_url: str | None,
    options: Options,
    workdir: Path,
    profile: cProfile.Profile | None = None,
    rebuild_profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """Set up, run the order flow, time the floor, verify, and (unless
    ``rebuild_orders`` is 0) measure the rebuild; the figures of one database kind.
    ``profile`` profiles the engine's thread in the flow, ``rebuild_profile`` a rebuild."""
    with fresh_database(kind, postgres_url, workdir, "bench-engine") as url:
        engine = make_engine(url)
        try:
            ledger = Ledger(engine)
            market = open_market(ledger, options.owners, options.books)
            market_engine = ProbedEngine(ledger, fee_bps=options.fee_bps)
            _warm_up(market_engine, market)
            slots = trading_slots(market, options.threads, options.orders, Mix(), options.seed, "o")
            head = _count(engine, "SELECT max(seq) FROM journal_entries")
            market_engine.stop()  # its thread starts again, profiled if asked, with start()
            market_engine.profile = profile
            market_engine.start()
            cpu_s = time.process_time()
            with counting_statements(engine) as sent, stopwatch() as watch:
                tally = run_flow(market_engine, slots, options.window)
            cpu_s = time.process_time() - cpu_s
            market_engine.stop()
            if tally.unexpected:
                raise EngineWrong(f"the engine failed a batch: {tally.unexpected[0]}")
            entries = _count(engine, "SELECT max(seq) FROM journal_entries") - head
            stored = _count(engine, "SELECT count(*) FROM market_trades")
            if stored != tally.trades:
                raise EngineWrong(f"{tally.trades} trades answered, {stored} stored")
            result = _flow_figures(tally, watch.seconds, entries, market_engine)
            orders = result["orders"]
            result["sa_statements_per_order"] = round(sent.statements / orders, 2)
            batches = max(market_engine.batches, 1)
            result["sa_statements_per_batch"] = round(sent.statements / batches, 1)
            result["cpu_ms_per_order"] = round(cpu_s * 1000 / orders, 3)
            result["batch_cpu_ms_per_order"] = round(market_engine.commit_cpu_s * 1000 / orders, 3)
            result["open_orders_after"] = _count(
                engine, "SELECT count(*) FROM market_orders WHERE status = 'open'"
            )
            floor_s = _batched(
                ledger, _transfers(list(market.owners), options.floor_n, "floor"), FLOOR_BATCH
            )
            result["floor_entries_per_s"] = round(options.floor_n / floor_s)
            if options.lease_orders:  # after the floor, which stays as it was measured
                result |= _lease_flow(engine, market_engine, market, options)
            result |= _verify(engine)
        finally:
            engine.dispose()
    result["ratio_to_floor"] = round(result["orders_per_s"] / result["floor_entries_per_s"], 3)
    result["entries_ratio_to_floor"] = round(
        result["entries_per_s"] / result["floor_entries_per_s"], 3
    )
    target = TARGET_ORDERS_PER_S[kind]
    result |= {"target_orders_per_s": target, "meets_target": result["orders_per_s"] >= target}
    result |= {"books": options.books, "owners": options.owners, "threads": options.threads}
    result |= {"window": options.window, "fee_bps": options.fee_bps, "profiled": bool(profile)}
    if options.rebuild_orders:
        result["rebuild"] = measure_rebuild(
            kind,
            postgres_url,
            workdir,
            orders=options.rebuild_orders,
            owners=options.owners,
            books=options.books,
            threads=options.threads,
            window=options.window,
            profile=rebuild_profile,
        )
        result["rebuild_s"] = result["rebuild"]["rebuild_s"]
    if options.rights_holders:
        leases = min(RIGHTS_LEASES_MAX, options.rights_holders // 2)
        rights = measure_rights(kind, postgres_url, workdir, options.rights_holders, leases)
        if not rights["sum_ok"]:
            raise EngineWrong(f"the rights table does not sum to the asset's units: {rights}")
        result["rights"] = rights
        result["rights_as_of_s"] = rights["rights_as_of_s"]
    return result


def _options(args: argparse.Namespace) -> tuple[Options, list[str]]:
    problems = []
    if not 1 <= args.orders <= ORDERS_MAX:
        problems.append(f"--orders must be 1..{ORDERS_MAX}")
    if not 1 <= args.books <= BOOKS_MAX:
        problems.append(f"--books must be 1..{BOOKS_MAX}")
    if not 2 <= args.owners <= OWNERS_MAX:
        problems.append(f"--owners must be 2..{OWNERS_MAX}")
    if not 1 <= args.threads <= min(THREADS_MAX, args.owners):
        problems.append(f"--threads must be 1..{THREADS_MAX} and at most --owners")
    if not 1 <= args.window <= WINDOW_MAX:
        problems.append(f"--window must be 1..{WINDOW_MAX}")
    if not 0 <= args.rebuild_orders <= args.owners * OPEN_ORDERS_PER_OWNER_MAX:
        problems.append(
            f"--rebuild-orders must be 0..{OPEN_ORDERS_PER_OWNER_MAX:,} x --owners"
            " (a member rests at most that many orders)"
        )
    lease_orders = args.orders if args.lease_orders is None else args.lease_orders
    if not 0 <= lease_orders <= ORDERS_MAX:
        problems.append(f"--lease-orders must be 0..{ORDERS_MAX}")
    if args.rights_holders != 0 and not 2 <= args.rights_holders <= RIGHTS_HOLDERS_MAX:
        problems.append(f"--rights-holders must be 0 or 2..{RIGHTS_HOLDERS_MAX}")
    if not 1 <= args.floor_n <= ORDERS_MAX:
        problems.append(f"--floor-n must be 1..{ORDERS_MAX}")
    if not 0 <= args.fee_bps <= 1_000:
        problems.append("--fee-bps must be 0..1000")
    if args.no_sqlite and args.sqlite_only:
        problems.append("--no-sqlite and --sqlite-only leave nothing to measure")
    options = Options(
        args.orders, args.books, args.owners, args.threads, args.window,
        args.rebuild_orders, args.floor_n, args.fee_bps, args.seed, lease_orders,
        args.rights_holders,
    )  # fmt: skip
    return options, problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dpn bench engine ARGS`` (see the module docstring for the exit codes)."""
    parser = argparse.ArgumentParser(prog="dpn bench engine", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=ORDERS_DEFAULT, help="requests to send")
    parser.add_argument(
        "--lease-orders", type=int, help="lease requests to send (default: --orders; 0: none)"
    )
    parser.add_argument("--books", type=int, default=BOOKS_DEFAULT, help="books traded")
    parser.add_argument("--owners", type=int, default=OWNERS_DEFAULT, help="members trading")
    parser.add_argument("--threads", type=int, default=THREADS_DEFAULT, help="submitting threads")
    parser.add_argument(
        "--window", type=int, default=WINDOW_DEFAULT, help="requests each thread keeps waiting"
    )
    parser.add_argument(
        "--rebuild-orders", type=int, default=REBUILD_ORDERS_DEFAULT,
        help="resting orders to rebuild from (0: skip the rebuild)",
    )  # fmt: skip
    parser.add_argument(
        "--rights-holders", type=int, default=RIGHTS_HOLDERS_DEFAULT,
        help="holders of the rights table's asset (0: skip the rights)",
    )  # fmt: skip
    parser.add_argument(
        "--floor-n", type=int, default=FLOOR_N_DEFAULT, help="transfers of the ledger floor"
    )
    parser.add_argument("--fee-bps", type=int, default=FEE_BPS_DEFAULT, help="the market fee")
    parser.add_argument("--seed", type=int, default=1, help="seed of the order flow")
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $DPN_TEST_POSTGRES_URL)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--profile", type=int, metavar="LINES", help="cProfile the engine (SQLite); to stderr"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON, on one line")
    args = parser.parse_args(argv)
    options, problems = _options(args)
    if args.profile is not None and not 1 <= args.profile <= 1_000:
        problems.append("--profile must be 1..1000 lines")
    if problems:
        print(f"dpn bench engine: {'; '.join(problems)}", file=sys.stderr)
        return EXIT_USAGE
    postgres = None if args.sqlite_only or args.profile else pick_postgres_url(args.postgres)
    profile = None if args.profile is None else cProfile.Profile()
    rebuild_profile = None if profile is None or not args.rebuild_orders else cProfile.Profile()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dpn-bench-engine-") as tmp:
        try:
            if not args.no_sqlite or args.profile:
                out["sqlite"] = measure(
                    "sqlite", None, options, Path(tmp), profile, rebuild_profile
                )
            if postgres:
                out["postgresql"] = measure("postgresql", postgres, options, Path(tmp))
        except (EngineWrong, RebuildWrong) as wrong:
            print(json.dumps({"error": "engine_wrong", "message": str(wrong)}))
            print(f"dpn bench engine: {wrong}", file=sys.stderr)
            return EXIT_WRONG
    out["cpus"] = os.cpu_count()
    print(json.dumps(out, indent=None if args.json else 2))
    if profile is not None:
        print(profile_text(profile, args.profile), file=sys.stderr)
        print(profile_text(profile, args.profile, r"/(market|ledger)/"), file=sys.stderr)
    if rebuild_profile is not None:
        print("rebuild:", file=sys.stderr)
        print(profile_text(rebuild_profile, args.profile), file=sys.stderr)
    return 0
