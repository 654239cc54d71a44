"""Insights: the rebuildable rollup (cells and their watermark), insight settings, channel
costs, and the indexes the insight queries need on the ledger, enrollments and attempts.

All four tables are tenant tables (row-level security on PostgreSQL).

Revision ID: 0011_insights
Revises: 0010_integrations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import secure_new_tenant_tables

revision = "0011_insights"
down_revision = "0010_integrations"
branch_labels = None
depends_on = None

TENANT_TABLES = [
    "insight_rollup_cell",
    "insight_rollup_state",
    "insight_settings",
    "insight_channel_cost",
]


def _organization_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"], ["organization.id"],
        name=op.f(f"fk_{table}_organization_id_organization"), ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "insight_rollup_cell",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=24), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=True),
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        _organization_fk("insight_rollup_cell"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_rollup_cell")),
    )
    op.create_index(
        "ix_insight_rollup_cell_lookup", "insight_rollup_cell",
        ["organization_id", "metric", "period", "location_id", "bucket"], unique=True,
    )
    op.create_index(
        op.f("ix_insight_rollup_cell_organization_id"), "insight_rollup_cell",
        ["organization_id"],
    )

    op.create_table(
        "insight_rollup_state",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("watermark_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("aging_days", sa.Text(), nullable=False),
        sa.Column("agency_threshold_days", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _organization_fk("insight_rollup_state"),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_insight_rollup_state")),
    )

    op.create_table(
        "insight_settings",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("agency_threshold_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _organization_fk("insight_settings"),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_insight_settings")),
    )

    op.create_table(
        "insight_channel_cost",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("cost_per_attempt_millicents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _organization_fk("insight_channel_cost"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_channel_cost")),
    )
    op.create_index(
        "ix_insight_channel_cost_org_channel", "insight_channel_cost",
        ["organization_id", "channel", "effective_on"], unique=True,
    )
    op.create_index(
        op.f("ix_insight_channel_cost_organization_id"), "insight_channel_cost",
        ["organization_id"],
    )

    op.create_index(
        "ix_ledger_entry_org_created", "ledger_entry", ["organization_id", "created_at"]
    )
    op.create_index(
        "ix_ledger_entry_org_kind_posted", "ledger_entry",
        ["organization_id", "kind", "posted_at"],
    )
    op.create_index(
        "ix_campaign_enrollment_org_created", "campaign_enrollment",
        ["organization_id", "created_at"],
    )
    op.create_index(
        "ix_outreach_attempt_org_scheduled", "outreach_attempt",
        ["organization_id", "scheduled_for"],
    )
    flagged = sa.text("state = 'blocked' OR next_allowed_at IS NOT NULL")
    op.create_index(
        "ix_outreach_attempt_org_flagged", "outreach_attempt",
        ["organization_id", "scheduled_for"], postgresql_where=flagged, sqlite_where=flagged,
    )

    secure_new_tenant_tables(TENANT_TABLES)


def downgrade() -> None:
    op.drop_index("ix_outreach_attempt_org_flagged", table_name="outreach_attempt")
    op.drop_index("ix_outreach_attempt_org_scheduled", table_name="outreach_attempt")
    op.drop_index("ix_campaign_enrollment_org_created", table_name="campaign_enrollment")
    op.drop_index("ix_ledger_entry_org_kind_posted", table_name="ledger_entry")
    op.drop_index("ix_ledger_entry_org_created", table_name="ledger_entry")
    # Dropping a table drops its indexes and row-level security policies with it.
    for table in reversed(TENANT_TABLES):
        op.drop_table(table)
