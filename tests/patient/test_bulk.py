"""The bulk PHI path: people written in bulk are encrypted, indexed and findable exactly as
people written one by one through the service."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from carecollect.db import Database
from carecollect.patient.bulk import PersonRecord, bulk_load_people, parallel_load_sqlite
from carecollect.patient.models import ContactPoint, Guarantor
from carecollect.patient.service import patient_service
from tests.factories import TEST_ACTOR, Tenant, create_tenant


def people(count: int) -> list[PersonRecord]:
    return [
        PersonRecord(
            first_name=f"Bulkfirst{i}",
            last_name=f"Bulklast{i}",
            date_of_birth=f"19{50 + i % 40}-0{1 + i % 9}-1{i % 9}",
            phone=f"+1617555{i:04d}",
            line_type="wireless",
            email=f"bulk{i}@example.com",
            line1=f"{i} Elm St",
            city="Boston",
            state="MA",
            zip_code="02118",
        )
        for i in range(count)
    ]


def check_loaded(db: Database, tenant: Tenant, count: int) -> None:
    with db.tenant_session(tenant.id) as session:
        assert session.scalar(select(func.count(Guarantor.id))) == count
        assert session.scalar(select(func.count(ContactPoint.id))) == 3 * count
        for i in (0, count // 2, count - 1):
            by_phone = patient_service.find_guarantors(
                session, keys=tenant.keys, actor=TEST_ACTOR, phone=f"+1617555{i:04d}")
            by_email = patient_service.find_guarantors(
                session, keys=tenant.keys, actor=TEST_ACTOR, email=f"bulk{i}@example.com")
            record = people(count)[i]
            by_name = patient_service.find_guarantors(
                session, keys=tenant.keys, actor=TEST_ACTOR, last_name=record.last_name,
                date_of_birth=date.fromisoformat(record.date_of_birth or ""))
            assert by_phone == by_email == by_name
            assert len(by_phone) == 1
            view = patient_service.read_guarantor(
                session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=by_phone[0])
            assert (view.first_name, view.last_name) == (record.first_name, record.last_name)
            assert view.mailing_tz == "America/New_York"


@pytest.mark.parametrize("workers", [1, 2])
def test_bulk_load_in_the_callers_transaction(db: Database, workers: int) -> None:
    tenant = create_tenant(db)
    with db.engine.begin() as connection:
        written = bulk_load_people(connection, tenant.keys, people(150), batch_size=40,
                                   workers=workers)
    assert written == 150
    check_loaded(db, tenant, 150)


def test_direct_write_workers_on_sqlite(db: Database, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("direct-write workers are the SQLite path")
    tenant = create_tenant(db)
    path = db.engine.url.database or ""
    written = parallel_load_sqlite(path, tenant.keys, people(150), batch_size=40, workers=2)
    assert written == 150
    check_loaded(db, tenant, 150)
