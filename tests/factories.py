"""Typed builders of synthetic test data (synthetic people only)."""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from carecollect.audit import Actor
from carecollect.db import Database
from carecollect.kit.crypto.keyring import load_env_provider
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.patient.models import ContactPoint, Guarantor
from carecollect.patient.schemas import ContactPointCreate, GuarantorCreate, PostalAddress
from carecollect.patient.service import patient_service
from carecollect.tenant.service import create_organization

TEST_ACTOR = Actor.staff("00000000-0000-7000-8000-000000000001")


def key_manager() -> KeyManager:
    kek = base64.b64encode(os.urandom(32)).decode()
    return KeyManager(load_env_provider(kek), ttl_seconds=60, planned_rows=10_000)


@dataclass
class Tenant:
    id: uuid.UUID
    keys: OrganizationKeys
    manager: KeyManager


def create_tenant(db: Database, manager: KeyManager | None = None, **overrides: Any) -> Tenant:
    manager = manager or key_manager()
    params: dict[str, Any] = {
        "slug": f"org-{uuid.uuid4().hex[:8]}",
        "legal_name": "Lakeside Dental Group",
        "billing_display_name": "Lakeside Billing",
        "provider_license_state": "MA",
        "planned_patients": 10_000,
    }
    params.update(overrides)
    with db.system_session() as session:
        org = create_organization(session, keys=manager, actor=Actor.system("test"), **params)
        org_id, bits = org.id, org.blind_index_bits
    with db.system_session() as session:
        keys = manager.for_organization(session, org_id, blind_index_bits=bits)
    return Tenant(org_id, keys, manager)


def create_guarantor(session: Session, tenant: Tenant, **overrides: Any) -> Guarantor:
    data: dict[str, Any] = {
        "first_name": "Robin",
        "last_name": "Testperson",
        "date_of_birth": date(1980, 5, 17),
        "state": "MA",
    }
    data.update(overrides)
    return patient_service.create_guarantor(
        session, keys=tenant.keys, actor=TEST_ACTOR, data=GuarantorCreate(**data)
    )


def add_phone(
    session: Session, tenant: Tenant, guarantor_id: uuid.UUID, number: str, **overrides: Any
) -> ContactPoint:
    data: dict[str, Any] = {
        "guarantor_id": guarantor_id,
        "kind": "phone",
        "value": number,
        "line_type": "wireless",
    }
    data.update(overrides)
    return patient_service.add_contact_point(
        session, keys=tenant.keys, actor=TEST_ACTOR, data=ContactPointCreate(**data)
    )


def add_email(
    session: Session, tenant: Tenant, guarantor_id: uuid.UUID, address: str, **overrides: Any
) -> ContactPoint:
    data: dict[str, Any] = {"guarantor_id": guarantor_id, "kind": "email", "value": address}
    data.update(overrides)
    return patient_service.add_contact_point(
        session, keys=tenant.keys, actor=TEST_ACTOR, data=ContactPointCreate(**data)
    )


def add_address(
    session: Session,
    tenant: Tenant,
    guarantor_id: uuid.UUID,
    *,
    line1: str,
    city: str,
    state: str,
    zip_code: str,
) -> ContactPoint:
    return patient_service.add_contact_point(
        session,
        keys=tenant.keys,
        actor=TEST_ACTOR,
        data=ContactPointCreate(
            guarantor_id=guarantor_id,
            kind="postal",
            is_primary=True,
            value=PostalAddress(line1=line1, city=city, state=state, zip=zip_code),
        ),
    )


def audit_events(db: Database, action: str | None = None) -> list[dict[str, Any]]:
    """Every recorded audit event (decoded body), optionally of one action, in order."""
    import json

    from sqlalchemy import select

    from carecollect.audit.models import AuditEvent

    with db.system_session() as session:
        rows = session.execute(
            select(AuditEvent.body, AuditEvent.patient_id).order_by(AuditEvent.ordinal)
        ).all()
    events = [json.loads(body) | {"patient_id": patient_id} for body, patient_id in rows]
    return [e for e in events if action is None or e["action"] == action]
