"""Organization settings: the stored compliance overlay and organization template overrides.

Revision ID: 0013_org_settings
Revises: 0012_coverage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import secure_new_tenant_tables

revision = "0013_org_settings"
down_revision = "0012_coverage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization_overlay",
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"],
                                name=op.f("fk_organization_overlay_organization_id_organization"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_overlay")),
        sa.UniqueConstraint("organization_id",
                            name=op.f("uq_organization_overlay_organization_id")),
    )
    op.create_index(op.f("ix_organization_overlay_organization_id"), "organization_overlay",
                    ["organization_id"], unique=False)
    op.create_table(
        "organization_template",
        sa.Column("template_key", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("surfaces", sa.JSON(), nullable=False),
        sa.Column("phone_verified_and_consented", sa.Boolean(), nullable=False),
        sa.Column("email_risk_acknowledged", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"],
                                name=op.f("fk_organization_template_organization_id_organization"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization_template")),
        sa.UniqueConstraint("organization_id", "template_key", "language", "version",
                            name="uq_organization_template_version"),
    )
    op.create_index(op.f("ix_organization_template_organization_id"), "organization_template",
                    ["organization_id"], unique=False)
    secure_new_tenant_tables(["organization_overlay", "organization_template"])


def downgrade() -> None:
    op.drop_index(op.f("ix_organization_template_organization_id"),
                  table_name="organization_template")
    op.drop_table("organization_template")
    op.drop_index(op.f("ix_organization_overlay_organization_id"),
                  table_name="organization_overlay")
    op.drop_table("organization_overlay")
