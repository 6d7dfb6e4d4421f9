"""The journal on a real database: append-only, idempotent, exact, refusing bad input
without a trace, readable as of any point, and checked by ``verify``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import DBAPIError

from ledger.core import AccountKey, EntryDraft, Posting, limits
from ledger.core.accounts import member_holder
from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused
from ledger.db.params import pg_int_array, pg_text_array
from ledger.db.schema import Balance, JournalEntry, table
from ledger.journal.reads import account_state, cap_table, digest, journal_page, seq_at
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.money import deposit, place_hold, release_hold, reverse, transfer
from ledger.registry.assets import register_asset
from ledger.registry.members import register_member

from .network import ANN, ASSET, BOB, CAT, DAN, UNITS, USD, build_network
from .tampering import lift_append_only


def _journal_length(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table(JournalEntry))).scalar_one())


def _balances_snapshot(engine: Engine) -> list[tuple[int, int, int]]:
    balances = table(Balance)
    with engine.connect() as conn:
        return [
            (r.account_id, r.balance, r.held)
            for r in conn.execute(select(balances).order_by(balances.c.account_id))
        ]


# -- append-only ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entries SET kind = 'forged' WHERE seq = 1",
        "DELETE FROM journal_entries WHERE seq = 1",
        "UPDATE journal_postings SET amount = '1'",
        "DELETE FROM journal_postings",
        "DELETE FROM journal_hold_changes",
        "UPDATE journal_hold_changes SET amount = '1'",
    ],
)
def test_database_refuses_to_change_the_journal(ledger: Ledger, statement: str) -> None:
    build_network(ledger)
    place_hold(
        ledger, member=ANN, instrument=USD, amount=5, hold_id="h", reason="bid", key="h", actor="t"
    )
    before = _journal_length(ledger.engine)
    with pytest.raises(DBAPIError, match="append-only"), ledger.engine.begin() as conn:
        conn.execute(text(statement))
    assert _journal_length(ledger.engine) == before
    with ledger.engine.connect() as conn:
        assert verify(conn).ok


def test_postgres_refuses_truncate(postgres_engine: Engine) -> None:
    ledger = Ledger(postgres_engine)
    build_network(ledger)
    with pytest.raises(DBAPIError, match="append-only"), postgres_engine.begin() as conn:
        conn.execute(text("TRUNCATE journal_postings"))


def _tamper(engine: Engine, statements: str) -> None:
    """Change the journal behind the triggers' back, as someone with DDL rights could."""
    with engine.begin() as conn:
        lift_append_only(conn)
        for statement in statements.split(";"):
            conn.execute(text(statement))


@pytest.mark.parametrize(
    ("statements", "problem", "bad"),
    [
        (
            "UPDATE journal_postings SET amount = '-400000' WHERE seq = {seq} AND idx = 0",
            "hash mismatch",
            0,
        ),
        (
            'UPDATE journal_entries SET payload = \'{{"memo":"forged"}}\' WHERE seq = {seq}',
            "hash mismatch",
            0,
        ),
        ("UPDATE journal_entries SET actor = 'mallory' WHERE seq = {seq}", "hash mismatch", 0),
        (  # a NUL (JSON \u0000) that no write would have let in
            'UPDATE journal_entries SET payload = \'{{"memo":"a\\u0000b"}}\' WHERE seq = {seq}',
            "cannot be encoded: text_nul",
            0,
        ),
        ("UPDATE journal_entries SET prev_hash = hash WHERE seq = {seq}", "chain broken", 0),
        (
            "DELETE FROM journal_postings WHERE seq = {seq}; DELETE FROM journal_entries"
            " WHERE seq = {seq}",
            "seq gap",
            1,
        ),
    ],
)
def test_verify_names_the_first_altered_entry(
    ledger: Ledger, statements: str, problem: str, bad: int
) -> None:
    build_network(ledger)
    victim = transfer(
        ledger,
        sender=ANN,
        recipient=BOB,
        instrument=UNITS,
        amount=100,
        key="t1",
        actor="t",
        memo="sale",
    ).seq
    transfer(ledger, sender=BOB, recipient=CAT, instrument=USD, amount=7, key="t2", actor="t")
    with ledger.engine.connect() as conn:
        assert verify(conn).ok
    _tamper(ledger.engine, statements.format(seq=victim))
    with ledger.engine.connect() as conn:
        report = verify(conn)
    assert not report.ok
    assert problem in report.problems[0]
    assert report.bad_seq == victim + bad


