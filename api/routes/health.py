"""Liveness and readiness."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import LedgerDep
from ledger.chain.follower import ChainFollower
from ledger.core.errors import LedgerError
from ledger.db.engine import read_connection
from ledger.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])

# The one follower state that takes the service out of rotation: the mirror stopped on
# something a person must look at. A node that does not answer ("waiting") does not:
# the ledger still serves everything but the chain's news.
_CHAIN_UNREADY = "halted"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "database unreachable or not migrated, the chain mirror halted,"
            " or the market engine not running (or, with several workers, not reachable)"
        }
    },
)
def readyz(request: Request, ledger: LedgerDep) -> JSONResponse:
    """The database answers and its migrations are at the head the code knows; and the
    chain mirror, when a chain is configured, has not halted. ``chain`` says how the
    mirror stands: ``{"state": "off"}`` without a chain, else its follower's state
    (``starting``, ``following``, ``standby``, ``waiting`` for a node that does not
    answer, ``halted``, ``stopped``), chain id, head, cursor, lag in blocks,
    confirmations, last error and the seconds to its next retry. ``market`` says
    whether the market engine runs (it expires GTD orders; with several workers, the
    one engine process they hand orders to), its books and resting orders, the last seq
    its books applied, requests waiting and its last error; one that does not run, or
    cannot be reached, is a 503 ``market_unavailable``. ``buyouts`` says how this
    worker's buy-out clock stands (``running`` or ``stopped``, its interval, when it
    last ran, its last error, and the installments it settled, missed and defaulted);
    a missed installment, or a clock that failed a run, is news, not unreadiness.
    ``deadlines`` says the same of this worker's funding clock, which marks failed the
    open projects without an escrow past their deadline (its state, interval, last run,
    last error and the projects it failed; it runs where the chain is followed). (A
    database that is down or behind is the answer's whole news: no ``chain`` then.)"""
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
    chain = _chain_status(request.app.state.chain_follower)
    if chain["state"] == _CHAIN_UNREADY:
        return JSONResponse(
            {"status": "unavailable", "reason": "chain_mirror_halted", "chain": chain},
            status_code=503,
        )
    status = request.app.state.market.status()
    market = asdict(status)
    if not status.running:  # no orders are taken, none expire
        return JSONResponse(
            {"status": "unavailable", "reason": "market_unavailable", "market": market},
            status_code=503,
        )
    buyouts = asdict(request.app.state.buyout_clock.status())
    deadlines = asdict(request.app.state.deadline_clock.status())
    return JSONResponse(
        {
            "status": "ready",
            "revision": revision,
            "chain": chain,
            "market": market,
            "buyouts": buyouts,
            "deadlines": deadlines,
        }
    )


def _chain_status(follower: ChainFollower | None) -> dict[str, Any]:
    if follower is None:
        return {"state": "off"}
    status = follower.status()
    return {
        "state": status.state,
        "chain_id": status.chain_id,
        "head": status.head,
        "cursor": status.cursor,
        "lag_blocks": status.lag_blocks,
        "confirmations": status.confirmations,
        "last_error": status.last_error,
        "retry_in_s": status.retry_in_s,
    }
