"""photo uploads: who uploaded which photo, for the per-member storage quota

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "photo_uploads",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", ledger.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["photos.sha256"], name=op.f("fk_photo_uploads_sha256_photos")
        ),
        sa.PrimaryKeyConstraint("address", "sha256", name=op.f("pk_photo_uploads")),
    )


def downgrade() -> None:
    op.drop_table("photo_uploads")
