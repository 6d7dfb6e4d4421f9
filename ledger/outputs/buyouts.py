"""Buy-out plans: a buyer proposes to buy named sellers' units in installments, each
seller accepts (its units under the plan are then held), and either side may cancel
while the plan is still a proposal. DESIGN.md, "Ownership terms".

- **Propose** (``buyout.propose``, the whole plan in its payload; the plan's id is the
  entry's seq): installments ``(seller, due_at, units, price_minor a unit)``, 1..
  ``INSTALLMENTS_MAX`` of them, numbered 1.. in the order given. Each seller's units
  under the plan (the sum of its installments) must not exceed what it has available
  now (balance - held), else ``Refused(buyout_exceeds_holding)``.
- **Accept** (``buyout.accept``, by a seller): places hold ``buyout:<plan>:<i>`` (``i``:
  the seller's place, 1.., in address order) on all of that seller's units under the
  plan, so the market cannot sell or lease them; the ledger refuses
  ``insufficient_units`` if they are no longer available. The seller's leases out must
  stay covered: at every instant from now on, its units not held (after this hold)
  must be at least what it has leased out then, else ``Refused(units_leased_out)``
  (the market engine's own rule for a sell). The last seller's acceptance makes the
  plan ``active`` in the same entry. Installments already due by then settle at the
  next run of the settlement (``ledger.outputs.buyout_clock``).
- **Cancel** (``buyout.cancel``, by the buyer or a seller, only while proposed):
  releases every hold placed, in the one entry.

Each service refuses before it writes anything, and a replay of the same idempotency
key returns the plan as it stands, writing nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from ledger.core import (
    AccountKey,
    EntryDraft,
    EntryKind,
    HoldChange,
    HoldOp,
    JsonValue,
    check_amount,
    limits,
    validate_asset_id,
)
from ledger.core.accounts import member_holder, units_of
from ledger.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Refused
from ledger.core.timestamps import format_time, ms_of, to_utc
from ledger.db.schema import Asset, Currency, MarketLease, table
from ledger.funding.standing import check_retained, funded_project_of
from ledger.journal.reads import account_state
from ledger.journal.write import Ledger
from ledger.outputs.buyout_records import (
    BuyoutRecord,
    InstallmentState,
    PlanState,
    check_plan_id,
    get_plan,
    installments,
    plans,
    sellers,
)
from ledger.registry.address import validate_address
from ledger.registry.members import find_member

__all__ = [
    "DUE_AHEAD_MAX_DAYS",
    "INSTALLMENTS_MAX",
    "BuyoutTerms",
    "InstallmentTerms",
    "accept_plan",
    "cancel_plan",
    "hold_id_of",
    "propose_plan",
]

INSTALLMENTS_MAX = 120  # e.g. ten years of monthly installments
DUE_AHEAD_MAX_DAYS = 3653  # ten years
_leases = table(MarketLease)
# A project's asset is bought out only once the project has bought it.


@dataclass(frozen=True, slots=True)
class InstallmentTerms:
    """One installment as proposed: ``units`` (>= 1) of ``seller``'s, at ``price_minor``
    (>= 1) a unit, due at ``due_at``."""

    seller: str
    due_at: datetime
    units: int
    price_minor: int


@dataclass(frozen=True, slots=True)
class BuyoutTerms:
    """A plan as proposed: the asset whose units are bought, the currency paid in, and
    the installments in the order given (their numbers are 1..)."""

    asset_id: str
    currency: str
    installments: tuple[InstallmentTerms, ...]


def hold_id_of(plan_id: int, place: int) -> str:
    """The id of the hold on the units of a plan's seller at ``place`` (1.., the
    sellers in address order): short enough for any plan id and address."""
    return f"buyout:{plan_id}:{place}"


def _check_terms(terms: BuyoutTerms, buyer: str) -> dict[str, int]:
    """Shape and limits of ``terms``; each seller's units under the plan."""
    validate_asset_id(terms.asset_id)
    if not isinstance(terms.currency, str) or not 0 < len(terms.currency) <= 10:
        raise InvalidInput("currency_malformed", "a currency is a code of 1..10 characters")
    if not 0 < len(terms.installments) <= INSTALLMENTS_MAX:
        raise InvalidInput("installments_count", f"a plan has 1..{INSTALLMENTS_MAX} installments")
    per_seller: defaultdict[str, int] = defaultdict(int)
    for n, step in enumerate(terms.installments, start=1):
        validate_address(step.seller)
        if step.seller == buyer:
            raise InvalidInput("buyout_self", f"installment {n}: the buyer cannot sell to itself")
        to_utc(step.due_at)
        for name, value, top in (
            ("units", step.units, limits.TOTAL_UNITS_MAX),
            ("price_minor", step.price_minor, limits.AMOUNT_MAX),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput("field_type", f"installment {n}: {name} must be an integer")
            if not 0 < value <= top:
                raise InvalidInput(
                    "installment_out_of_range", f"installment {n}: {name} must be within 1..{top}"
                )
        check_amount(step.units * step.price_minor, f"installment {n}'s cost")
        per_seller[step.seller] += step.units
    return dict(per_seller)


def _payload(plan_buyer: str, terms: BuyoutTerms) -> dict[str, JsonValue]:
    steps: list[JsonValue] = [
        {
            "number": n,
            "seller": s.seller,
            "due_at": format_time(s.due_at),
            "units": s.units,
            "price_minor": s.price_minor,
        }
        for n, s in enumerate(terms.installments, start=1)
    ]
    return {
        "asset_id": terms.asset_id,
        "currency": terms.currency,
        "buyer": plan_buyer,
        "installments": steps,
    }


def propose_plan(
    ledger: Ledger, buyer: str, terms: BuyoutTerms, *, key: str, actor: str
) -> BuyoutRecord:
    """Propose a plan with ``buyer`` buying; journaled as ``buyout.propose`` with the
    whole plan; the plan is ``proposed`` and each installment ``scheduled``.

    Refuses, writing nothing: terms out of bounds (``InvalidInput``: ``installments_count``,
    ``installment_out_of_range``, ``amount_over_limit``, ``buyout_self`` for the buyer
    among the sellers, ``address_*``, ``asset_id_*``, ``time_naive``); an unknown currency
    or asset, or a buyer or seller who is not a member (``NotFound``); the asset of a
    project not yet funded, ``Refused(project_not_funded)``; a due date not ahead of the
    ledger's clock, ``Refused(due_passed)``, or more than ``DUE_AHEAD_MAX_DAYS`` ahead,
    ``Refused(due_too_far)``; a seller whose installments sum to more units than it has
    available now, ``Refused(buyout_exceeds_holding)``. A replay of the same key returns
    the same plan."""
    validate_address(buyer)
    per_seller = _check_terms(terms, buyer)
    draft = EntryDraft(
        kind=EntryKind.BUYOUT_PROPOSE,
        idempotency_key=key,
        actor=actor,
        payload=_payload(buyer, terms),
    )
    with ledger.write() as tx:

        def insert_plan(seq: int) -> None:
            conn = tx.conn
            _require_currency(conn, terms.currency)
            _require_funded_asset(conn, terms.asset_id)
            for who in (buyer, *sorted(per_seller)):
                if find_member(conn, who) is None:
                    raise NotFound("unknown_member", f"no member {who}")
            now = to_utc(tx.ledger.clock())
            ahead = timedelta(days=DUE_AHEAD_MAX_DAYS)
            for n, step in enumerate(terms.installments, start=1):
                due = to_utc(step.due_at)
                if due <= now:
                    raise Refused("due_passed", f"installment {n} must fall due after now")
                if due > now + ahead:
                    raise Refused(
                        "due_too_far", f"installment {n} must fall due within {ahead.days} days"
                    )
            instrument = units_of(terms.asset_id)
            for seller, units in sorted(per_seller.items()):
                available = account_state(
                    conn, AccountKey(member_holder(seller), instrument)
                ).available
                if units > available:
                    raise Refused(
                        "buyout_exceeds_holding",
                        f"the plan sells {units} units of {seller}, who has {available} available",
                        seller=seller,
                        units=str(units),
                        available_units=str(available),
                    )
            conn.execute(
                insert(plans).values(
                    id=seq,
                    asset_id=terms.asset_id,
                    buyer=buyer,
                    currency=terms.currency,
                    state=PlanState.PROPOSED.value,
                    created_seq=seq,
                    state_seq=seq,
                )
            )
            conn.execute(
                insert(sellers),
                [
                    {"plan_id": seq, "seller": s, "units": u, "hold_id": None, "accepted_seq": None}
                    for s, u in sorted(per_seller.items())
                ],
            )
            conn.execute(
                insert(installments),
                [
                    {
                        "plan_id": seq,
                        "number": n,
                        "seller": s.seller,
                        "due_at": to_utc(s.due_at),
                        "units": s.units,
                        "price_minor": s.price_minor,
                        "state": InstallmentState.SCHEDULED.value,
                        "attempts": 0,
                        "next_attempt_at": to_utc(s.due_at),
                        "settled_seq": None,
                    }
                    for n, s in enumerate(terms.installments, start=1)
                ],
            )

        appended = tx.append_once(draft, insert_plan)
        return get_plan(tx.conn, appended.entry.seq)


def accept_plan(ledger: Ledger, plan_id: int, *, seller: str, key: str, actor: str) -> BuyoutRecord:
    """``seller`` accepts plan ``plan_id``: journaled as ``buyout.accept``, placing a hold
    on all of its units under the plan; the last acceptance makes the plan ``active``.

    Refuses, writing nothing: ``NotFound(unknown_plan)``; a caller the plan does not name
    as a seller, ``Forbidden(not_seller)``; one that accepted already,
    ``Conflict(already_accepted)``; a plan no longer proposed,
    ``Refused(plan_not_proposed)``; units no longer available, ``Refused
    (insufficient_units)``; the asset's operator keeping fewer than its retained minimum
    unheld, ``Refused(operator_retained_minimum)``; units it has leased out over some
    instant ahead that the hold would leave uncovered, ``Refused(units_leased_out)``. A
    replay of the same key returns the plan as it stands."""
    check_plan_id(plan_id)
    validate_address(seller)
    with ledger.write() as tx:
        plan = get_plan(tx.conn, plan_id)
        named = plan.seller(seller)
        if named is None:
            raise Forbidden("not_seller", f"plan {plan_id} names no seller {seller}")
        place = [s.seller for s in plan.sellers].index(seller) + 1
        units_key = AccountKey(member_holder(seller), units_of(plan.asset_id))
        hold_id = hold_id_of(plan_id, place)
        draft = EntryDraft(
            kind=EntryKind.BUYOUT_ACCEPT,
            idempotency_key=key,
            actor=actor,
            payload={"plan_id": plan_id, "seller": seller, "units": named.units},
            hold_changes=(HoldChange(hold_id, units_key, HoldOp.PLACE, named.units),),
        )

        def record_acceptance(seq: int) -> None:
            if named.accepted:
                raise Conflict("already_accepted", f"{seller} has accepted plan {plan_id}")
            if plan.state is not PlanState.PROPOSED:
                raise Refused(
                    "plan_not_proposed",
                    f"plan {plan_id} is {plan.state.value}: only a proposal is accepted",
                    state=plan.state.value,
                )
            available = account_state(tx.conn, units_key).available
            if available >= named.units:  # else the hold itself is refused: insufficient
                _require_retained(tx.conn, plan.asset_id, seller, available - named.units)
                _require_leases_covered(
                    tx.conn, plan.asset_id, seller, available - named.units, tx.ledger.clock()
                )
            tx.conn.execute(
                update(sellers)
                .where(sellers.c.plan_id == plan_id, sellers.c.seller == seller)
                .values(hold_id=hold_id, accepted_seq=seq)
            )
            if all(s.accepted or s.seller == seller for s in plan.sellers):
                tx.conn.execute(
                    update(plans)
                    .where(plans.c.id == plan_id)
                    .values(state=PlanState.ACTIVE.value, state_seq=seq)
                )

        tx.append_once(draft, record_acceptance)
        return get_plan(tx.conn, plan_id)


def cancel_plan(ledger: Ledger, plan_id: int, *, by: str, key: str, actor: str) -> BuyoutRecord:
    """Cancel a proposed plan (its buyer or one of its sellers, ``by``): journaled as
    ``buyout.cancel``, releasing every hold the sellers' acceptances placed; the plan and
    its installments become ``cancelled``.

    Refuses, writing nothing: ``NotFound(unknown_plan)``; a caller neither buyer nor
    seller, ``Forbidden(not_party)``; a plan that is active or completed,
    ``Refused(plan_active)``, or already cancelled, ``Refused(plan_cancelled)``. A
    replay of the same key returns the plan as it stands."""
    check_plan_id(plan_id)
    validate_address(by)
    with ledger.write() as tx:
        plan = get_plan(tx.conn, plan_id)
        if by != plan.buyer and plan.seller(by) is None:
            raise Forbidden("not_party", f"only plan {plan_id}'s buyer or sellers may cancel it")
        instrument = units_of(plan.asset_id)
        releases = tuple(
            HoldChange(
                s.hold_id, AccountKey(member_holder(s.seller), instrument), HoldOp.RELEASE, s.units
            )
            for s in plan.sellers
            if s.hold_id is not None
        )
        draft = EntryDraft(
            kind=EntryKind.BUYOUT_CANCEL,
            idempotency_key=key,
            actor=actor,
            payload={"plan_id": plan_id, "by": by},
            hold_changes=releases,
        )

        def record_cancel(seq: int) -> None:
            if plan.state is PlanState.CANCELLED:
                raise Refused("plan_cancelled", f"plan {plan_id} is cancelled already")
            if plan.state is not PlanState.PROPOSED:
                raise Refused(
                    "plan_active",
                    f"plan {plan_id} is {plan.state.value}: only a proposal is cancelled",
                    state=plan.state.value,
                )
            tx.conn.execute(
                update(plans)
                .where(plans.c.id == plan_id)
                .values(state=PlanState.CANCELLED.value, state_seq=seq)
            )
            tx.conn.execute(
                update(installments)
                .where(installments.c.plan_id == plan_id)
                .values(state=InstallmentState.CANCELLED.value)
            )

        tx.append_once(draft, record_cancel)
        return get_plan(tx.conn, plan_id)


# -- the checks ---------------------------------------------------------------------------


def _require_currency(conn: Connection, code: str) -> None:
    currencies = table(Currency)
    if conn.execute(select(currencies.c.code).where(currencies.c.code == code)).first() is None:
        raise NotFound("unknown_currency", f"no currency {code!r}")


def _require_funded_asset(conn: Connection, asset_id: str) -> None:
    """The asset is registered and, if a project is buying it, that project is funded
    (the market's rule too: nothing of a project's asset changes hands before)."""
    funded_project_of(
        conn, asset_id, refusal="nothing of it is bought out before the project is funded"
    )
    assets = table(Asset)
    if conn.execute(select(assets.c.id).where(assets.c.id == asset_id)).first() is None:
        raise NotFound("unknown_asset", f"no asset {asset_id!r}")


def _require_retained(conn: Connection, asset_id: str, seller: str, kept_units: int) -> None:
    """``Refused(operator_retained_minimum)`` if ``seller`` operates the asset (the
    organizer of the project that bought it) and would keep fewer than its retained
    minimum unheld: a buy-out's settlement must not take it below, as a trade may not."""
    project = funded_project_of(conn, asset_id, refusal="nothing of it is bought out yet")
    if project is not None and project.organizer == seller:
        check_retained(project.retained_min_units, kept_units)


def _require_leases_covered(
    conn: Connection, asset_id: str, seller: str, free_units: int, now: datetime
) -> None:
    """``Refused(units_leased_out)`` unless ``free_units`` (the seller's units neither held
    nor under the plan) cover, at every instant from ``now`` on, the units it has
    leased out then. (The market engine's ``peak`` lives above the ledger; this is
    the same sweep over the seller's leases not yet ended.)"""
    now_ms = ms_of(now)
    spans = conn.execute(
        select(_leases.c.starts_ms, _leases.c.ends_ms, _leases.c.qty_units).where(
            _leases.c.asset_id == asset_id,
            _leases.c.lessor == seller,
            _leases.c.ends_ms > now_ms,
        )
    ).all()
    promised = _peak([(max(s, now_ms), e, int(q)) for s, e, q in spans])
    if promised > free_units:
        raise Refused(
            "units_leased_out",
            f"{seller} has {promised} units of {asset_id} leased out over a time ahead;"
            f" after the plan's hold only {free_units} would be left to cover them",
            promised_units=str(promised),
            free_units=str(free_units),
        )


def _peak(spans: Sequence[tuple[int, int, int]]) -> int:
    """The most units ``(starts_ms, ends_ms, units)`` spans cover at one instant."""
    moves = sorted([(s, u) for s, e, u in spans if s < e] + [(e, -u) for s, e, u in spans if s < e])
    level = most = 0
    for _, units in moves:  # at one instant the ends (negative) come first
        level += units
        most = max(most, level)
    return most
