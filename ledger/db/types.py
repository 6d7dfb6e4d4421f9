"""Column types that keep ledger values exact on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

from ledger.core.timestamps import format_time

__all__ = ["Amount", "UTCDateTime", "amount_param", "time_param"]


class Amount(TypeDecorator[int]):
    """A signed integer of up to 78 digits (wei sums exceed 64 bits).

    PostgreSQL stores ``NUMERIC(78, 0)``. SQLite's integers stop at 64 bits and its
    NUMERIC affinity would round larger ones to floats, so there it is decimal text.
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(80))
        return dialect.type_descriptor(Numeric(78, 0))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime, stored naive-in-UTC where the database has no zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The write path hands rows to the driver's executemany directly (SQLAlchemy's per-row
# parameter processing costs more than the insert). These give the same stored forms
# as the types above, so everything reads back through them unchanged.


def _sqlite_time(value: datetime) -> str:
    """``value`` as SQLite keeps it: ``strftime("%Y-%m-%d %H:%M:%S.%f")`` in UTC, taken
    from the time's journal text (which sealing the entry has made and cached: every
    entry has a time of its own), except where the two would differ (a naive time, a
    year before 1000, which ``%Y`` does not pad)."""
    if value.tzinfo is not None:
        text = format_time(value)
        if text[0] != "0":
            return f"{text[:10]} {text[11:-1]}"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _same(value: Any) -> Any:
    return value


def amount_param(dialect_name: str) -> Any:
    """The driver parameter for an ``Amount`` value on this dialect (a converter)."""
    return str if dialect_name == "sqlite" else _same


def time_param(dialect_name: str) -> Any:
    """The driver parameter for a ``UTCDateTime`` value on this dialect (a converter)."""
    return _sqlite_time if dialect_name == "sqlite" else _same