def test_verify_catches_a_balance_cache_out_of_step(ledger: Ledger) -> None:
    build_network(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE balances SET balance = '1' WHERE account_id = "
                "(SELECT min(account_id) FROM balances)"
            )
        )
    with ledger.engine.connect() as conn:
        report = verify(conn)
    assert not report.ok and "balance mismatch" in report.problems[0]


def test_verify_checks_a_published_digest(ledger: Ledger) -> None:
    build_network(ledger)
    with ledger.engine.connect() as conn:
        published = digest(conn)
    transfer(ledger, sender=ANN, recipient=BOB, instrument=USD, amount=1, key="later", actor="t")
    with ledger.engine.connect() as conn:
        assert verify(conn, against=(published.seq, published.head_hash)).ok
        report = verify(conn, against=(published.seq, "f" * 64))
    assert not report.ok and report.bad_seq == published.seq


# -- idempotency --------------------------------------------------------------------------


def test_same_key_same_request_returns_the_original(ledger: Ledger) -> None:
    build_network(ledger)
    first = transfer(
        ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=10, key="k", actor="t"
    )
    length = _journal_length(ledger.engine)
    again = transfer(
        ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=10, key="k", actor="t"
    )
    assert again == first
    assert _journal_length(ledger.engine) == length
    with ledger.engine.connect() as conn:
        assert account_state(conn, AccountKey(member_holder(BOB), UNITS)).balance == 300_010


def test_same_key_other_request_is_a_conflict(ledger: Ledger) -> None:
    build_network(ledger)
    transfer(ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=10, key="k", actor="t")
    before = (_journal_length(ledger.engine), _balances_snapshot(ledger.engine))
    with pytest.raises(Conflict) as caught:
        transfer(ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=11, key="k", actor="t")
    assert caught.value.code == "idempotency_conflict"
    assert (_journal_length(ledger.engine), _balances_snapshot(ledger.engine)) == before


# Keys the write path must look up exactly, whatever the database's quoting rules.
AWKWARD_KEYS = ('q"uote', "back\\slash", "a,b", "{br}", "NULL", " pad ", "ünï", '\\"', "k")


def test_awkward_keys_replay_and_conflict_in_a_batch(ledger: Ledger) -> None:
    build_network(ledger)

    def drafts(amount: int) -> list[EntryDraft]:
        return [_usd_draft(key, amount) for key in AWKWARD_KEYS]

    with ledger.write() as tx:
        first = tx.append_many(drafts(1))
    assert not any(a.replayed for a in first)
    length = _journal_length(ledger.engine)
    with ledger.write() as tx:
        again = tx.append_many(drafts(1))
    assert [a.entry for a in again] == [a.entry for a in first]
    assert all(a.replayed for a in again)
    with ledger.write() as tx:
        refused = tx.append_each(drafts(2))
    assert [getattr(r, "code", None) for r in refused] == ["idempotency_conflict"] * len(refused)
    assert _journal_length(ledger.engine) == length


