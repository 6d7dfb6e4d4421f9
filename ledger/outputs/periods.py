"""Production periods: an asset's operator opens one (``period.open``), its rights holders
at ``record_at`` send output requests until ``request_deadline``, then the operator
records what it produced, once.

A period's id is the seq of its ``period.open`` entry. Its state is ``open`` until its
production is recorded, then ``produced``. The rules of its times, checked against the
ledger's clock when it opens: ``starts_at < ends_at`` over at most
``PERIOD_SPAN_MAX_DAYS``; ``record_at < request_deadline``; the deadline ahead of now and
at most ``PERIOD_AHEAD_MAX_DAYS`` ahead. An asset needs an operator and at least one
output kind before a period opens, and has at most ``PERIODS_PER_ASSET_MAX`` periods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Connection, Row, func, insert, select

from ledger.core import EntryDraft, EntryKind, check_display_text, format_time
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused
from ledger.core.timestamps import to_utc
from ledger.db.params import chunks
from ledger.db.schema import OutputPeriod, table
from ledger.journal.write import Ledger
from ledger.outputs.operators import count_output_kinds, operator_of
from ledger.registry.assets import get_asset
from ledger.rights import check_record_time

__all__ = [
    "PERIODS_PAGE_MAX",
    "PERIODS_PER_ASSET_MAX",
    "PERIOD_AHEAD_MAX_DAYS",
    "PERIOD_NAME_LEN_MAX",
    "PERIOD_SPAN_MAX_DAYS",
    "PeriodRecord",
    "PeriodState",
    "PeriodTimes",
    "get_period",
    "get_periods",
    "list_periods",
    "open_period",
]

PERIOD_NAME_LEN_MAX: Final = 32
PERIOD_SPAN_MAX_DAYS: Final = 366
PERIOD_AHEAD_MAX_DAYS: Final = 2 * 366  # a request deadline this far ahead at most
PERIODS_PER_ASSET_MAX: Final = 10_000  # a period a day for over 27 years
PERIODS_PAGE_MAX: Final = 100

_periods = table(OutputPeriod)


class PeriodState(StrEnum):
    """``open`` (requests, then production once), then ``produced``."""

    OPEN = "open"
    PRODUCED = "produced"


@dataclass(frozen=True, slots=True)
class PeriodTimes:
    """A period's times (aware): what it covers, when rights are read, when requests end."""

    starts_at: datetime
    ends_at: datetime
    record_at: datetime
    request_deadline: datetime


@dataclass(frozen=True, slots=True)
class PeriodRecord:
    """A production period as recorded."""

    id: int  # the seq of its period.open entry
    asset_id: str
    name: str
    times: PeriodTimes
    state: PeriodState
    opened_seq: int
    produced_seq: int | None


def _checked_times(times: PeriodTimes) -> PeriodTimes:
    """The times in UTC, or ``InvalidInput`` for a naive one or a rule they break."""
    utc = PeriodTimes(
        *(
            to_utc(t)
            for t in (times.starts_at, times.ends_at, times.record_at, times.request_deadline)
        )
    )
    if utc.starts_at >= utc.ends_at:
        raise InvalidInput("period_ends_before_start", "a period must end after it starts")
    if utc.ends_at - utc.starts_at > timedelta(days=PERIOD_SPAN_MAX_DAYS):
        raise InvalidInput("period_too_long", f"a period spans at most {PERIOD_SPAN_MAX_DAYS} days")
    if utc.record_at >= utc.request_deadline:
        raise InvalidInput(
            "record_after_deadline", "the record time must come before the request deadline"
        )
    return utc


