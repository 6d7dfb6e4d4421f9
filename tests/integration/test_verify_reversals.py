"""``verify`` checks that a reversal undoes a reversible entry exactly, that an entry is
reversed at most once, that a hold id is placed once and that entry ids derive from
their keys, and names the first entry that breaks it.

The journals here are forged the way someone with DDL rights could: behind the
append-only triggers, and with every hash from the altered entry on recomputed, so the
chain itself is intact and only these checks can tell.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import Connection, Engine, select, text, update

from ledger.core import AccountKey, EntryDraft, Posting
from ledger.core.accounts import member_holder
from ledger.core.canonical import canonical_bytes
from ledger.db.schema import Account, Balance, Hold, JournalEntry, JournalHoldChange, table
from ledger.journal.entries import load_entries, stream_entries
from ledger.journal.verify import VerifyReport, verify
from ledger.journal.write import Ledger
from ledger.money import place_hold, release_hold, reverse, transfer

from .network import ANN, BOB, CAT, DAN, UNITS, USD, build_network
from .tampering import lift_append_only

_entries = table(JournalEntry)


@dataclass(frozen=True)
class History:
    sale: int  # ANN sells BOB 1,000 units
    tip: int  # CAT pays DAN 5 USD
    undo_sale: int  # reverses ``sale``
    resale: int  # ANN sells BOB 1,000 units again: the same postings as ``sale``
    undo_resale: int  # reverses ``resale``
    last: int


def _history(ledger: Ledger) -> History:
    build_network(ledger)

    def sell(key: str) -> int:
        entry = transfer(
            ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=1_000, key=key, actor="t"
        )
        return entry.seq

    sale = sell("sale")
    tip = transfer(
        ledger, sender=CAT, recipient=DAN, instrument=USD, amount=5, key="tip", actor="t"
    ).seq
    undo_sale = reverse(ledger, sale, reason="wrong buyer", key="undo-sale", actor="admin").seq
    resale = sell("resale")
    undo_resale = reverse(ledger, resale, reason="again", key="undo-resale", actor="admin").seq
    last = transfer(
        ledger, sender=DAN, recipient=ANN, instrument=USD, amount=3, key="last", actor="t"
    ).seq
    with ledger.engine.connect() as conn:
        assert verify(conn).ok
    return History(sale, tip, undo_sale, resale, undo_resale, last)


def _drop_unique_reverses(engine: Engine) -> None:
    """Take away the database's own guard against a second reversal of an entry."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE journal_entries DROP CONSTRAINT uq_journal_entries_reverses")
            )
        return
    # SQLite cannot drop a table's constraint: rebuild the table without it.
    path = engine.url.database
    assert path
    engine.dispose()
    raw = sqlite3.connect(path, isolation_level=None)  # foreign keys off: a raw connection
    try:
        (ddl,) = raw.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'journal_entries'"
        ).fetchone()
        ddl = re.sub(r",\s*CONSTRAINT uq_journal_entries_reverses UNIQUE \(reverses\)", "", ddl)
        ddl = ddl.replace("CREATE TABLE journal_entries", "CREATE TABLE forged", 1)
        raw.executescript(
            f"BEGIN; {ddl}; INSERT INTO forged SELECT * FROM journal_entries;"
            " DROP TABLE journal_entries; ALTER TABLE forged RENAME TO journal_entries; COMMIT;"
        )
    finally:
        raw.close()


def _forge(engine: Engine, first_seq: int, alter: Callable[[Connection], None]) -> None:
    """Alter the journal behind the triggers' back, then recompute the hash of every
    entry from ``first_seq`` on, so that the chain still holds together."""
    with engine.begin() as conn:
        lift_append_only(conn)
        alter(conn)
        prev_hash = conn.execute(
            select(_entries.c.hash).where(_entries.c.seq == first_seq - 1)
        ).scalar_one()
        for entry in list(stream_entries(conn, first_seq)):
            new_hash = replace(entry, prev_hash=prev_hash).computed_hash()
            conn.execute(
                update(_entries)
                .where(_entries.c.seq == entry.seq)
                .values(prev_hash=prev_hash, hash=new_hash)
            )
            prev_hash = new_hash