def test_keys_given_to_a_write_are_read_with_the_lock_until_it_adds_an_entry(
    ledger: Ledger,
) -> None:
    build_network(ledger)
    first = transfer(
        ledger, sender=ANN, recipient=BOB, instrument=USD, amount=1, key=AWKWARD_KEYS[0], actor="t"
    )
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2]))

    keys = [*AWKWARD_KEYS, AWKWARD_KEYS[0]]  # a repeated key too
    event.listen(ledger.engine, "before_cursor_execute", counted)
    try:
        with ledger.write(keys) as tx:
            asked = len(statements)
            assert tx.stored_requests(keys) == {AWKWARD_KEYS[0]: first.seq}
            # On PostgreSQL the keys came with the lock: no statement more.
            lookups = len(statements) - asked
            assert lookups == (0 if ledger.engine.dialect.name == "postgresql" else 1)
            assert tx.stored_requests([AWKWARD_KEYS[1]]) == {}
            # A key outside those given is looked up as ever.
            assert tx.stored_requests(["other"]) == {}
            stored = tx.append_many([_usd_draft(AWKWARD_KEYS[1])])[0].entry
            # Once the transaction added an entry, the keys are looked up again.
            asked = len(statements)
            assert tx.stored_requests(keys) == {
                AWKWARD_KEYS[0]: first.seq,
                AWKWARD_KEYS[1]: stored.seq,
            }
            assert len(statements) > asked
    finally:
        event.remove(ledger.engine, "before_cursor_execute", counted)


def test_an_append_once_looks_its_key_up_once(ledger: Ledger) -> None:
    build_network(ledger)
    lookups: list[str] = []

    def counted(*args: object) -> None:
        statement = str(args[2])
        if "WHERE idempotency_key " in statement:  # either database's key lookup
            lookups.append(statement)

    written: list[int] = []
    event.listen(ledger.engine, "before_cursor_execute", counted)
    try:
        with ledger.write() as tx:
            first = tx.append_once(_usd_draft("once"), written.append)
            # The same key again, after the entry: looked up anew, and a replay.
            again = tx.append_once(_usd_draft("once"), written.append)
    finally:
        event.remove(ledger.engine, "before_cursor_execute", counted)
    assert len(lookups) == 2
    assert (first.replayed, again.replayed) == (False, True)
    assert again.entry == first.entry and written == [first.entry.seq]


def _paying(key: str, recipients: Sequence[str]) -> EntryDraft:
    """ANN pays each of ``recipients`` 1 USD, in one entry."""
    return EntryDraft(
        kind="transfer",
        idempotency_key=key,
        actor="t",
        postings=(
            Posting(AccountKey(member_holder(ANN), USD), -len(recipients)),
            *(Posting(AccountKey(member_holder(r), USD), 1) for r in recipients),
        ),
    )


def test_an_entry_to_many_new_accounts_checks_and_creates_them_together(ledger: Ledger) -> None:
    build_network(ledger)
    holders = [to_checksum_address(f"0x{0xD0C0 + i:040x}") for i in range(30)]
    for i, address in enumerate(holders):
        register_member(ledger, address, "individual", f"holder {i}", key=f"h{i}", actor="t")
    stranger = to_checksum_address(f"0x{0xBAD:040x}")
    before = (_journal_length(ledger.engine), _balances_snapshot(ledger.engine))
    # One holder unknown among them: refused as ever, naming it, and nothing written.
    with pytest.raises(NotFound, match=stranger) as refused, ledger.write() as tx:
        tx.append_many([_paying("stranger", [*holders[:10], stranger, *holders[10:]])])
    assert refused.value.code == "unknown_member"
    assert (_journal_length(ledger.engine), _balances_snapshot(ledger.engine)) == before
    member_reads: list[str] = []
    account_inserts: list[str] = []

    def counted(*args: object) -> None:
        statement = str(args[2])
        if "FROM members" in statement:
            member_reads.append(statement)
        if statement.startswith("INSERT INTO accounts"):
            account_inserts.append(statement)

    event.listen(ledger.engine, "before_cursor_execute", counted)
    try:
        with ledger.write() as tx:
            [paid] = tx.append_many([_paying("many", holders)])
    finally:
        event.remove(ledger.engine, "before_cursor_execute", counted)
    # One query for the thirty new accounts' members, one INSERT for the accounts.
    assert (len(member_reads), len(account_inserts)) == (1, 1)
    assert [p.amount for p in paid.entry.postings] == [-30] + [1] * 30
    with ledger.engine.connect() as conn:
        assert verify(conn).ok


