"""The SQLite form of a time, taken from its journal text, is the one strftime gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ledger.db.types import time_param

zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), zones)
def test_the_sqlite_time_is_strftime_in_utc(moment: datetime, zone: timezone) -> None:
    aware = moment.replace(tzinfo=zone)
    assert time_param("sqlite")(aware) == aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_years_before_1000_are_written_as_strftime_writes_them() -> None:
    moment = datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    assert time_param("sqlite")(moment) == moment.strftime("%Y-%m-%d %H:%M:%S.%f")
