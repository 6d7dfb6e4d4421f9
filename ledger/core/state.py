"""What the journal implies: balances, held amounts and open holds, updated entry by entry.

``LedgerState.apply`` is the single rule book for a change of balances. The write path
runs it over the accounts an entry touches before anything is stored; ``dpn verify``
runs it over the whole journal to rebuild every balance from scratch. It checks first
and changes nothing unless every rule holds, so a refused entry leaves no trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.core.accounts import AccountKey
from ledger.core.entry import HoldChange, HoldOp, Posting
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused

__all__ = ["AccountState", "HoldState", "LedgerState"]


@dataclass(slots=True)
class AccountState:
    """An account's balance and the part of it reserved by holds."""

    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        """What the owner may still spend or reserve: ``balance - held``."""
        return self.balance - self.held


@dataclass(slots=True)
class HoldState:
    """An open hold: the account it reserves on and what is left of it."""

    account: AccountKey
    remaining: int


class LedgerState:
    """Balances and open holds for some (or all) accounts.

    The caller loads every account and hold an entry names before calling ``apply``;
    an account not loaded counts as new and empty.
    """

    __slots__ = ("accounts", "closed_holds", "holds")

    def __init__(self) -> None:
        self.accounts: dict[AccountKey, AccountState] = {}
        self.holds: dict[str, HoldState] = {}
        self.closed_holds: set[str] = set()

    def account(self, key: AccountKey) -> AccountState:
        """The state of ``key`` (created empty if unseen)."""
        state = self.accounts.get(key)
        if state is None:
            state = self.accounts[key] = AccountState()
        return state

    def apply(self, postings: tuple[Posting, ...], hold_changes: tuple[HoldChange, ...]) -> None:
        """Apply one entry's postings and hold changes, or raise and change nothing.

        Rules: a hold is placed once, on available funds, and consumed or released only
        up to what remains of it, on its own account; a consumed amount must be spent by
        a debit of the same account in the same entry; after the entry no owner's
        available balance is negative (only external accounts may go negative).
        """
        balance_delta: dict[AccountKey, int] = {}
        for posting in postings:
            balance_delta[posting.account] = balance_delta.get(posting.account, 0) + posting.amount
        if not hold_changes:
            self._apply_postings(balance_delta)
            return
        held_delta: dict[AccountKey, int] = {}
        remaining: dict[str, int] = {}
        placed: dict[str, AccountKey] = {}
        consumed: dict[AccountKey, int] = {}
        for change in hold_changes:
            self._check_hold_change(change, remaining, placed)
            sign = 1 if change.op is HoldOp.PLACE else -1
            held_delta[change.account] = held_delta.get(change.account, 0) + sign * change.amount
            if change.op is HoldOp.CONSUME:
                consumed[change.account] = consumed.get(change.account, 0) + change.amount
        for key, amount in consumed.items():
            debit = -balance_delta.get(key, 0)
            if debit < amount:
                raise InvalidInput(
                    "hold_consume_unspent",
                    f"{key}: consumes {amount} of holds but the entry debits only {max(debit, 0)}",
                )
        touched = balance_delta.keys() | held_delta.keys()
        after: dict[AccountKey, tuple[int, int]] = {}
        for key in touched:
            now = self.accounts.get(key) or AccountState()
            balance = now.balance + balance_delta.get(key, 0)
            held = now.held + held_delta.get(key, 0)
            if not key.is_external and balance - held < 0:
                raise _insufficient(key, now, balance, held)
            after[key] = (balance, held)
        # Every rule held: now change state.
        for key, (balance, held) in after.items():
            state = self.account(key)
            state.balance = balance
            state.held = held
        for hold_id, account in placed.items():
            self.holds[hold_id] = HoldState(account, 0)
        for hold_id, left in remaining.items():
            if left == 0:
                del self.holds[hold_id]
                self.closed_holds.add(hold_id)
            else:
                self.holds[hold_id].remaining = left

    def _apply_postings(self, balance_delta: dict[AccountKey, int]) -> None:
        """``apply`` for an entry without hold changes (most entries): held amounts stay
        as they are, so only the new balances need checking."""
        after: list[tuple[AccountState, int]] = []
        for key, delta in balance_delta.items():
            state = self.accounts.get(key)
            if state is None:
                state = AccountState()
            balance = state.balance + delta
            if balance - state.held < 0 and not key.is_external:
                raise _insufficient(key, state, balance, state.held)
            after.append((state, balance))
        # Every rule held: now change state.
        accounts = self.accounts
        for key, (state, balance) in zip(balance_delta, after, strict=True):
            state.balance = balance
            accounts[key] = state

    def _check_hold_change(
        self, change: HoldChange, remaining: dict[str, int], placed: dict[str, AccountKey]
    ) -> None:
        hold_id = change.hold_id
        if change.op is HoldOp.PLACE:
            if hold_id in self.holds or hold_id in self.closed_holds or hold_id in remaining:
                raise Conflict("hold_exists", f"hold {hold_id!r} already exists")
            placed[hold_id] = change.account
            remaining[hold_id] = change.amount
            return
        if hold_id in remaining:
            left = remaining[hold_id]
            account = placed.get(hold_id) or self.holds[hold_id].account
        elif hold_id in self.holds:
            left = self.holds[hold_id].remaining
            account = self.holds[hold_id].account
        else:
            raise NotFound("unknown_hold", f"no open hold {hold_id!r}")
        if account != change.account:
            raise InvalidInput("hold_account_mismatch", f"hold {hold_id!r} is on {account}")
        if change.amount > left:
            raise Refused(
                "hold_exceeded",
                f"hold {hold_id!r} has {left} left; cannot {change.op.value} {change.amount}",
            )
        remaining[hold_id] = left - change.amount


def _insufficient(key: AccountKey, now: AccountState, balance: int, held: int) -> Refused:
    """The refusal of an entry that would leave ``key`` with ``balance`` and ``held``."""
    return Refused(
        "insufficient_units" if key.is_units else "insufficient_funds",
        f"{key} has {now.balance - now.held} available; the entry needs"
        f" {now.balance - now.held - (balance - held)}",
        account=str(key),
        available=str(now.balance - now.held),
    )
