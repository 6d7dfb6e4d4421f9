"""Journal entries: accounts, postings, hold changes, drafts and sealed, hash-chained entries.

A draft is what a caller asks for; ``seal`` turns it into an entry at a given ``seq`` after
a given ``prev_hash``. ``hash = SHA-256(prev_hash || canonical bytes of the entry)``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ledger.core import limits
from ledger.core.canonical import JsonValue, canonical_bytes, check_json_value
from ledger.errors import InvalidInput

__all__ = [
    "GENESIS_HASH",
    "AccountKey",
    "Entry",
    "EntryDraft",
    "HoldChange",
    "HoldOp",
    "Posting",
    "chain_hash",
    "check_amount",
    "check_draft",
    "entry_id_for",
    "format_time",
    "parse_time",
    "seal",
]

GENESIS_HASH = "0" * 64
_ENTRY_ID_NAMESPACE = uuid.UUID("7d3c6f0e-5b8a-4e0f-9f59-1f0a6b2dc8e1")

EXTERNAL_PREFIX = "external:"


@dataclass(frozen=True, slots=True, order=True)
class AccountKey:
    """An account: who holds (``member:0x..``, ``pool:<asset>``, ``external:<name>``) what
    instrument (``units:<asset>`` or ``ccy:<code>``)."""

    holder: str
    instrument: str

    @property
    def is_external(self) -> bool:
        """External accounts are where money or units enter and leave; only they may go
        negative."""
        return self.holder.startswith(EXTERNAL_PREFIX)

    @property
    def is_units(self) -> bool:
        """True for an asset's units, False for a currency."""
        return self.instrument.startswith("units:")

    def __str__(self) -> str:
        return f"{self.holder}/{self.instrument}"


@dataclass(frozen=True, slots=True)
class Posting:
    """A signed amount on one account; an entry's postings sum to zero per instrument."""

    account: AccountKey
    amount: int


class HoldOp(StrEnum):
    """What a hold change does: reserve, spend the reserve, or give it back."""

    PLACE = "place"
    CONSUME = "consume"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class HoldChange:
    """Places, consumes or releases ``amount`` of hold ``hold_id`` on ``account``."""

    hold_id: str
    account: AccountKey
    op: HoldOp
    amount: int


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """A requested change of state, before it has a place in the journal."""

    kind: str
    idempotency_key: str
    actor: str
    postings: tuple[Posting, ...] = ()
    hold_changes: tuple[HoldChange, ...] = ()
    payload: Mapping[str, JsonValue] = field(default_factory=dict)
    effective_at: datetime | None = None
    reverses: int | None = None

    def request_hash(self) -> str:
        """SHA-256 of what was asked: the same key must come with the same request."""
        asked: dict[str, Any] = {
            "kind": self.kind,
            "actor": self.actor,
            "payload": dict(self.payload),
            "postings": _postings_json(self.postings),
            "holds": _holds_json(self.hold_changes),
            "reverses": self.reverses,
        }
        if self.effective_at is not None:
            asked["effective_at"] = format_time(self.effective_at)
        return hashlib.sha256(canonical_bytes(asked)).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """A sealed journal entry. Never changed once appended."""

    seq: int
    id: str
    kind: str
    payload: Mapping[str, JsonValue]
    postings: tuple[Posting, ...]
    hold_changes: tuple[HoldChange, ...]
    effective_at: datetime
    recorded_at: datetime
    actor: str
    idempotency_key: str
    reverses: int | None
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The hashed content of the entry, as a JSON-ready dict."""
        return {
            "seq": self.seq,
            "id": self.id,
            "kind": self.kind,
            "payload": dict(self.payload),
            "postings": _postings_json(self.postings),
            "holds": _holds_json(self.hold_changes),
            "effective_at": format_time(self.effective_at),
            "recorded_at": format_time(self.recorded_at),
            "actor": self.actor,
            "idempotency_key": self.idempotency_key,
            "reverses": self.reverses,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        """Recompute the hash from the content; equals ``hash`` for an untouched entry."""
        return chain_hash(self.prev_hash, canonical_bytes(self.body()))


def chain_hash(prev_hash: str, body: bytes) -> str:
    """``SHA-256(prev_hash || body)`` as lowercase hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


def _postings_json(postings: tuple[Posting, ...]) -> list[list[str]]:
    # Amounts as decimal strings: exact in every JSON reader, whatever its integer width.
    return [[p.account.holder, p.account.instrument, str(p.amount)] for p in postings]


