"""Shapes shared by every resource: amounts as decimal strings, pages with cursors."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import Strict as StrictMode

__all__ = [
    "PAGE_SIZE_DEFAULT",
    "PAGE_SIZE_MAX",
    "Address",
    "AmountText",
    "AssetId",
    "Integer",
    "Page",
    "Strict",
    "Time",
    "ZonedTime",
    "amount_text",
]

PAGE_SIZE_MAX = 200
PAGE_SIZE_DEFAULT = 50

T = TypeVar("T")
_Row = TypeVar("_Row")

# Amounts travel as decimal strings: wei exceed what a JSON number holds exactly.
AmountText = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,40}$")]
Address = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AssetId = Annotated[str, StringConstraints(min_length=1, max_length=32)]
# Every integer of a request body is a JSON integer: not true, not 1.0e3, not "42"
# (amounts, which may pass 2**53, are AmountText instead).
Integer = Annotated[int, StrictMode()]


# RFC 3339, and nothing else: not seconds since 1970, not a date alone, not a space for
# the T, not seven digits of a second cut to six. The offset may be left out here: the
# ledger then refuses the time as naive (``time_naive``), where a time's zone matters.
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
_OFFSET = r"(Z|[+-][0-9]{2}:[0-9]{2})"
_RFC3339 = re.compile(f"{_STAMP}{_OFFSET}?")
_OFFSET_MISSING = "a time is RFC 3339 text with its offset, e.g. 2027-03-01T12:00:00Z"


def _time_text(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value  # parsed (and a day that does not exist refused) as a datetime
    raise ValueError("a time is RFC 3339 text, e.g. 2027-03-01T12:00:00Z")


def _zoned_time_text(value: object) -> object:
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(1) is None:
        raise ValueError(_OFFSET_MISSING)
    return value


def _time_schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": f"^{pattern}$"}, mode="validation"
    )


# A time in a request: RFC 3339 text (a datetime, from Python callers); one without its
# offset reaches the ledger, which refuses it ``time_naive``.
Time = Annotated[datetime, BeforeValidator(_time_text), _time_schema(_RFC3339.pattern)]
# A time whose offset the request must give (a deadline, an expiry): 422 without it.
ZonedTime = Annotated[
    datetime, BeforeValidator(_zoned_time_text), _time_schema(f"{_STAMP}{_OFFSET}")
]


def amount_text(value: int) -> str:
    """An amount in its wire form."""
    return str(value)


class Strict(BaseModel):
    """Request bodies refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first; pass ``next_cursor`` back for the next page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, max_length=64)

    @classmethod
    def of(
        cls, items: list[T], found: Sequence[_Row], limit: int, cursor: Callable[[_Row], object]
    ) -> Page[T]:
        """``items`` (made from the rows ``found``) as a page: a full one may have more
        after it, from its last row's ``cursor``."""
        after = str(cursor(found[-1])) if found and len(found) == limit else None
        return cls(items=items, next_cursor=after)
