"""Lists of values handed to the database driver: in chunks an ``IN`` list can take,
or, on PostgreSQL, as the text of one array parameter."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

__all__ = [
    "IN_CHUNK",
    "chunks",
    "pg_int_array",
    "pg_nullable_int_array",
    "pg_nullable_text_array",
    "pg_text_array",
]

IN_CHUNK = 499  # parameters per statement: old SQLite builds allow 999 at most

_T = TypeVar("_T")


def chunks(values: Sequence[_T], size: int = IN_CHUNK) -> Iterator[Sequence[_T]]:
    """``values`` in consecutive slices of at most ``size``."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def pg_int_array(values: Iterable[int]) -> str:
    """The text of a PostgreSQL array of integers, to be sent as one parameter and cast
    (``%s::bigint[]``). psycopg adapts a list element by element in Python, which costs
    several times more than joining the digits: a batch sends thousands of them."""
    return "{" + ",".join(map(str, values)) + "}"


def pg_nullable_int_array(values: Iterable[int | None]) -> str:
    """``pg_int_array`` of integers some of which are None (``NULL`` in the array)."""
    return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"


def pg_text_array(values: Iterable[str]) -> str:
    """The text of a PostgreSQL array of strings (see ``pg_int_array``). Every element
    is quoted, its backslashes and double quotes escaped, so that any text, commas,
    braces, ``NULL`` and white space included, reads back as itself."""
    return (
        "{"
        + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values])
        + "}"
    )


def pg_nullable_text_array(values: Iterable[str | None]) -> str:
    """``pg_text_array`` of strings some of which are None (``NULL`` in the array)."""
    return (
        "{"
        + ",".join(
            [
                "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                for v in values
            ]
        )
        + "}"
    )
