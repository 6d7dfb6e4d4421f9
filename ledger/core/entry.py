"""Journal entries: postings, hold changes, drafts and sealed, hash-chained entries.

A draft is what a caller asks for; ``seal`` turns it into an entry at a given ``seq`` after
a given ``prev_hash``. ``hash = SHA-256(prev_hash || canonical bytes of the entry)``: the
bytes are ``ledger.core.canonical``'s, the chain ``ledger.core.chain``'s, the text form of
time ``ledger.core.timestamps``'s and the checks a draft passes ``ledger.core.checks``'.
Accounts are named by ``ledger.core.accounts``, kinds by ``ledger.core.kinds``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ledger.core.accounts import AccountKey
from ledger.core.canonical import (
    JsonValue,
    check_text_storable,
    payload_text,
    request_bytes,
    request_json,
    sealed_body_bytes,
)
from ledger.core.chain import chain_hash, entry_id_for
from ledger.core.timestamps import format_time

__all__ = [
    "Entry",
    "EntryDraft",
    "HoldChange",
    "HoldOp",
    "Posting",
    "seal",
]


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

    def request_bytes(self, payload_json: str | None = None) -> bytes:
        """Canonical bytes of what was asked; part of the entry's hashed body.
        ``payload_json``: the payload's ``payload_text``, if the caller has it already."""
        return request_bytes(
            self.kind,
            self.actor,
            self.idempotency_key,
            self.payload,
            self.postings,
            self.hold_changes,
            self.reverses,
            payload_json,
        )

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
        """The hashed content of the entry, as a JSON-ready dict (its canonical bytes are
        ``body_bytes``)."""
        return {
            "seq": self.seq,
            "id": self.id,
            "prev_hash": self.prev_hash,
            "recorded_at": format_time(self.recorded_at),
            "effective_at": format_time(self.effective_at),
            "request": request_json(
                self.kind,
                self.actor,
                self.idempotency_key,
                self.payload,
                self.postings,
                self.hold_changes,
                self.reverses,
            ),
        }

    def body_bytes(self) -> bytes:
        """The canonical bytes of ``body()``, by the encoder ``seal`` used. Refuses, as
        ``canonical_bytes`` does, text that no database could have kept (``text_nul``):
        an entry read back with such text was altered."""
        for text in (self.id, self.prev_hash, self.kind, self.actor, self.idempotency_key):
            check_text_storable(text)
        payload_text(self.payload)  # refuses what is not plain, storable JSON
        for posting in self.postings:
            check_text_storable(posting.account.holder)
            check_text_storable(posting.account.instrument)
        for change in self.hold_changes:
            check_text_storable(change.hold_id)
            check_text_storable(change.account.holder)
            check_text_storable(change.account.instrument)
        return sealed_body_bytes(
            self.seq,
            self.id,
            self.prev_hash,
            format_time(self.recorded_at),
            format_time(self.effective_at),
            request_bytes(
                self.kind,
                self.actor,
                self.idempotency_key,
                self.payload,
                self.postings,
                self.hold_changes,
                self.reverses,
            ),
        )

    def computed_hash(self) -> str:
        """Recompute the hash from the content; equals ``hash`` for an untouched entry."""
        return chain_hash(self.prev_hash, self.body_bytes())


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
    body = sealed_body_bytes(
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
