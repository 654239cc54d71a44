"""Consent ledger rules: grant with evidence, revoke by any means, re-consent.

TCPA-RECONSENT: the latest event on a contact point wins, so `is_consented` compares the
newest grant with the newest revocation for that point and channel.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.consent.models import CONSENT_KINDS, Consent, Revocation
from carecollect.errors import BadInput
from carecollect.integration.service import emit_event
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7

REVOCATION_CHANNELS = ("sms", "call", "email", "voicemail", "letter", "all")


class ConsentService:
    def grant(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        guarantor_id: uuid.UUID,
        contact_point_id: uuid.UUID | None,
        kind: str,
        granted_at: datetime,
        method: str,
        given_to: str = "creditor",
        source: str = "staff",
        wording_version: str | None = None,
        captured_by: str | None = None,
        evidence: str | None = None,
    ) -> Consent:
        if kind not in CONSENT_KINDS:
            raise BadInput(f"unknown consent kind {kind!r}")
        if given_to not in ("creditor", "debt_collector"):
            raise BadInput("consent is given to the creditor or a debt collector")
        row_id = uuid7()
        consent = Consent(
            id=row_id,
            organization_id=keys.organization_id,
            guarantor_id=guarantor_id,
            contact_point_id=contact_point_id,
            kind=kind,
            granted_at=granted_at,
            given_to=given_to,
            method=method,
            source=source,
            wording_version=wording_version,
            captured_by=captured_by,
            evidence=keys.cipher().seal("consent", "evidence", row_id, evidence),
        )
        session.add(consent)
        session.flush()
        record(
            session,
            actor=actor,
            action="consent.change",
            subject=Subject(
                "consent", row_id, organization_id=keys.organization_id, patient_id=guarantor_id
            ),
            details={
                "change": "grant",
                "kind": kind,
                "contact_point_id": str(contact_point_id) if contact_point_id else None,
            },
        )
        return consent

    def revoke(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        guarantor_id: uuid.UUID,
        contact_point_id: uuid.UUID | None,
        channel: str,
        received_at: datetime,
        method: str,
        text: str | None = None,
    ) -> Revocation:
        if channel not in REVOCATION_CHANNELS:
            raise BadInput(f"unknown revocation channel {channel!r}")
        row_id = uuid7()
        revocation = Revocation(
            id=row_id,
            organization_id=keys.organization_id,
            guarantor_id=guarantor_id,
            contact_point_id=contact_point_id,
            channel=channel,
            received_at=received_at,
            method=method,
            text=keys.cipher().seal("revocation", "text", row_id, text),
        )
        session.add(revocation)
        session.flush()
        record(
            session,
            actor=actor,
            action="consent.change",
            subject=Subject(
                "revocation", row_id, organization_id=keys.organization_id, patient_id=guarantor_id
            ),
            details={"change": "revoke", "channel": channel, "method": method},
        )
        emit_event(
            session,
            organization_id=keys.organization_id,
            type="consent.revoked",
            data={
                "revocation_id": row_id,
                "guarantor_id": guarantor_id,
                "contact_point_id": contact_point_id,
                "channel": channel,
                "received_at": received_at,
            },
        )
        return revocation

    def is_consented(
        self,
        session: Session,
        *,
        contact_point_id: uuid.UUID,
        kind: str,
        channel: str,
        at: datetime,
    ) -> bool:
        """Whether a live consent of `kind` covers the point at `at` (latest event wins)."""
        grant = session.scalar(
            select(Consent.granted_at)
            .where(
                Consent.contact_point_id == contact_point_id,
                Consent.kind == kind,
                Consent.granted_at <= at,
            )
            .order_by(Consent.granted_at.desc())
            .limit(1)
        )
        if grant is None:
            return False
        revoked = session.scalar(
            select(Revocation.received_at)
            .where(
                Revocation.contact_point_id == contact_point_id,
                Revocation.channel.in_((channel, "all")),
                Revocation.received_at <= at,
            )
            .order_by(Revocation.received_at.desc())
            .limit(1)
        )
        return revoked is None or grant > revoked


consent_service = ConsentService()
