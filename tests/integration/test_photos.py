"""Photos in the ledger: kept only when their bytes are the declared type, and counted
toward each uploader's storage quota, even when uploads race."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.core.errors import InvalidInput, LedgerError, NotFound, Refused
from ledger.db.schema import Photo, PhotoUpload, table
from ledger.journal.write import Ledger
from ledger.registry import photos
from ledger.registry.members import register_member
from ledger.registry.photos import PhotoRef, get_photo, photo_storage_used, store_photo

from .network import ANN, BOB, CAT

JPEG = b"\xff\xd8\xff\xe0"
PNG = b"\x89PNG\r\n\x1a\n"
WEBP_HEAD, WEBP_TAIL = b"RIFF", b"\x00\x00\x00\x00WEBPVP8 "
RACERS = 6


def _members(ledger: Ledger, *addresses: str) -> None:
    for address in addresses:
        register_member(ledger, address, "individual", "m", key=f"m:{address}", actor="test")


def _png(size: int, tag: bytes = b"") -> bytes:
    """A PNG of exactly ``size`` bytes, different for each ``tag``."""
    body = PNG + tag
    return body + b"." * (size - len(body))


def _rows(ledger: Ledger) -> tuple[int, int]:
    """How many photos are stored, and how many upload rows."""
    with ledger.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(table(Photo))).scalar_one()
        uploads = conn.execute(select(func.count()).select_from(table(PhotoUpload))).scalar_one()
    return int(stored), int(uploads)


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (PNG + b"pixels", "image/jpeg"),
        (JPEG + b"pixels", "image/png"),
        (WEBP_HEAD + WEBP_TAIL, "image/png"),
        (b"GIF89a pixels", "image/png"),
        (b"<svg onload=alert(1)>", "image/webp"),
        (b"RIFF\x00\x00\x00\x00WAVE", "image/webp"),
        (b"\x89PNG pixels", "image/png"),  # the signature cut short
    ],
)
def test_bytes_of_another_type_are_refused_and_nothing_is_stored(
    ledger: Ledger, data: bytes, declared: str
) -> None:
    _members(ledger, ANN)
    with pytest.raises(InvalidInput) as caught:
        store_photo(ledger, data, declared, uploader=ANN)
    assert caught.value.code == "photo_type_mismatch"
    assert caught.value.detail["declared"] == declared
    assert _rows(ledger) == (0, 0)


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (JPEG + b"pixels", "image/jpeg"),
        (PNG + b"pixels", "image/png"),
        (WEBP_HEAD + WEBP_TAIL, "image/webp"),
    ],
)
def test_bytes_of_the_declared_type_are_kept(ledger: Ledger, data: bytes, declared: str) -> None:
    _members(ledger, ANN)
    ref = store_photo(ledger, data, declared, uploader=ANN)
    assert ref == PhotoRef(hashlib.sha256(data).hexdigest(), declared, len(data))
    with ledger.engine.connect() as conn:
        assert get_photo(conn, ref.sha256) == (ref, data)


def test_the_same_bytes_declared_as_another_type_are_refused(ledger: Ledger) -> None:
    _members(ledger, ANN, BOB)
    data = PNG + b"the greenhouse"
    kept = store_photo(ledger, data, "image/png", uploader=ANN)
    for who in (ANN, BOB):
        with pytest.raises(InvalidInput) as caught:
            store_photo(ledger, data, "image/jpeg", uploader=who)
        assert caught.value.code == "photo_type_mismatch"
    with ledger.engine.connect() as conn:
        assert get_photo(conn, kept.sha256)[0].content_type == "image/png"
    assert _rows(ledger) == (1, 1)


def test_a_photo_kept_under_a_wrong_type_is_served_as_its_bytes_once_uploaded_again(
    ledger: Ledger,
) -> None:
    _members(ledger, ANN)
    data = PNG + b"kept before types were checked"
    digest = hashlib.sha256(data).hexdigest()
    with ledger.engine.begin() as conn:
        conn.execute(
            table(Photo)
            .insert()
            .values(sha256=digest, content_type="image/jpeg", size_bytes=len(data), data=data)
        )
    assert store_photo(ledger, data, "image/png", uploader=ANN).content_type == "image/png"
    with ledger.engine.connect() as conn:
        assert get_photo(conn, digest)[0].content_type == "image/png"


def test_only_members_upload(ledger: Ledger) -> None:
    with pytest.raises(NotFound) as caught:
        store_photo(ledger, PNG + b"x", "image/png", uploader=ANN)
    assert caught.value.code == "unknown_member"
    assert _rows(ledger) == (0, 0)


def test_the_quota_counts_each_members_distinct_photos(ledger: Ledger) -> None:
    _members(ledger, ANN, BOB)
    quota = {"storage_bytes_max": 300}
    first, second = _png(100, b"first"), _png(200, b"second")
    store_photo(ledger, first, "image/png", uploader=ANN, **quota)
    store_photo(ledger, second, "image/png", uploader=ANN, **quota)  # exactly at the limit
    over = _png(1 + len(PNG), b"o")
    with pytest.raises(Refused) as caught:
        store_photo(ledger, over, "image/png", uploader=ANN, **quota)
    refused = caught.value
    assert refused.code == "photo_quota_exceeded"
    assert (refused.detail["used_bytes"], refused.detail["limit_bytes"]) == (300, 300)
    assert "300" in refused.message
    assert _rows(ledger) == (2, 2)  # the refused photo is not kept
    # Uploading a photo already counted costs nothing more.
    assert store_photo(ledger, second, "image/png", uploader=ANN, **quota).size_bytes == 200
    # Another member's upload of the same bytes counts toward theirs; one copy is kept.
    store_photo(ledger, second, "image/png", uploader=BOB, **quota)
    with pytest.raises(Refused):
        store_photo(ledger, first + b"!", "image/png", uploader=BOB, storage_bytes_max=300)
    with ledger.engine.connect() as conn:
        assert photo_storage_used(conn, ANN) == 300
        assert photo_storage_used(conn, BOB) == 200
        assert photo_storage_used(conn, CAT) == 0
    assert _rows(ledger) == (2, 3)


def test_racing_uploads_never_pass_the_quota(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _members(ledger, ANN)
    used = photos.photo_storage_used

    def slow_used(*args: Any) -> int:
        counted = used(*args)
        time.sleep(0.05)  # between the count and the insert: the others count meanwhile
        return counted

    monkeypatch.setattr(photos, "photo_storage_used", slow_used)
    start = threading.Barrier(RACERS)

    def race(n: int) -> PhotoRef | str:
        start.wait()
        try:
            return store_photo(
                ledger, _png(100, b"%d" % n), "image/png", uploader=ANN, storage_bytes_max=250
            )
        except LedgerError as refused:
            return refused.code

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(race, range(RACERS)))
    assert len([o for o in outcomes if isinstance(o, PhotoRef)]) == 2
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["photo_quota_exceeded"] * 4
    with ledger.engine.connect() as conn:
        assert used(conn, ANN) == 200
    assert _rows(ledger) == (2, 2)


def test_members_racing_to_upload_the_same_bytes_keep_one_copy(ledger: Ledger) -> None:
    members = (ANN, BOB, CAT)
    _members(ledger, *members)
    data = _png(100, b"shared")
    start = threading.Barrier(len(members))

    def race(who: str) -> PhotoRef:
        start.wait()
        return store_photo(ledger, data, "image/png", uploader=who)

    with ThreadPoolExecutor(len(members)) as pool:
        refs = set(pool.map(race, members))
    assert refs == {PhotoRef(hashlib.sha256(data).hexdigest(), "image/png", 100)}
    assert _rows(ledger) == (1, 3)
