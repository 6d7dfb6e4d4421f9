"""Photos of sightings, stored once by content hash (SHA-256).

A photo is kept only if its bytes are the image type it is declared as (their magic
number), so the type it is served with is the type it really is. Each member's uploads
count toward a storage quota: the sum of the sizes of the distinct photos they uploaded
(``photo_uploads``), whoever else uploaded the same bytes too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ledger.core.errors import InvalidInput, NotFound, Refused
from ledger.db.engine import write_connection
from ledger.db.schema import Member, Photo, PhotoUpload, table
from ledger.journal.write import Ledger

__all__ = [
    "PHOTO_BYTES_MAX",
    "PHOTO_STORAGE_PER_MEMBER_BYTES_MAX",
    "PHOTO_TYPES",
    "PhotoRef",
    "get_photo",
    "photo_exists",
    "photo_storage_used",
    "store_photo",
]

PHOTO_BYTES_MAX = 5 * 1024 * 1024
PHOTO_STORAGE_PER_MEMBER_BYTES_MAX = 50 * 1024 * 1024
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
_photos = table(Photo)
_uploads = table(PhotoUpload)
_members = table(Member)


@dataclass(frozen=True, slots=True)
class PhotoRef:
    sha256: str
    content_type: str
    size_bytes: int


def _type_of(data: bytes) -> str | None:
    """The image type the bytes' magic number says they are, or None for none we keep."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def store_photo(
    ledger: Ledger,
    data: bytes,
    content_type: str,
    *,
    uploader: str,
    storage_bytes_max: int = PHOTO_STORAGE_PER_MEMBER_BYTES_MAX,
) -> PhotoRef:
    """Keep a photo under its SHA-256 (storing the same bytes twice keeps one copy) and
    count it toward ``uploader``'s storage, once however often they upload it.

    Refuses bytes that are not the declared type (``InvalidInput(photo_type_mismatch)``),
    an uploader who is not a member (``NotFound(unknown_member)``) and a photo that would
    take the uploader's storage past ``storage_bytes_max``
    (``Refused(photo_quota_exceeded)``); nothing is stored then."""
    if content_type not in PHOTO_TYPES:
        raise InvalidInput("photo_type", f"photos must be one of {', '.join(sorted(PHOTO_TYPES))}")
    if not data:
        raise InvalidInput("photo_empty", "the photo is empty")
    if len(data) > PHOTO_BYTES_MAX:
        raise InvalidInput("photo_too_large", f"photos are at most {PHOTO_BYTES_MAX} bytes")
    detected = _type_of(data)
    if detected != content_type:
        really = f"are {detected}" if detected else "are not a JPEG, PNG or WebP image"
        raise InvalidInput(
            "photo_type_mismatch",
            f"the photo was declared {content_type} but its bytes {really}",
            declared=content_type,
            detected=detected or "unknown",
        )
    digest = hashlib.sha256(data).hexdigest()
    size = len(data)
    with write_connection(ledger.engine) as conn:
        # The uploader's row, locked on PostgreSQL (SQLite writers take turns already), so
        # that one member's concurrent uploads count one after another and never pass the
        # quota together.
        member = conn.execute(
            select(_members.c.address).where(_members.c.address == uploader).with_for_update()
        ).first()
        if member is None:
            raise NotFound("unknown_member", f"no member {uploader[:42]}")
        counted = conn.execute(
            select(_uploads.c.sha256).where(
                _uploads.c.address == uploader, _uploads.c.sha256 == digest
            )
        ).first()
        if counted is None:
            used = photo_storage_used(conn, uploader)
            if used + size > storage_bytes_max:
                raise Refused(
                    "photo_quota_exceeded",
                    f"your photos use {used} of your {storage_bytes_max} bytes of storage; "
                    f"this photo of {size} bytes does not fit",
                    used_bytes=used,
                    limit_bytes=storage_bytes_max,
                    photo_bytes=size,
                )
        stored = conn.execute(
            select(_photos.c.content_type).where(_photos.c.sha256 == digest)
        ).first()
        if stored is None:
            _insert_photo(conn, digest, content_type, data)
        elif stored.content_type != detected:
            # Kept before types were checked against the bytes: serve what they really are.
            conn.execute(
                update(_photos).where(_photos.c.sha256 == digest).values(content_type=detected)
            )
        if counted is None:
            conn.execute(
                insert(_uploads).values(
                    address=uploader, sha256=digest, size_bytes=size, uploaded_at=ledger.clock()
                )
            )
    return PhotoRef(digest, content_type, size)


def _insert_photo(conn: Connection, digest: str, content_type: str, data: bytes) -> None:
    """Insert the photo, or nothing if another member's upload of the same bytes stored it
    meanwhile (on PostgreSQL that one is not serialized with this one; its type was
    checked against the same bytes, so it is the same)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(_photos)
        .values(sha256=digest, content_type=content_type, size_bytes=len(data), data=data)
        .on_conflict_do_nothing(index_elements=[_photos.c.sha256])
    )


def photo_storage_used(conn: Connection, address: str) -> int:
    """The bytes of photo storage the member uses: the sizes of the distinct photos they
    uploaded."""
    used = conn.execute(
        select(func.coalesce(func.sum(_uploads.c.size_bytes), 0)).where(
            _uploads.c.address == address
        )
    ).scalar_one()
    return int(used)


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
