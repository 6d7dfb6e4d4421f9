"""Participation: the work members log for an asset, and who took part in a period.

Owners are meant to take part: direct what is produced (an output request for the
period), decide (a vote on one of the period's proposals) and do some of the work. An
asset's operator records work (``work.log``: member, period, task, whole minutes, the
day it was done, a short note); the note lives in the entry's payload, the rest also in
``work_logs``. The participation report lists, for a period, every member with rights
at its record time and what each did, and counts those who did nothing. It reports; it
does not judge legal status (DESIGN.md, "Participation").
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, func, insert, select

from ledger.core import EntryDraft, EntryKind, check_display_text, format_time
from ledger.core.accounts import HolderKind, parse_holder
from ledger.core.errors import InvalidInput, Refused
from ledger.core.timestamps import parse_time, to_utc
from ledger.db.schema import (
    OutputRequest,
    VoteBallot,
    VoteProposal,
    WorkLog,
    table,
)
from ledger.journal.entries import load_payloads
from ledger.journal.write import Ledger
from ledger.outputs.periods import PeriodRecord, get_period
from ledger.registry.address import validate_address
from ledger.registry.members import get_member
from ledger.rights import rights_table

__all__ = [
    "MINUTES_MAX",
    "NOTE_LEN_MAX",
    "PARTICIPATION_PAGE_MAX",
    "TASK_PATTERN",
    "WORK_LOGS_PAGE_MAX",
    "WORK_LOGS_PER_PERIOD_MAX",
    "MemberParticipation",
    "ParticipationReport",
    "WorkEntry",
    "WorkLogRecord",
    "list_work_logs",
    "log_work",
    "participation_report",
    "work_log_of",
]

TASK_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"  # a kind of task: "harvest", "pruning"
MINUTES_MAX: Final = 44_640  # 31 days of minutes: more than anyone works in one log
NOTE_LEN_MAX: Final = 200
WORK_LOGS_PER_PERIOD_MAX: Final = 1_000_000
WORK_LOGS_PAGE_MAX: Final = 200
PARTICIPATION_PAGE_MAX: Final = 500
_TASK = re.compile(TASK_PATTERN)

_work = table(WorkLog)
_requests = table(OutputRequest)
_ballots = table(VoteBallot)
_proposals = table(VoteProposal)


@dataclass(frozen=True, slots=True)
class WorkEntry:
    """Work as an operator records it: ``minutes`` of ``task`` by ``member`` on
    ``worked_on``, in period ``period_id``."""

    member: str
    period_id: int
    task: str
    minutes: int
    worked_on: datetime
    note: str = ""


@dataclass(frozen=True, slots=True)
class WorkLogRecord:
    """A work log as recorded; ``seq`` is its ``work.log`` entry's."""

    seq: int
    asset_id: str
    period_id: int
    member: str
    task: str
    minutes: int
    worked_on: datetime
    note: str
    recorded_by: str


@dataclass(frozen=True, slots=True)
class MemberParticipation:
    """What one member who owned units or had rights at a period's record time did in
    it (an owner who leased all its units out has none of the rights, and is still an
    owner)."""

    member: str
    owned_units: int
    rights_units: int
    requested: bool  # it has an output request for the period
    votes: int  # its counted votes on the period's proposals
    work_by_task: tuple[tuple[str, int], ...]  # (task, minutes), by task
    work_minutes: int

    @property
    def took_part(self) -> bool:
        """It requested, voted or worked."""
        return self.requested or self.votes > 0 or self.work_minutes > 0


@dataclass(frozen=True, slots=True)
class ParticipationReport:
    """A period's participation: counts over every member with rights at its record
    time (``members`` = ``took_part`` + ``took_no_part``) and one page of ``rows``."""

    period_id: int
    asset_id: str
    record_at: datetime
    provisional: bool  # the record time is still to come: rights as they stand now
    members: int
    took_part: int
    took_no_part: int
    rows: list[MemberParticipation]


