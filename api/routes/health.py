"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import LedgerDep
from ledger.core.errors import LedgerError
from ledger.db.engine import read_connection
from ledger.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database unreachable or not migrated"}})
def readyz(ledger: LedgerDep) -> JSONResponse:
    """The database answers and its migrations are at the head the code knows."""
    try:
        with read_connection(ledger.engine) as conn:
            revision = current_revision(conn)
    except LedgerError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.code}, status_code=503)
    head = head_revision()
    if revision != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": "migrations_behind",
                "database": revision,
                "code": head,
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "revision": revision})
