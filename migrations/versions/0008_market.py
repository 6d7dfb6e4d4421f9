"""market: the order log, orders, trades, candles, books and trading terms

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 16:46:48.636516

The engine's tables: the order log it rebuilds its books from (``market_commands``), the
orders and trades as they stand, the candles kept as trades settle, the books that
exist and each asset's tick and lot.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "market_candles",
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("interval_s", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket_ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("open_minor", sa.BigInteger(), nullable=False),
        sa.Column("high_minor", sa.BigInteger(), nullable=False),
        sa.Column("low_minor", sa.BigInteger(), nullable=False),
        sa.Column("close_minor", sa.BigInteger(), nullable=False),
        sa.Column("volume_units", sa.BigInteger(), nullable=False),
        sa.Column("notional_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "asset_id", "currency", "interval_s", "bucket_ms", name=op.f("pk_market_candles")
        ),
    )
    op.create_table(
        "market_commands",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", "asset_id", "currency", name=op.f("pk_market_commands")),
    )
    op.create_table(
        "market_orders",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=6), nullable=False),
        sa.Column("time_in_force", sa.String(length=3), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=True),
        sa.Column("qty_units", sa.BigInteger(), nullable=False),
        sa.Column("spend_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=True),
        sa.Column("remaining_units", sa.BigInteger(), nullable=False),
        sa.Column("filled_units", sa.BigInteger(), nullable=False),
        sa.Column("filled_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("status", sa.String(length=9), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=True),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("self_trade", sa.String(length=13), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("hold_id", sa.String(length=64), nullable=False),
        sa.Column("placed_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_orders")),
    )
    with op.batch_alter_table("market_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_market_orders_open_depth",
            ["asset_id", "currency", "side", "price_minor"],
            unique=False,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.create_index("ix_market_orders_owner", ["owner", "id"], unique=False)

    op.create_table(
        "market_trades",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("qty_units", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("maker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("taker_order_id", sa.BigInteger(), nullable=False),
        sa.Column("maker_owner", sa.String(length=42), nullable=False),
        sa.Column("taker_owner", sa.String(length=42), nullable=False),
        sa.Column("taker_side", sa.String(length=4), nullable=False),
        sa.Column("executed_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_trades")),
    )
    with op.batch_alter_table("market_trades", schema=None) as batch_op:
        batch_op.create_index("ix_market_trades_book", ["asset_id", "currency", "id"], unique=False)
        batch_op.create_index("ix_market_trades_maker_order", ["maker_order_id"], unique=False)
        batch_op.create_index("ix_market_trades_maker_owner", ["maker_owner", "id"], unique=False)
        batch_op.create_index("ix_market_trades_taker_order", ["taker_order_id"], unique=False)
        batch_op.create_index("ix_market_trades_taker_owner", ["taker_owner", "id"], unique=False)

    op.create_table(
        "market_books",
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("opened_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_market_books_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["currency"], ["currencies.code"], name=op.f("fk_market_books_currency_currencies")
        ),
        sa.PrimaryKeyConstraint("asset_id", "currency", name=op.f("pk_market_books")),
    )
    op.create_table(
        "market_terms",
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("tick_size_minor", sa.BigInteger(), nullable=False),
        sa.Column("lot_size_units", sa.BigInteger(), nullable=False),
        sa.Column("set_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_market_terms_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_market_terms")),
    )


def downgrade() -> None:
    op.drop_table("market_terms")
    op.drop_table("market_books")
    with op.batch_alter_table("market_trades", schema=None) as batch_op:
        batch_op.drop_index("ix_market_trades_taker_owner")
        batch_op.drop_index("ix_market_trades_taker_order")
        batch_op.drop_index("ix_market_trades_maker_owner")
        batch_op.drop_index("ix_market_trades_maker_order")
        batch_op.drop_index("ix_market_trades_book")

    op.drop_table("market_trades")
    with op.batch_alter_table("market_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_market_orders_owner")
        batch_op.drop_index(
            "ix_market_orders_open_depth",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.drop_table("market_orders")
    op.drop_table("market_commands")
    op.drop_table("market_candles")