def _usd_draft(key: str, amount: int = 1) -> EntryDraft:
    """A transfer of ``amount`` USD from ANN to BOB under ``key``."""
    return EntryDraft(
        kind="transfer",
        idempotency_key=key,
        actor="t",
        postings=(
            Posting(AccountKey(member_holder(ANN), USD), -amount),
            Posting(AccountKey(member_holder(BOB), USD), amount),
        ),
    )


def test_postgres_array_texts_read_back_as_given(postgres_engine: Engine) -> None:
    numbers = [0, -1, 2**63 - 1, 10**36, -(10**36)]
    with postgres_engine.connect() as conn:
        texts = conn.exec_driver_sql(
            "SELECT unnest(%s::text[])", (pg_text_array([*AWKWARD_KEYS, ""]),)
        ).scalars()
        assert list(texts) == [*AWKWARD_KEYS, ""]
        back = conn.exec_driver_sql("SELECT unnest(%s::numeric[])", (pg_int_array(numbers),))
        assert [int(n) for n in back.scalars()] == numbers


def test_a_batch_is_all_or_nothing(ledger: Ledger) -> None:
    build_network(ledger)
    before = (_journal_length(ledger.engine), _balances_snapshot(ledger.engine))
    good = EntryDraft(
        kind="transfer",
        idempotency_key="b1",
        actor="t",
        postings=(
            Posting(AccountKey(member_holder(ANN), USD), -5),
            Posting(AccountKey(member_holder(BOB), USD), 5),
        ),
    )
    too_much = EntryDraft(
        kind="transfer",
        idempotency_key="b2",
        actor="t",
        postings=(
            Posting(AccountKey(member_holder(CAT), USD), -(10**7)),
            Posting(AccountKey(member_holder(BOB), USD), 10**7),
        ),
    )
    with pytest.raises(Refused), ledger.write() as tx:
        tx.append_many([good, too_much])
    assert (_journal_length(ledger.engine), _balances_snapshot(ledger.engine)) == before


# -- bad input changes nothing -----------------------------------------------------------

