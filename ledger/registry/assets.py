"""Assets: registration (with documents), operators' assets and the issue of units.
Members are ``ledger.registry.members``, sightings ``ledger.registry.sightings``.

Each change is a journal entry; the registry rows are written in the same transaction,
and only when the entry is new (a repeated idempotency key returns what was recorded).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, case, func, insert, select

from ledger.core import (
    AccountKey,
    Entry,
    EntryDraft,
    EntryKind,
    Posting,
    check_amount,
    check_display_text,
    limits,
    validate_asset_id,
)
from ledger.core.accounts import ISSUANCE, member_holder, pool_holder, units_of
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused
from ledger.db.schema import Asset, AssetDocument, Member, Project, table
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address

__all__ = [
    "AssetRecord",
    "DocumentRecord",
    "DocumentRef",
    "LegalFramework",
    "add_document",
    "check_sha256",
    "get_asset",
    "issue_units",
    "list_assets",
    "list_documents",
    "pool_holder",
    "register_asset",
    "units_of",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_members = table(Member)
_assets = table(Asset)
_documents = table(AssetDocument)


class LegalFramework(StrEnum):
    TENANCY_IN_COMMON = "tenancy_in_common"
    JOINT_TENANCY = "joint_tenancy"
    COOPERATIVE = "cooperative"


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A legal document of an asset, known by its SHA-256."""

    title: str
    sha256: str


@dataclass(frozen=True, slots=True)
class AssetRecord:
    id: str
    make: str
    model: str
    serial: str
    location: str
    total_units: int
    legal_framework: LegalFramework
    jurisdiction: str
    registered_seq: int


