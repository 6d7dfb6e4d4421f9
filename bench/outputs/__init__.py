"""``python -m bench.outputs``: record one period's production for ``--holders`` holders
(default 100,000) on a fresh SQLite database: allocate and store their entitlements
through the real service (``ledger.outputs.production.record_production``).

Setup, not timed in the figure (``build_s``): ``holders`` members registered
``REGISTER_PER_TX`` to a transaction, one asset whose units are issued to all of them
(``ISSUE_PER_ENTRY`` owners an ``asset.issue`` entry, every entry of the issue in one
transaction; holder ``i`` gets ``1 + i % 997`` units, so the shares do not divide
evenly and the largest remainder has work to do; the pool keeps the rest), the first
holder its operator at 10 % (``output.terms``), one output kind, one period whose
record time comes after the issue.

Measured in a child process of its own (so the setup's memory is not counted), on the
same database: ``rss_before_mib``, the child's resident memory with everything imported
and before any read (the baseline); ``rights_only_s``, reading the rights table at the
record time alone (the baseline for time: what any allocation must at least read);
then ``seconds``, the production recorded, end to end (``record_production``: rights
read, allocation, the entry and every row stored and committed); ``peak_rss_mib``, the
child's peak resident memory (``ru_maxrss``). ``rows`` is the entitlement rows stored,
``sum_ok`` that they sum exactly to what was produced. Target (issue 14): under 2 s
and under 300 MiB (``meets_target``), reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
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


def _rss_mib() -> float:
    """This process's resident memory now (``VmRSS``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
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


def measure(url: str, period_id: int, at: datetime) -> dict[str, Any]:
    """In this process: the baseline and the production (module docstring)."""
    engine = make_engine(url)
    try:
        ledger = Ledger(engine, clock=MovableClock(at))
        rss_before = _rss_mib()
        with stopwatch() as rights_only, read_connection(engine) as conn:
            period = get_period(conn, period_id)
            read = rights_table(conn, period.asset_id, period.times.record_at)
        rows_read = len(read.rows)
        del read
        with stopwatch() as watch:
            made = record_production(
                ledger, period_id, {"power": PRODUCED}, key="produce", actor=ACTOR
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ents = table(OutputEntitlement)
        with read_connection(engine) as conn:
            rows, total = conn.execute(
                select(func.count(), func.sum(ents.c.entitled)).where(ents.c.period_id == period_id)
            ).one()
        return {
            "seconds": round(watch.seconds, 3),
            "rights_only_s": round(rights_only.seconds, 3),
            "rss_before_mib": round(rss_before, 1),
            "peak_rss_mib": round(peak, 1),
            "rows": int(rows),
            "rights_rows": rows_read,
            "sum_ok": int(total) == PRODUCED and made.produced == {"power": PRODUCED},
        }
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Build, measure in a child, print one JSON line (``--json``) or a readable one."""
    parser = argparse.ArgumentParser(prog="python -m bench.outputs", description=__doc__)
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one line of JSON")
    parser.add_argument(
        "--measure", nargs=3, metavar=("URL", "PERIOD", "AT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.measure:
        url, period, at = args.measure
        print(json.dumps(measure(url, int(period), datetime.fromisoformat(at))))
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
        finally:
            engine.dispose()
        at = clock.now + timedelta(minutes=2)  # past the request deadline
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.outputs",
                "--measure",
                url,
                str(period_id),
                at.isoformat(),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    figures = json.loads(child.stdout)
    result = {
        "seconds": figures["seconds"],
        "holders": args.holders,
        "peak_rss_mib": figures["peak_rss_mib"],
        **{k: v for k, v in figures.items() if k not in ("seconds", "peak_rss_mib")},
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
