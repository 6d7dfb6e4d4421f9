"""``dpn bench chain``: escrow pledges mirrored from a real anvil node into the ledger,
against the raw rate of fetching and decoding the same logs.

Setup (not timed): a fresh anvil (``ledger.chain.anvil``) and a fresh migrated database
(a new SQLite file, or with ``--database URL`` a new PostgreSQL schema, dropped after);
a project listed in ETH and opened through ``FundingChain``, which deploys the factory and
the project's real ``EthPledgeEscrow``; then ``--events`` real pledges to it from
``--pledgers`` accounts, ``--per-block`` to a block (``bench.chain.pledges``).

Timed, over the same blocks (the factory's block to the head):

- ``floor``: ``ChainClient.escrow_logs`` of the escrow (eth_getLogs + decoding, no
  ledger at all), best of 3;
- ``mirror``: a ``ChainFollower`` (confirmations 0, ``--batch-blocks`` blocks a round)
  running ``round()`` until caught up: the reads the follower makes and ``mirror_batch``
  recording one entry per event, one transaction per round.

Then checked: every event recorded once, and the project's mirrored ``chain_total_minor``
equal to the escrow's own ``totalPledged()``. ``ratio_vs_floor = events_per_s /
floor_events_per_s``. The targets (issue): at least 1,000 events/s and 0.3 x the floor.

``--profile LINES`` runs the mirror under cProfile (slower: the rate is not comparable)
and prints the top LINES functions to stderr; ``--anvil PATH`` names another binary.

Prints JSON. Exit 0 when the mirror is right (targets met or not: ``"met"`` says), 1
when it is wrong, 2 on bad arguments, 3 when there is no anvil to run or it fails (a JSON
error on stdout and one line on stderr, as for 1). Run: ``dpn bench chain --json``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import make_url

from bench.chain.pledges import open_escrowed_project, pledge_many
from bench.harness import fresh_database, stopwatch
from ledger.chain import BLOCKS_PER_CALL_MAX, ChainClient
from ledger.chain.anvil import AnvilError, anvil_binary, start_anvil
from ledger.chain.follower import ChainFollower
from ledger.db.engine import make_engine, read_connection
from ledger.funding import get_project
from ledger.journal.write import Ledger

__all__ = ["EXIT_NO_ANVIL", "EXIT_USAGE", "EXIT_WRONG", "MirrorWrong", "main", "measure"]

EVENTS_DEFAULT: Final = 10_000
EVENTS_MAX: Final = 200_000
PLEDGERS_DEFAULT: Final = 1_000
PER_BLOCK_DEFAULT: Final = 200
PER_BLOCK_MAX: Final = 400  # at ~70,000 gas at most, 400 pledges fit a 30M-gas block
BATCH_BLOCKS_DEFAULT: Final = 2_000  # the follower's own default
FLOOR_RUNS: Final = 3
ROUNDS_MAX: Final = 100_000
TARGET_EVENTS_PER_S: Final = 1_000
TARGET_RATIO_VS_FLOOR: Final = 0.3
EXIT_WRONG, EXIT_USAGE, EXIT_NO_ANVIL = 1, 2, 3


class MirrorWrong(RuntimeError):
    """The mirror recorded other than every event once, or another total."""


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor(client: ChainClient, escrow: str, first: int, last: int, events: int) -> float:
    """Best of ``FLOOR_RUNS`` fetches of every escrow log in ``first..last``."""
    best = float("inf")
    for _ in range(FLOOR_RUNS):
        with stopwatch() as watch:
            logs = client.escrow_logs([escrow], first, last)
        if len(logs) != events:
            raise MirrorWrong(f"the node holds {len(logs)} escrow logs, not {events}")
        best = min(best, watch.seconds)
    return best


def _mirror(follower: ChainFollower, profile: cProfile.Profile | None) -> tuple[int, int, float]:
    """(events recorded, rounds, seconds) of rounds until caught up."""
    recorded = rounds = 0
    with stopwatch() as watch:
        if profile is not None:
            profile.enable()
        try:
            while rounds < ROUNDS_MAX:
                result = follower.round()
                rounds += 1
                if result is None:
                    raise MirrorWrong("another follower holds the lease of this chain")
                recorded += result.recorded
                if result.caught_up:
                    break
        finally:
            if profile is not None:
                profile.disable()
    return recorded, rounds, watch.seconds


def measure(
    *,
    events: int,
    pledgers: int,
    per_block: int,
    batch_blocks: int,
    postgres_url: str | None,
    workdir: Path,
    binary: Path,
    profile: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """Set up, time the floor and the mirror, check the mirror; return the figures.
    Raises ``MirrorWrong`` when the mirror is not exact."""
    kind = "sqlite" if postgres_url is None else "postgresql"
    node = start_anvil(binary, workdir, die_with_parent=True)
    anvil = node.anvil
    try:
        with fresh_database(kind, postgres_url, workdir, name="bench-chain") as url:
            engine = make_engine(url)
            try:
                ledger = Ledger(engine)
                with stopwatch() as setup:
                    project = open_escrowed_project(ledger, anvil.url)
                    run = pledge_many(anvil, project.escrow, events, pledgers, per_block)
                client = ChainClient(anvil.url)
                head = client.head().number
                floor_s = _floor(client, project.escrow, project.factory_block, head, events)
                follower = ChainFollower(
                    ledger,
                    ChainClient(anvil.url),
                    confirmations=0,
                    factory=project.factory,
                    creator=project.creator,
                    start_block=project.factory_block,
                    batch_blocks=batch_blocks,
                )
                rss_before = _rss_mib()
                recorded, rounds, seconds = _mirror(follower, profile)
                rss_peak = _rss_mib()
                with read_connection(engine) as conn:
                    mirrored = get_project(conn, project.project_id).chain_total_minor
                on_chain = client.total_pledged(project.escrow)
                dialect = engine.dialect.name
            finally:
                engine.dispose()
        version = str(anvil.rpc("web3_clientVersion"))
    finally:
        node.stop()
    if recorded != events:
        raise MirrorWrong(f"the mirror recorded {recorded} events, not {events}")
    if not mirrored == on_chain == run.total_wei:
        raise MirrorWrong(
            f"mirrored total {mirrored} wei, escrow totalPledged() {on_chain},"
            f" pledged {run.total_wei}"
        )
    events_per_s = events / seconds
    floor_per_s = events / floor_s
    ratio = events_per_s / floor_per_s
    met = {
        "events_per_s": events_per_s >= TARGET_EVENTS_PER_S,
        "ratio_vs_floor": ratio >= TARGET_RATIO_VS_FLOOR,
    }
    return {
        "events_per_s": round(events_per_s),
        "events": events,
        "floor_events_per_s": round(floor_per_s),
        "ratio_vs_floor": round(ratio, 3),
        "targets": {"events_per_s": TARGET_EVENTS_PER_S, "ratio_vs_floor": TARGET_RATIO_VS_FLOOR},
        "targets_met": met,
        "met": all(met.values()),
        "recorded": recorded,
        "rounds": rounds,
        "batch_blocks": batch_blocks,
        "seconds": round(seconds, 3),
        "floor_seconds": round(floor_s, 3),
        "floor_runs": FLOOR_RUNS,
        "blocks": head - project.factory_block + 1,
        "pledge_blocks": run.last_block - run.first_block + 1,
        "per_block": per_block,
        "pledgers": run.pledgers,
        "chain_total_wei": on_chain,
        "database": dialect,
        "node": version,
        "setup_seconds": round(setup.seconds, 2),
        "rss_before_mirror_mib": round(rss_before, 1),
        "peak_rss_mib": round(rss_peak, 1),
        "profiled": profile is not None,
    }


def _postgres_url(database: str) -> str | None:
    """None for ``sqlite``; the URL itself for a PostgreSQL one; ``ValueError`` else."""
    if database == "sqlite":
        return None
    try:
        backend = make_url(database).get_backend_name()
    except Exception:  # sqlalchemy's ArgumentError, or a ValueError of a port
        raise ValueError("--database must be `sqlite` or a PostgreSQL URL") from None
    if backend != "postgresql":
        raise ValueError("--database must be `sqlite` or a PostgreSQL URL")
    return database


def _profile_text(profile: cProfile.Profile, lines: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dpn bench chain ARGS`` (see the module docstring for the exit codes)."""
    parser = argparse.ArgumentParser(prog="dpn bench chain", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=EVENTS_DEFAULT, help="pledges to mirror")
    parser.add_argument(
        "--pledgers", type=int, help=f"accounts pledging (default: {PLEDGERS_DEFAULT:,} at most)"
    )
    parser.add_argument("--per-block", type=int, default=PER_BLOCK_DEFAULT, help="pledges a block")
    parser.add_argument(
        "--batch-blocks", type=int, default=BATCH_BLOCKS_DEFAULT, help="blocks a follower round"
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="`sqlite` (a fresh temporary file, the default) or a PostgreSQL URL (a fresh"
        " schema made there and dropped afterwards)",
    )
    parser.add_argument("--anvil", type=Path, help="the anvil binary (default: contracts/...)")
    parser.add_argument(
        "--profile", type=int, metavar="LINES", help="cProfile the mirror; top LINES to stderr"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON, on one line")
    args = parser.parse_args(argv)
    problems = []
    if args.pledgers is None:
        args.pledgers = min(PLEDGERS_DEFAULT, max(args.events, 1))
    if not 1 <= args.events <= EVENTS_MAX:
        problems.append(f"--events must be 1..{EVENTS_MAX}")
    if not 1 <= args.pledgers <= args.events:
        problems.append("--pledgers must be 1..--events")
    if not 1 <= args.per_block <= PER_BLOCK_MAX:
        problems.append(f"--per-block must be 1..{PER_BLOCK_MAX}")
    if not 1 <= args.batch_blocks <= BLOCKS_PER_CALL_MAX:
        problems.append(f"--batch-blocks must be 1..{BLOCKS_PER_CALL_MAX}")
    try:
        postgres_url = _postgres_url(args.database)
    except ValueError as wrong:
        problems.append(str(wrong))
    if problems:
        print(f"dpn bench chain: {'; '.join(problems)}", file=sys.stderr)
        return EXIT_USAGE
    binary = args.anvil or anvil_binary()
    if binary is None or not binary.is_file():
        message = (
            "no anvil: run `make` (or `cd contracts && npm ci --ignore-scripts`), or give --anvil"
        )
        print(json.dumps({"error": "anvil_not_found", "message": message}))
        print(f"dpn bench chain: {message}", file=sys.stderr)
        return EXIT_NO_ANVIL
    profile = None if args.profile is None else cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="dpn-bench-chain-") as tmp:
        try:
            result = measure(
                events=args.events,
                pledgers=args.pledgers,
                per_block=args.per_block,
                batch_blocks=args.batch_blocks,
                postgres_url=postgres_url,
                workdir=Path(tmp),
                binary=binary,
                profile=profile,
            )
        except MirrorWrong as wrong:
            print(json.dumps({"error": "mirror_wrong", "message": str(wrong)}))
            print(f"dpn bench chain: {wrong}", file=sys.stderr)
            return EXIT_WRONG
        except AnvilError as failed:
            print(json.dumps({"error": "anvil_failed", "message": str(failed)}))
            print(f"dpn bench chain: {failed}", file=sys.stderr)
            return EXIT_NO_ANVIL
    print(json.dumps(result, indent=None if args.json else 2))
    if profile is not None:
        print(_profile_text(profile, args.profile), file=sys.stderr)
    return 0
