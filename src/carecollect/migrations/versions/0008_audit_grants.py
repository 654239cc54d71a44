"""Re-narrow the application role's rights on the audit tables.

Migrations 0003-0007 grant SELECT, INSERT, UPDATE, DELETE on ALL TABLES to the
application role, which also re-granted UPDATE and DELETE on the audit tables that 0002
had narrowed to append-and-read. The triggers still reject such changes; this restores
least privilege as well. Any later migration that grants on ALL TABLES must end the same
way.

Revision ID: 0008_audit_grants
Revises: 0007_payments
"""

from __future__ import annotations

from alembic import context, op

revision = "0008_audit_grants"
down_revision = "0007_payments"
branch_labels = None
depends_on = None

AUDIT_TABLES = ("audit_event", "audit_log_entry", "audit_tree_hash", "audit_checkpoint")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    role = context.config.attributes.get("app_role", "carecollect_app")
    tables = ", ".join(AUDIT_TABLES)
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                REVOKE ALL ON {tables} FROM "{role}";
                GRANT SELECT, INSERT ON audit_event TO "{role}";
                GRANT USAGE, SELECT ON SEQUENCE audit_event_ordinal_seq TO "{role}";
                GRANT SELECT ON audit_log_entry, audit_tree_hash, audit_checkpoint TO "{role}";
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    pass
