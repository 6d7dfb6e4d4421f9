"""``LedgerState.apply``: the balance rules, holds, and refusals that change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import AccountKey, AccountState, HoldChange, HoldOp, LedgerState, Posting
from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused


def code_of(call: Callable[[], object], error: type[LedgerError]) -> str:
    """Run ``call``; fail unless it raises ``error``; return the error's stable code."""
    with pytest.raises(error) as info:
        call()
    return info.value.code


ALICE = "member:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BOB = "member:0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
USD = "ccy:USD"
UNITS = "units:1M8GDM9AXKP042788"
A_USD, B_USD = AccountKey(ALICE, USD), AccountKey(BOB, USD)
A_UNITS, B_UNITS = AccountKey(ALICE, UNITS), AccountKey(BOB, UNITS)
DEPOSITS = AccountKey("external:deposits", USD)
ISSUANCE = AccountKey("external:issuance", UNITS)
POOL = AccountKey("pool:1M8GDM9AXKP042788", UNITS)

Snapshot = tuple[
    dict[AccountKey, tuple[int, int]], dict[str, tuple[AccountKey, int]], frozenset[str]
]


def snapshot(state: LedgerState) -> Snapshot:
    return (
        {k: (s.balance, s.held) for k, s in state.accounts.items()},
        {h: (s.account, s.remaining) for h, s in state.holds.items()},
        frozenset(state.closed_holds),
    )


def move(source: AccountKey, target: AccountKey, amount: int) -> tuple[Posting, ...]:
    return (Posting(source, -amount), Posting(target, amount))


def hold(hold_id: str, account: AccountKey, op: HoldOp, amount: int) -> tuple[HoldChange, ...]:
    return (HoldChange(hold_id, account, op, amount),)


def funded(usd: int = 100, units: int = 0) -> LedgerState:
    """Alice with ``usd`` deposited and ``units`` issued from the pool."""
    state = LedgerState()
    state.apply(move(DEPOSITS, A_USD, usd), ())
    state.apply(move(ISSUANCE, POOL, 1_000_000), ())
    if units:
        state.apply(move(POOL, A_UNITS, units), ())
    return state


def refused_without_change(
    state: LedgerState, apply: Callable[[], None], error: type[LedgerError]
) -> str:
    before = snapshot(state)
    code = code_of(apply, error)
    assert snapshot(state) == before
    return code


def test_available_is_balance_minus_held() -> None:
    assert AccountState(balance=10, held=3).available == 7
    assert AccountState().available == 0


def test_a_transfer_within_available_moves_the_amount() -> None:
    state = funded(100)
    state.apply(move(A_USD, B_USD, 100), ())
    assert state.accounts[A_USD] == AccountState(0, 0)
    assert state.accounts[B_USD] == AccountState(100, 0)
    assert state.accounts[DEPOSITS] == AccountState(-100, 0)


@pytest.mark.parametrize(
    ("instrument_from", "instrument_to", "code"),
    [(A_USD, B_USD, "insufficient_funds"), (A_UNITS, B_UNITS, "insufficient_units")],
)
def test_overspending_is_refused_and_changes_nothing(
    instrument_from: AccountKey, instrument_to: AccountKey, code: str
) -> None:
    state = funded(100, units=50)
    have = state.accounts[instrument_from].balance
    postings = move(instrument_from, instrument_to, have + 1)
    before = snapshot(state)
    with pytest.raises(Refused) as info:
        state.apply(postings, ())
    assert info.value.code == code
    assert info.value.detail == {"account": str(instrument_from), "available": str(have)}
    assert snapshot(state) == before
    assert instrument_to not in state.accounts  # not even created empty


def test_spending_from_an_unseen_account_is_refused() -> None:
    state = LedgerState()
    code = refused_without_change(state, lambda: state.apply(move(A_USD, B_USD, 1), ()), Refused)
    assert code == "insufficient_funds"
    assert state.accounts == {}


def test_a_refusal_on_one_account_leaves_the_others_alone() -> None:
    state = funded(100)
    # Bob would be credited and Alice debited by the first pair; the second pair overdraws
    # Bob, so nothing at all may change.
    postings = (
        Posting(A_USD, -50),
        Posting(B_USD, 50),
        Posting(AccountKey(BOB, "ccy:ETH"), -1),
        Posting(AccountKey(ALICE, "ccy:ETH"), 1),
    )
    assert refused_without_change(state, lambda: state.apply(postings, ()), Refused) == (
        "insufficient_funds"
    )


