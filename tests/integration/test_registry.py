"""Members, assets, documents and sightings: recorded as entries, materialized as rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.core import Entry, limits
from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused
from ledger.db.schema import AssetDocument, Sighting, table
from ledger.journal.reads import cap_table, journal_page, seq_at
from ledger.journal.reads import digest as digest_of
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.assets import DocumentRef, add_document, get_asset, register_asset
from ledger.registry.members import get_member, register_member
from ledger.registry.photos import store_photo
from ledger.registry.sightings import record_sighting

from .network import ANN, ASSET, BOB, DAN, build_network

PHOTO_BYTES = b"\xff\xd8\xff a photo of the tractor"
PHOTO = hashlib.sha256(PHOTO_BYTES).hexdigest()
DEED = hashlib.sha256(b"co-ownership agreement").hexdigest()


def test_member_registration_is_journaled_once(ledger: Ledger) -> None:
    member = register_member(ledger, ANN, "finance_node", "North", key="m", actor="admin")
    assert member.address == ANN and member.kind == "finance_node"
    assert register_member(ledger, ANN, "finance_node", "North", key="m", actor="admin") == member
    with pytest.raises(Conflict) as caught:
        register_member(ledger, ANN, "business", "North again", key="m2", actor="admin")
    assert caught.value.code == "member_exists"
    with pytest.raises(InvalidInput) as kind:
        register_member(ledger, BOB, "pirate", "Bob", key="m3", actor="admin")
    assert kind.value.code == "member_kind"
    with ledger.engine.connect() as conn:
        assert get_member(conn, ANN) == member  # as stored, field for field
        assert [e.kind for e in journal_page(conn)] == ["member.register"]
        with pytest.raises(NotFound):
            get_member(conn, BOB)


def test_asset_registration_issues_every_unit_to_its_pool(ledger: Ledger) -> None:
    register_member(ledger, ANN, "business", "Ann", key="m", actor="admin")
    asset = register_asset(
        ledger,
        ASSET,
        make="Deere",
        model="8R",
        serial="S-1",
        location="Ames, IA",
        total_units=2_500,
        jurisdiction="US-IA",
        documents=[DocumentRef("Deed", DEED)],
        key="a",
        actor="admin",
    )
    assert (asset.total_units, asset.legal_framework) == (2_500, "tenancy_in_common")
    with ledger.engine.connect() as conn:
        rows = cap_table(conn, ASSET)
        assert [(r.holder, r.units) for r in rows] == [(f"pool:{ASSET}", 2_500)]
        docs = conn.execute(select(table(AssetDocument).c.sha256)).scalars().all()
        assert docs == [DEED]
        assert verify(conn).ok


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"total_units": 0}, "total_units_range"),
        ({"total_units": 10**16}, "total_units_range"),
        ({"legal_framework": "feudal"}, "legal_framework"),
        ({"make": ""}, "field_empty"),
        ({"location": "x" * 129}, "field_too_long"),
        ({"documents": [DocumentRef("Deed", "not-a-hash")]}, "sha256_malformed"),
        (
            {"documents": [DocumentRef("Deed", DEED), DocumentRef("Copy", DEED)]},
            "document_repeated",
        ),
        ({"documents": [DocumentRef(f"D{n}", DEED) for n in range(65)]}, "too_many_documents"),
        ({"serial": "S-\x001"}, "text_nul"),
    ],
)
def test_asset_registration_refuses_bad_fields(
    ledger: Ledger, kwargs: dict[str, object], code: str
) -> None:
    fields: dict[str, object] = {
        "make": "Deere",
        "model": "8R",
        "serial": "S-1",
        "location": "Ames",
        "jurisdiction": "US-IA",
    }
    with pytest.raises(LedgerError) as caught:
        register_asset(ledger, ASSET, **(fields | kwargs), key="a", actor="admin")  # type: ignore[arg-type]
    assert caught.value.code == code
    with ledger.engine.connect() as conn:
        assert journal_page(conn) == []


SEEN = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def _sight(ledger: Ledger, key: str, **changes: Any) -> Entry:
    """DAN reports seeing ASSET in Field 7 at SEEN with PHOTO, but for ``changes``."""
    fields: dict[str, Any] = {
        "asset_id": ASSET,
        "seen_at": SEEN,
        "location": "Field 7",
        "reporter": DAN,
        "photo_sha256": PHOTO,
        "actor": DAN,
    } | changes
    return record_sighting(ledger, fields.pop("asset_id"), key=key, **fields)


def test_documents_and_sightings_build_the_asset_history(ledger: Ledger) -> None:
    build_network(ledger)
    add_document(ledger, ASSET, DocumentRef("Deed", DEED), key="doc", actor="admin")
    with pytest.raises(Conflict):
        add_document(ledger, ASSET, DocumentRef("Deed copy", DEED), key="doc2", actor="admin")
    with pytest.raises(NotFound) as missing:
        _sight(ledger, "s0")
    assert missing.value.code == "unknown_photo"
    assert store_photo(ledger, PHOTO_BYTES, "image/jpeg", uploader=DAN).sha256 == PHOTO
    entry = _sight(ledger, "s1")
    assert entry.payload["photo_sha256"] == PHOTO
    with pytest.raises(NotFound):
        _sight(ledger, "s2", reporter="0xd09Ad14080d4b257a819a4f579b8485Be88f086c")
    with pytest.raises(InvalidInput):
        _sight(ledger, "s3", asset_id="11111111111111112")
    with ledger.engine.connect() as conn:
        sightings = conn.execute(select(table(Sighting))).all()
        assert [(s.seen_at, s.reporter, s.photo_sha256) for s in sightings] == [(SEEN, DAN, PHOTO)]
        assert get_asset(conn, ASSET).make == "Deere"
        assert verify(conn).ok


def test_an_asset_holds_a_bounded_number_of_documents(ledger: Ledger) -> None:
    build_network(ledger)
    for n in range(limits.DOCUMENTS_PER_ASSET_MAX):
        digest = hashlib.sha256(f"page {n}".encode()).hexdigest()
        add_document(ledger, ASSET, DocumentRef(f"Page {n}", digest), key=f"d{n}", actor="admin")
    with ledger.engine.connect() as conn:
        before = digest_of(conn)
    one_more = DocumentRef("One more", hashlib.sha256(b"one more").hexdigest())
    with pytest.raises(Refused) as caught:
        add_document(ledger, ASSET, one_more, key="d-over", actor="admin")
    assert caught.value.code == "too_many_documents"
    with ledger.engine.connect() as conn:
        assert digest_of(conn) == before
        stored = conn.execute(select(func.count()).select_from(table(AssetDocument))).scalar()
        assert stored == limits.DOCUMENTS_PER_ASSET_MAX


def test_a_sighting_far_before_year_one_in_utc_is_refused(ledger: Ledger) -> None:
    build_network(ledger)
    store_photo(ledger, PHOTO_BYTES, "image/jpeg", uploader=DAN)
    # Year 1 at +14:00 is still year 0 in UTC: no such time in ISO 8601 as kept here.
    seen = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    with ledger.engine.connect() as conn:
        before = digest_of(conn)
    with pytest.raises(InvalidInput) as caught:
        _sight(ledger, "s-early", seen_at=seen)
    assert caught.value.code == "time_out_of_range"
    with ledger.engine.connect() as conn:
        assert digest_of(conn) == before
        with pytest.raises(InvalidInput):
            seq_at(conn, seen)