BadCall = Callable[[Ledger], object]
_BAD: list[tuple[str, BadCall, type[LedgerError], str]] = [
    (
        "wrong check character",
        lambda lg: register_asset(
            lg,
            "1M8GDM9AYKP042788",
            make="m",
            model="m",
            serial="s",
            location="l",
            jurisdiction="j",
            key="x",
            actor="t",
        ),
        InvalidInput,
        "asset_id_check_digit",
    ),
    (
        "malformed address",
        lambda lg: register_member(lg, "0x12345", "individual", "n", key="x", actor="t"),
        InvalidInput,
        "address_malformed",
    ),
    (
        "address not checksummed",
        lambda lg: register_member(lg, ANN.lower(), "individual", "n", key="x", actor="t"),
        InvalidInput,
        "address_checksum",
    ),
    (
        "zero amount",
        lambda lg: transfer(
            lg, sender=ANN, recipient=BOB, instrument=USD, amount=0, key="x", actor="t"
        ),
        InvalidInput,
        "amount_not_positive",
    ),
    (
        "negative amount",
        lambda lg: transfer(
            lg, sender=ANN, recipient=BOB, instrument=USD, amount=-5, key="x", actor="t"
        ),
        InvalidInput,
        "amount_not_positive",
    ),
    (
        "over-limit amount",
        lambda lg: deposit(
            lg,
            member=ANN,
            currency="USD",
            amount=limits.AMOUNT_MAX + 1,
            reference="r",
            key="x",
            actor="t",
        ),
        InvalidInput,
        "amount_over_limit",
    ),
    (
        "unknown currency",
        lambda lg: deposit(
            lg, member=ANN, currency="XYZ", amount=5, reference="r", key="x", actor="t"
        ),
        NotFound,
        "unknown_currency",
    ),
    (
        "unknown currency in a transfer",
        lambda lg: transfer(
            lg, sender=ANN, recipient=BOB, instrument="ccy:XYZ", amount=5, key="x", actor="t"
        ),
        NotFound,
        "unknown_currency",
    ),
    (
        "unknown asset",
        lambda lg: transfer(
            lg,
            sender=ANN,
            recipient=BOB,
            instrument="units:11111111111111111",
            amount=5,
            key="x",
            actor="t",
        ),
        NotFound,
        "unknown_asset",
    ),
    (
        "mistyped asset ID in a transfer",
        lambda lg: transfer(
            lg,
            sender=ANN,
            recipient=BOB,
            instrument="units:1M8GDM9AYKP042788",
            amount=5,
            key="x",
            actor="t",
        ),
        InvalidInput,
        "asset_id_check_digit",
    ),
    (
        "NUL in a memo",
        lambda lg: transfer(
            lg,
            sender=ANN,
            recipient=BOB,
            instrument=USD,
            amount=5,
            memo="a\x00b",
            key="x",
            actor="t",
        ),
        InvalidInput,
        "text_nul",
    ),
    (
        "unknown member",
        lambda lg: transfer(
            lg,
            sender=ANN,
            recipient="0xd09Ad14080d4b257a819a4f579b8485Be88f086c",
            instrument=USD,
            amount=5,
            key="x",
            actor="t",
        ),
        NotFound,
        "unknown_member",
    ),
    (
        "more than available units",
        lambda lg: transfer(
            lg, sender=CAT, recipient=BOB, instrument=UNITS, amount=200_001, key="x", actor="t"
        ),
        Refused,
        "insufficient_units",
    ),
    (
        "more than available money",
        lambda lg: transfer(
            lg, sender=DAN, recipient=BOB, instrument=USD, amount=1_000_001, key="x", actor="t"
        ),
        Refused,
        "insufficient_funds",
    ),
    (
        "unbalanced postings",
        lambda lg: lg.append(
            EntryDraft(
                kind="transfer",
                idempotency_key="x",
                actor="t",
                postings=(
                    Posting(AccountKey(member_holder(ANN), USD), -5),
                    Posting(AccountKey(member_holder(BOB), USD), 4),
                ),
            )
        ),
        InvalidInput,
        "postings_unbalanced",
    ),
    (
        "reused key, different request",
        lambda lg: transfer(
            lg, sender=ANN, recipient=BOB, instrument=USD, amount=5, key="issue", actor="t"
        ),
        Conflict,
        "idempotency_conflict",
    ),
    (
        "units leaving through an external account",
        lambda lg: lg.append(
            EntryDraft(
                kind="transfer",
                idempotency_key="x",
                actor="t",
                postings=(
                    Posting(AccountKey(member_holder(ANN), UNITS), -5),
                    Posting(AccountKey("external:issuance", UNITS), 5),
                ),
            )
        ),
        Refused,
        "units_external",
    ),
    (
        "asset registered twice",
        lambda lg: register_asset(
            lg,
            ASSET,
            make="m",
            model="m",
            serial="s",
            location="l",
            jurisdiction="j",
            key="x",
            actor="t",
        ),
        Conflict,
        "asset_exists",
    ),
]


@pytest.mark.parametrize(("call", "error", "code"), [b[1:] for b in _BAD], ids=[b[0] for b in _BAD])
def test_bad_input_is_refused_and_changes_nothing(
    ledger: Ledger, call: BadCall, error: type[LedgerError], code: str
) -> None:
    build_network(ledger)
    before = (_journal_length(ledger.engine), _balances_snapshot(ledger.engine))
    with pytest.raises(error) as caught:
        call(ledger)
    assert caught.value.code == code
    assert (_journal_length(ledger.engine), _balances_snapshot(ledger.engine)) == before
    with ledger.engine.connect() as conn:
        assert verify(conn).ok


# -- holds, reversals, reads -------------------------------------------------------------


