"""Decrypted, role-masked views of patient records, each read audited exactly once.

Shared by the REST API and the staff app. A caller with `patient.read_unmasked` (or in
break-glass) sees values; everyone else sees masked values and may reveal a field, which
records its own `patient.reveal` event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from carecollect.api import queries
from carecollect.api.masking import (
    mask_account_number,
    mask_contact,
    mask_date,
    mask_name,
)
from carecollect.api.schemas import (
    AccountOut,
    ConsentOut,
    ContactPointOut,
    FlagOut,
    GuarantorOut,
    LedgerEntryOut,
    PatientOut,
)
from carecollect.audit import Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.kit.crypto.fields import FieldCipher
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.patient.models import ContactPoint, Guarantor, Patient
from carecollect.patient.repository import patient_repository

REVEALABLE_FIELDS = ("first_name", "last_name", "date_of_birth", "contact_points")


def unmasked(principal: Principal) -> bool:
    return principal.can(Permission.PATIENT_READ_UNMASKED)


def record_read(
    session: Session,
    principal: Principal,
    guarantor_id: uuid.UUID,
    *,
    fields: list[str],
    purpose: str,
    action: str = "patient.read",
    subject_type: str = "guarantor",
    subject_id: uuid.UUID | None = None,
) -> None:
    """One audit event for one read of one person's PHI (HIPAA 164.312(b))."""
    record(
        session,
        actor=principal.actor,
        action=action,
        subject=Subject(
            subject_type,
            subject_id or guarantor_id,
            organization_id=principal.organization_id,
            patient_id=guarantor_id,
        ),
        details={
            "fields": fields,
            "purpose": purpose,
            "masked": not unmasked(principal) and action != "patient.reveal",
            "break_glass": principal.break_glass,
        },
    )


def _postal_text(raw: str) -> str:
    try:
        address: dict[str, Any] = json.loads(raw)
    except ValueError:
        return raw
    parts = [address.get("line1"), address.get("line2"), address.get("city")]
    head = ", ".join(str(p) for p in parts if p)
    return f"{head}, {address.get('state', '')} {address.get('zip', '')}".strip()


def guarantor_out(cipher: FieldCipher, row: Guarantor, *, show: bool) -> GuarantorOut:
    first = cipher.open_row(row, "first_name") or ""
    last = cipher.open_row(row, "last_name") or ""
    dob = cipher.open_row(row, "date_of_birth")
    return GuarantorOut(
        id=row.id,
        first_name=first if show else mask_name(first),
        last_name=last if show else mask_name(last),
        date_of_birth=dob if show else mask_date(dob),
        state=row.state,
        mailing_tz=row.mailing_tz,
        preferred_language=row.preferred_language,
        masked=not show,
    )


def patient_out(cipher: FieldCipher, row: Patient, *, show: bool) -> PatientOut:
    first = cipher.open_row(row, "first_name") or ""
    last = cipher.open_row(row, "last_name") or ""
    dob = cipher.open_row(row, "date_of_birth")
    return PatientOut(
        id=row.id,
        guarantor_id=row.guarantor_id,
        first_name=first if show else mask_name(first),
        last_name=last if show else mask_name(last),
        date_of_birth=dob if show else mask_date(dob),
        relationship_to_guarantor=row.relationship_to_guarantor,
        masked=not show,
    )


def contact_point_out(cipher: FieldCipher, row: ContactPoint, *, show: bool) -> ContactPointOut:
    raw = cipher.open_row(row, "value") or ""
    value = _postal_text(raw) if row.kind == "postal" else raw
    return ContactPointOut(
        id=row.id,
        guarantor_id=row.guarantor_id,
        kind=row.kind,
        value=value if show else mask_contact(row.kind, value),
        line_type=row.line_type,
        owner=row.owner,
        employer_provided=row.employer_provided,
        verified=row.verified,
        is_primary=row.is_primary,
        active=row.active,
        masked=not show,
    )


def account_out(
    cipher: FieldCipher, row: Account, *, balance_cents: int, show: bool
) -> AccountOut:
    number = cipher.open_row(row, "account_number") or ""
    return AccountOut(
        id=row.id,
        guarantor_id=row.guarantor_id,
        account_number=number if show else mask_account_number(number),
        debt_kind=row.debt_kind,
        status=row.status,
        opened_at=row.opened_at,
        balance_cents=balance_cents,
        masked=not show,
    )


def entry_out(cipher: FieldCipher, row: LedgerEntry, *, show: bool) -> LedgerEntryOut:
    def opened(column: str) -> str | None:
        value = cipher.open_row(row, column)
        if value is None or show:
            return value
        return "•••"

    return LedgerEntryOut(
        id=row.id,
        account_id=row.account_id,
        kind=row.kind,
        amount_cents=row.amount_cents,
        posted_at=row.posted_at,
        service_date=opened("service_date"),
        procedure_codes=opened("procedure_codes"),
        description=opened("description"),
        masked=not show,
    )


