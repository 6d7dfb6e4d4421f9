"""Lease terms: the spans of time a lease book is for, and what units are promised when.

A term is ``[start, end)`` in UTC, both at midnight on the first day of a period the
asset defines (``month``, or ``quarter``: January, April, July, October), so that
offers and bids meet on the same few books. Its key, ``YYYY-MM-DD/YYYY-MM-DD``, names
its book. A term spans one to ``TERM_PERIODS_MAX`` months, ends after now (one under
way may still be leased, for what is left of it) and starts at most
``TERM_AHEAD_MAX_DAYS`` ahead.

``peak`` is the encumbrance rule's arithmetic: the most units a set of spans (leases
out, and offers resting) promises at any one instant of a window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Final, NamedTuple

from ledger.core.errors import InvalidInput

__all__ = [
    "LEASE_PERIODS",
    "LEASE_PERIOD_DEFAULT",
    "TERM_AHEAD_MAX_DAYS",
    "TERM_PERIODS_MAX",
    "Span",
    "check_lease_period",
    "check_term",
    "next_terms",
    "peak",
    "term_key",
    "term_span",
]

LEASE_PERIODS: Final = ("month", "quarter")
LEASE_PERIOD_DEFAULT: Final = "quarter"
TERM_PERIODS_MAX: Final = 12
"""A term spans at most twelve months."""
TERM_AHEAD_MAX_DAYS: Final = 366
"""A term starts at most a year ahead."""
# ASCII digits only: \d and int() take any script's, and "٢٠٢٧-01-01/..." would name
# the same term by another key, a book of its own that no one finds.
_KEY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})/([0-9]{4})-([0-9]{2})-([0-9]{2})")


class Span(NamedTuple):
    """``units`` promised over ``[starts_ms, ends_ms)``."""

    starts_ms: int
    ends_ms: int
    units: int


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def term_key(start: date, end: date) -> str:
    """The key of the term ``[start, end)``."""
    return f"{start.isoformat()}/{end.isoformat()}"


def _days(key: object) -> tuple[date, date]:
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise InvalidInput(
            "term_malformed", f"a term is YYYY-MM-DD/YYYY-MM-DD, not {str(key)[:40]!r}"
        )
    y1, m1, d1, y2, m2, d2 = map(int, match.groups())
    try:
        return date(y1, m1, d1), date(y2, m2, d2)
    except ValueError:
        raise InvalidInput("term_malformed", f"{key} names a day that does not exist") from None


@lru_cache(maxsize=4096)
def term_span(key: str) -> tuple[int, int]:
    """(start, end) of a term's key, in ms since the epoch (the key is well formed)."""
    start, end = _days(key)
    return _ms(start), _ms(end)


def check_lease_period(period: object) -> str:
    """``period`` if it is one of ``LEASE_PERIODS``."""
    if period not in LEASE_PERIODS:
        raise InvalidInput(
            "lease_period_unknown", f"a lease period is one of {', '.join(LEASE_PERIODS)}"
        )
    return str(period)


def check_term(key: object, period: str, now_ms: int) -> tuple[int, int]:
    """The (start, end) in ms of the term ``key`` if an asset whose lease period is
    ``period`` offers it now; else a clear refusal."""
    start, end = _days(key)
    if end <= start:
        raise InvalidInput("term_ends_before_start", f"the term {key} ends before it starts")
    starts_on = (1, 4, 7, 10) if period == "quarter" else tuple(range(1, 13))
    for day in (start, end):
        if day.day != 1 or day.month not in starts_on:
            raise InvalidInput(
                "term_off_boundary",
                f"the asset's lease terms start and end on the first day of a {period}:"
                f" {day.isoformat()} is not one",
                lease_period=period,
            )
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > TERM_PERIODS_MAX:
        raise InvalidInput(
            "term_too_long", f"a term spans at most {TERM_PERIODS_MAX} months, not {months}"
        )
    starts_ms, ends_ms = _ms(start), _ms(end)
    if ends_ms <= now_ms:
        raise InvalidInput("term_in_past", f"the term {key} has ended")
    if starts_ms - now_ms > TERM_AHEAD_MAX_DAYS * 86_400_000:
        raise InvalidInput(
            "term_too_far", f"a term starts at most {TERM_AHEAD_MAX_DAYS} days ahead"
        )
    return starts_ms, ends_ms


def next_terms(period: str, now_ms: int, count: int) -> list[str]:
    """The keys of the next ``count`` one-period terms, the one under way first."""
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
    step = 3 if period == "quarter" else 1
    month = (today.month - 1) // step * step + 1
    start = date(today.year, month, 1)
    keys = []
    for _ in range(count):
        end = _add_months(start, step)
        keys.append(term_key(start, end))
        start = end
    return keys


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def peak(spans: Iterable[Span], from_ms: int, to_ms: int | None = None) -> int:
    """The most units ``spans`` promise at any one instant of ``[from_ms, to_ms)`` (to the
    end of time when ``to_ms`` is None)."""
    moves: list[tuple[int, int]] = []
    for s in spans:
        lo = max(s.starts_ms, from_ms)
        hi = s.ends_ms if to_ms is None else min(s.ends_ms, to_ms)
        if lo < hi:
            moves.append((lo, s.units))
            moves.append((hi, -s.units))
    moves.sort()  # at one instant the ends (negative) come before the starts
    level = most = 0
    for _, units in moves:
        level += units
        most = max(most, level)
    return most
