"""A running staff app and API over a fresh database: one organization, one user per role
(with a known TOTP secret), an API key per role, and helpers to sign in."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from carecollect.app import create_app
from carecollect.audit import Actor
from carecollect.audit.keys import create_signing_key
from carecollect.config import Settings
from carecollect.db import Database
from carecollect.identity import service as identity
from carecollect.identity.permissions import API_GRANTABLE, ROLE_PERMISSIONS, Role
from carecollect.identity.service import IdentityPolicy
from tests.factories import Tenant, create_tenant, key_manager

PASSWORD = "correct horse battery staple 42"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A settable clock; with `real` it follows the wall clock (browser tests)."""

    def __init__(self, *, real: bool = False) -> None:
        self.real = real
        self.value = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) if self.real else self.value

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)


@dataclass
class Web:
    db: Database
    tenant: Tenant
    settings: Settings
    clock: Clock
    app: Any
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    recovery: dict[str, list[str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1", follow_redirects=False)

    def totp(self, role: str, *, offset_steps: int = 0) -> str:
        when = self.clock() + timedelta(seconds=30 * offset_steps)
        return pyotp.TOTP(self.secrets[role]).at(when)

    def login(self, role: str, client: TestClient | None = None) -> TestClient:
        client = client or self.client()
        token = csrf_of(client.get("/app/login"))
        response = client.post(
            "/app/login",
            data={"email": self.emails[role], "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/app/login/mfa"
        token = csrf_of(client.get("/app/login/mfa"))
        response = client.post(
            "/app/login/mfa", data={"code": self.totp(role), "csrf_token": token}
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/app/"
        self.clock.advance(seconds=30)  # the next sign-in needs a fresh TOTP step
        return client

    def api(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def csrf_of(response: Any) -> str:
    found = CSRF_RE.search(response.text)
    assert found, response.text[:500]
    return found.group(1)


def make_web(
    db: Database,
    tmp_path: Path,
    *,
    policy: IdentityPolicy | None = None,
    real_time: bool = False,
) -> Web:
    manager = key_manager()
    tenant = create_tenant(db, manager)
    data_dir = tmp_path / "data"
    (data_dir / "keys").mkdir(parents=True)
    create_signing_key(data_dir / "keys" / "audit-signing.key")
    settings = Settings(
        data_dir=data_dir,
        database_url=db.url,
        session_secret="test-session-secret-0123456789",  # type: ignore[arg-type]
    )
    clock = Clock(real=real_time)
    app = create_app(
        settings,
        db=db,
        keys=manager,
        policy=policy or IdentityPolicy(touch_interval=timedelta(0)),
        clock=clock,
        cookie_secure=False,
    )
    web = Web(db, tenant, settings, clock, app)
    admin = Actor.system("test")
    with db.tenant_session(tenant.id) as session:
        for role in Role:
            email = f"{role.value}@staff.example.org"
            user, _ = identity.create_user(
                session,
                actor=admin,
                organization_id=tenant.id,
                email=email,
                display_name=f"Test {role.value}",
                role=role.value,
                password=PASSWORD,
            )
            secret = pyotp.random_base32()
            web.recovery[role.value] = identity.enroll_totp_secret(
                session, keys=tenant.keys, user=user, secret=secret, now=clock()
            )
            web.users[role.value] = user.id
            web.emails[role.value] = email
            web.secrets[role.value] = secret
            scopes = sorted(p.value for p in ROLE_PERMISSIONS[role] & API_GRANTABLE)
            _, token = identity.create_api_key(
                session,
                actor=admin,
                organization_id=tenant.id,
                name=f"{role.value} key",
                scopes=scopes,
            )
            web.tokens[role.value] = token
        _, web.tokens["none"] = identity.create_api_key(
            session, actor=admin, organization_id=tenant.id, name="no scopes", scopes=[]
        )
    return web


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2id at production cost (64 MiB, t=3) for every user of every test would make
    # the suite slow; the algorithm and the code paths stay the same.
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def web(db: Database, tmp_path: Path) -> Web:
    return make_web(db, tmp_path)


@dataclass
class Seed:
    guarantor_id: uuid.UUID
    account_id: uuid.UUID
    phone_id: uuid.UUID
    associate_id: uuid.UUID
    spare_user_id: uuid.UUID
    spare_key_id: uuid.UUID


def seed(web: Web, **guarantor: Any) -> Seed:
    """One guarantor with a phone, an account with a charge, a vendor, a spare user/key."""
    from datetime import date

    from carecollect.api.admin import save_business_associate
    from carecollect.api.schemas import BusinessAssociateIn
    from carecollect.ledger.service import ledger_service
    from tests.factories import TEST_ACTOR, add_phone, create_guarantor

    tenant = web.tenant
    with web.db.tenant_session(tenant.id) as session:
        g = create_guarantor(session, tenant, **guarantor)
        phone = add_phone(session, tenant, g.id, "+16175550123")
        account = ledger_service.open_account(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            guarantor_id=g.id,
            account_number="ACC-100200",
            opened_at=web.clock() - timedelta(days=90),
        )
        ledger_service.post(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            account_id=account.id,
            kind="charge",
            amount_cents=12_500,
            posted_at=web.clock() - timedelta(days=80),
            service_date=date(2026, 1, 5),
            procedure_codes="D1110",
            description="Cleaning",
        )
        vendor = save_business_associate(
            session,
            actor=TEST_ACTOR,
            organization_id=tenant.id,
            data=BusinessAssociateIn(name="Textline Inc", service="sms"),
            associate_id=None,
            now=web.clock(),
        )
        spare, _ = identity.create_user(
            session,
            actor=TEST_ACTOR,
            organization_id=tenant.id,
            email="spare@staff.example.org",
            display_name="Spare",
            role="collector",
            password=PASSWORD,
        )
        key, _ = identity.create_api_key(
            session, actor=TEST_ACTOR, organization_id=tenant.id, name="spare", scopes=[]
        )
        return Seed(g.id, account.id, phone.id, vendor.id, spare.id, key.id)
