"""journal entry ids without a unique index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 19:20:00.000000

An entry's id is the UUIDv5 of its idempotency key, which has a unique index of its
own, so the index on the id only repeated that guarantee; no query looks entries up
by id. Being random, it cost a B-tree insert at a random place for every entry.

SQLite cannot drop a constraint declared in CREATE TABLE, so there the table is
rebuilt. Its rows are parked in a plain table, the old table dropped and the new one
filled again, all in the migration's one transaction, with foreign keys checked at
commit (``defer_foreign_keys``): dropping the table orphans every posting and hold
change for a moment, and refilling it must adopt every one of them again, or the
commit fails and nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types
from ledger.db.triggers import create_append_only_triggers, drop_append_only_triggers

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "journal_entries"
_PARKED = "_journal_entries_rebuild"
_ID_UNIQUE = "uq_journal_entries_id"
_COLUMNS = (
    "seq, id, kind, payload, effective_at, recorded_at, actor, idempotency_key,"
    " request_hash, reverses, prev_hash, hash"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(unique_id=False)
    else:
        op.drop_constraint(_ID_UNIQUE, _TABLE, type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(unique_id=True)
    else:
        op.create_unique_constraint(_ID_UNIQUE, _TABLE, ["id"])


def _rebuild_on_sqlite(*, unique_id: bool) -> None:
    bind = op.get_bind()
    # The table's append-only triggers go with it (dropping a table fires none): take
    # the journal's triggers all down and put them all back, made the one way.
    drop_append_only_triggers(bind)
    op.execute(f"CREATE TABLE {_PARKED} AS SELECT {_COLUMNS} FROM {_TABLE}")
    op.execute("PRAGMA defer_foreign_keys=ON")  # until this transaction commits
    op.drop_table(_TABLE)
    _create_journal_entries(unique_id=unique_id)
    op.execute(f"INSERT INTO {_TABLE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {_PARKED} ORDER BY seq")
    op.drop_table(_PARKED)
    create_append_only_triggers(bind)


def _create_journal_entries(*, unique_id: bool) -> None:
    """The table as revision 0001 made it, with or without the unique index on ``id``."""
    unique_on_id = [sa.UniqueConstraint("id", name=_ID_UNIQUE)] if unique_id else []
    op.create_table(
        _TABLE,
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("effective_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("reverses", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_journal_entries"),
        *unique_on_id,
        sa.UniqueConstraint("idempotency_key", name="uq_journal_entries_idempotency_key"),
        sa.UniqueConstraint("reverses", name="uq_journal_entries_reverses"),
    )
    op.create_index("ix_journal_entries_kind", _TABLE, ["kind"], unique=False)
    op.create_index("ix_journal_entries_recorded_at", _TABLE, ["recorded_at"], unique=False)
