"""access: API keys with an expiry, and the service's own secrets

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:16:00.000000

``service_secrets`` holds secrets every worker shares. The first, ``siwe``, keys the
HMAC that makes sign-in challenges checkable without storing them; it is made here, once,
from the operating system's random source.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ledger.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", ledger.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    service_secrets = op.create_table(
        "service_secrets",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_secrets")),
    )
    op.bulk_insert(service_secrets, [{"name": "siwe", "secret": secrets.token_hex(32)}])


def downgrade() -> None:
    op.drop_table("service_secrets")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
