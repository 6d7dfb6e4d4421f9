"""Shapes shared by every resource: amounts as decimal strings, pages with cursors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "PAGE_SIZE_DEFAULT",
    "PAGE_SIZE_MAX",
    "Address",
    "AmountText",
    "AssetId",
    "Page",
    "Strict",
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