def check_sha256(name: str, value: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidInput("sha256_malformed", f"{name} must be 64 lowercase hex digits")
    return value


# -- assets -------------------------------------------------------------------------------


def register_asset(
    ledger: Ledger,
    asset_id: str,
    *,
    make: str,
    model: str,
    serial: str,
    location: str,
    total_units: int = limits.TOTAL_UNITS_DEFAULT,
    legal_framework: str = LegalFramework.TENANCY_IN_COMMON,
    jurisdiction: str,
    documents: Sequence[DocumentRef] = (),
    key: str,
    actor: str,
) -> AssetRecord:
    """Register an asset and create its ``total_units`` in its unissued pool."""
    validate_asset_id(asset_id)
    for name, value, limit in (
        ("make", make, 64),
        ("model", model, 64),
        ("serial", serial, 64),
        ("location", location, 128),
        ("jurisdiction", jurisdiction, 64),
    ):
        check_display_text(name, value, limit)
    if isinstance(total_units, bool) or not isinstance(total_units, int):
        raise InvalidInput("amount_type", "total_units must be an integer")
    if not 0 < total_units <= limits.TOTAL_UNITS_MAX:
        raise InvalidInput(
            "total_units_range", f"total_units must be within 1..{limits.TOTAL_UNITS_MAX}"
        )
    try:
        framework = LegalFramework(legal_framework)
    except ValueError:
        raise InvalidInput(
            "legal_framework", f"legal framework must be one of {', '.join(LegalFramework)}"
        ) from None
    if len(documents) > limits.DOCUMENTS_PER_REQUEST_MAX:
        raise InvalidInput(
            "too_many_documents",
            f"at most {limits.DOCUMENTS_PER_REQUEST_MAX} documents per request",
        )
    docs = [
        (
            check_display_text("document title", d.title, 128),
            check_sha256("document sha256", d.sha256),
        )
        for d in documents
    ]
    if len({h for _, h in docs}) < len(docs):
        raise InvalidInput("document_repeated", "a document (by its SHA-256) is listed twice")
    units = units_of(asset_id)
    draft = EntryDraft(
        kind=EntryKind.ASSET_REGISTER,
        idempotency_key=key,
        actor=actor,
        payload={
            "asset_id": asset_id,
            "make": make,
            "model": model,
            "serial": serial,
            "location": location,
            "total_units": total_units,
            "legal_framework": framework.value,
            "jurisdiction": jurisdiction,
            "documents": [{"title": t, "sha256": h} for t, h in docs],
        },
        postings=(
            Posting(AccountKey(ISSUANCE, units), -total_units),
            Posting(AccountKey(pool_holder(asset_id), units), total_units),
        ),
    )
    with ledger.write() as tx:

        def insert_asset(seq: int) -> None:
            if _find_asset(tx.conn, asset_id) is not None:
                raise Conflict("asset_exists", f"asset {asset_id} is already registered")
            _require_no_live_project(tx.conn, asset_id)
            tx.conn.execute(
                insert(_assets).values(
                    id=asset_id,
                    make=make,
                    model=model,
                    serial=serial,
                    location=location,
                    total_units=total_units,
                    legal_framework=framework.value,
                    jurisdiction=jurisdiction,
                    registered_seq=seq,
                )
            )
            if docs:
                tx.conn.execute(
                    insert(_documents),
                    [
                        {"asset_id": asset_id, "title": t, "sha256": h, "recorded_seq": seq}
                        for t, h in docs
                    ],
                )

        tx.append_once(draft, insert_asset)
        return get_asset(tx.conn, asset_id)


def _require_no_live_project(conn: Connection, asset_id: str) -> None:
    """An asset a live project means to buy is registered by that project when it is
    funded, not by hand: ``Conflict(asset_in_project)``."""
    projects = table(Project)
    live = conn.execute(
        select(projects.c.id)
        .where(
            projects.c.asset_id == asset_id,
            projects.c.state.in_(("draft", "open", "funded")),
        )
        .limit(1)
    ).scalar_one_or_none()
    if live is not None:
        raise Conflict(
            "asset_in_project", f"project {live} means to buy asset {asset_id}: it registers it"
        )


def _find_asset(conn: Connection, asset_id: str) -> AssetRecord | None:
    row = conn.execute(select(_assets).where(_assets.c.id == asset_id)).first()
    if row is None:
        return None
    return AssetRecord(
        row.id,
        row.make,
        row.model,
        row.serial,
        row.location,
        row.total_units,
        LegalFramework(row.legal_framework),
        row.jurisdiction,
        row.registered_seq,
    )


def get_asset(conn: Connection, asset_id: str) -> AssetRecord:
    """The asset ``asset_id``, or ``NotFound(unknown_asset)`` (a mistyped ID is refused)."""
    validate_asset_id(asset_id)
    found = _find_asset(conn, asset_id)
    if found is None:
        raise NotFound("unknown_asset", f"no asset {asset_id}")
    return found


def issue_units(
    ledger: Ledger,
    asset_id: str,
    allocations: Sequence[tuple[str, int]],
    *,
    key: str,
    actor: str,
) -> Entry:
    """Move units from the asset's unissued pool to members, in one entry."""
    validate_asset_id(asset_id)
    if not allocations:
        raise InvalidInput("allocations_empty", "name at least one member to issue units to")
    if len(allocations) > limits.POSTINGS_PER_ENTRY_MAX - 1:
        raise InvalidInput("too_many_postings", "too many allocations in one issue")
    for _, n in allocations:
        check_amount(n, "allocation")
    units = units_of(asset_id)
    total = sum(n for _, n in allocations)
    postings = [Posting(AccountKey(pool_holder(asset_id), units), -total)]
    postings += [
        Posting(AccountKey(member_holder(validate_address(a)), units), n) for a, n in allocations
    ]
    draft = EntryDraft(
        kind=EntryKind.ASSET_ISSUE,
        idempotency_key=key,
        actor=actor,
        payload={"asset_id": asset_id},
        postings=tuple(postings),
    )
    with ledger.write() as tx:
        return tx.append(draft).entry


def add_document(
    ledger: Ledger, asset_id: str, document: DocumentRef, *, key: str, actor: str
) -> Entry:
    """Attach a legal document (title and SHA-256) to an asset."""
    validate_asset_id(asset_id)
    title = check_display_text("document title", document.title, 128)
    digest = check_sha256("document sha256", document.sha256)
    draft = EntryDraft(
        kind=EntryKind.ASSET_DOCUMENT,
        idempotency_key=key,
        actor=actor,
        payload={"asset_id": asset_id, "title": title, "sha256": digest},
    )
    with ledger.write() as tx:

        def insert_document(seq: int) -> None:
            get_asset(tx.conn, asset_id)
            known = tx.conn.execute(
                select(func.count(), func.sum(case((_documents.c.sha256 == digest, 1), else_=0)))
                .select_from(_documents)
                .where(_documents.c.asset_id == asset_id)
            ).one()
            if known[1]:
                raise Conflict("document_exists", f"asset {asset_id} already has that document")
            if known[0] >= limits.DOCUMENTS_PER_ASSET_MAX:
                raise Refused(
                    "too_many_documents",
                    f"an asset has at most {limits.DOCUMENTS_PER_ASSET_MAX} documents",
                )
            tx.conn.execute(
                insert(_documents).values(
                    asset_id=asset_id, title=title, sha256=digest, recorded_seq=seq
                )
            )

        return tx.append_once(draft, insert_document).entry


def list_assets(conn: Connection, *, after_id: str | None, limit: int) -> list[AssetRecord]:
    """Assets in ID order, after ``after_id``."""
    query = select(_assets.c.id).order_by(_assets.c.id).limit(limit)
    if after_id is not None:
        query = query.where(_assets.c.id > after_id)
    return [get_asset(conn, asset_id) for asset_id in conn.execute(query).scalars()]


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: int  # the order documents were recorded in; a cursor
    title: str
    sha256: str


def list_documents(
    conn: Connection, asset_id: str, *, after_id: int | None, limit: int
) -> list[DocumentRecord]:
    """An asset's legal documents, oldest first, after ``after_id``."""
    get_asset(conn, asset_id)
    query = select(_documents.c.id, _documents.c.title, _documents.c.sha256).where(
        _documents.c.asset_id == asset_id
    )
    if after_id is not None:
        query = query.where(_documents.c.id > after_id)
    rows = conn.execute(query.order_by(_documents.c.id).limit(limit))
    return [DocumentRecord(r.id, r.title, r.sha256) for r in rows]
