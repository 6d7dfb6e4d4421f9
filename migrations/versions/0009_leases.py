"""leases: lease books per term, their orders and the leases they matched

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:10:00.000000

A lease book is a book of an (asset, currency) with a ``term``; the trading book's term
is empty. The books, the order log and the orders gain the term (in the keys of the
first two); each asset's terms gain the period its lease terms fall on; the matches of
lease books are ``market_leases``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TERM = sa.String(length=21)


def upgrade() -> None:
    with op.batch_alter_table("market_terms", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_period", sa.String(length=7), server_default="quarter", nullable=False)
        )
    with op.batch_alter_table("market_books", schema=None) as batch_op:
        batch_op.add_column(sa.Column("term", _TERM, server_default="", nullable=False))
        batch_op.drop_constraint("pk_market_books", type_="primary")
        batch_op.create_primary_key("pk_market_books", ["asset_id", "currency", "term"])
    with op.batch_alter_table("market_commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("term", _TERM, server_default="", nullable=False))
        batch_op.drop_constraint("pk_market_commands", type_="primary")
        batch_op.create_primary_key("pk_market_commands", ["seq", "asset_id", "currency", "term"])
    with op.batch_alter_table("market_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("term", _TERM, server_default="", nullable=False))
        batch_op.drop_index(
            "ix_market_orders_open_depth",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.create_index(
            "ix_market_orders_open_depth",
            ["asset_id", "currency", "term", "side", "price_minor"],
            unique=False,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
    op.create_table(
        "market_leases",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("term", _TERM, nullable=False),
        sa.Column("starts_ms", sa.BigInteger(), nullable=False),
        sa.Column("ends_ms", sa.BigInteger(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("qty_units", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("taker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("lessor", sa.String(length=42), nullable=False),
        sa.Column("lessee", sa.String(length=42), nullable=False),
        sa.Column("taker_side", sa.String(length=4), nullable=False),
        sa.Column("executed_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_leases")),
    )
    with op.batch_alter_table("market_leases", schema=None) as batch_op:
        batch_op.create_index("ix_market_leases_asset_ends", ["asset_id", "ends_ms"], unique=False)
        batch_op.create_index(
            "ix_market_leases_book", ["asset_id", "currency", "term", "id"], unique=False
        )
        batch_op.create_index("ix_market_leases_lessee", ["lessee", "id"], unique=False)
        batch_op.create_index("ix_market_leases_lessor", ["lessor", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("market_leases")
    with op.batch_alter_table("market_orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_market_orders_open_depth",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.create_index(
            "ix_market_orders_open_depth",
            ["asset_id", "currency", "side", "price_minor"],
            unique=False,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_column("term")
    with op.batch_alter_table("market_commands", schema=None) as batch_op:
        batch_op.drop_constraint("pk_market_commands", type_="primary")
        batch_op.create_primary_key("pk_market_commands", ["seq", "asset_id", "currency"])
        batch_op.drop_column("term")
    with op.batch_alter_table("market_books", schema=None) as batch_op:
        batch_op.drop_constraint("pk_market_books", type_="primary")
        batch_op.create_primary_key("pk_market_books", ["asset_id", "currency"])
        batch_op.drop_column("term")
    with op.batch_alter_table("market_terms", schema=None) as batch_op:
        batch_op.drop_column("lease_period")
