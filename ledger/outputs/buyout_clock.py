"""Settling buy-out installments as they fall due: ``run_due`` (what ``dpn buyouts run``
and the server's clock thread, ``BuyoutClock``, call).

An installment of an **active** plan is due when it is ``scheduled`` with ``due_at <=
now``, or ``missed`` with ``next_attempt_at <= now``. ``run_due`` takes the due ones
oldest first (by the time they fell due, then plan and number), each in its own write
transaction, and settles each by the ledger's rules:

- the buyer has the cash available (``units x price_minor``): one ``buyout.settle`` entry
  moves the units seller -> buyer and the cash buyer -> seller (atomic: both or neither),
  consuming that many units of the seller's hold; the installment is ``paid``;
- it has not: one ``buyout.miss`` entry, with no postings (nothing moves); the
  installment is ``missed``, its ``attempts`` counts one more, and it is tried again
  ``RETRY_INTERVAL`` (24 hours) later, up to ``RETRIES_MAX`` (7) retries;
- the last retry misses too: one ``buyout.default`` entry (instead of a miss) releases
  the installment's units from the seller's hold; the installment is ``defaulted``.

A plan whose installments are all paid or defaulted is ``completed`` in the entry that
settled its last one. Each attempt has its own idempotency key,
``buyout:<plan>:<number>:<attempt>`` (attempt: the installment's ``attempts`` before it),
and is decided under the journal's write lock after reading the installment again: so
two runs at once (every server worker runs the clock), a run repeated, or a run after
one killed half-way never settle or miss an installment twice; an attempt whose entry
committed also committed its row. A run with nothing due writes nothing.

An attempt the ledger refuses (its entry breaks a rule: say, a seller's hold no longer
covers the installment, which only a damaged database can bring about) writes nothing
and leaves the installment due; the run reports it (a ``Refusal``) and goes on with the
next, so one such installment cannot keep every later one from settling. A database
that fails stops the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, Connection, and_, or_, select, update

from ledger.core import AccountKey, EntryDraft, EntryKind, HoldChange, HoldOp, Posting
from ledger.core.accounts import currency_of, member_holder, units_of
from ledger.core.errors import LedgerError, Unavailable
from ledger.core.timestamps import format_time, to_utc
from ledger.db.engine import read_connection
from ledger.journal.reads import account_state
from ledger.journal.write import Ledger
from ledger.outputs.buyout_records import (
    InstallmentState,
    PlanState,
    installment_record,
    installments,
    plans,
    sellers,
)
from ledger.ticker import Ticker

__all__ = [
    "RETRIES_MAX",
    "RETRY_INTERVAL",
    "RUN_BATCH_MAX",
    "BuyoutClock",
    "ClockStatus",
    "Outcome",
    "Refusal",
    "Settled",
    "due_installments",
    "run_due",
]

RETRY_INTERVAL = timedelta(hours=24)
RETRIES_MAX = 7  # retries after the first miss; the 8th attempt that misses defaults
RUN_BATCH_MAX = 1_000  # installments one run takes at most (the next run takes the rest)
ACTOR = "buyout-clock"

log = logging.getLogger("dpn.buyouts")


class Outcome(StrEnum):
    """What one attempt did."""

    PAID = "paid"
    MISSED = "missed"
    DEFAULTED = "defaulted"


@dataclass(frozen=True, slots=True)
class Settled:
    """One installment's attempt: its plan and number, what happened, in which entry,
    and (for a miss) when it is tried next."""

    plan_id: int
    number: int
    outcome: Outcome
    seq: int
    units: int
    cash_minor: int
    attempts: int
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """An attempt the ledger refused: it wrote nothing, and the installment stays due."""

    plan_id: int
    number: int
    code: str
    message: str


def _log_refusal(refusal: Refusal) -> None:
    log.warning(
        "buy-out plan %d installment %d refused: %s: %s",
        refusal.plan_id,
        refusal.number,
        refusal.code,
        refusal.message,
    )


_DUE_ORDER = (installments.c.next_attempt_at, installments.c.plan_id, installments.c.number)


def _is_due(now: datetime) -> ColumnElement[bool]:
    return and_(
        installments.c.state.in_([InstallmentState.SCHEDULED.value, InstallmentState.MISSED.value]),
        installments.c.next_attempt_at <= now,
    )


def due_installments(conn: Connection, now: datetime, limit: int) -> list[tuple[int, int]]:
    """``(plan, number)`` of the installments of active plans due at ``now``, oldest
    first, at most ``limit``. (A scheduled installment's next attempt is its due date.)"""
    query = (
        select(installments.c.plan_id, installments.c.number)
        .join(plans, plans.c.id == installments.c.plan_id)
        .where(_is_due(now), plans.c.state == PlanState.ACTIVE.value)
        .order_by(*_DUE_ORDER)
        .limit(limit)
    )
    return [(r.plan_id, r.number) for r in conn.execute(query)]


def run_due(
    ledger: Ledger,
    now: datetime,
    *,
    limit: int = RUN_BATCH_MAX,
    on_refused: Callable[[Refusal], None] = _log_refusal,
    stopping: threading.Event | None = None,
) -> list[Settled]:
    """Settle, miss or default every installment due at ``now`` (at most ``limit``),
    oldest first, each in its own transaction (see the module's docstring); what
    happened to each, in that order. Installments another run took meanwhile are
    skipped; an attempt the ledger refuses goes to ``on_refused`` (by default, a warning
    in the log) and the run goes on. Raises ``Unavailable`` when the database fails (an
    attempt that failed wrote nothing). Once ``stopping`` is set the run ends before its
    next attempt: what it settled stays settled, and the next run takes the rest."""
    now = to_utc(now)
    with read_connection(ledger.engine, snapshot=False) as conn:  # one statement
        found = due_installments(conn, now, limit)
    done: list[Settled] = []
    for plan_id, number in found:
        if stopping is not None and stopping.is_set():
            break
        try:
            settled = _attempt(ledger, plan_id, number, now)
        except Unavailable:
            raise
        except LedgerError as refused:
            on_refused(Refusal(plan_id, number, refused.code, refused.message))
            continue
        if settled is not None:
            done.append(settled)
    return done


def _attempt(ledger: Ledger, plan_id: int, number: int, now: datetime) -> Settled | None:
    with ledger.write() as tx:  # holds the journal lock: no other run decides meanwhile
        conn = tx.conn
        row = conn.execute(
            select(installments, plans.c.buyer, plans.c.asset_id, plans.c.currency)
            .join(plans, plans.c.id == installments.c.plan_id)
            .where(
                installments.c.plan_id == plan_id,
                installments.c.number == number,
                plans.c.state == PlanState.ACTIVE.value,
                _is_due(now),
            )
        ).first()
        if row is None:
            return None  # another run took it
        step = installment_record(row)
        hold_id = conn.execute(
            select(sellers.c.hold_id).where(
                sellers.c.plan_id == plan_id, sellers.c.seller == step.seller
            )
        ).scalar_one()
        buyer = member_holder(row.buyer)
        seller = member_holder(step.seller)
        cash, units = currency_of(row.currency), units_of(row.asset_id)
        cost = step.cash_minor
        key = f"buyout:{plan_id}:{number}:{step.attempts}"
        payload = {
            "plan_id": plan_id,
            "number": number,
            "attempt": step.attempts + 1,
            "units": step.units,
            "cash_minor": cost,
        }
        available = account_state(conn, AccountKey(buyer, cash)).available
        next_at: datetime | None = None
        if available >= cost:
            outcome, state = Outcome.PAID, InstallmentState.PAID
            draft = EntryDraft(
                kind=EntryKind.BUYOUT_SETTLE,
                idempotency_key=key,
                actor=ACTOR,
                payload=payload,
                postings=(
                    Posting(AccountKey(seller, units), -step.units),
                    Posting(AccountKey(buyer, units), step.units),
                    Posting(AccountKey(buyer, cash), -cost),
                    Posting(AccountKey(seller, cash), cost),
                ),
                hold_changes=(
                    HoldChange(hold_id, AccountKey(seller, units), HoldOp.CONSUME, step.units),
                ),
            )
        elif step.attempts >= RETRIES_MAX:
            outcome, state = Outcome.DEFAULTED, InstallmentState.DEFAULTED
            draft = EntryDraft(
                kind=EntryKind.BUYOUT_DEFAULT,
                idempotency_key=key,
                actor=ACTOR,
                payload=payload | {"available_minor": available},
                hold_changes=(
                    HoldChange(hold_id, AccountKey(seller, units), HoldOp.RELEASE, step.units),
                ),
            )
        else:
            outcome, state = Outcome.MISSED, InstallmentState.MISSED
            next_at = now + RETRY_INTERVAL
            draft = EntryDraft(
                kind=EntryKind.BUYOUT_MISS,
                idempotency_key=key,
                actor=ACTOR,
                payload=payload
                | {"available_minor": available, "next_attempt_at": format_time(next_at)},
            )

        def record(seq: int) -> None:
            values: dict[str, object] = {"state": state.value, "attempts": step.attempts + 1}
            if next_at is not None:
                values["next_attempt_at"] = next_at
            else:
                values["settled_seq"] = seq
            conn.execute(
                update(installments)
                .where(installments.c.plan_id == plan_id, installments.c.number == number)
                .values(**values)
            )
            if outcome is not Outcome.MISSED:
                _complete_if_done(conn, plan_id, seq)

        appended = tx.append_once(draft, record)
        settled = Settled(
            plan_id,
            number,
            outcome,
            appended.entry.seq,
            step.units,
            cost,
            step.attempts + 1,
            next_at,
        )
    log.info("buy-out plan %d installment %d %s (entry %d)", plan_id, number, outcome, settled.seq)
    return settled


def _complete_if_done(conn: Connection, plan_id: int, seq: int) -> None:
    """The plan is completed once none of its installments is left to settle."""
    left = conn.execute(
        select(installments.c.number)
        .where(
            installments.c.plan_id == plan_id,
            or_(
                installments.c.state == InstallmentState.SCHEDULED.value,
                installments.c.state == InstallmentState.MISSED.value,
            ),
        )
        .limit(1)
    ).first()
    if left is None:
        conn.execute(
            update(plans)
            .where(plans.c.id == plan_id)
            .values(state=PlanState.COMPLETED.value, state_seq=seq)
        )


# -- the clock in the server ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """How the buy-out clock stands, for ``/readyz``."""

    state: str  # "running" or "stopped"
    interval_s: float
    last_run_at: str | None
    last_error: str | None
    settled: int
    missed: int
    defaulted: int
    refused: int


class BuyoutClock(Ticker):
    """Runs ``run_due`` at the ledger's clock every ``interval_s`` seconds (``Ticker``);
    counts what it did; ``last_error`` says what went wrong last (the database away: it
    tries again at the next tick). Every server worker may run one: see the module's
    docstring."""

    name = "buyout-clock"

    def __init__(self, ledger: Ledger, interval_s: float = 5.0) -> None:
        super().__init__(interval_s)
        self.ledger = ledger
        self.counts: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self.refused = 0

    def tick(self, stopping: threading.Event | None = None) -> list[Settled]:
        """One run at the ledger's clock now; what it did (nothing when it failed). An
        installment the ledger refused is counted, and named in ``last_error``. The run
        ends early once ``stopping`` is set (``stop``: a worker shutting down does not
        wait for up to ``RUN_BATCH_MAX`` attempts)."""
        now = self.ledger.clock()
        refusals: list[Refusal] = []

        def refused(refusal: Refusal) -> None:
            _log_refusal(refusal)
            refusals.append(refusal)

        try:
            done = run_due(self.ledger, now, on_refused=refused, stopping=stopping)
        except LedgerError as error:
            self.last_error = f"{error.code}: {error.message}"
            log.warning("buy-out run failed: %s", self.last_error)
            return []
        self.last_run_at, self.last_error = to_utc(now), None
        self.refused += len(refusals)
        if refusals:
            last = refusals[-1]
            self.last_error = (
                f"{len(refusals)} installment(s) refused, last plan {last.plan_id}"
                f" installment {last.number}: {last.code}: {last.message}"
            )
        for settled in done:
            self.counts[settled.outcome] += 1
        return done

    def status(self) -> ClockStatus:
        """Whether it runs, when it last ran, its last error and what it has done."""
        return ClockStatus(
            state=self.state,
            interval_s=self.interval_s,
            last_run_at=self.last_run_text,
            last_error=self.last_error,
            settled=self.counts[Outcome.PAID],
            missed=self.counts[Outcome.MISSED],
            defaulted=self.counts[Outcome.DEFAULTED],
            refused=self.refused,
        )
