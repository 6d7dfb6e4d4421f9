"""funding: pledges, the chain mirror and its lease

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:19:21.731179

Projects gain their escrow and the ledger's totals; contributions per contributor (the
issue of units reads them), manual pledges, and the chain mirror's own state: the events
it recorded, its cursor, the recent block hashes that reveal a reorganisation, the factory
it deploys through, and the lease that keeps it to one writer.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_blocks",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_chain_blocks")),
    )
    op.create_table(
        "chain_cursors",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_factories",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("creator", sa.String(length=42), nullable=False),
        sa.Column("deployed_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_factories")),
    )
    op.create_table(
        "service_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_leases")),
    )
    op.create_table(
        "chain_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("amount", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("undone_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_chain_events_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_events")),
        sa.UniqueConstraint(
            "chain_id",
            "tx_hash",
            "log_index",
            "block_hash",
            name=op.f("uq_chain_events_chain_id_tx_hash_log_index_block_hash"),
        ),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chain_events_chain_id_block_number"),
            ["chain_id", "block_number"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_chain_events_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "manual_pledges",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("contributor", sa.String(length=42), nullable=False),
        sa.Column("amount_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=42), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_manual_pledges_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_manual_pledges")),
        sa.UniqueConstraint(
            "project_id",
            "evidence_sha256",
            name=op.f("uq_manual_pledges_project_id_evidence_sha256"),
        ),
    )
    with op.batch_alter_table("manual_pledges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_manual_pledges_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "project_contributions",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("contributor", sa.String(length=42), nullable=False),
        sa.Column("chain_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("manual_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_contributions_project_id_projects"),
        ),
        sa.PrimaryKeyConstraint("project_id", "contributor", name=op.f("pk_project_contributions")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("escrow_address", sa.String(length=42), nullable=True))
        batch_op.add_column(
            sa.Column(
                "escrow_goal_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=True
            )
        )
        batch_op.add_column(sa.Column("escrow_block", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "chain_total_minor",
                ledger.db.types.Amount(precision=78, scale=0),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "manual_total_minor",
                ledger.db.types.Amount(precision=78, scale=0),
                server_default="0",
                nullable=False,
            )
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_projects_escrow_address"), ["escrow_address"]
        )
        batch_op.create_unique_constraint(batch_op.f("uq_projects_chain_key"), ["chain_key"])


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_projects_chain_key"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_projects_escrow_address"), type_="unique")
        batch_op.drop_column("manual_total_minor")
        batch_op.drop_column("chain_total_minor")
        batch_op.drop_column("escrow_block")
        batch_op.drop_column("escrow_goal_minor")
        batch_op.drop_column("escrow_address")
        batch_op.drop_column("chain_id")
        batch_op.drop_column("chain_key")

    op.drop_table("project_contributions")
    with op.batch_alter_table("manual_pledges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_manual_pledges_project_id"))

    op.drop_table("manual_pledges")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_events_project_id"))
        batch_op.drop_index(batch_op.f("ix_chain_events_chain_id_block_number"))

    op.drop_table("chain_events")
    op.drop_table("service_leases")
    op.drop_table("chain_factories")
    op.drop_table("chain_cursors")
    op.drop_table("chain_blocks")
