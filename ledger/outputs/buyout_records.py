"""Buy-out plans as recorded: their states, the records the services answer with, and the
reads (one plan; a member's plans, paged).

A plan (``buyout_plans``) names a buyer, an asset, a currency and its sellers
(``buyout_sellers``: each seller's units under the plan and, once it accepted, the hold
on them); its installments (``buyout_installments``) are numbered 1.. in the order the
proposal gave them. The services that write them are ``ledger.outputs.buyouts``
(propose, accept, cancel) and ``ledger.outputs.buyout_clock`` (settlement).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, or_, select

from ledger.core.errors import InvalidInput, NotFound
from ledger.core.timestamps import to_utc
from ledger.db.schema import BuyoutInstallment, BuyoutPlan, BuyoutSeller, table
from ledger.registry.address import validate_address

__all__ = [
    "BUYOUT_PAGE_MAX",
    "BuyoutRecord",
    "InstallmentRecord",
    "InstallmentState",
    "PlanRole",
    "PlanState",
    "SellerRecord",
    "check_plan_id",
    "get_plan",
    "installment_record",
    "list_plans",
]

BUYOUT_PAGE_MAX = 200
_PLAN_ID_MAX = 2**62

plans = table(BuyoutPlan)
sellers = table(BuyoutSeller)
installments = table(BuyoutInstallment)


class PlanState(StrEnum):
    """``proposed`` until every seller accepted, then ``active`` until every installment
    is paid or defaulted (``completed``); ``cancelled`` only from proposed."""

    PROPOSED = "proposed"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class InstallmentState(StrEnum):
    """``scheduled`` until due; ``paid`` once settled; ``missed`` while the buyer could
    not pay (tried again at ``next_attempt_at``); ``defaulted`` after the last retry
    missed too; ``cancelled`` with its plan."""

    SCHEDULED = "scheduled"
    PAID = "paid"
    MISSED = "missed"
    DEFAULTED = "defaulted"
    CANCELLED = "cancelled"


class PlanRole(StrEnum):
    """A member's part in a plan, for listing its plans."""

    BUYER = "buyer"
    SELLER = "seller"


@dataclass(frozen=True, slots=True)
class SellerRecord:
    """A seller named in a plan: its units under the plan, the hold on them once it
    accepted (``hold_id``) and the entry that accepted (``accepted_seq``)."""

    seller: str
    units: int
    hold_id: str | None
    accepted_seq: int | None

    @property
    def accepted(self) -> bool:
        return self.accepted_seq is not None


@dataclass(frozen=True, slots=True)
class InstallmentRecord:
    """One installment: ``units`` of ``seller``'s at ``price_minor`` a unit, due at
    ``due_at``; how often settling it was tried, when next, and the entry that paid or
    defaulted it."""

    number: int
    seller: str
    due_at: datetime
    units: int
    price_minor: int
    state: InstallmentState
    attempts: int
    next_attempt_at: datetime
    settled_seq: int | None

    @property
    def cash_minor(self) -> int:
        """What the installment costs the buyer: units times the price of one."""
        return self.units * self.price_minor


@dataclass(frozen=True, slots=True)
class BuyoutRecord:
    """A plan as it stands, with its sellers (by address) and installments (by number)."""

    id: int  # the seq of its buyout.propose entry
    asset_id: str
    buyer: str
    currency: str
    state: PlanState
    created_seq: int
    state_seq: int  # the entry that moved it to its state
    sellers: tuple[SellerRecord, ...]
    installments: tuple[InstallmentRecord, ...]

    def seller(self, address: str) -> SellerRecord | None:
        """The plan's seller ``address``, or None if it names no such seller."""
        return next((s for s in self.sellers if s.seller == address), None)


def check_plan_id(plan_id: int) -> None:
    """``InvalidInput(plan_id)`` unless ``plan_id`` is a positive integer in range."""
    if isinstance(plan_id, bool) or not isinstance(plan_id, int) or not 0 < plan_id <= _PLAN_ID_MAX:
        raise InvalidInput("plan_id", f"a plan id is an integer in 1..{_PLAN_ID_MAX}")


def get_plan(conn: Connection, plan_id: int) -> BuyoutRecord:
    """The plan ``plan_id`` with its sellers and installments, or
    ``NotFound(unknown_plan)``."""
    check_plan_id(plan_id)
    found = _records(conn, [plan_id])
    if not found:
        raise NotFound("unknown_plan", f"no buy-out plan {plan_id}")
    return found[0]


def list_plans(
    conn: Connection,
    member: str,
    *,
    role: PlanRole | None = None,
    asset_id: str | None = None,
    before_id: int | None = None,
    limit: int = BUYOUT_PAGE_MAX,
) -> list[BuyoutRecord]:
    """``member``'s plans, newest (highest id) first, before ``before_id`` if given: those
    it buys under (``role`` buyer), sells under (seller), or either (None); of
    ``asset_id`` only if given. At most ``limit`` (1..BUYOUT_PAGE_MAX)."""
    validate_address(member)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= BUYOUT_PAGE_MAX:
        raise InvalidInput("page_limit", f"limit must be within 1..{BUYOUT_PAGE_MAX}")
    selling = select(sellers.c.plan_id).where(sellers.c.seller == member)
    if role is PlanRole.BUYER:
        mine = plans.c.buyer == member
    elif role is PlanRole.SELLER:
        mine = plans.c.id.in_(selling)
    else:
        mine = or_(plans.c.buyer == member, plans.c.id.in_(selling))
    query = select(plans.c.id).where(mine).order_by(plans.c.id.desc()).limit(limit)
    if asset_id is not None:
        query = query.where(plans.c.asset_id == asset_id)
    if before_id is not None:
        check_plan_id(before_id)
        query = query.where(plans.c.id < before_id)
    ids = list(conn.execute(query).scalars())
    by_id = {r.id: r for r in _records(conn, ids)}
    return [by_id[i] for i in ids]


def _records(conn: Connection, ids: list[int]) -> list[BuyoutRecord]:
    if not ids:
        return []
    named: dict[int, list[SellerRecord]] = {i: [] for i in ids}
    for s in conn.execute(
        select(sellers).where(sellers.c.plan_id.in_(ids)).order_by(sellers.c.seller)
    ):
        named[s.plan_id].append(SellerRecord(s.seller, int(s.units), s.hold_id, s.accepted_seq))
    due: dict[int, list[InstallmentRecord]] = {i: [] for i in ids}
    for r in conn.execute(
        select(installments)
        .where(installments.c.plan_id.in_(ids))
        .order_by(installments.c.plan_id, installments.c.number)
    ):
        due[r.plan_id].append(installment_record(r))
    return [
        BuyoutRecord(
            id=p.id,
            asset_id=p.asset_id,
            buyer=p.buyer,
            currency=p.currency,
            state=PlanState(p.state),
            created_seq=p.created_seq,
            state_seq=p.state_seq,
            sellers=tuple(named[p.id]),
            installments=tuple(due[p.id]),
        )
        for p in conn.execute(select(plans).where(plans.c.id.in_(ids)).order_by(plans.c.id))
    ]


def installment_record(r: Row[Any]) -> InstallmentRecord:
    """An installment's record from its row of ``buyout_installments``."""
    return InstallmentRecord(
        number=r.number,
        seller=r.seller,
        due_at=to_utc(r.due_at),
        units=int(r.units),
        price_minor=int(r.price_minor),
        state=InstallmentState(r.state),
        attempts=r.attempts,
        next_attempt_at=to_utc(r.next_attempt_at),
        settled_seq=r.settled_seq,
    )
