"""Tenancy: one organization can neither read nor change another's rows; on PostgreSQL
row-level security hides every row from raw SQL without the tenant setting."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update

from carecollect.db import Database
from carecollect.patient.models import Guarantor
from tests.factories import create_guarantor, create_tenant


def test_orm_queries_are_scoped_to_the_session_organization(db: Database) -> None:
    a, b = create_tenant(db), create_tenant(db)
    with db.tenant_session(a.id) as s:
        ga = create_guarantor(s, a).id
    with db.tenant_session(b.id) as s:
        gb = create_guarantor(s, b).id
    with db.tenant_session(a.id) as s:
        assert list(s.scalars(select(Guarantor.id))) == [ga]
        assert s.get(Guarantor, gb) is None
    with db.tenant_session(b.id) as s:
        assert list(s.scalars(select(Guarantor.id))) == [gb]


def test_one_organization_cannot_change_another_organizations_rows(db: Database) -> None:
    a, b = create_tenant(db), create_tenant(db)
    with db.tenant_session(b.id) as s:
        gb = create_guarantor(s, b, state="NY").id
    with db.tenant_session(a.id) as s:
        result = s.execute(update(Guarantor).where(Guarantor.id == gb).values(state="CA"))
        assert result.rowcount == 0  # type: ignore[attr-defined]
    with db.tenant_session(b.id) as s:
        assert s.scalar(select(Guarantor.state).where(Guarantor.id == gb)) == "NY"


@pytest.mark.postgres
def test_raw_sql_without_the_tenant_setting_sees_nothing(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("row-level security is a PostgreSQL feature")
    a = create_tenant(db)
    with db.tenant_session(a.id) as s:
        create_guarantor(s, a)
        create_guarantor(s, a)
    with db.engine.connect() as conn:
        # As the owner (the migration role) the rows are there ...
        assert conn.execute(text("SELECT count(*) FROM guarantor")).scalar() == 2
        # ... but as the application role, without the setting, nothing is visible.
        conn.execute(text('SET ROLE "carecollect_app"'))
        assert conn.execute(text("SELECT count(*) FROM guarantor")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM organization")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM data_key")).scalar() == 0
        # With another organization's id set, still nothing; with its own, both rows.
        conn.execute(
            text("SELECT set_config('carecollect.organization_id', :v, false)"),
            {"v": "00000000-0000-7000-8000-00000000beef"},
        )
        assert conn.execute(text("SELECT count(*) FROM guarantor")).scalar() == 0
        conn.execute(
            text("SELECT set_config('carecollect.organization_id', :v, false)"), {"v": str(a.id)}
        )
        assert conn.execute(text("SELECT count(*) FROM guarantor")).scalar() == 2
        # Writing a row for another organization is refused by WITH CHECK.
        with pytest.raises(Exception, match="row-level security"):
            conn.execute(
                text(
                    "UPDATE guarantor SET organization_id = '00000000-0000-7000-8000-00000000beef'"
                )
            )
        conn.rollback()


@pytest.mark.postgres
def test_application_role_owns_no_table(db: Database, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    with db.engine.connect() as conn:
        owned = conn.execute(
            text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                "AND tableowner = 'carecollect_app'"
            )
        ).scalar()
        forced = conn.execute(
            text(
                "SELECT count(*) FROM pg_class WHERE relname = 'guarantor' "
                "AND relrowsecurity AND relforcerowsecurity"
            )
        ).scalar()
    assert owned == 0
    assert forced == 1


@pytest.mark.postgres
def test_application_role_may_only_append_and_read_the_audit_trail(
    db: Database, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only")
    with db.engine.connect() as conn:
        rights = {
            (table, privilege): conn.execute(
                text("SELECT has_table_privilege('carecollect_app', :t, :p)"),
                {"t": table, "p": privilege},
            ).scalar()
            for table in ("audit_event", "audit_log_entry")
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
        }
    assert rights == {
        ("audit_event", "SELECT"): True,
        ("audit_event", "INSERT"): True,
        ("audit_event", "UPDATE"): False,
        ("audit_event", "DELETE"): False,
        ("audit_log_entry", "SELECT"): True,
        ("audit_log_entry", "INSERT"): False,
        ("audit_log_entry", "UPDATE"): False,
        ("audit_log_entry", "DELETE"): False,
    }
