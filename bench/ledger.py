"""Ledger write throughput: transfers among 1,000 accounts, against a raw-insert floor.

For each database (SQLite always; PostgreSQL when ``--postgres URL`` or
``DPN_TEST_POSTGRES_URL`` is given) it prepares a fresh, migrated database with
1,000 funded members, then appends N transfers through the one write path:

- ``single``: one entry per transaction (each commit durable on its own);
- ``batched``: ``--batch`` entries per transaction;
- ``floor``: the same number of entry and posting rows, precomputed, written by plain
  DBAPI ``executemany`` with the same commits per batch and no ledger logic at all;
- ``verify``: ``dpn verify`` over the resulting journal, with its peak traced memory.

``ratio = batched / floor``. Prints JSON. Run: ``dpn bench ledger --json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.harness import fresh_database, pick_postgres_url, stopwatch
from ledger.core import AccountKey, EntryDraft, EntryKind, Posting
from ledger.core.accounts import DEPOSITS, currency_of, member_holder
from ledger.db.engine import make_engine
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import transfer_draft
from ledger.registry.members import register_member

ACCOUNTS = 1_000
CURRENCY = currency_of("USD")
FUNDING = 10**12


def _addresses(n: int) -> list[str]:
    from eth_utils.address import to_checksum_address

    rng = random.Random(7)
    return [to_checksum_address(f"0x{rng.getrandbits(160):040x}") for _ in range(n)]


@contextmanager
def _ledger_database(kind: str, postgres_url: str | None, workdir: Path) -> Iterator[Engine]:
    """An engine on a fresh migrated database of ``kind`` (see ``fresh_database``)."""
    with fresh_database(kind, postgres_url, workdir) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _register_and_fund(ledger: Ledger, addresses: Sequence[str]) -> None:
    """Register a member at each address and deposit ``FUNDING`` to each, in one
    transaction (not measured)."""
    for i, address in enumerate(addresses):
        register_member(ledger, address, "individual", f"bench {i}", key=f"m{i}", actor="bench")
    drafts = [
        EntryDraft(
            kind=EntryKind.CASH_DEPOSIT,
            idempotency_key=f"fund{i}",
            actor="bench",
            payload={"reference": "bench"},
            postings=(
                Posting(AccountKey(DEPOSITS, CURRENCY), -FUNDING),
                Posting(AccountKey(member_holder(a), CURRENCY), FUNDING),
            ),
        )
        for i, a in enumerate(addresses)
    ]
    with ledger.write() as tx:
        tx.append_many(drafts)


def _transfers(addresses: Sequence[str], n: int, tag: str) -> list[EntryDraft]:
    rng = random.Random(42)
    drafts = []
    for i in range(n):
        a, b = rng.sample(range(len(addresses)), 2)
        drafts.append(
            transfer_draft(
                sender=addresses[a],
                recipient=addresses[b],
                instrument=CURRENCY,
                amount=rng.randint(1, 10_000),
                key=f"{tag}{i}",
                actor="bench",
            )
        )
    return drafts


def _single(ledger: Ledger, drafts: Sequence[EntryDraft]) -> float:
    with stopwatch() as watch:
        for draft in drafts:
            ledger.append(draft)
    return watch.seconds


def _batched(ledger: Ledger, drafts: Sequence[EntryDraft], batch: int) -> float:
    with stopwatch() as watch:
        for start in range(0, len(drafts), batch):
            with ledger.write() as tx:
                tx.append_many(drafts[start : start + batch])
    return watch.seconds


def _verify(engine: Engine) -> dict[str, Any]:
    """Time ``verify`` over the whole journal, then run it again under tracemalloc for its
    peak Python memory (tracing slows it): it streams, so the peak stays flat however
    long the journal is."""
    with engine.connect() as conn:
        with stopwatch() as watch:
            report = verify(conn)
        tracemalloc.start()
        verify(conn)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    if not report.ok:
        raise SystemExit(f"verify failed after the benchmark: {report.problems[0]}")
    return {
        "entries": report.entries,
        "entries_per_s": round(report.entries / watch.seconds),
        "peak_traced_mib": round(peak / 2**20, 1),
    }


def _floor(engine: Engine, n: int, batch: int) -> float:
    """Plain executemany of N entry rows and 2N posting rows; no hashing, no checks."""
    sqlite = engine.dialect.name == "sqlite"
    mark = "?" if sqlite else "%s"
    now = datetime.now(UTC)
    stamp: Any = now.replace(tzinfo=None).isoformat(" ") if sqlite else now
    with engine.connect() as conn:
        first = (conn.execute(text("SELECT max(seq) FROM journal_entries")).scalar() or 0) + 1
        ids = [r[0] for r in conn.execute(text("SELECT id FROM accounts ORDER BY id"))]
    rng = random.Random(1)
    entries, postings = [], []
    for i in range(n):
        seq = first + i
        entries.append(
            (
                seq,
                str(uuid.UUID(int=seq)),
                EntryKind.TRANSFER,
                "{}",
                stamp,
                stamp,
                "bench",
                f"floor{i}",
                "0" * 64,
                None,
                "0" * 64,
                f"{seq:064x}",
            )
        )
        amount = rng.randint(1, 10_000)
        a, b = rng.sample(ids, 2)
        postings.append((seq, 0, a, str(-amount) if sqlite else -amount))
        postings.append((seq, 1, b, str(amount) if sqlite else amount))
    entry_sql = (
        "INSERT INTO journal_entries (seq, id, kind, payload, effective_at, recorded_at, actor,"
        " idempotency_key, request_hash, reverses, prev_hash, hash) VALUES ("
        + ", ".join([mark] * 12)
        + ")"
    )
    posting_sql = (
        f"INSERT INTO journal_postings (seq, idx, account_id, amount)"
        f" VALUES ({mark}, {mark}, {mark}, {mark})"
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with stopwatch() as watch:
            for lo in range(0, n, batch):
                if sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany(entry_sql, entries[lo : lo + batch])
                cursor.executemany(posting_sql, postings[2 * lo : 2 * (lo + batch)])
                raw.commit() if not sqlite else cursor.execute("COMMIT")
        return watch.seconds
    finally:
        raw.close()


def measure(
    kind: str, n: int, batch: int, postgres_url: str | None, workdir: Path, single_n: int
) -> dict[str, Any]:
    """Run single, batched and floor on one database kind; return the figures."""
    addresses = _addresses(ACCOUNTS)
    result: dict[str, Any] = {"n": n, "single_n": single_n, "batch": batch, "accounts": ACCOUNTS}
    with _ledger_database(kind, postgres_url, workdir) as engine:
        ledger = Ledger(engine)
        _register_and_fund(ledger, addresses)
        seconds = _single(ledger, _transfers(addresses, single_n, "s"))
        result["single"] = {
            "entries_per_s": round(single_n / seconds),
            "seconds": round(seconds, 2),
        }
        seconds = _batched(ledger, _transfers(addresses, n, "b"), batch)
        result["batched"] = {"entries_per_s": round(n / seconds), "seconds": round(seconds, 2)}
        result["verify"] = _verify(engine)
    with _ledger_database(kind, postgres_url, workdir) as engine:
        _register_and_fund(Ledger(engine), addresses)
        seconds = _floor(engine, n, batch)
    result["floor_entries_per_s"] = round(n / seconds)
    result["ratio"] = round(result["batched"]["entries_per_s"] / result["floor_entries_per_s"], 3)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dpn bench ledger", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="transfers per mode")
    parser.add_argument("--batch", type=int, default=1_000, help="entries per batched commit")
    parser.add_argument(
        "--single-n", type=int, help="transfers in the one-per-transaction mode (default: --n)"
    )
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $DPN_TEST_POSTGRES_URL)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 10_000_000 or not 1 <= args.batch <= 100_000:
        print("dpn bench ledger: --n must be 1..10,000,000 and --batch 1..100,000", file=sys.stderr)
        return 2
    single_n = args.single_n or args.n
    if not 1 <= single_n <= args.n:
        print("dpn bench ledger: --single-n must be 1..--n", file=sys.stderr)
        return 2
    postgres = pick_postgres_url(args.postgres)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dpn-bench-") as tmp:
        if not args.no_sqlite:
            out["sqlite"] = measure("sqlite", args.n, args.batch, None, Path(tmp), single_n)
        if postgres:
            out["postgresql"] = measure(
                "postgresql", args.n, args.batch, postgres, Path(tmp), single_n
            )
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
