"""``dpn demo``'s outputs: the greenhouse's seasons, two past and one to come.

The greenhouse grows tomatoes, cucumbers and basil (counted in grams). Its operator is
the Valley Greenhouse Co-op, which takes 10 % of every harvest first (the greenhouse
came in without a project, so an admin set these terms); the rest goes to the rights
holders at each period's record time, pro rata.

**The past** is recorded on a clock stepped through it (``SteppedClock``), so that the
journal holds it in order and each period's rights are read as they stood. Quarters
``P1`` and ``P2`` are the two before the quarter under way, ``Q0`` (the one 10 days ago,
so that what follows P2 is in the past too)::

    P1 - 30 d  the members, the greenhouse and its units; its operator terms and kinds;
               a buy-out: the co-op buys 80,000 of Hill's units in 8 quarterly
               installments of 10,000 at 25 cents a unit, due 45 days into each
               quarter from P1's; Hill accepts (its 80,000 are held)
    P1 - 21 d  P1 opens: record time P1 - 14 d, requests until P1 - 2 d
    P1 - 13 d  the co-op, North and River ask for their mix (Hill does not)
    P1 + 45 d  installment 1 paid: the co-op has 21 % by P2's record time
    P2 - 21 d  P2 opens, likewise; the co-op and North ask
    P2 +  3 d  P1's harvest recorded: entitlements; basil bought back at 2 cents a gram
    P2 +  5 d  deliveries of P1: tomatoes to everyone, cucumbers to North; River waives
               its cucumbers, Hill sells its basil back
    P2 + 20 d  work logged in P2: North harvests, River packs (Hill takes no part in P2)
    P2 + 45 d  installment 2 paid
    Q0 +  3 d  P2's harvest recorded; Q0 + 5 d: part of it delivered

**The present** (when the demo's first deposit was recorded, as the market demo's):
installments due by then are paid (the third one if the present is 45 days into Q0);
the next quarter opens for requests (record time an hour before the present, requests
for 10 days), the co-op and North ask; a vote on what to grow most of then is under way
(quorum 50 %, 60 % to pass, open 10 days), North and the co-op have voted. The rest of
the installments are upcoming: the server's buy-out clock pays them when due.

**Idempotent.** Every step has a fixed key (``demo:outputs:...``); the past's times come
from when the greenhouse's units were first issued, and the present's from the first
deposit, so a second run asks the same and writes nothing. On a journal that already
holds entries newer than the past needs (a database used before the demo), the past
cannot be written in order: the demo then registers the greenhouse at the present and
leaves its outputs out (``history_fits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from ledger.access.principals import Role
from ledger.access.roles import grant_role
from ledger.db.engine import read_connection
from ledger.journal.entries import entry_by_key, load_entries
from ledger.journal.reads import digest
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.outputs.buyout_clock import run_due
from ledger.outputs.buyouts import BuyoutTerms, InstallmentTerms, accept_plan, propose_plan
from ledger.outputs.operators import define_output_kind, set_output_terms
from ledger.outputs.participation import WorkEntry, log_work
from ledger.outputs.periods import PeriodTimes, open_period
from ledger.outputs.production import Buyback, record_production
from ledger.outputs.reports import holder_entitlements
from ledger.outputs.requests import submit_request
from ledger.outputs.settlements import deliver, sell_back, waive
from ledger.outputs.votes import ProposalTerms, cast_vote, propose

__all__ = [
    "DEMO_KINDS",
    "SteppedClock",
    "history_fits",
    "history_start",
    "run_outputs_history",
    "run_outputs_present",
]

_ACTOR: Final = "dpn-demo"
DEMO_KINDS: Final = (
    ("tomato", "g", "truss tomatoes"),
    ("cucumber", "g", "snack cucumbers"),
    ("basil", "g", "Genovese basil, potted"),
)
OPERATOR_SHARE_BP: Final = 1_000
BUYOUT_UNITS: Final = 10_000  # an installment
BUYOUT_PRICE_MINOR: Final = 25  # a unit: EUR 0.25, as the demo's private sale
BUYOUT_INSTALLMENTS: Final = 8
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_LEAD = timedelta(days=30)  # from the start of the past to P1's start
_CLOSE = timedelta(days=10)  # Q0 is the quarter of the present less this


class SteppedClock:
    """The past's clock: set to each step's moment in turn, never back (the journal
    would record a step set back at the time of the step before it)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    @property
    def at(self) -> datetime:
        return self._at

    @at.setter
    def at(self, moment: datetime) -> None:
        if moment < self._at:
            raise ValueError(f"the demo's past steps back: {moment} before {self._at}")
        self._at = moment

    def __call__(self) -> datetime:
        return self._at


@dataclass(frozen=True, slots=True)
class _Members:
    coop: str
    north: str
    river: str
    hill: str
    mara: str