def flag_out(row: Any) -> FlagOut:
    return FlagOut(
        id=row.id,
        guarantor_id=row.guarantor_id,
        account_id=row.account_id,
        kind=row.kind,
        raised_at=row.raised_at,
        cleared_at=row.cleared_at,
        in_writing=row.in_writing,
        source=row.source,
    )


def consent_ledger(session: Session, guarantor_id: uuid.UUID) -> list[ConsentOut]:
    events = [
        ConsentOut(
            id=c.id,
            guarantor_id=c.guarantor_id,
            contact_point_id=c.contact_point_id,
            event="grant",
            kind=c.kind,
            channel=None,
            at=c.granted_at,
            method=c.method,
            given_to=c.given_to,
        )
        for c in queries.consents_of(session, guarantor_id)
    ] + [
        ConsentOut(
            id=r.id,
            guarantor_id=r.guarantor_id,
            contact_point_id=r.contact_point_id,
            event="revoke",
            kind=None,
            channel=r.channel,
            at=r.received_at,
            method=r.method,
            given_to=None,
        )
        for r in queries.revocations_of(session, guarantor_id)
    ]
    return sorted(events, key=lambda e: (e.at, str(e.id)))


def require_guarantor(session: Session, guarantor_id: uuid.UUID) -> Guarantor:
    row = patient_repository.guarantor(session, guarantor_id)
    if row is None:
        raise NotFound("no such guarantor")
    return row


def read_guarantor(
    session: Session,
    *,
    keys: OrganizationKeys,
    principal: Principal,
    guarantor_id: uuid.UUID,
    purpose: str,
) -> GuarantorOut:
    row = require_guarantor(session, guarantor_id)
    view = guarantor_out(keys.cipher(), row, show=unmasked(principal))
    record_read(
        session,
        principal,
        guarantor_id,
        fields=["first_name", "last_name", "date_of_birth"],
        purpose=purpose,
    )
    return view


def summaries(
    session: Session, *, keys: OrganizationKeys, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[GuarantorOut]:
    """Rows for search results (the search event already lists the ids returned)."""
    cipher, show = keys.cipher(), unmasked(principal)
    rows = [patient_repository.guarantor(session, i) for i in ids]
    return [guarantor_out(cipher, r, show=show) for r in rows if r is not None]


def reveal(
    session: Session,
    *,
    keys: OrganizationKeys,
    principal: Principal,
    guarantor_id: uuid.UUID,
    field: str,
) -> dict[str, Any]:
    """Unmask one field of one person for a collector; records one `patient.reveal`."""
    if field not in REVEALABLE_FIELDS:
        raise BadInput("that field cannot be revealed")
    row = require_guarantor(session, guarantor_id)
    cipher = keys.cipher()
    result: dict[str, Any]
    if field == "contact_points":
        points = patient_repository.contact_points_of(session, guarantor_id)
        result = {
            "contact_points": [contact_point_out(cipher, p, show=True) for p in points]
        }
    else:
        result = {field: cipher.open_row(row, field) or ""}
    record_read(
        session, principal, guarantor_id, fields=[field], purpose="reveal", action="patient.reveal"
    )
    return result


def account_page(
    session: Session,
    *,
    keys: OrganizationKeys,
    principal: Principal,
    guarantor_id: uuid.UUID,
    with_access_log: bool = False,
) -> dict[str, Any]:
    """Everything the account screen shows about one guarantor, with one audit event."""
    row = require_guarantor(session, guarantor_id)
    cipher, show = keys.cipher(), unmasked(principal)
    accounts = queries.accounts_of(session, guarantor_id)
    balance = queries.balances(session, [a.id for a in accounts])
    ledgers = {
        a.id: [
            entry_out(cipher, e, show=show)
            for e in queries.entries_page(session, a.id, after=None, limit=500)
        ]
        for a in accounts
    }
    page = {
        "guarantor": guarantor_out(cipher, row, show=show),
        "patients": [
            patient_out(cipher, p, show=show)
            for p in patient_repository.patients_of(session, guarantor_id)
        ],
        "contact_points": [
            contact_point_out(cipher, p, show=show)
            for p in patient_repository.contact_points_of(session, guarantor_id)
        ],
        "accounts": [
            account_out(cipher, a, balance_cents=balance[a.id], show=show) for a in accounts
        ],
        "ledgers": ledgers,
        "consents": consent_ledger(session, guarantor_id),
        "flags": [flag_out(f) for f in queries.flags_of(session, guarantor_id)],
        "contact_events": list(queries.contact_events_of(session, guarantor_id)),
    }
    record_read(
        session,
        principal,
        guarantor_id,
        fields=[
            "first_name", "last_name", "date_of_birth", "patients", "contact_points",
            "accounts", "ledger", "consents", "flags", "contact_history",
            *(["access_log"] if with_access_log else []),
        ],
        purpose="account_page",
    )
    return page
