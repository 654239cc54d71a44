"""Autopay enrollment through a processor's hosted page (Stripe Checkout, setup mode).

Revision ID: 0015_autopay_enrollment
Revises: 0014_webhook_rotation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import secure_new_tenant_tables

revision = "0015_autopay_enrollment"
down_revision = "0014_webhook_rotation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autopay_enrollment",
        sa.Column("guarantor_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("processor", sa.String(length=16), nullable=False),
        sa.Column("processor_customer_id", sa.String(length=120), nullable=False),
        sa.Column("processor_session_id", sa.String(length=120), nullable=False),
        sa.Column("processor_setup_id", sa.String(length=120), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_method_id", sa.Uuid(), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["guarantor_id"], ["guarantor.id"],
                                name=op.f("fk_autopay_enrollment_guarantor_id_guarantor"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_id"], ["payment_plan.id"],
                                name=op.f("fk_autopay_enrollment_plan_id_payment_plan"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["payment_method_id"], ["saved_payment_method.id"],
            name=op.f("fk_autopay_enrollment_payment_method_id_saved_payment_method"),
            ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"],
                                name=op.f("fk_autopay_enrollment_organization_id_organization"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_autopay_enrollment")),
        sa.UniqueConstraint("processor", "processor_session_id",
                            name=op.f("uq_autopay_enrollment_processor_processor_session_id")),
    )
    op.create_index(op.f("ix_autopay_enrollment_organization_id"), "autopay_enrollment",
                    ["organization_id"], unique=False)
    op.create_index("ix_autopay_enrollment_org_plan", "autopay_enrollment",
                    ["organization_id", "plan_id"], unique=False)
    op.create_index("ix_autopay_enrollment_org_guarantor", "autopay_enrollment",
                    ["organization_id", "guarantor_id"], unique=False)
    secure_new_tenant_tables(["autopay_enrollment"])


def downgrade() -> None:
    op.drop_index("ix_autopay_enrollment_org_guarantor", table_name="autopay_enrollment")
    op.drop_index("ix_autopay_enrollment_org_plan", table_name="autopay_enrollment")
    op.drop_index(op.f("ix_autopay_enrollment_organization_id"),
                  table_name="autopay_enrollment")
    op.drop_table("autopay_enrollment")
