"""A running app with the portal over a fresh database: one organization, two guarantors
(synthetic people), each with an account, itemized charges and insurance lines, and
helpers to issue a link and pass the identity check."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carecollect.app import create_app
from carecollect.audit import Actor
from carecollect.audit.keys import create_signing_key
from carecollect.config import Settings
from carecollect.db import Database
from carecollect.ledger.service import ledger_service
from carecollect.portal import service as portal_service
from carecollect.portal.config import PortalSettings
from tests.factories import TEST_ACTOR, Tenant, add_address, create_guarantor, create_tenant
from tests.factories import key_manager as make_key_manager

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
STAFF = Actor.staff("00000000-0000-7000-8000-0000000000aa")


class Clock:
    def __init__(self) -> None:
        self.value = START

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)


@dataclass
class Person:
    guarantor_id: uuid.UUID
    account_id: uuid.UUID
    last_name: str
    date_of_birth: date
    zip_code: str
    charges: list[uuid.UUID] = field(default_factory=list)


@dataclass
class PortalWorld:
    db: Database
    tenant: Tenant
    app: Any
    clock: Clock
    portal: PortalSettings
    alice: Person
    bob: Person

    @property
    def org_id(self) -> uuid.UUID:
        return self.tenant.id

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1", follow_redirects=False)

    def issue(self, person: Person | None = None, *, ttl: timedelta = timedelta(days=30)
              ) -> portal_service.IssuedLink:
        person = person or self.alice
        with self.db.tenant_session(self.org_id) as session:
            return portal_service.issue_link(
                session, actor=STAFF, organization_id=self.org_id,
                guarantor_id=person.guarantor_id, ttl=ttl, now=self.clock())

    def verify_form(self, client: TestClient, token: str) -> str:
        response = client.get(f"/pay/{token}")
        assert response.status_code == 200, response.text[:300]
        return csrf_of(response.text)

    def submit(self, client: TestClient, token: str, **fields: str) -> Any:
        csrf = self.verify_form(client, token)
        return client.post(f"/pay/{token}", data={"csrf_token": csrf, **fields})

    def login(self, person: Person | None = None, client: TestClient | None = None,
              *, lang: str = "en") -> TestClient:
        person = person or self.alice
        client = client or self.client()
        link = self.issue(person)
        birth = person.date_of_birth
        response = self.submit(client, link.token, last_name=person.last_name,
                               dob_month=str(birth.month), dob_day=str(birth.day),
                               dob_year=str(birth.year), lang=lang)
        assert response.status_code == 303, response.text[:500]
        assert response.headers["location"] == "/pay/bill"
        return client

    def count(self, model: type, **where: object) -> int:
        with self.db.system_session() as session:
            stmt = select(func.count()).select_from(model)
            for key, value in where.items():
                stmt = stmt.where(getattr(model, key) == value)
            return int(session.scalar(stmt) or 0)

    def balance(self, person: Person) -> int:
        with self.db.tenant_session(self.org_id) as session:
            return ledger_service.balance_cents(session, account_id=person.account_id)


def csrf_of(text: str) -> str:
    found = CSRF_RE.search(text)
    assert found, text[:500]
    return found.group(1)


def title_of(text: str) -> str:
    found = TITLE_RE.search(text)
    assert found, text[:300]
    return found.group(1)


def _person(db: Database, tenant: Tenant, *, first: str, last: str, birth: date,
            zip_code: str, number: str) -> Person:
    with db.tenant_session(tenant.id) as session:
        guarantor = create_guarantor(session, tenant, first_name=first, last_name=last,
                                     date_of_birth=birth, state="MA")
        add_address(session, tenant, guarantor.id, line1="12 Harbor St", city="Cambridge",
                    state="MA", zip_code=zip_code)
        account = ledger_service.open_account(
            session, keys=tenant.keys, actor=TEST_ACTOR, guarantor_id=guarantor.id,
            account_number=number, opened_at=START - timedelta(days=90))
        person = Person(guarantor.id, account.id, last, birth, zip_code)
        cleaning = ledger_service.post(
            session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id, kind="charge",
            amount_cents=11_000, posted_at=START - timedelta(days=60),
            service_date=(START - timedelta(days=61)).date(), procedure_codes="D1110",
            description="PROPHY ADULT")
        crown = ledger_service.post(
            session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id, kind="charge",
            amount_cents=125_000, posted_at=START - timedelta(days=30),
            service_date=(START - timedelta(days=31)).date(), procedure_codes="D2740",
            description="CROWN PORC/CERAMIC")
        person.charges += [cleaning.id, crown.id]
        insurance = ledger_service.post(
            session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
            kind="insurance_payment", amount_cents=60_000,
            posted_at=START - timedelta(days=10))
        insurance.applies_to_entry_id = crown.id
        adjustment = ledger_service.post(
            session, keys=tenant.keys, actor=TEST_ACTOR, account_id=account.id,
            kind="insurance_adjustment", amount_cents=15_000,
            posted_at=START - timedelta(days=10))
        adjustment.applies_to_entry_id = crown.id
    return person


def make_portal_world(db: Database, tmp_path: Path, *, app_settings: dict[str, Any] | None = None,
                      **portal: Any) -> PortalWorld:
    manager = make_key_manager()
    tenant = create_tenant(db, manager)
    data_dir = tmp_path / "data"
    (data_dir / "keys").mkdir(parents=True)
    create_signing_key(data_dir / "keys" / "audit-signing.key")
    settings = Settings(
        data_dir=data_dir, database_url=db.url,
        session_secret="test-session-secret-0123456789",
        **(app_settings or {}),
    )
    clock = Clock()
    app = create_app(settings, db=db, keys=manager, clock=clock, cookie_secure=False)
    portal_settings = PortalSettings(**portal)
    app.state.portal_settings = portal_settings
    alice = _person(db, tenant, first="Alicia", last="Núñez-Ortiz", birth=date(1984, 2, 29),
                    zip_code="02139", number="ACC-5001")
    bob = _person(db, tenant, first="Bob", last="Quintanilla", birth=date(1979, 11, 3),
                  zip_code="01002", number="ACC-5002")
    return PortalWorld(db, tenant, app, clock, portal_settings, alice, bob)


@pytest.fixture
def world(db: Database, tmp_path: Path) -> PortalWorld:
    return make_portal_world(db, tmp_path)
