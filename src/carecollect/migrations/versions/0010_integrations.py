"""Integrations: outbound webhook endpoints and deliveries, OIDC sign-in identities.

Revision ID: 0010_integrations
Revises: 0009_portal
"""

from __future__ import annotations

revision = "0010_integrations"
down_revision = "0009_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reserved slot: filled in by the change that adds these tables. New tenant tables
    # call carecollect.migrations.security.secure_new_tenant_tables(...) at the end.
    pass


def downgrade() -> None:
    pass