def test_external_accounts_may_go_negative() -> None:
    state = LedgerState()
    state.apply(move(DEPOSITS, A_USD, 10**30), ())
    state.apply(move(ISSUANCE, POOL, 1_000_000), ())
    assert state.accounts[DEPOSITS].balance == -(10**30)
    assert state.accounts[ISSUANCE].balance == -1_000_000


def test_the_pool_is_not_external_and_may_not_go_negative() -> None:
    state = funded(1)
    code = refused_without_change(
        state, lambda: state.apply(move(POOL, A_UNITS, 1_000_001), ()), Refused
    )
    assert code == "insufficient_units"


# -- holds -------------------------------------------------------------------------------------


def test_placing_a_hold_reserves_available() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    assert state.accounts[A_USD] == AccountState(100, 60)
    assert state.accounts[A_USD].available == 40
    assert state.holds["h1"].account == A_USD
    assert state.holds["h1"].remaining == 60


def test_a_hold_beyond_available_is_refused() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    code = refused_without_change(
        state, lambda: state.apply((), hold("h2", A_USD, HoldOp.PLACE, 41)), Refused
    )
    assert code == "insufficient_funds"
    assert "h2" not in state.holds


def test_held_funds_cannot_be_spent_without_the_hold() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    code = refused_without_change(state, lambda: state.apply(move(A_USD, B_USD, 41), ()), Refused)
    assert code == "insufficient_funds"
    state.apply(move(A_USD, B_USD, 40), ())
    assert state.accounts[A_USD] == AccountState(60, 60)


def test_a_hold_id_is_used_once() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 10))
    again = hold("h1", A_USD, HoldOp.PLACE, 10)
    assert refused_without_change(state, lambda: state.apply((), again), Conflict) == "hold_exists"
    state.apply((), hold("h1", A_USD, HoldOp.RELEASE, 10))
    assert "h1" in state.closed_holds
    assert refused_without_change(state, lambda: state.apply((), again), Conflict) == "hold_exists"


def test_placing_the_same_hold_twice_in_one_entry_is_refused() -> None:
    state = funded(100)
    twice = hold("h1", A_USD, HoldOp.PLACE, 10) + hold("h1", A_USD, HoldOp.PLACE, 10)
    assert refused_without_change(state, lambda: state.apply((), twice), Conflict) == "hold_exists"


def test_consuming_spends_the_hold_with_a_debit() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    state.apply(move(A_USD, B_USD, 25), hold("h1", A_USD, HoldOp.CONSUME, 25))
    assert state.accounts[A_USD] == AccountState(75, 35)
    assert state.holds["h1"].remaining == 35
    state.apply(move(A_USD, B_USD, 35), hold("h1", A_USD, HoldOp.CONSUME, 35))
    assert state.accounts[A_USD] == AccountState(40, 0)
    assert "h1" not in state.holds
    assert "h1" in state.closed_holds


def test_a_debit_may_exceed_the_consumed_hold_out_of_available() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    state.apply(move(A_USD, B_USD, 100), hold("h1", A_USD, HoldOp.CONSUME, 60))
    assert state.accounts[A_USD] == AccountState(0, 0)


def test_consuming_more_than_remains_is_refused() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    code = refused_without_change(
        state,
        lambda: state.apply(move(A_USD, B_USD, 61), hold("h1", A_USD, HoldOp.CONSUME, 61)),
        Refused,
    )
    assert code == "hold_exceeded"


@pytest.mark.parametrize("debit", [0, 24])
def test_consuming_without_spending_is_refused(debit: int) -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    postings = move(A_USD, B_USD, debit) if debit else ()
    code = refused_without_change(
        state, lambda: state.apply(postings, hold("h1", A_USD, HoldOp.CONSUME, 25)), InvalidInput
    )
    assert code == "hold_consume_unspent"


def test_a_credit_does_not_spend_a_consumed_hold() -> None:
    state = funded(100)
    state.apply(move(A_USD, B_USD, 40), ())
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    code = refused_without_change(
        state,
        lambda: state.apply(move(B_USD, A_USD, 10), hold("h1", A_USD, HoldOp.CONSUME, 10)),
        InvalidInput,
    )
    assert code == "hold_consume_unspent"


def test_releasing_gives_back_available() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    state.apply((), hold("h1", A_USD, HoldOp.RELEASE, 20))
    assert state.accounts[A_USD] == AccountState(100, 40)
    assert state.holds["h1"].remaining == 40
    state.apply((), hold("h1", A_USD, HoldOp.RELEASE, 40))
    assert state.accounts[A_USD] == AccountState(100, 0)
    assert "h1" not in state.holds
    assert "h1" in state.closed_holds


