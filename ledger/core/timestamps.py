"""Time: the one text form of a moment (ISO 8601 in UTC with microseconds and a ``Z``),
and the reading of one. Every time the journal hashes or stores passes through here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ledger.core.errors import InvalidInput

__all__ = ["format_time", "ms_of", "parse_time", "time_of_ms", "to_utc"]


def to_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; refuses a naive time and one whose UTC falls outside years
    1..9999 (``0001-01-01T00:00:00+14:00``, say)."""
    if moment.tzinfo is None:
        raise InvalidInput("time_naive", "times must carry a time zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("time_out_of_range", "times must fall in years 1..9999 (UTC)") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def ms_of(moment: datetime) -> int:
    """Whole milliseconds since 1970 of an aware time, rounded down (the market's clock
    and its times are these; ``time_naive`` for a time without zone). No float."""
    return (to_utc(moment) - _EPOCH) // _MS


def time_of_ms(ms: int) -> datetime:
    """The aware UTC time of milliseconds since 1970."""
    return _EPOCH + ms * _MS


@lru_cache(maxsize=256)
def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: the one text form of a time.
    (Cached: a batch of entries shares one recorded time.)"""
    # isoformat, unlike strftime("%Y"), pads years before 1000 to four digits everywhere.
    return to_utc(moment).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time with a zone into an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("time_malformed", f"not an ISO 8601 time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        raise InvalidInput("time_naive", f"time {text[:64]!r} has no zone; add Z or +00:00")
    return to_utc(moment)
