"""Milliseconds since 1970, the market's time: exact integers both ways, never a float."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput
from ledger.core.timestamps import ms_of, time_of_ms


def test_a_moment_is_its_whole_milliseconds_rounded_down() -> None:
    assert ms_of(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert ms_of(datetime(2027, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)) == 1_798_761_600_999
    assert ms_of(datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)) == -1
    # The same moment in another zone is the same millisecond.
    east = timezone(timedelta(hours=5, minutes=30))
    assert ms_of(datetime(2027, 1, 1, 5, 30, tzinfo=east)) == 1_798_761_600_000


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        ms_of(datetime(2027, 1, 1))
    assert refused.value.code == "time_naive"


@given(st.integers(min_value=-(10**13), max_value=10**14))
def test_milliseconds_round_trip_exactly(ms: int) -> None:
    # A float timestamp loses whole milliseconds beyond 2**53 microseconds; these do not.
    assert ms_of(time_of_ms(ms)) == ms
    assert time_of_ms(ms).tzinfo is UTC
