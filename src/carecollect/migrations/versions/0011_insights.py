"""Insights: aggregate tables and indexes for the dashboards.

Revision ID: 0011_insights
Revises: 0010_integrations
"""

from __future__ import annotations

revision = "0011_insights"
down_revision = "0010_integrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reserved slot: filled in by the change that adds these tables. New tenant tables
    # call carecollect.migrations.security.secure_new_tenant_tables(...) at the end.
    pass


def downgrade() -> None:
    pass
