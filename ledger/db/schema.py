"""The tables, as SQLAlchemy 2 typed mappings. Alembic migrations build exactly this.

``journal_entries``, ``journal_postings`` and ``journal_hold_changes`` are the journal:
append-only, refused UPDATE and DELETE by triggers. Everything else here is
materialized from the journal in the same transaction (balances, holds) or is
registry data whose every change is also an entry (members, assets, documents,
sightings). Currencies are reference data seeded by the migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.db.types import Amount, UTCDateTime

__all__ = [
    "Account",
    "Asset",
    "AssetDocument",
    "Balance",
    "Base",
    "Currency",
    "Hold",
    "JournalEntry",
    "JournalHoldChange",
    "JournalPosting",
    "Member",
    "Sighting",
    "table",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The Core table behind a mapped class, typed for Core statements."""
    return cast(Table, model.__table__)


class Currency(Base):
    __tablename__ = "currencies"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    decimals: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(64))


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    reverses: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("holder", "instrument"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    instrument: Mapped[str] = mapped_column(String(32), index=True)


class JournalPosting(Base):
    __tablename__ = "journal_postings"
    __table_args__ = (Index(None, "account_id", "seq"),)

    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq"), primary_key=True)
    idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Amount)


class JournalHoldChange(Base):
    __tablename__ = "journal_hold_changes"

    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq"), primary_key=True)
    idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    hold_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    op: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(Amount)


class Balance(Base):
    """Materialized balance of an account: a cache of its postings, kept in step."""

    __tablename__ = "balances"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(Amount)
    held: Mapped[int] = mapped_column(Amount)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """Materialized hold: an amount reserved on an account until consumed or released."""

    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Amount)
    remaining: Mapped[int] = mapped_column(Amount)
    placed_seq: Mapped[int] = mapped_column(BigInteger)
    closed_seq: Mapped[int | None] = mapped_column(BigInteger)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    registered_seq: Mapped[int] = mapped_column(BigInteger)


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(17), primary_key=True)
    make: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(128))
    total_units: Mapped[int] = mapped_column(BigInteger)
    legal_framework: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(64))
    registered_seq: Mapped[int] = mapped_column(BigInteger)


class AssetDocument(Base):
    __tablename__ = "asset_documents"
    __table_args__ = (UniqueConstraint("asset_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    title: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_seq: Mapped[int] = mapped_column(BigInteger)


class Sighting(Base):
    """One entry of an asset's tracking history: seen when, where, by whom, with a photo."""

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(128))
    reporter: Mapped[str] = mapped_column(String(42))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    recorded_seq: Mapped[int] = mapped_column(BigInteger)
