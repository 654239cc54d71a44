"""Insurance coverage of patients (FHIR Coverage import); payer and identifiers sealed.

Revision ID: 0012_coverage
Revises: 0011_insights
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import secure_new_tenant_tables

revision = "0012_coverage"
down_revision = "0011_insights"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("payer_name", sa.LargeBinary(), nullable=False),
        sa.Column("member_id", sa.LargeBinary(), nullable=True),
        sa.Column("group_number", sa.LargeBinary(), nullable=True),
        sa.Column("period_start", sa.LargeBinary(), nullable=True),
        sa.Column("period_end", sa.LargeBinary(), nullable=True),
        sa.Column("relationship", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("source_key", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"],
                                name=op.f("fk_coverage_organization_id_organization"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"],
                                name=op.f("fk_coverage_patient_id_patient"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverage")),
    )
    op.create_index("ix_coverage_org_source", "coverage", ["organization_id", "source_key"],
                    unique=True)
    op.create_index(op.f("ix_coverage_organization_id"), "coverage", ["organization_id"],
                    unique=False)
    op.create_index(op.f("ix_coverage_patient_id"), "coverage", ["patient_id"], unique=False)
    secure_new_tenant_tables(["coverage"])


def downgrade() -> None:
    op.drop_index(op.f("ix_coverage_patient_id"), table_name="coverage")
    op.drop_index(op.f("ix_coverage_organization_id"), table_name="coverage")
    op.drop_index("ix_coverage_org_source", table_name="coverage")
    op.drop_table("coverage")