def test_releasing_more_than_remains_is_refused() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 60))
    code = refused_without_change(
        state, lambda: state.apply((), hold("h1", A_USD, HoldOp.RELEASE, 61)), Refused
    )
    assert code == "hold_exceeded"


@pytest.mark.parametrize("op", [HoldOp.CONSUME, HoldOp.RELEASE])
def test_an_unknown_or_closed_hold_is_not_found(op: HoldOp) -> None:
    state = funded(100)
    postings = move(A_USD, B_USD, 5) if op is HoldOp.CONSUME else ()
    change = hold("nope", A_USD, op, 5)
    code = refused_without_change(state, lambda: state.apply(postings, change), NotFound)
    assert code == "unknown_hold"
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 5))
    state.apply((), hold("h1", A_USD, HoldOp.RELEASE, 5))
    closed = hold("h1", A_USD, op, 5)
    code = refused_without_change(state, lambda: state.apply(postings, closed), NotFound)
    assert code == "unknown_hold"


def test_a_hold_changes_only_on_its_own_account() -> None:
    state = funded(100)
    state.apply(move(A_USD, B_USD, 50), ())
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 10))
    elsewhere = hold("h1", B_USD, HoldOp.RELEASE, 10)
    code = refused_without_change(state, lambda: state.apply((), elsewhere), InvalidInput)
    assert code == "hold_account_mismatch"


def test_place_and_consume_in_one_entry() -> None:
    state = funded(100)
    changes = hold("h1", A_USD, HoldOp.PLACE, 30) + hold("h1", A_USD, HoldOp.CONSUME, 30)
    state.apply(move(A_USD, B_USD, 30), changes)
    assert state.accounts[A_USD] == AccountState(70, 0)
    assert "h1" in state.closed_holds
    assert "h1" not in state.holds


def test_a_refused_entry_with_holds_changes_nothing() -> None:
    state = funded(100)
    state.apply((), hold("h1", A_USD, HoldOp.PLACE, 30))
    # The release and the new hold are fine; the overdraft spoils the whole entry.
    changes = hold("h1", A_USD, HoldOp.RELEASE, 30) + hold("h2", A_USD, HoldOp.PLACE, 50)
    code = refused_without_change(
        state, lambda: state.apply(move(A_USD, B_USD, 51), changes), Refused
    )
    assert code == "insufficient_funds"
    assert set(state.holds) == {"h1"}


# -- a property over random entries -----------------------------------------------------------

MEMBER_ACCOUNTS = (A_USD, B_USD)
HOLD_IDS = ("h1", "h2", "h3")
steps = st.lists(
    st.tuples(
        st.sampled_from((*MEMBER_ACCOUNTS, DEPOSITS)),  # source
        st.sampled_from(MEMBER_ACCOUNTS),  # target
        st.integers(0, 120),  # posted amount (0: no postings)
        st.lists(
            st.tuples(
                st.sampled_from(HOLD_IDS),
                st.sampled_from(MEMBER_ACCOUNTS),
                st.sampled_from(HoldOp),
                st.integers(1, 80),
            ),
            max_size=2,
        ),
    ),
    max_size=25,
)


@given(steps)
def test_random_entries_either_apply_or_change_nothing(
    entries: list[tuple[AccountKey, AccountKey, int, list[tuple[str, AccountKey, HoldOp, int]]]],
) -> None:
    state = LedgerState()
    for source, target, amount, changes in entries:
        postings = move(source, target, amount) if amount and source != target else ()
        hold_changes = tuple(HoldChange(h, a, op, n) for h, a, op, n in changes)
        before = snapshot(state)
        try:
            state.apply(postings, hold_changes)
        except LedgerError:
            assert snapshot(state) == before
            continue
        held_by_holds: dict[AccountKey, int] = {}
        for open_hold in state.holds.values():
            assert open_hold.remaining > 0
            held_by_holds[open_hold.account] = (
                held_by_holds.get(open_hold.account, 0) + open_hold.remaining
            )
        for key, account in state.accounts.items():
            assert account.held == held_by_holds.get(key, 0)
            if not key.is_external:
                assert account.available >= 0
        assert not state.holds.keys() & state.closed_holds
        assert sum(a.balance for a in state.accounts.values()) == 0