def _checked(work: WorkEntry) -> WorkEntry:
    """``work`` with its time in UTC, or ``InvalidInput`` naming the first rule broken."""
    member = validate_address(work.member)
    if not isinstance(work.task, str) or not _TASK.fullmatch(work.task):
        raise InvalidInput("task_malformed", "a task is 1..32 of a-z 0-9 _ -, first a-z or 0-9")
    minutes = work.minutes
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MINUTES_MAX:
        raise InvalidInput("minutes_out_of_range", f"minutes must be a whole 1..{MINUTES_MAX}")
    if work.note:
        check_display_text("note", work.note, NOTE_LEN_MAX)
    return WorkEntry(member, work.period_id, work.task, minutes, to_utc(work.worked_on), work.note)


def work_log_of(seq: int, payload: Any) -> WorkLogRecord:
    """The work log a ``work.log`` entry at ``seq`` with ``payload`` recorded."""
    return WorkLogRecord(
        seq=seq,
        asset_id=payload["asset_id"],
        period_id=payload["period_id"],
        member=payload["member"],
        task=payload["task"],
        minutes=payload["minutes"],
        worked_on=parse_time(payload["worked_on"]),
        note=payload["note"],
        recorded_by=payload["recorded_by"],
    )


def log_work(
    ledger: Ledger, asset_id: str, work: WorkEntry, *, by: str, key: str, actor: str
) -> WorkLogRecord:
    """Record work done for ``asset_id``; journaled as ``work.log``. ``by`` records it
    (whether it may is the policy layer's rule: the asset's operator or an admin).

    Refuses, writing nothing: ``InvalidInput`` for a malformed member address,
    ``task_malformed``, ``minutes_out_of_range``, a note that is not showable text of at
    most ``NOTE_LEN_MAX`` characters, a naive time; ``NotFound`` for an unknown period
    (``unknown_period``) or member (``unknown_member``); a period of another asset,
    ``InvalidInput(period_not_of_asset)``; a day outside the period's [starts_at,
    ends_at), ``InvalidInput(worked_on_outside_period)``, or still to come,
    ``Refused(worked_on_in_future)``; a period with ``WORK_LOGS_PER_PERIOD_MAX`` logs,
    ``Refused(too_many_work_logs)``. A replay of the key returns the same log."""
    checked = _checked(work)
    recorder = validate_address(by)
    draft = EntryDraft(
        kind=EntryKind.WORK_LOG,
        idempotency_key=key,
        actor=actor,
        payload={
            "asset_id": asset_id,
            "period_id": checked.period_id,
            "member": checked.member,
            "task": checked.task,
            "minutes": checked.minutes,
            "worked_on": format_time(checked.worked_on),
            "note": checked.note,
            "recorded_by": recorder,
        },
    )
    with ledger.write() as tx:

        def write(seq: int) -> None:
            period = _period_of(tx.conn, checked.period_id, asset_id)
            get_member(tx.conn, checked.member)
            times = period.times
            if not times.starts_at <= checked.worked_on < times.ends_at:
                raise InvalidInput(
                    "worked_on_outside_period",
                    f"period {period.id} runs from {format_time(times.starts_at)} until"
                    f" {format_time(times.ends_at)}",
                )
            if checked.worked_on > to_utc(tx.ledger.clock()):
                raise Refused("worked_on_in_future", "work is logged once it is done")
            logged = tx.conn.execute(
                select(func.count()).select_from(_work).where(_work.c.period_id == period.id)
            ).scalar_one()
            if logged >= WORK_LOGS_PER_PERIOD_MAX:
                raise Refused(
                    "too_many_work_logs", f"a period has at most {WORK_LOGS_PER_PERIOD_MAX} logs"
                )
            tx.conn.execute(
                insert(_work).values(
                    seq=seq,
                    asset_id=asset_id,
                    period_id=period.id,
                    member=checked.member,
                    task=checked.task,
                    minutes=checked.minutes,
                    worked_on=checked.worked_on,
                    recorded_by=recorder,
                )
            )

        appended = tx.append_once(draft, write)
    return work_log_of(appended.entry.seq, appended.entry.payload)


def _period_of(conn: Connection, period_id: int, asset_id: str) -> PeriodRecord:
    period = get_period(conn, period_id)
    if period.asset_id != asset_id:
        raise InvalidInput("period_not_of_asset", f"period {period_id} is not one of {asset_id}'s")
    return period


