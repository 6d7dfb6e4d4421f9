"""``python -m bench.outputs``: record one period's production for ``--holders`` holders
(default 100,000) on a fresh SQLite database: allocate and store their entitlements
through the real service (``ledger.outputs.production.record_production``).

Setup, not timed in the figure (``build_s``): ``holders`` members registered
``REGISTER_PER_TX`` to a transaction, one asset whose units are issued to all of them
(``ISSUE_PER_ENTRY`` owners an ``asset.issue`` entry, every entry of the issue in one
transaction; holder ``i`` gets ``1 + i % 997`` units, so the shares do not divide
evenly and the largest remainder has work to do; the pool keeps the rest), the first
holder its operator at 10 % (``output.terms``), one output kind, one period whose
record time comes after the issue; then the WAL is checkpointed (as a server's stands
between checkpoints, not as the bulk setup left it).

Measured on the same database, each in a fresh child process of its own (so the
setup's memory is not counted, nor one measure's in the other's): the baseline first,
``baseline_rights_only_s`` and ``baseline_rights_only_peak_rss_mib``, the rights table
at the record time read alone (what any allocation must at least read; the record
time lies before the period's entry, so this is a read of the journal's past); then
``seconds``, the production recorded, end to end (``record_production``: rights read,
allocation, the entry and every row stored and committed), with ``rss_before_mib``
(the child's resident memory, everything imported, before the call) and
``peak_rss_mib`` (its peak, ``VmHWM``). ``rows`` is the entitlement rows stored,
``sum_ok`` that they sum exactly to what was produced. Target (issue 14): under 2 s
and under 300 MiB (``meets_target``), reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select

from bench.engine.traders import asset_id, owner_addresses
from bench.harness import fresh_database, stopwatch
from ledger.core import EntryDraft, EntryKind, Posting
from ledger.core.accounts import AccountKey, member_holder, pool_holder, units_of
from ledger.core.limits import POSTINGS_PER_ENTRY_MAX
from ledger.db.engine import make_engine, read_connection
from ledger.db.schema import OutputEntitlement, table
from ledger.journal.write import Ledger
from ledger.outputs.operators import define_output_kind, set_output_terms
from ledger.outputs.periods import PeriodTimes, get_period, open_period
from ledger.outputs.production import record_production
from ledger.registry.assets import register_asset
from ledger.registry.members import register_member_in
from ledger.rights import rights_table

__all__ = ["TARGET", "main", "measure"]

TARGET: Final = {"seconds_max": 2.0, "peak_rss_mib_max": 300.0}
ACTOR: Final = "bench"
REGISTER_PER_TX: Final = 10_000
ISSUE_PER_ENTRY: Final = POSTINGS_PER_ENTRY_MAX - 1
PRODUCED: Final = 123_456_789_011  # Wh of the one kind
TOTAL_UNITS: Final = 10**12


class MovableClock:
    """The ledger's clock for the bench: set by it, not the wall's."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory now (``VmRSS``) or at its peak (``VmHWM``), in MiB.

    The peak is VmHWM, not ``getrusage``'s ``ru_maxrss``: Linux carries a parent's peak
    into a child's ``ru_maxrss`` across the fork and exec that start it, so a child of
    the process that built 100,000 holders reported the builder's 317 MiB as its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0  # pragma: no cover - Linux only


def _build(ledger: Ledger, clock: MovableClock, holders: int) -> int:
    """The data set of the module docstring; the period's id."""
    addresses = owner_addresses(holders)
    for start in range(0, holders, REGISTER_PER_TX):
        with ledger.write() as tx:
            for i in range(start, min(start + REGISTER_PER_TX, holders)):
                register_member_in(
                    tx, addresses[i], "individual", f"h{i}", key=f"m{i}", actor=ACTOR
                )
    asset = asset_id(901)
    register_asset(
        ledger,
        asset,
        make="Solar",
        model="Roof",
        serial="BENCH-OUTPUTS",
        location="Ames, IA",
        total_units=TOTAL_UNITS,
        jurisdiction="US-IA",
        key="asset",
        actor=ACTOR,
    )
    units = units_of(asset)
    drafts = []
    for start in range(0, holders, ISSUE_PER_ENTRY):
        part = [
            (a, 1 + (start + j) % 997)
            for j, a in enumerate(addresses[start : start + ISSUE_PER_ENTRY])
        ]
        postings = [Posting(AccountKey(pool_holder(asset), units), -sum(n for _, n in part))]
        postings += [Posting(AccountKey(member_holder(a), units), n) for a, n in part]
        drafts.append(
            EntryDraft(
                EntryKind.ASSET_ISSUE,
                f"issue{start}",
                ACTOR,
                postings=tuple(postings),
                payload={"asset_id": asset},
            )
        )
    with ledger.write() as tx:
        tx.append_many(drafts)
    set_output_terms(ledger, asset, addresses[0], 1_000, key="terms", actor=ACTOR)
    define_output_kind(ledger, asset, "power", "Wh", key="kind", actor=ACTOR)
    clock.now += timedelta(minutes=10)
    now = clock.now
    times = PeriodTimes(
        now - timedelta(days=1),
        now + timedelta(days=1),
        now - timedelta(minutes=1),
        now + timedelta(minutes=1),
    )
    return open_period(ledger, asset, "bench", times, key="period", actor=ACTOR).id


