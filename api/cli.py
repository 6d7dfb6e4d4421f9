"""The ``dpn`` command line. Bad input (a malformed argument, a database that does not
exist or was never migrated) gets one line on stderr and exit status 2; a database error
gets one line and status 1."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from alembic.util import CommandError
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from api.cli_chain import (
    add_chain_commands,
    chain_demo_lines,
    dev_chain,
    mine_every_second,
    run_chain_command,
)
from ledger.core import Entry, format_time
from ledger.core.accounts import member_holder
from ledger.core.errors import InvalidInput, LedgerError, NotFound
from ledger.db.engine import database_url, db_errors_translated, make_engine, read_connection
from ledger.db.migrate import current_revision, downgrade, head_revision, upgrade
from ledger.journal.reads import JOURNAL_PAGE_MAX, cap_table, digest, journal_page
from ledger.journal.verify import VerifyReport, verify
from ledger.journal.write import Ledger, system_clock
from ledger.outputs.audit import audit_outputs
from ledger.outputs.buyout_clock import RUN_BATCH_MAX, Outcome, Refusal, run_due
from ledger.registry.assets import get_asset
from market.engine.audit import audit_market

__all__ = ["main"]

BENCHES = ("chain", "engine", "http", "ledger", "market", "outputs")
_SEQ_DIGITS_MAX = 19  # a seq is a signed 64-bit integer
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


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
    demo.add_argument(
        "--print-keys",
        action="store_true",
        help="print the demo wallets' private keys (public test keys: sign in as them locally)",
    )

    serve = commands.add_parser("serve", help="run the HTTP API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)

    run = commands.add_parser(
        "run", help="what `make run` runs: a local anvil if installed, the demo, the API"
    )
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1)

    add_chain_commands(commands)

    check = commands.add_parser("verify", help="rebuild balances and check every invariant")
    check.add_argument("--against", metavar="SEQ:HASH", help="a published digest to check")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    journal = commands.add_parser("journal", help="show the newest entries")
    journal.add_argument("--tail", type=int, default=20, help=f"how many (max {JOURNAL_PAGE_MAX})")
    journal.add_argument("--kind", help="only entries of this kind")
    journal.add_argument("--member", help="only entries posting to this member's accounts")
    journal.add_argument("--asset", help="only entries posting this asset's units")
    journal.add_argument("--currency", help="only entries posting this currency")
    journal.add_argument("--json", action="store_true", help="one JSON object per line")

    commands.add_parser("digest", help="print the journal's (seq, head hash)")

    buyouts = commands.add_parser("buyouts", help="buy-out plans").add_subparsers(
        dest="buyouts_command", required=True
    )
    due = buyouts.add_parser("run", help="settle the installments due at the clock now")
    due.add_argument(
        "--limit", default=str(RUN_BATCH_MAX), help=f"at most this many (1..{RUN_BATCH_MAX})"
    )

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
    if not (
        seq.isascii()
        and seq.isdigit()
        and len(seq) <= _SEQ_DIGITS_MAX
        and len(head) == 64
        and _HEX_DIGITS.issuperset(head)
    ):
        raise InvalidInput(
            "digest_malformed", f"expected SEQ:HASH (64 hex digits), got {text[:100]!r}"
        )
    return int(seq), head.lower()


def _database_url(args: argparse.Namespace) -> URL:
    """The ``--database`` URL (or the configured one), parsed, of a dialect SQLAlchemy
    knows; one line if it is not."""
    try:
        url = make_url(args.database or database_url())
    except ArgumentError:
        raise InvalidInput(
            "database_url_malformed",
            "--database (or DPN_DATABASE_URL) is not a database URL,"
            " e.g. sqlite:///var/dpn.sqlite3 or postgresql+psycopg://user@host/dpn",
        ) from None
    try:
        url.get_dialect()
    except (ArgumentError, ImportError) as exc:
        raise _unsupported(url, exc) from None
    return url


def _unsupported(url: URL, exc: Exception) -> InvalidInput:
    return InvalidInput(
        "database_url_unsupported",
        f"cannot open a {url.drivername[:64]!r} database: {_one_line(str(exc))}",
    )


def _open(url: URL, *, may_create: bool) -> Engine:
    """An engine on ``url``. Unless ``may_create``, a SQLite file that is not there is
    refused: opening it would create it (and its directories) as an empty database."""
    path = url.database if url.get_backend_name() == "sqlite" else None
    in_a_file = bool(path) and path != ":memory:" and not str(path).startswith("file:")
    if in_a_file and not may_create and not Path(str(path)).is_file():
        raise NotFound(
            "database_missing", f"no database at {path} (mistyped? `dpn db upgrade` creates one)"
        )
    try:
        return make_engine(url.render_as_string(hide_password=False))
    except (ArgumentError, ImportError) as exc:  # e.g. the dialect's driver is missing
        raise _unsupported(url, exc) from None


def _require_migrated(engine: Engine) -> None:
    """Refuse, in one line, a database that holds no ledger (never migrated)."""
    with read_connection(engine) as conn:
        revision = current_revision(conn)
    if revision is None:
        where = engine.url.render_as_string(hide_password=True)
        raise NotFound(
            "database_not_migrated",
            f"the database at {where} holds no ledger: run `dpn db upgrade` first",
        )


def _run(args: argparse.Namespace) -> int:
    if args.command == "bench":
        module = importlib.import_module(f"bench.{args.name}")  # an installed package
        return int(module.main(args.args))
    url = _database_url(args)
    against = _parse_digest(args.against) if getattr(args, "against", None) else None
    limit = _run_limit(args.limit) if args.command == "buyouts" else 0  # before any opening
    db_command = getattr(args, "db_command", None)
    creates = args.command in ("demo", "serve", "run") or (args.command, db_command) == (
        "db",
        "upgrade",
    )
    engine = _open(url, may_create=creates)
    try:
        with db_errors_translated():
            if args.command == "db":
                return _db(engine, args)
            if args.command == "demo":
                upgrade(engine)
                if args.print_keys:
                    _print_demo_keys()
                if args.if_empty:
                    with read_connection(engine) as conn:
                        if digest(conn).seq > 0:
                            print("journal not empty: demo not loaded")
                            return 0
                return _demo(engine)
            if args.command == "run":
                return _dev_run(engine, args)
            if args.command == "serve":
                # Started on a database not yet migrated, the service is alive and not
                # ready (/readyz says why) until `dpn db upgrade` has run.
                engine.dispose()
                return _serve(args.host, args.port, args.workers, args.database)
            _require_migrated(engine)
            if args.command == "chain":
                return run_chain_command(engine, args)
            if args.command == "buyouts":
                return _buyouts_run(engine, limit)
            with read_connection(engine) as conn:
                if args.command == "verify":
                    report = verify(conn, against=against)
                    return _verify(
                        report, audit_market(conn), audit_outputs(conn), as_json=args.json
                    )
                if args.command == "digest":
                    print(json.dumps({"seq": (d := digest(conn)).seq, "head_hash": d.head_hash}))
                    return 0
                if args.command == "journal":
                    return _journal(conn, args)
    finally:
        engine.dispose()
    raise AssertionError(f"unhandled command {args.command}")


def _db(engine: Engine, args: argparse.Namespace) -> int:
    if args.db_command == "upgrade":
        upgrade(engine)
    elif args.db_command == "downgrade":
        try:
            downgrade(engine, args.revision)
        except CommandError as exc:
            raise InvalidInput(
                "revision_unknown",
                f"cannot downgrade to {args.revision[:64]!r}: {_one_line(str(exc))}",
            ) from None
    with read_connection(engine) as conn:
        print(f"database at {current_revision(conn)} (newest: {head_revision()})")
    return 0


def _verify(report: VerifyReport, market: list[str], outputs: list[str], *, as_json: bool) -> int:
    ok = report.ok and not market and not outputs
    if as_json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "entries": report.entries,
                    "head_seq": report.head_seq,
                    "head_hash": report.head_hash,
                    "accounts": report.accounts,
                    "bad_seq": report.bad_seq,
                    "where": report.where,
                    "problems": report.problems,
                    "market_ok": not market,
                    "market_problems": market,
                    "outputs_ok": not outputs,
                    "outputs_problems": outputs,
                }
            )
        )
    elif ok:
        print(
            f"ok: {report.entries} entries, {report.accounts} accounts,"
            f" head {report.head_seq}:{report.head_hash}; the market and the outputs agree"
        )
    elif not report.ok:
        print(f"FAILED at {report.where}: {report.problems[0]}", file=sys.stderr)
    elif market:
        print(f"FAILED in the market: {market[0]}", file=sys.stderr)
    else:
        print(f"FAILED in the outputs: {outputs[0]}", file=sys.stderr)
    return 0 if ok else 1


def _journal(conn: Connection, args: argparse.Namespace) -> int:
    entries = journal_page(
        conn,
        limit=args.tail,
        kind=args.kind,
        member=args.member,
        asset=args.asset,
        currency=args.currency,
    )
    for entry in reversed(entries):
        if args.json:
            print(json.dumps(entry.body() | {"hash": entry.hash}))
        else:
            print(_entry_line(entry))
    return 0


def _run_limit(text: str) -> int:
    # At most as many digits as the maximum: a long run of digits is not parsed at all.
    if not (
        text.isascii()
        and text.isdigit()
        and len(text) <= len(str(RUN_BATCH_MAX))
        and 1 <= int(text) <= RUN_BATCH_MAX
    ):
        raise InvalidInput(
            "limit_malformed", f"--limit must be a whole number in 1..{RUN_BATCH_MAX}"
        )
    return int(text)


def _buyouts_run(engine: Engine, limit: int) -> int:
    """Settle the buy-out installments due at the clock now (the server does so by
    itself; this is for a ledger served by none, or to settle at once): one line for
    each installment paid, missed or defaulted, one on stderr for each the ledger
    refused (which stays due), then a summary; exit 1 if any was refused."""
    refusals: list[Refusal] = []
    done = run_due(Ledger(engine), system_clock(), limit=limit, on_refused=refusals.append)
    for r in refusals:
        print(
            f"plan {r.plan_id} installment {r.number}: refused ({r.code}: {r.message})",
            file=sys.stderr,
        )
    for s in done:
        then = "" if s.next_attempt_at is None else f", next {format_time(s.next_attempt_at)}"
        print(
            f"plan {s.plan_id} installment {s.number}: {s.outcome.value} (entry {s.seq},"
            f" {s.units} units for {s.cash_minor}, attempt {s.attempts}{then})"
        )
    count = {o: sum(1 for s in done if s.outcome is o) for o in Outcome}
    print(
        f"buy-outs: {count[Outcome.PAID]} paid, {count[Outcome.MISSED]} missed,"
        f" {count[Outcome.DEFAULTED]} defaulted, {len(refusals)} refused"
    )
    return 1 if refusals else 0


def _serve(host: str, port: int, workers: int, database: str | None) -> int:
    # The server, its settings and the chain they may name are imported here, not with
    # the module: every other command starts without web3, uvicorn and the app.
    from api.serve import serve
    from api.settings import Settings

    if not 1 <= port <= 65535 or not 1 <= workers <= 64:
        raise LedgerError("serve_args", "port must be 1..65535 and workers 1..64")
    # Workers read their settings from the environment: pass ours on.
    if database:
        os.environ["DPN_DATABASE_URL"] = database
    os.environ.setdefault("DPN_SIWE_DOMAIN", f"{host}:{port}")
    os.environ.setdefault("DPN_SIWE_URI", f"http://{host}:{port}")
    Settings.from_env()  # a malformed setting: one line here, not a crash in each worker
    print(
        f"DPN Ledger API on http://{host}:{port}/v1 (docs: http://{host}:{port}/docs)", flush=True
    )
    return serve(host, port, workers)


def _dev_run(engine: Engine, args: argparse.Namespace) -> int:
    """Migrate, start a local chain (if anvil is installed and none is configured), load
    the demo into an empty journal, then serve until SIGTERM; the chain stops with it."""
    upgrade(engine)
    node = dev_chain(lambda line: print(line, flush=True))
    try:
        with read_connection(engine) as conn:
            empty = digest(conn).seq == 0
        if empty:
            _demo(engine)
        else:
            print("journal not empty: demo not loaded", flush=True)
        mine_every_second(node)
        engine.dispose()
        return _serve(args.host, args.port, args.workers, args.database)
    finally:
        if node is not None:
            node.stop()


def _share(units: int, total: int) -> str:
    """``units`` of ``total`` as a percentage with two decimals, exactly (no floats)."""
    hundredths = units * 10_000 // total
    return f"{hundredths // 100}.{hundredths % 100:02d} %"


def _print_demo_keys() -> None:
    from api.demo import DEMO_MEMBERS

    print("demo wallets (well-known test keys: never send real money to them):")
    for m in DEMO_MEMBERS:
        print(f"  {m.name:<40} {m.kind:<13} {m.address}  {m.private_key}")
    organizer = DEMO_MEMBERS[0].address
    print(f"  to act as the admin too: DPN_ADMINS={organizer} make run")


def _demo(engine: Engine) -> int:
    from api.demo import DEMO_ASSET_ID, DEMO_MEMBERS, run_demo  # eth_account: when needed

    run_demo(Ledger(engine))
    names = {member_holder(m.address): m.name for m in DEMO_MEMBERS}
    with read_connection(engine) as conn:
        print(f"database: {engine.url.render_as_string(hide_password=True)}")
        asset = get_asset(conn, DEMO_ASSET_ID)
        print(f"asset {asset.id} ({asset.make} {asset.model}): cap table")
        for row in cap_table(conn, DEMO_ASSET_ID):
            share = _share(row.units, asset.total_units)
            print(f"  {names.get(row.holder, row.holder):<40} {row.units:>9} units  {share:>8}")
    for line in chain_demo_lines(engine):
        print(line, flush=True)
    with read_connection(engine) as conn:
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
        print(f"dpn: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except DBAPIError as exc:  # what ``db_errors_translated`` leaves: e.g. not a database
        print(f"dpn: error: database_error: {_one_line(str(exc.orig))}", file=sys.stderr)
        return 1


def _one_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


if __name__ == "__main__":
    raise SystemExit(main())
