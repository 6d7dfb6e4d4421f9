"""funding: projects listed by finance nodes, and their documents

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:10:00.000000

A project's id is the seq of the ``project.create`` entry that listed it, so the
journal alone names every project.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("lister", sa.String(length=42), nullable=False),
        sa.Column("organizer", sa.String(length=42), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("asset_id", sa.String(length=17), nullable=False),
        sa.Column("legal_framework", sa.String(length=32), nullable=False),
        sa.Column("jurisdiction", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("goal_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False),
        sa.Column("deadline", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "min_pledge_minor", ledger.db.types.Amount(precision=78, scale=0), nullable=False
        ),
        sa.Column(
            "organizer_contribution_minor",
            ledger.db.types.Amount(precision=78, scale=0),
            nullable=False,
        ),
        sa.Column("total_units", sa.BigInteger(), nullable=False),
        sa.Column("retained_min_units", sa.BigInteger(), nullable=False),
        sa.Column("operator_share_bp", sa.Integer(), nullable=False),
        sa.Column("manual_pledges_allowed", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("registered_seq", sa.BigInteger(), nullable=False),
        sa.Column("state_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["currency"], ["currencies.code"], name=op.f("fk_projects_currency_currencies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_projects_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_projects_state_id"), ["state", "id"], unique=False)
    op.create_table(
        "project_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_documents_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_documents")),
        sa.UniqueConstraint(
            "project_id", "sha256", name=op.f("uq_project_documents_project_id_sha256")
        ),
    )


def downgrade() -> None:
    op.drop_table("project_documents")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_projects_state_id"))
        batch_op.drop_index(batch_op.f("ix_projects_asset_id"))
    op.drop_table("projects")