def open_period(
    ledger: Ledger, asset_id: str, name: str, times: PeriodTimes, *, key: str, actor: str
) -> PeriodRecord:
    """Open a production period of ``asset_id``; journaled as ``period.open``, its id
    the entry's seq, its state ``open``.

    Refuses, writing nothing: a name that is not 1..32 showable characters, a naive time,
    ``period_ends_before_start``, ``period_too_long``, ``record_after_deadline``
    (``InvalidInput``); an asset unknown or without an operator (as ``operator_of``:
    ``unknown_asset``, ``no_operator_terms``, ``project_not_funded``); a request deadline
    not ahead of the ledger's clock (``Refused(request_deadline_passed)``); a record time
    before the asset was registered (``Refused(record_before_asset)``: nobody had rights
    then, so the period could never be produced); a deadline more than
    ``PERIOD_AHEAD_MAX_DAYS`` ahead (``Refused(period_too_far)``); an asset without output
    kinds (``Refused(no_output_kinds)``) or with ``PERIODS_PER_ASSET_MAX`` periods
    (``Refused(too_many_periods)``); a name the asset has used
    (``Conflict(period_exists)``). A replay of the key returns the same period."""
    check_display_text("name", name, PERIOD_NAME_LEN_MAX)
    utc = _checked_times(times)
    draft = EntryDraft(
        kind=EntryKind.PERIOD_OPEN,
        idempotency_key=key,
        actor=actor,
        payload={
            "asset_id": asset_id,
            "name": name,
            "starts_at": format_time(utc.starts_at),
            "ends_at": format_time(utc.ends_at),
            "record_at": format_time(utc.record_at),
            "request_deadline": format_time(utc.request_deadline),
        },
    )
    with ledger.write() as tx:

        def write(seq: int) -> None:
            operator_of(tx.conn, asset_id)
            now = to_utc(tx.ledger.clock())
            if utc.request_deadline <= now:
                raise Refused(
                    "request_deadline_passed", "the request deadline must be ahead of now"
                )
            if utc.request_deadline > now + timedelta(days=PERIOD_AHEAD_MAX_DAYS):
                raise Refused(
                    "period_too_far",
                    f"the request deadline must be within {PERIOD_AHEAD_MAX_DAYS} days of now",
                )
            check_record_time(tx.conn, asset_id, utc.record_at, now)
            if count_output_kinds(tx.conn, asset_id) == 0:
                raise Refused(
                    "no_output_kinds", f"{asset_id} has no output kinds: define one first"
                )
            taken = tx.conn.execute(
                select(func.count()).select_from(_periods).where(_periods.c.asset_id == asset_id)
            ).scalar_one()
            if taken >= PERIODS_PER_ASSET_MAX:
                raise Refused(
                    "too_many_periods", f"an asset has at most {PERIODS_PER_ASSET_MAX} periods"
                )
            same = tx.conn.execute(
                select(_periods.c.id).where(
                    _periods.c.asset_id == asset_id, _periods.c.name == name
                )
            ).first()
            if same is not None:
                raise Conflict(
                    "period_exists", f"{asset_id} has a period {name!r} already", id=same.id
                )
            tx.conn.execute(
                insert(_periods).values(
                    id=seq,
                    asset_id=asset_id,
                    name=name,
                    starts_at=utc.starts_at,
                    ends_at=utc.ends_at,
                    record_at=utc.record_at,
                    request_deadline=utc.request_deadline,
                    state=PeriodState.OPEN.value,
                    opened_seq=seq,
                    produced_seq=None,
                )
            )

        appended = tx.append_once(draft, write)
        return get_period(tx.conn, appended.entry.seq)


def _record(r: Row[Any]) -> PeriodRecord:
    """A row of ``output_periods`` as a record."""
    return PeriodRecord(
        id=r.id,
        asset_id=r.asset_id,
        name=r.name,
        times=PeriodTimes(
            to_utc(r.starts_at), to_utc(r.ends_at), to_utc(r.record_at), to_utc(r.request_deadline)
        ),
        state=PeriodState(r.state),
        opened_seq=r.opened_seq,
        produced_seq=r.produced_seq,
    )


def get_period(conn: Connection, period_id: int) -> PeriodRecord:
    """The period ``period_id``, or ``NotFound(unknown_period)``."""
    row = conn.execute(select(_periods).where(_periods.c.id == period_id)).first()
    if row is None:
        raise NotFound("unknown_period", f"no period {period_id}")
    return _record(row)


def get_periods(conn: Connection, period_ids: Sequence[int]) -> list[PeriodRecord]:
    """The periods ``period_ids``, in the order asked, read together (a statement per
    ``IN_CHUNK`` of them); ``NotFound(unknown_period)`` if one is missing."""
    found: dict[int, PeriodRecord] = {}
    for part in chunks(sorted(set(period_ids))):
        for row in conn.execute(select(_periods).where(_periods.c.id.in_(part))):
            found[row.id] = _record(row)
    missing = next((i for i in period_ids if i not in found), None)
    if missing is not None:
        raise NotFound("unknown_period", f"no period {missing}")
    return [found[i] for i in period_ids]


def list_periods(
    conn: Connection, asset_id: str, *, before_id: int | None = None, limit: int = 50
) -> list[PeriodRecord]:
    """``asset_id``'s periods, newest first, at most ``limit`` (1..``PERIODS_PAGE_MAX``),
    those with an id below ``before_id`` if given; ``NotFound(unknown_asset)``."""
    if not 1 <= limit <= PERIODS_PAGE_MAX:
        raise InvalidInput("limit_out_of_range", f"limit must be 1..{PERIODS_PAGE_MAX}")
    get_asset(conn, asset_id)
    query = select(_periods).where(_periods.c.asset_id == asset_id)
    if before_id is not None:
        query = query.where(_periods.c.id < before_id)
    rows = conn.execute(query.order_by(_periods.c.id.desc()).limit(limit)).all()
    return [_record(r) for r in rows]
