"""Audit trail tables and their append-only guards.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("audit_event", "audit_log_entry", "audit_tree_hash", "audit_checkpoint")

_big_key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("ordinal", _big_key, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.Column("organization_id", sa.String(36), nullable=True),
        sa.Column("patient_id", sa.String(128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("ordinal", name="pk_audit_event"),
    )
    op.create_index("ix_audit_event_patient", "audit_event", ["patient_id", "organization_id"])
    op.create_table(
        "audit_log_entry",
        sa.Column("seq", _big_key, primary_key=True, autoincrement=False),
        sa.Column("event_ordinal", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log_entry"),
        sa.UniqueConstraint("event_ordinal", name="uq_audit_log_entry_event_ordinal"),
    )
    op.create_table(
        "audit_tree_hash",
        sa.Column("position", _big_key, primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_audit_tree_hash"),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("tree_size", _big_key, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _timestamp, nullable=False),
        sa.PrimaryKeyConstraint("tree_size", name="pk_audit_checkpoint"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION carecollect_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION carecollect_audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION carecollect_audit_append_only()"
            )
        # The application role (which owns nothing, ARCHITECTURE.md section 3) may append
        # events and read the log; only the integrator (connecting role) writes the rest.
        # 0001 set default privileges that would also grant UPDATE and DELETE here.
        from alembic import context

        role = context.config.attributes.get("app_role", "carecollect_app")
        tables = ", ".join(TABLES)
        op.execute(
            f"""
            DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                    REVOKE ALL ON {tables} FROM "{role}";
                    GRANT SELECT, INSERT ON audit_event TO "{role}";
                    GRANT USAGE, SELECT ON SEQUENCE audit_event_ordinal_seq TO "{role}";
                    GRANT SELECT ON audit_log_entry, audit_tree_hash, audit_checkpoint
                        TO "{role}";
                END IF;
            END
            $$
            """
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in TABLES:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    for table in reversed(TABLES):
        op.drop_table(table)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS carecollect_audit_append_only()")
