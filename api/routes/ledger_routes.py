"""Currencies, holdings, transfers, deposits, roles, the journal, its digest and verify."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Caller, IdempotencyKey, LedgerDep, SettingsDep
from api.direct import DirectRoute
from api.idempotency import ledger_key
from api.policy import require_admin
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, Page, Time
from api.schemas.ledger import (
    CurrencyOut,
    DepositIn,
    DigestOut,
    EntryOut,
    HoldingOut,
    RoleIn,
    TransferIn,
    VerifyOut,
)
from ledger.access import grant_role, revoke_role
from ledger.core import Entry
from ledger.core.accounts import InstrumentKind, parse_instrument
from ledger.core.canonical import holds_json, postings_json
from ledger.db.engine import read_connection
from ledger.journal import Ledger
from ledger.journal.group_read import GroupRead
from ledger.journal.reads import Holdings, digest, holder_balances, journal_page
from ledger.journal.verify import verify
from ledger.money import deposit, list_currencies, transfer_draft
from ledger.registry.members import member_holder
from market.engine import UnitTransferRequest

router = APIRouter(prefix="/v1", tags=["ledger"], responses=PROBLEM_RESPONSES)
KindQuery = Annotated[str | None, Query(max_length=64)]


def entry_out(entry: Entry) -> EntryOut:
    """An entry on the wire, with its hash."""
    return EntryOut(
        seq=entry.seq,
        id=entry.id,
        kind=entry.kind,
        payload=dict(entry.payload),
        postings=postings_json(entry.postings),
        holds=holds_json(entry.hold_changes),
        effective_at=entry.effective_at,
        recorded_at=entry.recorded_at,
        actor=entry.actor,
        reverses=entry.reverses,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


@router.get("/currencies", response_model=list[CurrencyOut])
def currencies(ledger: LedgerDep) -> list[CurrencyOut]:
    """The currencies money is kept in, with their minor-unit decimals."""
    with read_connection(ledger.engine, snapshot=False) as conn:  # one statement
        found = list_currencies(conn)
    return [CurrencyOut(code=c.code, decimals=c.decimals, name=c.name) for c in found]


@router.get("/holdings/me", response_model=list[HoldingOut])
async def my_holdings(
    request: Request,
    caller: Caller,
    as_of_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    as_of_time: Time | None = None,
) -> list[HoldingOut]:
    """Your units and money, now or as of a seq or time (a seq beyond the head is 422
    ``as_of_seq_beyond_head``; a time still to come reads the head)."""
    # The ledger and the shared reads are taken from the app's state, not through
    # dependencies: this is the most frequent read, and each dependency costs its own
    # resolution (10 to 20 us of CPU, where the whole read now costs some 300 us).
    state = request.app.state
    holder = member_holder(caller.address)
    if as_of_seq is None and as_of_time is None:
        # Now: one statement, shared with the other holders asked for meanwhile,
        # awaited on the event loop (no thread held per request).
        holdings_now: GroupRead[str, Holdings] = state.holdings_now
        found = await holdings_now.read(holder)
    else:
        found = await run_in_threadpool(
            _holdings_as_of, state.ledger, holder, as_of_seq, as_of_time
        )
    return [
        HoldingOut(
            instrument=key.instrument,
            balance=str(s.balance),
            held=str(s.held),
            available=str(s.available),
        )
        for key, s in found
    ]


def _holdings_as_of(
    ledger: Ledger, holder: str, as_of_seq: int | None, as_of_time: datetime | None
) -> Holdings:
    # A settled prefix of the journal, which no snapshot is needed for (entries up to a
    # seq never change).
    with read_connection(ledger.engine, snapshot=False) as conn:
        return holder_balances(conn, holder, as_of_seq=as_of_seq, as_of_time=as_of_time)


async def new_transfer(
    body: TransferIn, request: Request, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> EntryOut:
    """Move your own units or money to another member. Units go through the market
    engine, which keeps those your leases and lease offers promise: 422
    ``units_leased_out`` (as a sell would be)."""
    # On the event loop: the draft is pure, and the group commit's (or the engine's)
    # future is awaited, so a transfer waiting for its batch holds no thread.
    instrument = parse_instrument(body.instrument)
    if instrument.kind is InstrumentKind.UNITS:
        moved = await request.app.state.market.ask(
            UnitTransferRequest(
                owner=caller.address,
                recipient=body.recipient,
                asset_id=instrument.name,
                qty_units=int(body.amount),
                key=ledger_key(caller.address, key),
                actor=caller.address,
                memo=body.memo,
            )
        )
        if not isinstance(moved, Entry):  # pragma: no cover - the engine answers in kind
            raise TypeError(f"a unit transfer was answered with {moved!r}")
        return entry_out(moved)
    draft = transfer_draft(
        sender=caller.address,
        recipient=body.recipient,
        instrument=body.instrument,
        amount=int(body.amount),
        memo=body.memo,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    appended = await asyncio.wrap_future(ledger.submit(draft))
    return entry_out(appended.entry)


# A busy write, answered without FastAPI's dependency solving (``api.direct``).
router.add_api_route(
    "/transfers",
    new_transfer,
    methods=["POST"],
    response_model=EntryOut,
    status_code=201,
    route_class_override=DirectRoute,
)


@router.post("/deposits", response_model=EntryOut, status_code=201)
def new_deposit(
    body: DepositIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> EntryOut:
    """Record money that entered the system for a member (admin)."""
    require_admin(caller)
    entry = deposit(
        ledger,
        member=body.member,
        currency=body.currency,
        amount=int(body.amount),
        reference=body.reference,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )
    return entry_out(entry)


@router.post("/roles", status_code=204)
def new_role(
    body: RoleIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
) -> None:
    """Grant a member a role (admin)."""
    require_admin(caller)
    grant_role(
        ledger,
        body.address,
        body.role,
        body.asset_id,
        key=ledger_key(caller.address, key),
        actor=caller.address,
    )


@router.post("/roles/revoke", status_code=204)
def revoke_a_role(
    body: RoleIn,
    caller: Caller,
    ledger: LedgerDep,
    settings: SettingsDep,
    key: IdempotencyKey,
) -> None:
    """Revoke a member's granted role (admin); it counts at once, on every worker.
    Only a grant is revoked: 404 ``role_not_held`` if there is none, 422
    ``role_not_granted`` for a finance node by its member kind or an admin named by
    ``DPN_ADMINS``. Journaled as ``role.revoke``."""
    require_admin(caller)
    revoke_role(
        ledger,
        body.address,
        body.role,
        body.asset_id,
        key=ledger_key(caller.address, key),
        actor=caller.address,
        admins=settings.admins,
    )


@router.get("/journal", response_model=Page[EntryOut])
def journal(
    ledger: LedgerDep,
    cursor: Annotated[int | None, Query(ge=1, le=2**62, description="seq to page before")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
    kind: KindQuery = None,
    member: Annotated[str | None, Query(max_length=64)] = None,
    asset: Annotated[str | None, Query(max_length=32)] = None,
    currency: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[EntryOut]:
    """The journal, newest first, each entry with its hash. Filter by kind, by a member's
    accounts, by an instrument (an asset's units or a currency), or by one account: a
    member with an asset or a currency."""
    with read_connection(ledger.engine) as conn:
        found = journal_page(
            conn,
            before_seq=cursor,
            limit=limit,
            kind=kind,
            member=member,
            asset=asset,
            currency=currency,
        )
    return Page.of([entry_out(e) for e in found], found, limit, lambda e: e.seq)


@router.get("/digest", response_model=DigestOut)
def head_digest(ledger: LedgerDep) -> DigestOut:
    """The journal's head ``(seq, hash)``: publish it; anyone can check history against it."""
    with read_connection(ledger.engine) as conn:
        found = digest(conn)
    return DigestOut(seq=found.seq, head_hash=found.head_hash)


@router.get("/verify", response_model=VerifyOut)
def run_verify(caller: Caller, ledger: LedgerDep) -> VerifyOut:
    """Rebuild every balance from the journal and check every invariant (admin)."""
    require_admin(caller)
    with read_connection(ledger.engine) as conn:
        report = verify(conn)
    return VerifyOut(
        ok=report.ok,
        entries=report.entries,
        accounts=report.accounts,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
        bad_seq=report.bad_seq,
        problems=report.problems,
    )
