"""The shape checks every draft passes before it may be sealed: texts, amounts, limits,
and postings that balance per instrument. (The balance rules, which need the accounts'
state, are ``ledger.core.state``.)
"""

from __future__ import annotations

from ledger.core import limits
from ledger.core.accounts import AccountKey
from ledger.core.canonical import check_text_storable, payload_text
from ledger.core.entry import EntryDraft
from ledger.core.errors import InvalidInput

__all__ = ["check_amount", "check_draft", "check_text"]


def check_text(name: str, value: str, limit: int) -> str:
    """Return ``value`` if it is non-empty text of at most ``limit`` characters that can
    be stored alike on every database; otherwise raise ``InvalidInput``."""
    if not isinstance(value, str):
        raise InvalidInput("field_type", f"{name} must be text")
    check_text_storable(value)
    if not value:
        raise InvalidInput("field_empty", f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidInput("field_too_long", f"{name} is longer than {limit} characters")
    return value


def check_amount(amount: int, what: str = "amount") -> None:
    """Raise unless ``0 < amount <= AMOUNT_MAX`` (and ``amount`` is a real int)."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput("amount_type", f"{what} must be an integer")
    if amount <= 0:
        raise InvalidInput("amount_not_positive", f"{what} must be positive, got {amount}")
    if amount > limits.AMOUNT_MAX:
        raise InvalidInput("amount_over_limit", f"{what} exceeds the limit of {limits.AMOUNT_MAX}")


def check_draft(draft: EntryDraft, payload_json: str | None = None) -> None:
    """Check a draft's shape: limits, non-zero amounts, postings balanced per instrument.
    ``payload_json``: the payload's ``payload_text``, if the caller has made it already."""
    check_text("kind", draft.kind, limits.KIND_LEN_MAX)
    check_text("actor", draft.actor, limits.ACTOR_LEN_MAX)
    check_text("idempotency key", draft.idempotency_key, limits.IDEMPOTENCY_KEY_LEN_MAX)
    if len(draft.postings) > limits.POSTINGS_PER_ENTRY_MAX:
        raise InvalidInput(
            "too_many_postings", f"an entry has at most {limits.POSTINGS_PER_ENTRY_MAX} postings"
        )
    if len(draft.hold_changes) > limits.HOLD_CHANGES_PER_ENTRY_MAX:
        raise InvalidInput(
            "too_many_hold_changes",
            f"an entry has at most {limits.HOLD_CHANGES_PER_ENTRY_MAX} hold changes",
        )
    # The encoding refuses what is not plain JSON, or text no database can keep.
    if payload_json is None:
        payload_json = payload_text(draft.payload)
    if len(payload_json.encode()) > limits.PAYLOAD_BYTES_MAX:
        raise InvalidInput("payload_too_large", f"payload exceeds {limits.PAYLOAD_BYTES_MAX} bytes")
    sums: dict[str, int] = {}
    seen: set[AccountKey] = set()
    for posting in draft.postings:
        if not isinstance(posting.amount, int) or isinstance(posting.amount, bool):
            raise InvalidInput("amount_type", "posting amount must be an integer")
        if not 0 < abs(posting.amount) <= limits.AMOUNT_MAX:  # checked inline: hot
            check_amount(abs(posting.amount), "posting amount")
        if posting.account in seen:
            raise InvalidInput(
                "posting_duplicate_account", f"account {posting.account} is posted twice"
            )
        seen.add(posting.account)
        holder, instrument = posting.account
        if not holder.isascii() or "\x00" in holder:  # the common case inline: hot
            check_text_storable(holder)
        if not instrument.isascii() or "\x00" in instrument:
            check_text_storable(instrument)
        sums[instrument] = sums.get(instrument, 0) + posting.amount
    unbalanced = {k: v for k, v in sums.items() if v != 0}
    if unbalanced:
        raise InvalidInput(
            "postings_unbalanced",
            "postings must sum to zero per instrument: "
            + ", ".join(f"{k} is off by {v}" for k, v in sorted(unbalanced.items())),
        )
    for change in draft.hold_changes:
        hold_id = change.hold_id
        if (
            type(hold_id) is not str
            or not 0 < len(hold_id) <= limits.HOLD_ID_LEN_MAX
            or not hold_id.isascii()
            or "\x00" in hold_id
        ):
            check_text("hold id", hold_id, limits.HOLD_ID_LEN_MAX)
        holder, instrument = change.account
        if not holder.isascii() or "\x00" in holder:  # the common case inline: hot
            check_text_storable(holder)
        if not instrument.isascii() or "\x00" in instrument:
            check_text_storable(instrument)
        amount = change.amount
        if not (type(amount) is int and 0 < amount <= limits.AMOUNT_MAX):  # checked inline: hot
            check_amount(amount, "hold amount")
        if change.account.is_external:
            raise InvalidInput("hold_on_external", "holds are placed on owners' accounts only")
