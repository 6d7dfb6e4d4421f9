"""Photos through the real app, on both databases: bytes of another type than declared
are refused with nothing kept, photos are served so that no browser runs or sniffs
them, and each member's storage is held to a quota."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

import api.routes.assets as asset_routes
from api.app import create_app
from api.problems import PROBLEM_JSON
from api.settings import Settings
from ledger.db.schema import Photo, PhotoUpload, table
from ledger.registry.photos import store_photo

from .signin import MovableClock, sign_in, wallet

ANN, BOB = wallet(61), wallet(62)
PNG = b"\x89PNG\r\n\x1a\n"  # the signature every PNG starts with
JPEG = b"\xff\xd8\xff\xe0"


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), engine=engine, clock=MovableClock())) as test_client:
        yield test_client


def _upload(
    client: TestClient, who: dict[str, str], data: bytes, content_type: str, key: str
) -> Any:
    headers = who | {"Idempotency-Key": key, "Content-Type": content_type}
    return client.post("/v1/photos", content=data, headers=headers)


def _rows(engine: Engine) -> tuple[int, int]:
    """How many photos are stored, and how many upload rows."""
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(table(Photo))).scalar_one()
        uploads = conn.execute(select(func.count()).select_from(table(PhotoUpload))).scalar_one()
    return int(stored), int(uploads)


def test_a_mismatch_is_refused_and_leaves_nothing_behind(
    client: TestClient, engine: Engine
) -> None:
    ann = sign_in(client, ANN)
    data = PNG + b"the greenhouse"
    refused = _upload(client, ann, data, "image/jpeg", "p")
    assert refused.status_code == 422
    assert refused.headers["content-type"] == PROBLEM_JSON
    problem = refused.json()
    assert problem["code"] == "photo_type_mismatch"
    assert (problem["declared"], problem["detected"]) == ("image/jpeg", "image/png")
    digest = hashlib.sha256(data).hexdigest()
    assert client.get(f"/v1/photos/{digest}").status_code == 404
    assert _rows(engine) == (0, 0)
    # The key is still free: the same key may carry the corrected upload.
    kept = _upload(client, ann, data, "image/png", "p")
    assert kept.status_code == 201, kept.text
    assert kept.json() == {"sha256": digest, "content_type": "image/png", "size_bytes": len(data)}


def test_the_same_bytes_as_png_then_jpeg_are_served_as_png(client: TestClient) -> None:
    ann, bob = sign_in(client, ANN), sign_in(client, BOB)
    data = PNG + b"the greenhouse at dawn"
    first = _upload(client, ann, data, "image/png", "p1")
    assert first.status_code == 201 and first.json()["content_type"] == "image/png"
    for who, key in ((ann, "p2"), (bob, "p1")):
        again = _upload(client, who, data, "image/jpeg", key)
        assert again.status_code == 422 and again.json()["code"] == "photo_type_mismatch"
    served = client.get(f"/v1/photos/{first.json()['sha256']}")
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/png"


def test_photos_are_served_neither_sniffed_nor_run(client: TestClient) -> None:
    ann = sign_in(client, ANN)
    data = JPEG + b"<script>alert(1)</script>"
    digest = _upload(client, ann, data, "image/jpeg", "p").json()["sha256"]
    served = client.get(f"/v1/photos/{digest}")
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    policy = [p.strip() for p in served.headers["content-security-policy"].split(";")]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_a_members_storage_is_held_to_the_quota(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small quota, so that the test need not upload 50 MiB.
    small = functools.partial(store_photo, storage_bytes_max=300)
    monkeypatch.setattr(asset_routes, "store_photo", small)
    ann, bob = sign_in(client, ANN), sign_in(client, BOB)
    first, second = PNG + b"1" * 92, PNG + b"2" * 192  # 100 and 200 bytes
    assert _upload(client, ann, first, "image/png", "a").status_code == 201
    assert _upload(client, ann, second, "image/png", "b").status_code == 201
    over = PNG + b"3"
    refused = _upload(client, ann, over, "image/png", "c")
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "photo_quota_exceeded"
    assert (problem["used_bytes"], problem["limit_bytes"], problem["photo_bytes"]) == (300, 300, 9)
    assert "300" in problem["detail"]
    assert client.get(f"/v1/photos/{hashlib.sha256(over).hexdigest()}").status_code == 404
    assert _rows(engine) == (2, 2)
    # A photo already counted may be uploaded again for nothing (under the refused key:
    # it is free again).
    again = _upload(client, ann, second, "image/png", "c")
    assert again.status_code == 201 and again.json()["size_bytes"] == 200
    # Another member's quota is their own.
    assert _upload(client, bob, over, "image/png", "c").status_code == 201
    assert _rows(engine) == (3, 3)
