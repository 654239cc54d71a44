"""PostgreSQL security for tenant tables, shared by the migrations.

Every tenant table gets row-level security exactly as 0001_foundation set it up:
ENABLE + FORCE, a `tenant_isolation` policy for the application role (rows of the
organization named by the `carecollect.organization_id` setting only, on read and on
write) and an `owner_access` policy for the table owner (system sessions: sign-in,
schedulers, sweeps).
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import context, op

TENANT_PREDICATE = "NULLIF(current_setting('carecollect.organization_id', true), '')::uuid"


def app_role() -> str:
    """The application role the migration run was configured with."""
    return str(context.config.attributes.get("app_role", "carecollect_app"))


def is_postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def grant_all_tables(role: str) -> None:
    """The grant of migrations 0003-0007: data rights on every table (0008 re-narrows the
    audit tables afterwards). New migrations use `grant_tables` instead."""
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')


def grant_tables(tables: Iterable[str], role: str) -> None:
    """Data rights on the named tables only (least privilege)."""
    for table in tables:
        op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"')


def enable_tenant_isolation(tables: Iterable[str]) -> None:
    """ENABLE + FORCE row-level security with the two standard policies."""
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING (organization_id = {TENANT_PREDICATE}) "
            f"WITH CHECK (organization_id = {TENANT_PREDICATE})"
        )
        op.execute(f"CREATE POLICY owner_access ON {table} TO CURRENT_USER USING (true)")


def secure_new_tenant_tables(tables: Iterable[str]) -> None:
    """For a new migration: on PostgreSQL grant the application role data rights on the
    new tenant tables and isolate them by organization; nothing on SQLite."""
    if not is_postgresql():
        return
    names = list(tables)
    grant_tables(names, app_role())
    enable_tenant_isolation(names)
