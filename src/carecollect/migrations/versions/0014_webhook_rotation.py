"""Webhook signing-secret rotation and manual redelivery.

`webhook_endpoint.previous_secret` (sealed) keeps signing beside the new secret until
`previous_secret_expires_at`, so a receiver can switch secrets without missing a delivery;
`webhook_delivery.attempt_limit` lets a redelivered delivery have a fresh attempt budget.

Revision ID: 0014_webhook_rotation
Revises: 0013_org_settings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_webhook_rotation"
down_revision = "0013_org_settings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoint") as batch:
        batch.add_column(sa.Column("previous_secret", sa.LargeBinary(), nullable=True))
        batch.add_column(
            sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("webhook_delivery") as batch:
        batch.add_column(sa.Column("attempt_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery") as batch:
        batch.drop_column("attempt_limit")
    with op.batch_alter_table("webhook_endpoint") as batch:
        batch.drop_column("secret_rotated_at")
        batch.drop_column("previous_secret_expires_at")
        batch.drop_column("previous_secret")
