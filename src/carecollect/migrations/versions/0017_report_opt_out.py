"""A staff user's choice not to receive the monthly insights report by e-mail.

Revision ID: 0017_report_opt_out
Revises: 0016_import_run
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_report_opt_out"
down_revision = "0016_import_run"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_user") as batch:
        batch.add_column(
            sa.Column(
                "monthly_report_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_user") as batch:
        batch.drop_column("monthly_report_opt_out")
