"""Shapes shared by every resource: amounts as decimal strings, pages with cursors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
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


def _time_text(value: object) -> object:
    if isinstance(value, str | datetime):
        return value
    raise ValueError("a time is text in RFC 3339 form, e.g. 2027-01-01T00:00:00Z")


# A time in a request body: RFC 3339 text only (not a number of seconds).
Time = Annotated[datetime, BeforeValidator(_time_text)]


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
