"""Every time a request gives (bodies and query parameters, ``api.schemas.common.Time``
and ``ZonedTime``) is RFC 3339 text, and nothing else: not seconds since 1970 as a
number or as text, not a date alone, not a space or a lower-case letter for the T or
the Z, not seven digits of a second cut to six, not a day that does not exist. A
``Time`` without its offset reaches the ledger (which refuses it ``time_naive``); a
``ZonedTime`` (a deadline, an expiry) must give it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from api.schemas.common import Time, ZonedTime

TIMES: TypeAdapter[datetime] = TypeAdapter(Time)
ZONED: TypeAdapter[datetime] = TypeAdapter(ZonedTime)
OPTIONAL: TypeAdapter[datetime | None] = TypeAdapter(Time | None)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2027-03-01T12:00:00Z", datetime(2027, 3, 1, 12, tzinfo=UTC)),
        ("2027-03-01T12:00:00.123456Z", datetime(2027, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2027-03-01T13:30:00+01:30", datetime(2027, 3, 1, 12, tzinfo=UTC)),
        ("2027-03-01T12:00:00-00:00", datetime(2027, 3, 1, 12, tzinfo=UTC)),
    ],
)
def test_rfc_3339_text_is_a_time(text: str, moment: datetime) -> None:
    assert TIMES.validate_python(text) == moment
    assert ZONED.validate_python(text) == moment
    assert OPTIONAL.validate_json(f'"{text}"') == moment


@pytest.mark.parametrize(
    "given",
    [
        1900000000,
        1900000000.5,
        "1900000000",
        "1900000000.5",
        "2027-03-01",
        "2027-03-01 12:00:00Z",
        "2027-03-01t12:00:00z",
        "2027-03-01T12:00:00.1234567Z",
        "2027-02-30T12:00:00Z",
        "2027-03-01T12:00Z",
        "\u0662\u0660\u0662\u0667-03-01T12:00:00Z",
        " 2027-03-01T12:00:00Z",
        True,
        None,
    ],
)
def test_anything_else_is_refused(given: object) -> None:
    for times in (TIMES, ZONED):
        with pytest.raises(ValidationError):
            times.validate_python(given)


def test_a_time_without_its_offset_is_left_to_the_ledger_only_where_it_may_be() -> None:
    assert TIMES.validate_python("2027-03-01T12:00:00") == datetime(2027, 3, 1, 12)  # naive
    with pytest.raises(ValidationError):
        ZONED.validate_python("2027-03-01T12:00:00")
    with pytest.raises(ValidationError):
        ZONED.validate_python(datetime(2027, 3, 1, 12, tzinfo=UTC))  # text only, as ever


def test_a_python_caller_may_give_a_datetime() -> None:
    moment = datetime(2027, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert TIMES.validate_python(moment) == moment
    assert TIMES.json_schema()["pattern"].endswith(")?$")
    assert ZONED.json_schema()["pattern"].endswith("[0-9]{2})$")
