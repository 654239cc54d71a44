"""Patient portal: link tokens, verification attempts, portal sessions, patient requests.

Revision ID: 0009_portal
Revises: 0008_audit_grants
"""

from __future__ import annotations

revision = "0009_portal"
down_revision = "0008_audit_grants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reserved slot: filled in by the change that adds these tables. New tenant tables
    # call carecollect.migrations.security.secure_new_tenant_tables(...) at the end.
    pass


def downgrade() -> None:
    pass