def test_holds_reserve_and_are_consumed_or_released(ledger: Ledger) -> None:
    build_network(ledger)
    cash = AccountKey(member_holder(ANN), USD)
    place_hold(
        ledger,
        member=ANN,
        instrument=USD,
        amount=600_000,
        hold_id="bid",
        reason="bid",
        key="h1",
        actor="t",
    )
    with ledger.engine.connect() as conn:
        state = account_state(conn, cash)
    assert (state.balance, state.held, state.available) == (1_000_000, 600_000, 400_000)
    with pytest.raises(Refused):
        transfer(
            ledger, sender=ANN, recipient=BOB, instrument=USD, amount=400_001, key="t1", actor="t"
        )
    transfer(
        ledger,
        sender=ANN,
        recipient=BOB,
        instrument=USD,
        amount=250_000,
        consume_hold="bid",
        key="t2",
        actor="t",
    )
    release_hold(ledger, hold_id="bid", key="r1", actor="t")
    with ledger.engine.connect() as conn:
        state = account_state(conn, cash)
        assert verify(conn).ok
    assert (state.balance, state.held) == (750_000, 0)
    with pytest.raises(LedgerError) as caught:
        release_hold(ledger, hold_id="bid", key="r2", actor="t")
    assert caught.value.code == "hold_closed"
    # The same release asked again is answered, not refused.
    assert release_hold(ledger, hold_id="bid", key="r1", actor="t").kind == "hold.release"


def test_reversal_undoes_once_and_names_the_original(ledger: Ledger) -> None:
    build_network(ledger)
    sale = transfer(
        ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=1_000, key="sale", actor="t"
    )
    undo = reverse(ledger, sale.seq, reason="wrong buyer", key="undo", actor="admin")
    assert undo.reverses == sale.seq
    assert undo.payload["reverses_id"] == sale.id
    with ledger.engine.connect() as conn:
        assert account_state(conn, AccountKey(member_holder(BOB), UNITS)).balance == 300_000
    with pytest.raises(Conflict) as caught:
        reverse(ledger, sale.seq, reason="again", key="undo2", actor="admin")
    assert caught.value.code == "already_reversed"
    with pytest.raises(Refused) as refused:
        reverse(ledger, 1, reason="a registration", key="undo3", actor="admin")
    assert refused.value.code == "not_reversible"


def test_balances_as_of_any_seq_or_time(ledger: Ledger) -> None:
    build_network(ledger)
    bob = AccountKey(member_holder(BOB), UNITS)
    steps = []
    for i in range(3):
        entry = transfer(
            ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=100, key=f"s{i}", actor="t"
        )
        steps.append(entry)
    with ledger.engine.connect() as conn:
        assert [account_state(conn, bob, as_of_seq=e.seq).balance for e in steps] == [
            300_100,
            300_200,
            300_300,
        ]
        assert account_state(conn, bob, as_of_seq=steps[0].seq - 1).balance == 300_000
        moment = steps[1].recorded_at
        assert seq_at(conn, moment) == steps[1].seq
        assert seq_at(conn, moment - timedelta(microseconds=1)) == steps[0].seq
        table_then = cap_table(conn, ASSET, as_of_seq=steps[0].seq)
        assert sum(r.units for r in table_then) == 1_000_000
        assert {r.holder: r.units for r in table_then}[member_holder(BOB)] == 300_100


def test_journal_pages_filter_by_kind_member_and_asset(ledger: Ledger) -> None:
    build_network(ledger)
    transfer(ledger, sender=ANN, recipient=BOB, instrument=UNITS, amount=100, key="u", actor="t")
    transfer(ledger, sender=CAT, recipient=DAN, instrument=USD, amount=100, key="c", actor="t")
    with ledger.engine.connect() as conn:
        kinds = [e.kind for e in journal_page(conn, limit=3)]
        assert kinds == ["transfer", "transfer", "cash.deposit"]
        assert [e.idempotency_key for e in journal_page(conn, kind="transfer")] == ["c", "u"]
        assert [e.idempotency_key for e in journal_page(conn, member=DAN, kind="transfer")] == ["c"]
        assert [e.idempotency_key for e in journal_page(conn, asset=ASSET)] == [
            "u",
            "issue",
            "asset",
        ]
        oldest = journal_page(conn, after_seq=0, limit=2)
        assert [e.seq for e in oldest] == [1, 2]
        with pytest.raises(InvalidInput):
            journal_page(conn, limit=10_000)