def list_work_logs(
    conn: Connection, period_id: int, *, before_seq: int | None = None, limit: int = 50
) -> list[WorkLogRecord]:
    """The work logged in period ``period_id``, newest first, at most ``limit``
    (1..``WORK_LOGS_PAGE_MAX``), those before ``before_seq`` if given (each as its entry
    recorded it, note included); ``NotFound(unknown_period)``."""
    if not 1 <= limit <= WORK_LOGS_PAGE_MAX:
        raise InvalidInput("page_size", f"limit must be within 1..{WORK_LOGS_PAGE_MAX}")
    get_period(conn, period_id)
    query = select(_work.c.seq).where(_work.c.period_id == period_id)
    if before_seq is not None:
        query = query.where(_work.c.seq < before_seq)
    seqs = list(conn.execute(query.order_by(_work.c.seq.desc()).limit(limit)).scalars())
    if not seqs:
        return []
    payloads = load_payloads(conn, seqs)
    return [work_log_of(seq, payloads[seq]) for seq in seqs]


def participation_report(
    conn: Connection,
    period_id: int,
    now: datetime,
    *,
    took_part: bool | None = None,
    after_member: str | None = None,
    limit: int = 50,
) -> ParticipationReport:
    """Who took part in period ``period_id``: each member who owned units of its asset
    or had rights in them at the period's record time (``ledger.rights``; as they stand
    at ``now`` while the record time is still to come), whether it has an output request
    for the period, how many of the period's proposals it voted on, and the minutes of
    work logged for it in the period by task. Rows by member address, at most ``limit``
    (1..``PARTICIPATION_PAGE_MAX``), after ``after_member`` if given, only those who did
    (or did not) take part if ``took_part`` is given. Members who did something but
    neither owned nor had rights at the record time are not rows: the report is about
    owners (and those who lease their rights in). Read it in
    one snapshot (``read_connection``); ``NotFound(unknown_period)``."""
    if not 1 <= limit <= PARTICIPATION_PAGE_MAX:
        raise InvalidInput("page_size", f"limit must be within 1..{PARTICIPATION_PAGE_MAX}")
    period = get_period(conn, period_id)
    record_at = period.times.record_at
    members: dict[str, tuple[int, int]] = {}  # member -> (owned, rights)
    for row in rights_table(conn, period.asset_id, record_at).rows:
        holder = parse_holder(row.holder)
        if holder.kind is HolderKind.MEMBER and (row.owned > 0 or row.rights > 0):
            members[holder.name] = (row.owned, row.rights)
    requested = set(
        conn.execute(
            select(_requests.c.holder).where(_requests.c.period_id == period_id).distinct()
        ).scalars()
    )
    votes: dict[str, int] = {
        voter: int(count)
        for voter, count in conn.execute(
            select(_ballots.c.voter, func.count())
            .join(_proposals, _proposals.c.id == _ballots.c.proposal_id)
            .where(_proposals.c.period_id == period_id)
            .group_by(_ballots.c.voter)
        )
    }
    work: defaultdict[str, list[tuple[str, int]]] = defaultdict(list)
    for member, task, minutes in conn.execute(
        select(_work.c.member, _work.c.task, func.sum(_work.c.minutes))
        .where(_work.c.period_id == period_id)
        .group_by(_work.c.member, _work.c.task)
        .order_by(_work.c.member, _work.c.task)
    ):
        work[member].append((task, int(minutes)))
    rows = [
        MemberParticipation(
            member=member,
            owned_units=owned,
            rights_units=units,
            requested=member in requested,
            votes=int(votes.get(member, 0)),
            work_by_task=tuple(work.get(member, ())),
            work_minutes=sum(m for _, m in work.get(member, ())),
        )
        for member, (owned, units) in sorted(members.items())
    ]
    active = sum(1 for r in rows if r.took_part)
    chosen = [
        r
        for r in rows
        if (took_part is None or r.took_part == took_part)
        and (after_member is None or r.member > after_member)
    ]
    return ParticipationReport(
        period_id=period.id,
        asset_id=period.asset_id,
        record_at=record_at,
        provisional=to_utc(now) < record_at,
        members=len(rows),
        took_part=active,
        took_no_part=len(rows) - active,
        rows=chosen[:limit],
    )
