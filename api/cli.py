"""The ``dpn`` command line. Bad input gets one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from api.demo import DEMO_ASSET_ID, DEMO_MEMBERS, run_demo
from api.serve import serve
from ledger.address import validate_address
from ledger.core import Entry, format_time, validate_asset_id
from ledger.db.engine import make_engine, read_connection
from ledger.db.migrate import current_revision, downgrade, head_revision, upgrade
from ledger.errors import LedgerError
from ledger.journal import Ledger
from ledger.members import member_holder
from ledger.reads import JOURNAL_PAGE_MAX, cap_table, digest, journal_page
from ledger.registry import get_asset, units_of
from ledger.verify import verify

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("http", "ledger", "market")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpn", description="DPN Ledger")
    parser.add_argument("--database", help="database URL (default: $DPN_DATABASE_URL or SQLite)")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="migrate the database").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply every migration")
    down = db.add_parser("downgrade", help="roll migrations back")
    down.add_argument("revision", help="target revision ('base' empties the database)")
    db.add_parser("current", help="show the database's revision")

    demo = commands.add_parser("demo", help="load a small demo network and show it")
    demo.add_argument("--if-empty", action="store_true", help="only into an empty journal")

    serve = commands.add_parser("serve", help="run the HTTP API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    check = commands.add_parser("verify", help="rebuild balances and check every invariant")
    check.add_argument("--against", metavar="SEQ:HASH", help="a published digest to check")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    journal = commands.add_parser("journal", help="show the newest entries")
    journal.add_argument("--tail", type=int, default=20, help=f"how many (max {JOURNAL_PAGE_MAX})")
    journal.add_argument("--kind", help="only entries of this kind")
    journal.add_argument("--member", help="only entries posting to this member's accounts")
    journal.add_argument("--asset", help="only entries posting this asset's units")
    journal.add_argument("--json", action="store_true", help="one JSON object per line")

    commands.add_parser("digest", help="print the journal's (seq, head hash)")

    bench = commands.add_parser("bench", help="run a benchmark from bench/")
    bench.add_argument("name", choices=BENCHES)
    bench.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark")
    return parser


def _entry_line(entry: Entry) -> str:
    moves = ", ".join(
        [f"{p.account.holder} {p.amount:+} {p.account.instrument}" for p in entry.postings]
        + [f"hold {h.hold_id} {h.op.value} {h.amount} on {h.account}" for h in entry.hold_changes]
    )
    return (
        f"{entry.seq:>8}  {format_time(entry.recorded_at)}  {entry.kind:<16} "
        f"{entry.hash[:12]}  {moves}"
    )


def _parse_digest(text: str) -> tuple[int, str]:
    seq, _, head = text.partition(":")
    if not seq.isdigit() or len(head) != 64:
        raise LedgerError("digest_malformed", f"expected SEQ:HASH (64 hex digits), got {text!r}")
    return int(seq), head.lower()


def _run(args: argparse.Namespace) -> int:
    if args.command == "bench":
        sys.path.insert(0, str(REPO_ROOT))
        module = importlib.import_module(f"bench.{args.name}")
        return int(module.main(args.args))
    engine = make_engine(args.database)
    try:
        if args.command == "db":
            if args.db_command == "upgrade":
                upgrade(engine)
            elif args.db_command == "downgrade":
                downgrade(engine, args.revision)
            with engine.connect() as conn:
                print(f"database at {current_revision(conn)} (newest: {head_revision()})")
            return 0
        if args.command == "demo":
            if args.if_empty:
                with read_connection(engine) as conn:
                    if digest(conn).seq > 0:
                        print("journal not empty: demo not loaded")
                        return 0
            return _demo(engine)
        if args.command == "serve":
            return _serve(args.host, args.port, args.workers, args.database)
        with read_connection(engine) as conn:
            if args.command == "verify":
                against = _parse_digest(args.against) if args.against else None
                report = verify(conn, against=against)
                if args.json:
                    print(
                        json.dumps(
                            {
                                "ok": report.ok,
                                "entries": report.entries,
                                "head_seq": report.head_seq,
                                "head_hash": report.head_hash,
                                "accounts": report.accounts,
                                "bad_seq": report.bad_seq,
                                "problems": report.problems,
                            }
                        )
                    )
                elif report.ok:
                    print(
                        f"ok: {report.entries} entries, {report.accounts} accounts,"
                        f" head {report.head_seq}:{report.head_hash}"
                    )
                else:
                    where = f"entry {report.bad_seq}" if report.bad_seq else "materialized state"
                    print(f"FAILED at {where}: {report.problems[0]}", file=sys.stderr)
                return 0 if report.ok else 1
            if args.command == "digest":
                print(json.dumps({"seq": (d := digest(conn)).seq, "head_hash": d.head_hash}))
                return 0
            if args.command == "journal":
                entries = journal_page(
                    conn,
                    limit=args.tail,
                    kind=args.kind,
                    holder=member_holder(validate_address(args.member)) if args.member else None,
                    instrument=units_of(validate_asset_id(args.asset)) if args.asset else None,
                )
                for entry in reversed(entries):
                    if args.json:
                        print(json.dumps(entry.body() | {"hash": entry.hash}))
                    else:
                        print(_entry_line(entry))
                return 0
    finally:
        engine.dispose()
    raise AssertionError(f"unhandled command {args.command}")


def _serve(host: str, port: int, workers: int, database: str | None) -> int:
    if not 1 <= port <= 65535 or not 1 <= workers <= 64:
        raise LedgerError("serve_args", "port must be 1..65535 and workers 1..64")
    # Workers read their settings from the environment: pass ours on.
    if database:
        os.environ["DPN_DATABASE_URL"] = database
    os.environ.setdefault("DPN_SIWE_DOMAIN", f"{host}:{port}")
    os.environ.setdefault("DPN_SIWE_URI", f"http://{host}:{port}")
    print(
        f"DPN Ledger API on http://{host}:{port}/v1 (docs: http://{host}:{port}/docs)", flush=True
    )
    return serve(host, port, workers)


def _share(units: int, total: int) -> str:
    """``units`` of ``total`` as a percentage with two decimals, exactly (no floats)."""
    hundredths = units * 10_000 // total
    return f"{hundredths // 100}.{hundredths % 100:02d} %"


def _demo(engine: Engine) -> int:
    upgrade(engine)
    run_demo(Ledger(engine))
    names = {member_holder(m.address): m.name for m in DEMO_MEMBERS}
    with read_connection(engine) as conn:
        print(f"database: {engine.url.render_as_string(hide_password=True)}")
        asset = get_asset(conn, DEMO_ASSET_ID)
        print(f"asset {asset.id} ({asset.make} {asset.model}): cap table")
        for row in cap_table(conn, DEMO_ASSET_ID):
            share = _share(row.units, asset.total_units)
            print(f"  {names.get(row.holder, row.holder):<40} {row.units:>9} units  {share:>8}")
        report = verify(conn)
        d = digest(conn)
    print(f"verify: {'ok' if report.ok else report.problems[0]}; digest {d}")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dpn``."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except LedgerError as exc:
        print(f"dpn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