def _quarter_start(moment: datetime) -> datetime:
    return datetime(moment.year, (moment.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)


def _months_on(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def _quarter_name(start: datetime) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def history_start(now: datetime) -> datetime:
    """When the demo's past starts, for a demo whose present is ``now``: 30 days before
    P1, the quarter two before the one under way 10 days ago."""
    q0 = _quarter_start(now.astimezone(UTC) - _CLOSE)
    return _months_on(q0, -6) - _LEAD


def history_fits(ledger: Ledger, start: datetime) -> bool:
    """Whether the past can be written from ``start``: the journal is empty, or holds
    nothing newer (or the demo's past is there already, to be replayed)."""
    with read_connection(ledger.engine) as conn:
        head = digest(conn)
        if head.seq == 0:
            return True
        (last,) = load_entries(conn, [head.seq])
        if last.recorded_at <= start:
            return True
        return entry_by_key(conn, _key("terms")) is not None  # the past is there


def _times(start: datetime) -> tuple[datetime, datetime, datetime]:
    """P1's and P2's starts, and Q0's, from the start of the past."""
    p1 = start + _LEAD
    return p1, _months_on(p1, 3), _months_on(p1, 6)


def run_outputs_history(
    history: Ledger, clock: SteppedClock, start: datetime, members: tuple[str, ...], asset: str
) -> None:
    """Record the greenhouse's past (see the module docstring) through ``history``, a
    ledger on ``clock``, from ``start``: the members and the greenhouse are there."""
    _Past(history, clock, _Members(*members), asset).run(start)


class _Past:
    """The steps of the past, each at its moment on the past's clock."""

    def __init__(self, ledger: Ledger, clock: SteppedClock, members: _Members, asset: str) -> None:
        self.ledger = ledger
        self.clock = clock
        self.m = members
        self.asset = asset

    def at(self, moment: datetime) -> None:
        self.clock.at = moment

    def run(self, start: datetime) -> None:
        ledger, m, asset = self.ledger, self.m, self.asset
        p1, p2, q0 = _times(start)
        self.at(start)
        set_output_terms(ledger, asset, m.coop, OPERATOR_SHARE_BP, key=_key("terms"), actor=_ACTOR)
        grant_role(ledger, m.coop, Role.OPERATOR.value, asset, key=_key("operator"), actor=_ACTOR)
        for name, unit, description in DEMO_KINDS:
            define_output_kind(
                ledger, asset, name, unit, description, key=_key(f"kind:{name}"), actor=_ACTOR
            )
        deposit(
            ledger,
            member=m.coop,
            currency="EUR",
            amount=4_000_000,
            reference="SEPA 2026-0100: the co-op's buy-out and buy-back fund",
            key=_key("deposit:coop"),
            actor=_ACTOR,
        )
        self.at(start + _DAY)
        plan = propose_plan(
            ledger,
            m.coop,
            BuyoutTerms(
                asset_id=asset,
                currency="EUR",
                installments=tuple(
                    InstallmentTerms(
                        seller=m.hill,
                        due_at=_months_on(p1, 3 * n) + timedelta(days=45),
                        units=BUYOUT_UNITS,
                        price_minor=BUYOUT_PRICE_MINOR,
                    )
                    for n in range(BUYOUT_INSTALLMENTS)
                ),
            ),
            key=_key("buyout"),
            actor=_ACTOR,
        )
        self.at(start + 2 * _DAY)
        accept_plan(ledger, plan.id, seller=m.hill, key=_key("buyout:accept"), actor=_ACTOR)
        mixes = {
            "p1": {
                m.coop: {"tomato": 6_000, "cucumber": 3_000, "basil": 1_000},
                m.north: {"tomato": 5_000, "cucumber": 5_000},
                m.river: {"tomato": 10_000},
            },
            "p2": {
                m.coop: {"tomato": 5_000, "cucumber": 4_000, "basil": 1_000},
                m.north: {"tomato": 7_000, "basil": 3_000},
            },
        }
        periods: dict[str, int] = {}
        for name, begins in (("p1", p1), ("p2", p2)):
            periods[name] = self.open(name, begins, mixes[name])
            if name == "p2":  # P1 is harvested as P2 starts
                self.harvest("p1", periods["p1"], p2, settle_all=True)
                self.work(periods["p2"], p2)
            self.at(begins + 45 * _DAY + _HOUR)
            run_due(ledger, self.clock.at)
        self.harvest("p2", periods["p2"], q0, settle_all=False)

    def open(self, name: str, begins: datetime, mixes: dict[str, dict[str, int]]) -> int:
        """The quarter from ``begins`` opened three weeks before, and its requests."""
        self.at(begins - 21 * _DAY)
        period = open_period(
            self.ledger,
            self.asset,
            _quarter_name(begins),
            PeriodTimes(
                starts_at=begins,
                ends_at=_months_on(begins, 3),
                record_at=begins - 14 * _DAY,
                request_deadline=begins - 2 * _DAY,
            ),
            key=_key(f"period:{name}"),
            actor=_ACTOR,
        )
        self.at(begins - 13 * _DAY)
        for holder, mix in mixes.items():
            submit_request(
                self.ledger, period.id, holder, mix, key=_key(f"request:{name}:{holder}"),
                actor=_ACTOR,
            )  # fmt: skip
        return period.id

    def work(self, period_id: int, begins: datetime) -> None:
        """Work in the period, logged by the co-op (Hill takes no part)."""
        self.at(begins + 20 * _DAY)
        for who, task, minutes in ((self.m.north, "harvest", 360), (self.m.river, "packing", 180)):
            log_work(
                self.ledger,
                self.asset,
                WorkEntry(who, period_id, task, minutes, begins + 19 * _DAY),
                by=self.m.coop,
                key=_key(f"work:{period_id}:{who}"),
                actor=_ACTOR,
            )

    def harvest(self, name: str, period_id: int, after: datetime, *, settle_all: bool) -> None:
        """The period's harvest recorded 3 days into the next quarter (``after``), and
        2 days later its tomatoes delivered (all, or half each); P1's cucumbers go to
        North or are waived by River, and Hill sells its basil back."""
        ledger, m = self.ledger, self.m
        self.at(after + 3 * _DAY)
        record_production(
            ledger,
            period_id,
            _HARVESTS[name],
            {"basil": Buyback("EUR", 2)},
            key=_key(f"production:{name}"),
            actor=_ACTOR,
        )
        self.at(after + 5 * _DAY)
        with read_connection(ledger.engine) as conn:
            entitled = {
                holder: {
                    line.kind: line.entitled
                    for line in holder_entitlements(conn, period_id, holder).lines
                }
                for holder in (m.coop, m.north, m.river, m.hill)
            }
        for holder, kinds in entitled.items():
            tomatoes = kinds.get("tomato", 0) if settle_all else kinds.get("tomato", 0) // 2
            if tomatoes:
                deliver(
                    ledger, period_id, holder, "tomato", tomatoes, "collected at the greenhouse",
                    key=_key(f"deliver:{name}:tomato:{holder}"), actor=_ACTOR,
                )  # fmt: skip
        if not settle_all:
            return
        deliver(
            ledger, period_id, m.north, "cucumber", entitled[m.north]["cucumber"],
            "crates to North's kitchen", key=_key(f"deliver:{name}:cucumber"), actor=_ACTOR,
        )  # fmt: skip
        waive(
            ledger, period_id, m.river, "cucumber", entitled[m.river]["cucumber"],
            key=_key(f"waive:{name}"), actor=_ACTOR,
        )  # fmt: skip
        sell_back(
            ledger, period_id, m.hill, "basil", entitled[m.hill]["basil"],
            key=_key(f"sell-back:{name}"), actor=_ACTOR,
        )  # fmt: skip


_HARVESTS: Final = {
    "p1": {"tomato": 1_840_000, "cucumber": 960_000, "basil": 45_000},
    "p2": {"tomato": 2_210_000, "cucumber": 1_130_000, "basil": 52_000},
}


def _key(name: str) -> str:
    return f"demo:outputs:{name}"


def run_outputs_present(
    ledger: Ledger, now: datetime, members: tuple[str, ...], asset: str
) -> None:
    """The present's part (see the module docstring), at ``now``, the demo's present."""
    m = _Members(*members)
    q0 = _quarter_start(now.astimezone(UTC) - _CLOSE)
    upcoming = _months_on(q0, 3)
    run_due(ledger, now)
    period = open_period(
        ledger,
        asset,
        _quarter_name(upcoming),
        PeriodTimes(
            starts_at=upcoming,
            ends_at=_months_on(upcoming, 3),
            record_at=now - _HOUR,
            request_deadline=now + 10 * _DAY,
        ),
        key="demo:outputs:period:next",
        actor=_ACTOR,
    )
    for holder, mix in (
        (m.coop, {"tomato": 4_000, "cucumber": 4_000, "basil": 2_000}),
        (m.north, {"tomato": 8_000, "basil": 2_000}),
    ):
        submit_request(
            ledger, period.id, holder, mix, key=f"demo:outputs:request:next:{holder}", actor=_ACTOR
        )
    proposal = propose(
        ledger,
        asset,
        ProposalTerms(
            title=f"What should the greenhouse grow most of in {_quarter_name(upcoming)}?",
            options=tuple(name for name, _, _ in DEMO_KINDS),
            record_at=now - _HOUR,
            deadline=now + 10 * _DAY,
            quorum_bp=5_000,
            threshold_bp=6_000,
            description="The winner gets half the beds; the others share the rest.",
            period_id=period.id,
        ),
        by=m.coop,
        key="demo:outputs:proposal:next",
        actor=_ACTOR,
    )
    for voter in (m.north, m.coop):
        cast_vote(
            ledger, proposal.id, voter, "tomato", key=f"demo:outputs:vote:{voter}", actor=_ACTOR
        )
