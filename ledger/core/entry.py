"""Journal entries: accounts, postings, hold changes, drafts and sealed, hash-chained entries.

A draft is what a caller asks for; ``seal`` turns it into an entry at a given ``seq`` after
a given ``prev_hash``. ``hash = SHA-256(prev_hash || canonical bytes of the entry)``.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple

from ledger.core import limits
from ledger.core.canonical import (
    JsonValue,
    canonical_bytes,
    check_text_storable,
)
from ledger.core.errors import InvalidInput

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
    "check_text",
    "entry_id_for",
    "format_time",
    "parse_time",
    "seal",
]

GENESIS_HASH = "0" * 64
_ENTRY_ID_NAMESPACE = uuid.UUID("7d3c6f0e-5b8a-4e0f-9f59-1f0a6b2dc8e1")
_ENTRY_ID_NAMESPACE_BYTES = _ENTRY_ID_NAMESPACE.bytes

EXTERNAL_PREFIX = "external:"


class AccountKey(NamedTuple):
    """An account: who holds (``member:0x..``, ``pool:<asset>``, ``external:<name>``) what
    instrument (``units:<asset>`` or ``ccy:<code>``). A tuple: hashing it is cheap, and
    the write path hashes keys a great deal."""

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

    def request_bytes(self) -> bytes:
        """Canonical bytes of what was asked; part of the entry's hashed body. Equal to
        ``canonical_bytes`` of the request dict, assembled directly: this runs for every
        entry written, and the generic encoder costs several times more."""
        q = _json_string
        postings = ",".join(
            f'[{q(p.account.holder)},{q(p.account.instrument)},"{p.amount}"]' for p in self.postings
        )
        holds = ",".join(
            f"[{q(h.hold_id)},{q(h.account.holder)},{q(h.account.instrument)},"
            f'{q(h.op.value)},"{h.amount}"]'
            for h in self.hold_changes
        )
        payload = canonical_bytes(dict(self.payload)).decode() if self.payload else "{}"
        reverses = "null" if self.reverses is None else str(self.reverses)
        return (
            f'{{"actor":{q(self.actor)},"holds":[{holds}],'
            f'"idempotency_key":{q(self.idempotency_key)},"kind":{q(self.kind)},'
            f'"payload":{payload},"postings":[{postings}],"reverses":{reverses}}}'
        ).encode()

    def request_hash(self, request_bytes: bytes | None = None) -> str:
        """SHA-256 of what was asked (and the effective time, if one was given): the same
        idempotency key must come with the same request."""
        digest = hashlib.sha256(request_bytes or self.request_bytes())
        if self.effective_at is not None:
            digest.update(b"@" + format_time(self.effective_at).encode())
        return digest.hexdigest()


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
            "prev_hash": self.prev_hash,
            "recorded_at": format_time(self.recorded_at),
            "effective_at": format_time(self.effective_at),
            "request": _request(
                self.kind,
                self.actor,
                self.idempotency_key,
                self.payload,
                self.postings,
                self.hold_changes,
                self.reverses,
            ),
        }

    def computed_hash(self) -> str:
        """Recompute the hash from the content; equals ``hash`` for an untouched entry."""
        return chain_hash(self.prev_hash, canonical_bytes(self.body()))


def _request(
    kind: str,
    actor: str,
    idempotency_key: str,
    payload: Mapping[str, JsonValue],
    postings: tuple[Posting, ...],
    hold_changes: tuple[HoldChange, ...],
    reverses: int | None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "actor": actor,
        "idempotency_key": idempotency_key,
        "payload": dict(payload),
        "postings": _postings_json(postings),
        "holds": _holds_json(hold_changes),
        "reverses": reverses,
    }


# The C string encoder behind json.dumps(..., ensure_ascii=False): quotes and escapes.
_json_string: Callable[[str], str] = json.encoder.encode_basestring


def _sealed_body_bytes(
    seq: int, entry_id: str, prev_hash: str, recorded_at: str, effective_at: str, request: bytes
) -> bytes:
    """``canonical_bytes(entry.body())``, assembled without a second JSON encoding. Every
    piece but ``request`` is ASCII that JSON writes unescaped; keys in sorted order."""
    return (
        (
            f'{{"effective_at":"{effective_at}","id":"{entry_id}","prev_hash":"{prev_hash}",'
            f'"recorded_at":"{recorded_at}","request":'
        ).encode()
        + request
        + f',"seq":{seq}}}'.encode()
    )


def chain_hash(prev_hash: str, body: bytes) -> str:
    """``SHA-256(prev_hash || body)`` as lowercase hex."""
    digest = hashlib.sha256(bytes.fromhex(prev_hash))
    digest.update(body)
    return digest.hexdigest()


def _postings_json(postings: tuple[Posting, ...]) -> list[list[str]]:
    # Amounts as decimal strings: exact in every JSON reader, whatever its integer width.
    return [[p.account.holder, p.account.instrument, str(p.amount)] for p in postings]


def _holds_json(changes: tuple[HoldChange, ...]) -> list[list[str]]:
    return [
        [h.hold_id, h.account.holder, h.account.instrument, h.op.value, str(h.amount)]
        for h in changes
    ]


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; refuses a naive time and one whose UTC falls outside years
    1..9999 (``0001-01-01T00:00:00+14:00``, say)."""
    if moment.tzinfo is None:
        raise InvalidInput("time_naive", "times must carry a time zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("time_out_of_range", "times must fall in years 1..9999 (UTC)") from None


@lru_cache(maxsize=256)
def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: the one text form of a time.
    (Cached: a batch of entries shares one recorded time.)"""
    # isoformat, unlike strftime("%Y"), pads years before 1000 to four digits everywhere.
    return to_utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time with a zone into an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("time_malformed", f"not an ISO 8601 time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        raise InvalidInput("time_naive", f"time {text[:64]!r} has no zone; add Z or +00:00")
    return to_utc(moment)


def entry_id_for(idempotency_key: str) -> str:
    """The entry id: a UUIDv5 of the idempotency key, so a replay yields the same ids.
    (Equal to ``str(uuid.uuid5(namespace, key))``, built from the SHA-1's hex digits
    without the UUID object: it runs for every entry written.)"""
    x = hashlib.sha1(_ENTRY_ID_NAMESPACE_BYTES + idempotency_key.encode()).hexdigest()
    # Digit 12 becomes the version (5); digit 16 keeps its low two bits under the
    # variant bits 10.
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_UUID_VARIANT_DIGIT[x[16]]}{x[17:20]}-{x[20:32]}"


_UUID_VARIANT_DIGIT = {d: "89ab"[int(d, 16) & 0b11] for d in "0123456789abcdef"}


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


def check_draft(draft: EntryDraft) -> None:
    """Check a draft's shape: limits, non-zero amounts, postings balanced per instrument."""
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
    if draft.payload and len(canonical_bytes(dict(draft.payload))) > limits.PAYLOAD_BYTES_MAX:
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
        check_text_storable(posting.account.holder)
        check_text_storable(posting.account.instrument)
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
        check_text("hold id", change.hold_id, limits.HOLD_ID_LEN_MAX)
        check_text_storable(change.account.holder)
        check_text_storable(change.account.instrument)
        check_amount(change.amount, "hold amount")
        if change.account.is_external:
            raise InvalidInput("hold_on_external", "holds are placed on owners' accounts only")


def seal(
    draft: EntryDraft,
    *,
    seq: int,
    prev_hash: str,
    recorded_at: datetime,
    request_bytes: bytes | None = None,
) -> Entry:
    """Give a checked draft its place: ``seq`` after ``prev_hash``, recorded at a time.
    ``request_bytes`` may pass ``draft.request_bytes()`` when the caller already has it."""
    entry_id = entry_id_for(draft.idempotency_key)
    effective_at = draft.effective_at or recorded_at
    body = _sealed_body_bytes(
        seq,
        entry_id,
        prev_hash,
        format_time(recorded_at),
        format_time(effective_at),
        request_bytes or draft.request_bytes(),
    )
    return Entry(
        seq=seq,
        id=entry_id,
        kind=draft.kind,
        payload=draft.payload,
        postings=draft.postings,
        hold_changes=draft.hold_changes,
        effective_at=effective_at,
        recorded_at=recorded_at,
        actor=draft.actor,
        idempotency_key=draft.idempotency_key,
        reverses=draft.reverses,
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, body),
    )
