"""Sightings: an asset's tracking history, each seen when, where, by whom, with a
photo stored by its content hash (``ledger.registry.photos``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from ledger.core import (
    Entry,
    EntryDraft,
    EntryKind,
    check_display_text,
    format_time,
    validate_asset_id,
)
from ledger.core.errors import NotFound
from ledger.db.schema import Sighting, table
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address
from ledger.registry.assets import check_sha256, get_asset
from ledger.registry.members import get_member
from ledger.registry.photos import photo_exists

__all__ = ["SightingRecord", "list_sightings", "record_sighting"]

_sightings = table(Sighting)


def record_sighting(
    ledger: Ledger,
    asset_id: str,
    *,
    seen_at: datetime,
    location: str,
    reporter: str,
    photo_sha256: str,
    key: str,
    actor: str,
) -> Entry:
    """Add to an asset's tracking history: seen when, where, by whom, which (stored)
    photo."""
    validate_asset_id(asset_id)
    validate_address(reporter)
    check_display_text("location", location, 128)
    check_sha256("photo sha256", photo_sha256)
    draft = EntryDraft(
        kind=EntryKind.ASSET_SIGHTING,
        idempotency_key=key,
        actor=actor,
        payload={
            "asset_id": asset_id,
            "seen_at": format_time(seen_at),
            "location": location,
            "reporter": reporter,
            "photo_sha256": photo_sha256,
        },
    )
    with ledger.write() as tx:

        def insert_sighting(seq: int) -> None:
            get_asset(tx.conn, asset_id)
            get_member(tx.conn, reporter)
            if not photo_exists(tx.conn, photo_sha256):
                raise NotFound("unknown_photo", f"no photo {photo_sha256}: upload it first")
            tx.conn.execute(
                insert(_sightings).values(
                    asset_id=asset_id,
                    seen_at=seen_at,
                    location=location,
                    reporter=reporter,
                    photo_sha256=photo_sha256,
                    recorded_seq=seq,
                )
            )

        return tx.append_once(draft, insert_sighting).entry


@dataclass(frozen=True, slots=True)
class SightingRecord:
    id: int
    seen_at: datetime
    location: str
    reporter: str
    photo_sha256: str
    recorded_seq: int


def list_sightings(
    conn: Connection, asset_id: str, *, before_id: int | None, limit: int
) -> list[SightingRecord]:
    """An asset's tracking history, newest first, before ``before_id``."""
    get_asset(conn, asset_id)
    query = (
        select(_sightings)
        .where(_sightings.c.asset_id == asset_id)
        .order_by(_sightings.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(_sightings.c.id < before_id)
    return [
        SightingRecord(r.id, r.seen_at, r.location, r.reporter, r.photo_sha256, r.recorded_seq)
        for r in conn.execute(query)
    ]
