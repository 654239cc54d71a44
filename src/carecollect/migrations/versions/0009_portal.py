"""Patient portal: link tokens, verification attempts, portal sessions.

`portal_link` and `portal_session` are tenant tables (row-level security on PostgreSQL);
`portal_verification_attempt` is not: a guessed token belongs to no organization, and the
per-address rate limit counts across organizations. Only system sessions touch it.

Revision ID: 0009_portal
Revises: 0008_audit_grants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import (
    app_role,
    grant_tables,
    is_postgresql,
    secure_new_tenant_tables,
)

revision = "0009_portal"
down_revision = "0008_audit_grants"
branch_labels = None
depends_on = None

TENANT_TABLES = ["portal_link", "portal_session"]


def upgrade() -> None:
    op.create_table(
        "portal_link",
        sa.Column("guarantor_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guarantor_id"], ["guarantor.id"],
            name=op.f("fk_portal_link_guarantor_id_guarantor"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organization.id"],
            name=op.f("fk_portal_link_organization_id_organization"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_link_token_hash")),
    )
    op.create_index(
        "ix_portal_link_org_guarantor", "portal_link", ["organization_id", "guarantor_id"]
    )
    op.create_index(op.f("ix_portal_link_organization_id"), "portal_link", ["organization_id"])

    op.create_table(
        "portal_verification_attempt",
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_verification_attempt")),
    )
    op.create_index(
        "ix_portal_verification_attempt_client",
        "portal_verification_attempt", ["client_key", "attempted_at"],
    )
    op.create_index(
        "ix_portal_verification_attempt_link",
        "portal_verification_attempt", ["link_id", "attempted_at"],
    )

    op.create_table(
        "portal_session",
        sa.Column("guarantor_id", sa.Uuid(), nullable=False),
        sa.Column("link_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_secret", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("absolute_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=32), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guarantor_id"], ["guarantor.id"],
            name=op.f("fk_portal_session_guarantor_id_guarantor"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["portal_link.id"],
            name=op.f("fk_portal_session_link_id_portal_link"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organization.id"],
            name=op.f("fk_portal_session_organization_id_organization"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_session_token_hash")),
    )
    op.create_index(
        "ix_portal_session_org_guarantor", "portal_session", ["organization_id", "guarantor_id"]
    )
    op.create_index(
        op.f("ix_portal_session_organization_id"), "portal_session", ["organization_id"]
    )

    secure_new_tenant_tables(TENANT_TABLES)
    if is_postgresql():
        # Not a tenant table (no RLS); granted so a tenant transaction could write it too.
        grant_tables(["portal_verification_attempt"], app_role())


def downgrade() -> None:
    op.drop_index(op.f("ix_portal_session_organization_id"), table_name="portal_session")
    op.drop_index("ix_portal_session_org_guarantor", table_name="portal_session")
    op.drop_table("portal_session")
    op.drop_index(
        "ix_portal_verification_attempt_link", table_name="portal_verification_attempt"
    )
    op.drop_index(
        "ix_portal_verification_attempt_client", table_name="portal_verification_attempt"
    )
    op.drop_table("portal_verification_attempt")
    op.drop_index(op.f("ix_portal_link_organization_id"), table_name="portal_link")
    op.drop_index("ix_portal_link_org_guarantor", table_name="portal_link")
    op.drop_table("portal_link")