def measure(url: str, period_id: int, at: datetime, what: str) -> dict[str, Any]:
    """In this process: ``what`` is ``rights`` (the baseline: the rights table at the
    record time read alone) or ``produce`` (the production recorded), timed, with this
    process's resident memory before and at its peak."""
    engine = make_engine(url)
    try:
        rss_before = _rss_mib()
        if what == "rights":
            with stopwatch() as watch, read_connection(engine) as conn:
                period = get_period(conn, period_id)
                rows = len(rights_table(conn, period.asset_id, period.times.record_at).rows)
            figures: dict[str, Any] = {"rights_rows": rows}
        else:
            ledger = Ledger(engine, clock=MovableClock(at))
            with stopwatch() as watch:
                made = record_production(
                    ledger, period_id, {"power": PRODUCED}, key="produce", actor=ACTOR
                )
            ents = table(OutputEntitlement)
            with read_connection(engine) as conn:
                count, total = conn.execute(
                    select(func.count(), func.sum(ents.c.entitled)).where(
                        ents.c.period_id == period_id
                    )
                ).one()
            figures = {
                "rows": int(count),
                "sum_ok": int(total) == PRODUCED and made.produced == {"power": PRODUCED},
            }
        peak = _rss_mib("VmHWM")
        return figures | {
            "seconds": round(watch.seconds, 3),
            "rss_before_mib": round(rss_before, 1),
            "peak_rss_mib": round(peak, 1),
        }
    finally:
        engine.dispose()


def _child(url: str, period_id: int, at: datetime, what: str) -> dict[str, Any]:
    """``measure`` in a fresh Python process (its memory its own)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.outputs",
            "--measure",
            url,
            str(period_id),
            at.isoformat(),
            what,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def main(argv: list[str] | None = None) -> int:
    """Build, measure in two children, print one JSON line (``--json``) or a readable one."""
    parser = argparse.ArgumentParser(prog="python -m bench.outputs", description=__doc__)
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one line of JSON")
    parser.add_argument(
        "--measure", nargs=4, metavar=("URL", "PERIOD", "AT", "WHAT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.measure:
        url, period, at, what = args.measure
        print(json.dumps(measure(url, int(period), datetime.fromisoformat(at), what)))
        return 0
    if args.holders < 1:
        parser.error("--holders must be at least 1")
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_database("sqlite", None, Path(workdir), "bench-outputs") as url,
    ):
        engine = make_engine(url)
        clock = MovableClock(datetime.now(UTC).replace(microsecond=0))
        try:
            with stopwatch() as build:
                period_id = _build(Ledger(engine, clock=clock), clock, args.holders)
            # As a server's WAL stands between checkpoints, not as a bulk setup left it.
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        at = clock.now + timedelta(minutes=2)  # past the request deadline
        baseline = _child(url, period_id, at, "rights")
        figures = _child(url, period_id, at, "produce")
    result = {
        "seconds": figures["seconds"],
        "holders": args.holders,
        "peak_rss_mib": figures["peak_rss_mib"],
        "rss_before_mib": figures["rss_before_mib"],
        "rows": figures["rows"],
        "sum_ok": figures["sum_ok"],
        "baseline_rights_only_s": baseline["seconds"],
        "baseline_rights_only_peak_rss_mib": baseline["peak_rss_mib"],
        "rights_rows": baseline["rights_rows"],
        "build_s": round(build.seconds, 1),
        "target": TARGET,
        "meets_target": figures["seconds"] < TARGET["seconds_max"]
        and figures["peak_rss_mib"] < TARGET["peak_rss_mib_max"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name}: {value}")
    return 0
