"""Assets: registration, documents, photos and sightings, issue of units, cap tables."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key, once
from api.policy import require_admin, require_asset_operator, require_asset_registrar
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Page, Time
from api.schemas.ledger import (
    AssetIn,
    AssetOut,
    CapTableOut,
    DocumentIn,
    IssueIn,
    OperatorIn,
    PhotoOut,
    SightingIn,
    SightingOut,
)
from ledger.access import grant_role
from ledger.core import validate_asset_id
from ledger.db.engine import read_connection
from ledger.journal.reads import cap_table_of
from ledger.registry.assets import (
    AssetRecord,
    DocumentRef,
    add_document,
    get_asset,
    issue_units,
    list_assets,
    list_documents,
    register_asset,
)
from ledger.registry.photos import PhotoRef, get_photo, store_photo
from ledger.registry.sightings import list_sightings, record_sighting

router = APIRouter(prefix="/v1", tags=["assets"], responses=PROBLEM_RESPONSES)
AssetPath = Annotated[str, Path(max_length=32)]


def _asset_out(asset: AssetRecord) -> AssetOut:
    return AssetOut(
        id=asset.id,
        make=asset.make,
        model=asset.model,
        serial=asset.serial,
        location=asset.location,
        total_units=asset.total_units,
        legal_framework=asset.legal_framework,
        jurisdiction=asset.jurisdiction,
        registered_seq=asset.registered_seq,
    )


@router.post("/assets", response_model=AssetOut, status_code=201)
def register(body: AssetIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey) -> AssetOut:
    """Register an asset (an admin, or an operator of any asset: one granted a single
    asset may not); all its units start in its unissued pool."""
    require_asset_registrar(caller, validate_asset_id(body.id))
    asset = register_asset(
        ledger,
        body.id,
        make=body.make,
        model=body.model,
        serial=body.serial,
        location=body.location,
        total_units=body.total_units,
        legal_framework=body.legal_framework,
        jurisdiction=body.jurisdiction,
        documents=[DocumentRef(d.title, d.sha256) for d in body.documents],
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return _asset_out(asset)


@router.get("/assets", response_model=Page[AssetOut])
def assets(
    ledger: LedgerDep,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[AssetOut]:
    """Assets in ID order."""
    with read_connection(ledger.engine) as conn:
        found = list_assets(conn, after_id=cursor, limit=limit)
    return Page.of([_asset_out(a) for a in found], found, limit, lambda a: a.id)


@router.get("/assets/{asset_id}", response_model=AssetOut)
def asset(asset_id: AssetPath, ledger: LedgerDep) -> AssetOut:
    """One asset."""
    with read_connection(ledger.engine) as conn:
        return _asset_out(get_asset(conn, asset_id))


@router.post("/assets/{asset_id}/operators", status_code=204)
def add_operator(
    asset_id: AssetPath, body: OperatorIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> None:
    """Make a member an operator of this asset (admin)."""
    require_admin(caller)
    grant_role(
        ledger,
        body.address,
        "operator",
        asset_id,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )


@router.post("/assets/{asset_id}/issue", status_code=201)
def issue(
    asset_id: AssetPath, body: IssueIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> dict[str, int]:
    """Issue units from the unissued pool to members (the asset's operator)."""
    require_asset_operator(caller, validate_asset_id(asset_id))
    entry = issue_units(
        ledger,
        asset_id,
        [(a, int(n)) for a, n in body.allocations],
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return {"seq": entry.seq}


@router.get("/assets/{asset_id}/documents", response_model=Page[DocumentIn])
def documents(
    asset_id: AssetPath,
    ledger: LedgerDep,
    cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[DocumentIn]:
    """The asset's legal documents, each known by its SHA-256, oldest first."""
    with read_connection(ledger.engine) as conn:
        found = list_documents(conn, asset_id, after_id=cursor, limit=limit)
    items = [DocumentIn(title=d.title, sha256=d.sha256) for d in found]
    return Page.of(items, found, limit, lambda d: d.id)


@router.post("/assets/{asset_id}/documents", response_model=DocumentIn, status_code=201)
def new_document(
    asset_id: AssetPath, body: DocumentIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> DocumentIn:
    """Attach a legal document (the asset's operator)."""
    require_asset_operator(caller, validate_asset_id(asset_id))
    add_document(
        ledger,
        asset_id,
        DocumentRef(body.title, body.sha256),
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return body


# Uploaded bytes are served as they came: browsers must not guess another type from
# them, and whatever they are runs no script and loads nothing (the sandbox also holds
# when a photo is opened on its own, as a document).
_PHOTO_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _photo_out(ref: PhotoRef) -> PhotoOut:
    return PhotoOut(sha256=ref.sha256, content_type=ref.content_type, size_bytes=ref.size_bytes)


@router.post(
    "/photos",
    response_model=PhotoOut,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def upload_photo(
    request: Request, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> PhotoOut:
    """Upload a photo (the raw bytes, at most 5 MiB, of the type named by Content-Type:
    bytes of another type are refused); it is stored by its SHA-256 and counts once toward
    the caller's photo storage quota."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    photo_bytes = await request.body()  # its size is held to the limit by the middleware
    # The key is claimed before the bytes are stored: a key reused for another photo is
    # refused with nothing kept. In a thread: storing and claiming wait on the database.
    answer = await run_in_threadpool(
        once,
        ledger,
        scope=f"photo:{caller.address}",
        key=key,
        request={"sha256": hashlib.sha256(photo_bytes).hexdigest(), "type": content_type},
        run=lambda: (
            201,
            _photo_out(
                store_photo(ledger, photo_bytes, content_type, uploader=caller.address)
            ).model_dump(),
        ),
    )
    return PhotoOut.model_validate(answer[1])


@router.get(
    "/photos/{sha256}",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def photo(sha256: Annotated[str, Path(max_length=64)], ledger: LedgerDep) -> Response:
    """A stored photo, served as the type its bytes are."""
    with read_connection(ledger.engine) as conn:
        ref, data = get_photo(conn, sha256)
    return Response(data, media_type=ref.content_type, headers=_PHOTO_HEADERS)


@router.get("/assets/{asset_id}/sightings", response_model=Page[SightingOut])
def sightings(
    asset_id: AssetPath,
    ledger: LedgerDep,
    cursor: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
) -> Page[SightingOut]:
    """The asset's tracking history, newest first."""
    with read_connection(ledger.engine) as conn:
        found = list_sightings(conn, asset_id, before_id=cursor, limit=limit)
    items = [
        SightingOut(
            id=s.id,
            seen_at=s.seen_at,
            location=s.location,
            reporter=s.reporter,
            photo_sha256=s.photo_sha256,
            recorded_seq=s.recorded_seq,
        )
        for s in found
    ]
    return Page.of(items, found, limit, lambda s: s.id)


@router.post("/assets/{asset_id}/sightings", response_model=dict[str, int], status_code=201)
def new_sighting(
    asset_id: AssetPath, body: SightingIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> dict[str, int]:
    """Record that you saw the asset: when, where, and the photo you uploaded."""
    entry = record_sighting(
        ledger,
        asset_id,
        seen_at=body.seen_at,
        location=body.location,
        reporter=caller.address,
        photo_sha256=body.photo_sha256,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return {"seq": entry.seq}


@router.get("/assets/{asset_id}/cap-table", response_model=CapTableOut)
def cap(
    asset_id: AssetPath,
    ledger: LedgerDep,
    as_of_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    as_of_time: Time | None = None,
) -> CapTableOut:
    """Who holds the asset's units, now or as of a seq or time, with the seq it was read
    at (a seq beyond the head is 422 ``as_of_seq_beyond_head``; a time still to come
    reads the head)."""
    with read_connection(ledger.engine) as conn:
        table = cap_table_of(conn, asset_id, as_of_seq=as_of_seq, as_of_time=as_of_time)
    return CapTableOut(
        asset_id=asset_id,
        total_units=table.total_units,
        as_of_seq=table.seq,
        holders=[{"holder": r.holder, "units": str(r.units)} for r in table.rows],
    )
