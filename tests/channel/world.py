"""A small synthetic world for dispatcher tests: one practice with active BAAs, debtors with
consented phones, e-mail and postal addresses, and a worker wired to loopback providers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from carecollect.channel.base import Provider
from carecollect.channel.email import SmtpConfig, SmtpEmail
from carecollect.channel.letters import LetterSpool
from carecollect.channel.sms import TwilioConfig, TwilioSms
from carecollect.consent.service import consent_service
from carecollect.db import Database
from carecollect.kit.jobs.worker import Worker
from carecollect.outreach.dispatch import DispatchResources, DispatchSettings, create_attempt
from carecollect.outreach.ratelimit import RateLimiter
from carecollect.tenant.models import BusinessAssociate
from tests.channel.fakes import ACCOUNT_SID, AUTH_TOKEN
from tests.factories import (
    TEST_ACTOR,
    Tenant,
    add_address,
    add_email,
    add_phone,
    create_guarantor,
    create_tenant,
)

# Tuesday 10 March 2026, 11:00 in Boston (EDT): inside every calling window.
BASE = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def moving_clock(start: datetime = BASE) -> Callable[[], datetime]:
    """A clock that starts at `start` and advances with real time (history stays ordered)."""
    t0 = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


@dataclass
class Debtor:
    id: uuid.UUID
    phone_id: uuid.UUID
    email_id: uuid.UUID
    postal_id: uuid.UUID
    phone: str
    email: str


@dataclass
class World:
    db: Database
    tenant: Tenant
    debtors: list[Debtor] = field(default_factory=list)


def add_vendors(db: Database, tenant: Tenant, services: tuple[str, ...] = (
        "sms", "email", "mail_house"), status: str = "active",
        expires: date | None = None) -> None:
    with db.tenant_session(tenant.id) as session:
        for service in services:
            session.add(BusinessAssociate(
                organization_id=tenant.id, name=f"vendor-{service}", service=service,
                baa_status=status, baa_effective_on=date(2025, 1, 1), baa_expires_on=expires))


def make_world(db: Database, n: int = 1, *, vendors: bool = True, consent: bool = True,
               verified: bool = False) -> World:
    tenant = create_tenant(db)
    if vendors:
        add_vendors(db, tenant)
    world = World(db, tenant)
    for i in range(n):
        phone = f"+1617{2000000 + i:07d}"
        email = f"person{i}@example.org"
        with db.tenant_session(tenant.id) as session:
            g = create_guarantor(session, tenant, first_name="Robin", last_name=f"Test{i}")
            address = add_address(session, tenant, g.id, line1=f"{i} Test Way", city="Boston",
                                  state="MA", zip_code="02115")
            p = add_phone(session, tenant, g.id, phone, verified=verified)
            e = add_email(session, tenant, g.id, email)
            if consent:
                consent_service.grant(session, keys=tenant.keys, actor=TEST_ACTOR,
                                      guarantor_id=g.id, contact_point_id=p.id,
                                      kind="tcpa_pec", granted_at=BASE - timedelta(days=10),
                                      method="intake_form")
                consent_service.grant(session, keys=tenant.keys, actor=TEST_ACTOR,
                                      guarantor_id=g.id, contact_point_id=e.id,
                                      kind="email_use", granted_at=BASE - timedelta(days=10),
                                      method="intake_form")
            world.debtors.append(Debtor(g.id, p.id, e.id, address.id, phone, email))
    return world


def plan(world: World, debtor: Debtor, channel: str, key: str, **kwargs: Any) -> uuid.UUID:
    cp = {"sms": debtor.phone_id, "email": debtor.email_id, "letter": debtor.postal_id,
          "call": debtor.phone_id, "voicemail": debtor.phone_id}[channel]
    with world.db.tenant_session(world.tenant.id) as session:
        attempt = create_attempt(session, organization_id=world.tenant.id,
                                 guarantor_id=debtor.id, channel=channel, idempotency_key=key,
                                 contact_point_id=cp, scheduled_for=BASE - timedelta(hours=1),
                                 **kwargs)
        return attempt.id


def twilio_provider(base_url: str, timeout: float = 5.0,
                    callback_base_url: str | None = None) -> TwilioSms:
    return TwilioSms(TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                  from_number="+16175550000", base_url=base_url,
                                  timeout=timeout, callback_base_url=callback_base_url))


def smtp_provider(port: int) -> SmtpEmail:
    return SmtpEmail(SmtpConfig(host="127.0.0.1", port=port, from_address="billing@example.org",
                                allow_plain_loopback=True, timeout=5.0))


def make_worker(world: World, channels: dict[str, Provider], *,
                clock: Callable[[], datetime] | None = None,
                settings: DispatchSettings | None = None,
                rates: dict[str, float] | None = None,
                spool: Path | None = None, **options: Any) -> Worker:
    if spool is not None:
        channels = {**channels, "letter": LetterSpool(spool)}
    resources = {"outreach": DispatchResources(
        channels=channels, settings=settings or DispatchSettings(link_secret=b"k" * 32),
        limiter=RateLimiter(rates or {}))}
    options.setdefault("batch_size", 20)
    options.setdefault("poll_interval", 0.05)
    return Worker(world.db, world.tenant.manager, resources=resources,
                  clock=clock or moving_clock(), **options)


def seed_debtors(world: World, n: int, *, batch: int = 250) -> None:
    """Add `n` Massachusetts debtors with a consented mobile phone, many per transaction."""
    tenant = world.tenant
    start = len(world.debtors)
    for lo in range(start, start + n, batch):
        with world.db.tenant_session(tenant.id) as session:
            for i in range(lo, min(lo + batch, start + n)):
                phone = f"+1617{2000000 + i:07d}"
                g = create_guarantor(session, tenant, first_name="Robin", last_name=f"Test{i}")
                address = add_address(session, tenant, g.id, line1=f"{i} Test Way",
                                      city="Boston", state="MA", zip_code="02115")
                p = add_phone(session, tenant, g.id, phone)
                consent_service.grant(session, keys=tenant.keys, actor=TEST_ACTOR,
                                      guarantor_id=g.id, contact_point_id=p.id,
                                      kind="tcpa_pec", granted_at=BASE - timedelta(days=10),
                                      method="intake_form")
                world.debtors.append(Debtor(g.id, p.id, p.id, address.id, phone, ""))


def plan_many(world: World, per_debtor: int, channel: str = "sms", *,
              batch: int = 500) -> list[uuid.UUID]:
    """`per_debtor` attempts for every debtor, interleaved (debtor order inside each round)."""
    ids: list[uuid.UUID] = []
    specs = [(d, k) for k in range(per_debtor) for d in world.debtors]
    for lo in range(0, len(specs), batch):
        with world.db.tenant_session(world.tenant.id) as session:
            for d, k in specs[lo:lo + batch]:
                attempt = create_attempt(
                    session, organization_id=world.tenant.id, guarantor_id=d.id,
                    channel=channel, idempotency_key=f"{d.id}:{k}",
                    contact_point_id=d.phone_id, scheduled_for=BASE - timedelta(hours=1))
                ids.append(attempt.id)
    return ids


def worker_process_main(url: str, kek: str, twilio_url: str, tenant_id: str,
                        batch_size: int = 25) -> None:
    """Entry point of a spawned worker process: serve the queue until nothing is due."""
    from carecollect.kit.crypto.keyring import load_env_provider
    from carecollect.kit.crypto.keys import KeyManager
    from carecollect.tenant.models import Organization

    db = Database(url, pool_size=2)
    manager = KeyManager(load_env_provider(kek), ttl_seconds=600, planned_rows=10_000)
    with db.system_session() as session:
        org = session.get(Organization, uuid.UUID(tenant_id))
        if org is None:
            raise SystemExit(2)
        keys = manager.for_organization(session, org.id)
    world = World(db, Tenant(org.id, keys, manager))
    worker = make_worker(world, {"sms": twilio_provider(twilio_url, timeout=10)},
                         clock=moving_clock(BASE), batch_size=batch_size)
    worker.run(until_idle=True)
    db.dispose()