def _retarget(conn: Connection, seq: int, target: int) -> None:
    """Make reversal ``seq`` name ``target`` (in its column and in its payload)."""
    (reversal,) = load_entries(conn, [seq])
    (original,) = load_entries(conn, [target])
    payload = dict(reversal.payload) | {"reverses_id": original.id}
    conn.execute(
        update(_entries)
        .where(_entries.c.seq == seq)
        .values(reverses=target, payload=canonical_bytes(payload).decode())
    )


def _verify(engine: Engine) -> VerifyReport:
    with engine.connect() as conn:
        report = verify(conn)
    assert not report.ok
    return report


def test_a_reversal_that_undoes_another_entry_is_named(ledger: Ledger) -> None:
    h = _history(ledger)
    # The reversal of the sale now claims to reverse the tip; its postings still undo
    # the sale, so balances agree with the journal and only the reversal check tells.
    _forge(ledger.engine, h.undo_sale, lambda conn: _retarget(conn, h.undo_sale, h.tip))
    report = _verify(ledger.engine)
    assert report.bad_seq == h.undo_sale
    assert f"reversal does not negate entry {h.tip}" in report.problems[0]


def test_a_reversal_with_an_altered_amount_is_named(ledger: Ledger) -> None:
    h = _history(ledger)
    ann, bob = AccountKey(member_holder(ANN), UNITS), AccountKey(member_holder(BOB), UNITS)

    def undo_only_400(conn: Connection) -> None:
        # The reversal gives back 400 units of the 1,000, and the balances say so too.
        conn.execute(
            text("UPDATE journal_postings SET amount = :amount WHERE seq = :seq AND idx = :idx"),
            [
                {"amount": "400", "seq": h.undo_sale, "idx": 0},
                {"amount": "-400", "seq": h.undo_sale, "idx": 1},
            ],
        )
        accounts, balances = table(Account), table(Balance)
        for key, shift in ((ann, -600), (bob, 600)):
            row = conn.execute(
                select(accounts.c.id).where(
                    accounts.c.holder == key.holder, accounts.c.instrument == key.instrument
                )
            ).scalar_one()
            balance = conn.execute(
                select(balances.c.balance).where(balances.c.account_id == row)
            ).scalar_one()
            conn.execute(
                update(balances).where(balances.c.account_id == row).values(balance=balance + shift)
            )

    _forge(ledger.engine, h.undo_sale, undo_only_400)
    with ledger.engine.connect() as conn:
        (forged,) = load_entries(conn, [h.undo_sale])
    assert forged.postings == (Posting(ann, 400), Posting(bob, -400))
    report = _verify(ledger.engine)
    assert report.bad_seq == h.undo_sale
    assert f"reversal does not negate entry {h.sale}" in report.problems[0]


def test_an_entry_reversed_twice_is_named_at_its_second_reversal(ledger: Ledger) -> None:
    h = _history(ledger)
    _drop_unique_reverses(ledger.engine)
    # The resale's reversal now names the sale, which it negates exactly (the two
    # sales have the same postings): the sale is reversed twice.
    _forge(ledger.engine, h.undo_resale, lambda conn: _retarget(conn, h.undo_resale, h.sale))
    with ledger.engine.connect() as conn:
        reversals = conn.execute(
            select(_entries.c.seq).where(_entries.c.reverses == h.sale).order_by(_entries.c.seq)
        ).scalars()
        assert list(reversals) == [h.undo_sale, h.undo_resale]
    report = _verify(ledger.engine)
    assert report.bad_seq == h.undo_resale
    assert f"entry {h.sale} reversed again (first by entry {h.undo_sale})" in report.problems[0]


