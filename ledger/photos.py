"""Photos of sightings, stored once by content hash (SHA-256)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from ledger.db.schema import Photo, table
from ledger.errors import InvalidInput, NotFound
from ledger.journal import Ledger

__all__ = ["PHOTO_BYTES_MAX", "PHOTO_TYPES", "PhotoRef", "get_photo", "photo_exists", "store_photo"]

PHOTO_BYTES_MAX = 5 * 1024 * 1024
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_photos = table(Photo)


@dataclass(frozen=True, slots=True)
class PhotoRef:
    sha256: str
    content_type: str
    size_bytes: int


def store_photo(ledger: Ledger, data: bytes, content_type: str) -> PhotoRef:
    """Keep a photo under its SHA-256 (storing the same bytes twice keeps one copy)."""
    if content_type not in PHOTO_TYPES:
        raise InvalidInput("photo_type", f"photos must be one of {', '.join(sorted(PHOTO_TYPES))}")
    if not data:
        raise InvalidInput("photo_empty", "the photo is empty")
    if len(data) > PHOTO_BYTES_MAX:
        raise InvalidInput("photo_too_large", f"photos are at most {PHOTO_BYTES_MAX} bytes")
    digest = hashlib.sha256(data).hexdigest()
    ref = PhotoRef(digest, content_type, len(data))
    with ledger.engine.connect() as conn:
        if photo_exists(conn, digest):
            return ref
    try:
        with ledger.engine.begin() as conn:
            conn.execute(
                _photos.insert().values(
                    sha256=digest, content_type=content_type, size_bytes=len(data), data=data
                )
            )
    except IntegrityError:
        pass  # stored meanwhile by a concurrent upload of the same bytes
    return ref


def photo_exists(conn: Connection, sha256: str) -> bool:
    """True if a photo with this hash is stored."""
    return (
        conn.execute(select(_photos.c.sha256).where(_photos.c.sha256 == sha256)).first() is not None
    )


def get_photo(conn: Connection, sha256: str) -> tuple[PhotoRef, bytes]:
    """The photo with this hash and its bytes, or ``NotFound(unknown_photo)``."""
    row = conn.execute(select(_photos).where(_photos.c.sha256 == sha256[:64])).first()
    if row is None:
        raise NotFound("unknown_photo", f"no photo {sha256[:64]}")
    return PhotoRef(row.sha256, row.content_type, row.size_bytes), bytes(row.data)
