"""Members: who you are, and other members' public records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key
from api.problems import PROBLEM_RESPONSES
from api.schemas.auth import MemberOut, MemberPatch
from ledger.db.engine import read_connection
from ledger.registry.address import validate_address
from ledger.registry.members import get_member, update_member_name

router = APIRouter(prefix="/v1/members", tags=["members"], responses=PROBLEM_RESPONSES)


@router.get("/me", response_model=MemberOut)
def me(caller: Caller, ledger: LedgerDep) -> MemberOut:
    """Your member record, with your roles."""
    with read_connection(ledger.engine) as conn:
        member = get_member(conn, caller.address)
    return MemberOut(
        address=member.address,
        kind=member.kind,
        name=member.name,
        registered_seq=member.registered_seq,
        roles=sorted(caller.roles),
    )


@router.patch("/me", response_model=MemberOut)
def update_me(
    body: MemberPatch, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> MemberOut:
    """Change your display name."""
    update_member_name(
        ledger, caller.address, body.name, key=ledger_key(caller.address, key), actor=caller.address
    )
    return me(caller, ledger)


@router.get("/{address}", response_model=MemberOut)
def member(address: Annotated[str, Path(max_length=64)], ledger: LedgerDep) -> MemberOut:
    """A member's public record."""
    with read_connection(ledger.engine) as conn:
        found = get_member(conn, validate_address(address))
    return MemberOut(
        address=found.address, kind=found.kind, name=found.name, registered_seq=found.registered_seq
    )
