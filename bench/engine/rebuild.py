"""How long the engine takes to come back: ``rebuild`` over many resting orders.

On a fresh database of its own, ``orders`` GTC limits that never cross (bids under
each book's mid, asks over it, on ``REST_LEVELS`` prices a side, the owners in turn)
are placed through the engine, so that the order log and ``market_orders`` hold them
all, open. Then, timed:

- ``rebuild_s``: ``market.engine.rebuild`` on a connection of a new SQLAlchemy engine
  (a new pool: nothing cached), the order log replayed and the open orders read back;
- ``engine_rebuild_s``: ``MarketEngine.forget()`` then ``state_hashes()``: the rebuild
  a worker does after a failed batch, with each book's state hash on top;

and checked: the rebuilt books' state hashes equal those of the books that placed the
orders. With ``profile``, one more ``rebuild`` runs under it, untimed.
"""

from __future__ import annotations

import cProfile
import resource
from pathlib import Path
from typing import Any, Final

from sqlalchemy import text

from bench.engine.flow import resting_slots, run_flow
from bench.engine.traders import open_market
from bench.harness import fresh_database, stopwatch
from ledger.db.engine import make_engine, read_connection
from ledger.journal.write import Ledger
from market.engine import MarketEngine, rebuild

__all__ = ["TARGET_REBUILD_S", "RebuildWrong", "measure_rebuild"]

TARGET_REBUILD_S: Final = 5.0
SEED: Final = 3


class RebuildWrong(RuntimeError):
    """The rebuilt state is not the state the orders made."""


def measure_rebuild(
    kind: str,
    postgres_url: str | None,
    workdir: Path,
    *,
    orders: int,
    owners: int,
    books: int,
    threads: int,
    window: int,
    profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """Place ``orders`` resting orders, then time the two rebuilds; the figures."""
    with fresh_database(kind, postgres_url, workdir, "bench-engine-rebuild") as url:
        engine = make_engine(url)
        try:
            ledger = Ledger(engine)
            market = open_market(ledger, owners, books)
            placer = MarketEngine(ledger)
            slots = resting_slots(market, threads, orders, SEED, "rest")
            with stopwatch() as placing:
                tally = run_flow(placer, slots, window)
            if tally.unexpected or tally.refused or tally.resting != orders:
                raise RebuildWrong(
                    f"{tally.resting} of {orders} orders rest; refused {dict(tally.refused)},"
                    f" unexpected {tally.unexpected[:1]}"
                )
            before = placer.state_hashes()
            placer.stop()
            with engine.connect() as conn:
                commands = conn.execute(text("SELECT count(*) FROM market_commands")).scalar_one()
            fresh = make_engine(url)
            try:
                with stopwatch() as rebuilding, read_connection(fresh, snapshot=False) as conn:
                    state = rebuild(conn)
                if profile is not None:
                    with read_connection(fresh, snapshot=False) as conn:
                        profile.runcall(rebuild, conn)
            finally:
                fresh.dispose()
            with stopwatch() as hashing:
                rebuilt = state.state_hashes()
            placer.forget()
            with stopwatch() as via_engine:
                again = placer.state_hashes()
            placer.stop()
        finally:
            engine.dispose()
    if rebuilt != before or again != before:
        raise RebuildWrong("the rebuilt books' state hashes differ from the books that placed")
    return {
        "rebuild_s": round(rebuilding.seconds, 3),
        "engine_rebuild_s": round(via_engine.seconds, 3),
        "state_hash_s": round(hashing.seconds, 3),
        "open_orders": len(state.orders),
        "commands": commands,
        "books": len(state.books),
        "hashes_equal": True,
        "target_rebuild_s": TARGET_REBUILD_S,
        "meets_target": rebuilding.seconds < TARGET_REBUILD_S,
        "place_resting_orders_per_s": round(orders / placing.seconds),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