@pytest.mark.parametrize(
    ("amount", "reverses", "problem"),
    [
        (400, "sale", "reversal does not negate entry"),  # half undone
        (1_000, None, "a reversal that names no entry"),
        (1_000, "tip", "reversal does not negate entry"),
    ],
)
def test_a_bad_reversal_from_the_write_path_is_named(
    ledger: Ledger, amount: int, reverses: str | None, problem: str
) -> None:
    # The one write path checks balances, not what a reversal means: a service that
    # built a reversal wrongly would get it stored, and verify must say so.
    build_network(ledger)
    sale = transfer(
        ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=1_000, key="sale", actor="t"
    ).seq
    tip = transfer(
        ledger, sender=CAT, recipient=DAN, instrument=USD, amount=5, key="tip", actor="t"
    ).seq
    target = {"sale": sale, "tip": tip, None: None}[reverses]
    draft = EntryDraft(
        kind="reversal",
        idempotency_key="bad-undo",
        actor="buggy service",
        postings=(
            Posting(AccountKey(member_holder(BOB), UNITS), -amount),
            Posting(AccountKey(member_holder(ANN), UNITS), amount),
        ),
        reverses=target,
    )
    bad = ledger.append(draft).entry.seq
    report = _verify(ledger.engine)
    assert report.bad_seq == bad
    assert problem in report.problems[0]


def test_a_hold_id_placed_again_after_it_closed_is_named(ledger: Ledger) -> None:
    # verify no longer remembers every closed hold id (that set grows with history):
    # it looks an earlier placing up in the journal instead.
    h = _history(ledger)

    def bid(hold_id: str, amount: int) -> int:
        return place_hold(
            ledger,
            member=ANN,
            instrument=USD,
            amount=amount,
            hold_id=hold_id,
            reason="a bid",
            key=f"place-{hold_id}",
            actor="t",
        ).seq

    first = bid("bid", 50)
    release_hold(ledger, hold_id="bid", key="release-bid", actor="t")
    second = bid("bid2", 70)
    assert h.last < first < second

    def reuse_the_id(conn: Connection) -> None:
        holds, changes = table(Hold), table(JournalHoldChange)
        conn.execute(holds.delete().where(holds.c.id == "bid"))
        conn.execute(update(holds).where(holds.c.id == "bid2").values(id="bid"))
        conn.execute(update(changes).where(changes.c.hold_id == "bid2").values(hold_id="bid"))

    _forge(ledger.engine, second, reuse_the_id)
    report = _verify(ledger.engine)
    assert report.bad_seq == second
    assert f"hold 'bid' placed again (first by entry {first})" in report.problems[0]


def test_a_reversal_of_an_entry_that_may_not_be_reversed_is_named(ledger: Ledger) -> None:
    build_network(ledger)  # seq 1 registers a member: no postings, and not reversible
    draft = EntryDraft(kind="reversal", idempotency_key="undo-member", actor="x", reverses=1)
    bad = ledger.append(draft).entry.seq  # negates seq 1's (no) postings exactly
    report = _verify(ledger.engine)
    assert report.bad_seq == bad
    assert "reverses entry 1, a member.register: not reversible" in report.problems[0]


def test_an_entry_id_not_derived_from_its_key_is_named(ledger: Ledger) -> None:
    # No index keeps entry ids unique: their derivation from the unique key does.
    h = _history(ledger)
    with ledger.engine.connect() as conn:
        (sale,) = load_entries(conn, [h.sale])

    def reuse_the_sales_id(conn: Connection) -> None:
        conn.execute(update(_entries).where(_entries.c.seq == h.tip).values(id=sale.id))

    _forge(ledger.engine, h.tip, reuse_the_sales_id)
    report = _verify(ledger.engine)
    assert report.bad_seq == h.tip
    assert f"entry id {sale.id} is not the one its idempotency key gives" in report.problems[0]