def _holds_json(changes: tuple[HoldChange, ...]) -> list[list[str]]:
    return [
        [h.hold_id, h.account.holder, h.account.instrument, h.op.value, str(h.amount)]
        for h in changes
    ]


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: the one text form of a time."""
    if moment.tzinfo is None:
        raise InvalidInput("time_naive", "times must carry a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time with a zone into an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("time_malformed", f"not an ISO 8601 time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        raise InvalidInput("time_naive", f"time {text[:64]!r} has no zone; add Z or +00:00")
    return moment.astimezone(UTC)


def entry_id_for(idempotency_key: str) -> str:
    """The entry id: a UUIDv5 of the idempotency key, so a replay yields the same ids."""
    return str(uuid.uuid5(_ENTRY_ID_NAMESPACE, idempotency_key))


def _check_text(name: str, value: str, limit: int) -> None:
    if not value:
        raise InvalidInput("field_empty", f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidInput("field_too_long", f"{name} is longer than {limit} characters")


def check_amount(amount: int, what: str = "amount") -> None:
    """Raise unless ``0 < amount <= AMOUNT_MAX`` (and ``amount`` is a real int)."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput("amount_type", f"{what} must be an integer")
    if amount <= 0:
        raise InvalidInput("amount_not_positive", f"{what} must be positive, got {amount}")
    if amount > limits.AMOUNT_MAX:
        raise InvalidInput("amount_over_limit", f"{what} exceeds the limit of {limits.AMOUNT_MAX}")


def check_draft(draft: EntryDraft) -> None:
    """Check a draft's shape: limits, non-zero amounts, postings balanced per instrument."""
    _check_text("kind", draft.kind, limits.KIND_LEN_MAX)
    _check_text("actor", draft.actor, limits.ACTOR_LEN_MAX)
    _check_text("idempotency key", draft.idempotency_key, limits.IDEMPOTENCY_KEY_LEN_MAX)
    if len(draft.postings) > limits.POSTINGS_PER_ENTRY_MAX:
        raise InvalidInput(
            "too_many_postings", f"an entry has at most {limits.POSTINGS_PER_ENTRY_MAX} postings"
        )
    if len(draft.hold_changes) > limits.HOLD_CHANGES_PER_ENTRY_MAX:
        raise InvalidInput(
            "too_many_hold_changes",
            f"an entry has at most {limits.HOLD_CHANGES_PER_ENTRY_MAX} hold changes",
        )
    check_json_value(dict(draft.payload))
    if len(canonical_bytes(dict(draft.payload))) > limits.PAYLOAD_BYTES_MAX:
        raise InvalidInput("payload_too_large", f"payload exceeds {limits.PAYLOAD_BYTES_MAX} bytes")
    sums: dict[str, int] = {}
    seen: set[AccountKey] = set()
    for posting in draft.postings:
        if not isinstance(posting.amount, int) or isinstance(posting.amount, bool):
            raise InvalidInput("amount_type", "posting amount must be an integer")
        check_amount(abs(posting.amount), "posting amount")
        if posting.account in seen:
            raise InvalidInput(
                "posting_duplicate_account", f"account {posting.account} is posted twice"
            )
        seen.add(posting.account)
        instrument = posting.account.instrument
        sums[instrument] = sums.get(instrument, 0) + posting.amount
    unbalanced = {k: v for k, v in sums.items() if v != 0}
    if unbalanced:
        raise InvalidInput(
            "postings_unbalanced",
            "postings must sum to zero per instrument: "
            + ", ".join(f"{k} is off by {v}" for k, v in sorted(unbalanced.items())),
        )
    for change in draft.hold_changes:
        _check_text("hold id", change.hold_id, limits.HOLD_ID_LEN_MAX)
        check_amount(change.amount, "hold amount")
        if change.account.is_external:
            raise InvalidInput("hold_on_external", "holds are placed on owners' accounts only")


def seal(draft: EntryDraft, *, seq: int, prev_hash: str, recorded_at: datetime) -> Entry:
    """Give a checked draft its place: ``seq`` after ``prev_hash``, recorded at a time."""
    unhashed = Entry(
        seq=seq,
        id=entry_id_for(draft.idempotency_key),
        kind=draft.kind,
        payload=draft.payload,
        postings=draft.postings,
        hold_changes=draft.hold_changes,
        effective_at=draft.effective_at or recorded_at,
        recorded_at=recorded_at,
        actor=draft.actor,
        idempotency_key=draft.idempotency_key,
        reverses=draft.reverses,
        prev_hash=prev_hash,
        hash="",
    )
    return replace(unhashed, hash=unhashed.computed_hash())
