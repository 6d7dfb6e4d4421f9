"""outputs: periods, entitlements, buy-outs, votes and work

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 01:30:00.930504

What an asset's units give their holders (issue 14): the kinds of output an asset makes,
production periods with their output requests, production and the entitlements it gives,
and deliveries, waivers and sell-backs against them (``output_*``); buy-out plans, their
sellers and installments (``buyout_*``); proposals and ballots (``vote_*``); and the work
members log (``work_logs``). Each row is written in the transaction of its journal entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "buyout_plans",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.Column("state_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_buyout_plans_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["currency"], ["currencies.code"], name=op.f("fk_buyout_plans_currency_currencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buyout_plans")),
    )
    with op.batch_alter_table("buyout_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_buyout_plans_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_buyout_plans_buyer"), ["buyer"], unique=False)

    op.create_table(
        "output_kinds",
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), server_default="", nullable=False),
        sa.Column("defined_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_output_kinds_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("asset_id", "name", name=op.f("pk_output_kinds")),
    )
    op.create_table(
        "output_periods",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("starts_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("record_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("request_deadline", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_seq", sa.BigInteger(), nullable=False),
        sa.Column("produced_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_output_periods_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output_periods")),
        sa.UniqueConstraint("asset_id", "name", name=op.f("uq_output_periods_asset_id_name")),
    )
    with op.batch_alter_table("output_periods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_output_periods_asset_id"), ["asset_id"], unique=False)

    op.create_table(
        "output_terms",
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("operator_share_bp", sa.Integer(), nullable=False),
        sa.Column("set_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_output_terms_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_output_terms")),
    )
    op.create_table(
        "buyout_installments",
        sa.Column("plan_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("due_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("price_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("settled_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["buyout_plans.id"],
            name=op.f("fk_buyout_installments_plan_id_buyout_plans"),
        ),
        sa.PrimaryKeyConstraint("plan_id", "number", name=op.f("pk_buyout_installments")),
    )
    with op.batch_alter_table("buyout_installments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_buyout_installments_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )

    op.create_table(
        "buyout_sellers",
        sa.Column("plan_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=True),
        sa.Column("accepted_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["buyout_plans.id"], name=op.f("fk_buyout_sellers_plan_id_buyout_plans")
        ),
        sa.PrimaryKeyConstraint("plan_id", "seller", name=op.f("pk_buyout_sellers")),
    )
    with op.batch_alter_table("buyout_sellers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_buyout_sellers_seller"), ["seller"], unique=False)

    op.create_table(
        "output_entitlements",
        sa.Column("period_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("rights_units", sa.BigInteger(), nullable=False),
        sa.Column("entitled", sa.BigInteger(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("waived", sa.BigInteger(), nullable=False),
        sa.Column("sold_back", sa.BigInteger(), nullable=False),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["output_periods.id"],
            name=op.f("fk_output_entitlements_period_id_output_periods"),
        ),
        sa.PrimaryKeyConstraint("period_id", "kind", "holder", name=op.f("pk_output_entitlements")),
    )
    op.create_table(
        "output_production",
        sa.Column("period_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("operator_quantity", sa.BigInteger(), nullable=False),
        sa.Column("buyback_currency", sa.String(length=10), nullable=True),
        sa.Column(
            "buyback_price_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=True
        ),
        sa.Column("recorded_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["output_periods.id"],
            name=op.f("fk_output_production_period_id_output_periods"),
        ),
        sa.PrimaryKeyConstraint("period_id", "kind", name=op.f("pk_output_production")),
    )
    op.create_table(
        "output_requests",
        sa.Column("period_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("weight_bp", sa.Integer(), nullable=False),
        sa.Column("rights_units", sa.BigInteger(), nullable=False),
        sa.Column("requested_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["output_periods.id"],
            name=op.f("fk_output_requests_period_id_output_periods"),
        ),
        sa.PrimaryKeyConstraint("period_id", "holder", "kind", name=op.f("pk_output_requests")),
    )
    op.create_table(
        "output_settlements",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("period_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("cash_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=True),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["output_periods.id"],
            name=op.f("fk_output_settlements_period_id_output_periods"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_output_settlements")),
    )
    with op.batch_alter_table("output_settlements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_output_settlements_period_id_holder"),
            ["period_id", "holder"],
            unique=False,
        )

    op.create_table(
        "vote_proposals",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("period_id", sa.BigInteger(), nullable=True),
        sa.Column("proposer", sa.String(length=42), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), server_default="", nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("record_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("quorum_bp", sa.Integer(), nullable=False),
        sa.Column("threshold_bp", sa.Integer(), nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_vote_proposals_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["output_periods.id"],
            name=op.f("fk_vote_proposals_period_id_output_periods"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vote_proposals")),
    )
    with op.batch_alter_table("vote_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vote_proposals_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_vote_proposals_period_id"), ["period_id"], unique=False
        )

    op.create_table(
        "work_logs",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("period_id", sa.BigInteger(), nullable=False),
        sa.Column("member", sa.String(length=42), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("worked_on", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=42), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_work_logs_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(
            ["period_id"], ["output_periods.id"], name=op.f("fk_work_logs_period_id_output_periods")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_work_logs")),
    )
    with op.batch_alter_table("work_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_logs_period_id_member"), ["period_id", "member"], unique=False
        )

    op.create_table(
        "vote_ballots",
        sa.Column("proposal_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("voter", sa.String(length=42), nullable=False),
        sa.Column("option", sa.String(length=64), nullable=False),
        sa.Column("weight_units", sa.BigInteger(), nullable=False),
        sa.Column("cast_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["vote_proposals.id"],
            name=op.f("fk_vote_ballots_proposal_id_vote_proposals"),
        ),
        sa.PrimaryKeyConstraint("proposal_id", "voter", name=op.f("pk_vote_ballots")),
    )


def downgrade() -> None:
    op.drop_table("vote_ballots")
    with op.batch_alter_table("work_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_logs_period_id_member"))

    op.drop_table("work_logs")
    with op.batch_alter_table("vote_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vote_proposals_period_id"))
        batch_op.drop_index(batch_op.f("ix_vote_proposals_asset_id"))

    op.drop_table("vote_proposals")
    with op.batch_alter_table("output_settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_output_settlements_period_id_holder"))

    op.drop_table("output_settlements")
    op.drop_table("output_requests")
    op.drop_table("output_production")
    op.drop_table("output_entitlements")
    with op.batch_alter_table("buyout_sellers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_buyout_sellers_seller"))

    op.drop_table("buyout_sellers")
    with op.batch_alter_table("buyout_installments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_buyout_installments_state_next_attempt_at"))

    op.drop_table("buyout_installments")
    op.drop_table("output_terms")
    with op.batch_alter_table("output_periods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_output_periods_asset_id"))

    op.drop_table("output_periods")
    op.drop_table("output_kinds")
    with op.batch_alter_table("buyout_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_buyout_plans_buyer"))
        batch_op.drop_index(batch_op.f("ix_buyout_plans_asset_id"))

    op.drop_table("buyout_plans")
