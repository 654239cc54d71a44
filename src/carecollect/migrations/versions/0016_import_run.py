"""Imports submitted through the REST API (`import_run`).

Revision ID: 0016_import_run
Revises: 0015_autopay_enrollment
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carecollect.migrations.security import secure_new_tenant_tables

revision = "0016_import_run"
down_revision = "0015_autopay_enrollment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_run",
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("mapping", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("submitted_by_type", sa.String(length=16), nullable=False),
        sa.Column("submitted_by", sa.String(length=80), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("pipeline_run_id", sa.Uuid(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("failure", sa.String(length=300), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_import_run_organization_id_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_run")),
    )
    op.create_index(
        op.f("ix_import_run_organization_id"), "import_run", ["organization_id"], unique=False
    )
    op.create_index(
        "ix_import_run_org_status", "import_run", ["organization_id", "status"], unique=False
    )
    secure_new_tenant_tables(["import_run"])


def downgrade() -> None:
    op.drop_index("ix_import_run_org_status", table_name="import_run")
    op.drop_index(op.f("ix_import_run_organization_id"), table_name="import_run")
    op.drop_table("import_run")
