"""Patient-domain business rules: create and read guarantors, patients and contact points
with every PHI field encrypted, find people through blind indexes, and audit every read.

Every function takes the session first and keyword-only arguments after; none commits.
A read of PHI requires an `Actor` so it cannot be done unaudited.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.integration.service import emit_event
from carecollect.kit.contact import (
    normalize_email,
    normalize_phone,
    normalize_zip,
    phone_time_zones,
    zip_in_nyc,
    zip_time_zone,
)
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.patient.models import FLAG_KINDS, ContactPoint, Flag, Guarantor, Patient
from carecollect.patient.repository import patient_repository
from carecollect.patient.schemas import (
    ContactPointCreate,
    GuarantorCreate,
    GuarantorView,
    PatientCreate,
    PostalAddress,
)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


class PatientService:
    # -- writes ------------------------------------------------------------------------

    def create_guarantor(
        self, session: Session, *, keys: OrganizationKeys, actor: Actor, data: GuarantorCreate
    ) -> Guarantor:
        cipher, blind = keys.cipher(), keys.blind()
        row_id = uuid7()
        table = Guarantor.__tablename__
        guarantor = Guarantor(
            id=row_id,
            organization_id=keys.organization_id,
            first_name=cipher.seal(table, "first_name", row_id, data.first_name),
            last_name=cipher.seal(table, "last_name", row_id, data.last_name),
            date_of_birth=cipher.seal(table, "date_of_birth", row_id, _iso(data.date_of_birth)),
            name_dob_bidx=(
                blind.name_dob(data.last_name, data.date_of_birth.isoformat())
                if data.date_of_birth
                else None
            ),
            state=data.state.upper() if data.state else None,
            preferred_language=data.preferred_language,
            other_known_tz=list(data.other_known_tz),
        )
        session.add(guarantor)
        session.flush()
        record(
            session,
            actor=actor,
            action="patient.create",
            subject=Subject(
                "guarantor", row_id, organization_id=keys.organization_id, patient_id=row_id
            ),
            details={"fields": ["first_name", "last_name", "date_of_birth"]},
        )
        return guarantor

    def create_patient(
        self, session: Session, *, keys: OrganizationKeys, actor: Actor, data: PatientCreate
    ) -> Patient:
        if patient_repository.guarantor(session, data.guarantor_id) is None:
            raise NotFound("no such guarantor")
        cipher, blind = keys.cipher(), keys.blind()
        row_id = uuid7()
        table = Patient.__tablename__
        patient = Patient(
            id=row_id,
            organization_id=keys.organization_id,
            guarantor_id=data.guarantor_id,
            relationship_to_guarantor=data.relationship_to_guarantor,
            first_name=cipher.seal(table, "first_name", row_id, data.first_name),
            last_name=cipher.seal(table, "last_name", row_id, data.last_name),
            date_of_birth=cipher.seal(table, "date_of_birth", row_id, _iso(data.date_of_birth)),
            name_dob_bidx=(
                blind.name_dob(data.last_name, data.date_of_birth.isoformat())
                if data.date_of_birth
                else None
            ),
        )
        session.add(patient)
        session.flush()
        record(
            session,
            actor=actor,
            action="patient.create",
            subject=Subject(
                "patient",
                row_id,
                organization_id=keys.organization_id,
                patient_id=data.guarantor_id,
            ),
            details={"guarantor_id": str(data.guarantor_id)},
        )
        return patient

    def add_contact_point(
        self, session: Session, *, keys: OrganizationKeys, actor: Actor, data: ContactPointCreate
    ) -> ContactPoint:
        guarantor = patient_repository.guarantor(session, data.guarantor_id)
        if guarantor is None:
            raise NotFound("no such guarantor")
        cipher, blind = keys.cipher(), keys.blind()
        row_id = uuid7()
        table = ContactPoint.__tablename__
        point = ContactPoint(
            id=row_id,
            organization_id=keys.organization_id,
            guarantor_id=data.guarantor_id,
            kind=data.kind,
            line_type=data.line_type if data.kind == "phone" else None,
            owner=data.owner,
            employer_provided=data.employer_provided,
            verified=data.verified,
            is_primary=data.is_primary,
            source=data.source,
        )
        if data.kind == "phone":
            if not isinstance(data.value, str):
                raise BadInput("a phone contact point needs a phone number")
            e164 = normalize_phone(data.value)
            point.value = cipher.seal(table, "value", row_id, e164)  # type: ignore[assignment]
            point.value_bidx = blind.phone(e164)
            point.area_code_tzs = list(phone_time_zones(e164))
        elif data.kind == "email":
            if not isinstance(data.value, str):
                raise BadInput("an e-mail contact point needs an address")
            email = normalize_email(data.value)
            point.value = cipher.seal(table, "value", row_id, email)  # type: ignore[assignment]
            point.value_bidx = blind.email(email)
        else:
            if not isinstance(data.value, PostalAddress):
                raise BadInput("a postal contact point needs an address")
            address = data.value
            zip5 = normalize_zip(address.zip)
            text = json.dumps(address.model_dump(), sort_keys=True)
            point.value = cipher.seal(table, "value", row_id, text)  # type: ignore[assignment]
            point.postal_code = cipher.seal(table, "postal_code", row_id, zip5)
            point.address_tz = zip_time_zone(zip5)
            if data.is_primary or guarantor.mailing_tz is None:
                # PLAT-DAY-COUNT: the mailing address's zone is the primary zone.
                guarantor.mailing_tz = point.address_tz
                guarantor.state = address.state.upper()
                guarantor.city_is_nyc = zip_in_nyc(zip5)
        session.add(point)
        session.flush()
        record(
            session,
            actor=actor,
            action="contact_point.create",
            subject=Subject(
                "contact_point",
                row_id,
                organization_id=keys.organization_id,
                patient_id=data.guarantor_id,
            ),
            details={"kind": data.kind},
        )
        return point

    # -- reads (audited) ---------------------------------------------------------------

    def read_guarantor(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        guarantor_id: uuid.UUID,
        purpose: str = "view",
    ) -> GuarantorView:
        guarantor = patient_repository.guarantor(session, guarantor_id)
        if guarantor is None:
            raise NotFound("no such guarantor")
        cipher = keys.cipher()
        dob = cipher.open_row(guarantor, "date_of_birth")
        view = GuarantorView(
            id=guarantor.id,
            first_name=cipher.open_row(guarantor, "first_name") or "",
            last_name=cipher.open_row(guarantor, "last_name") or "",
            date_of_birth=date.fromisoformat(dob) if dob else None,
            state=guarantor.state,
            mailing_tz=guarantor.mailing_tz,
            preferred_language=guarantor.preferred_language,
        )
        record(
            session,
            actor=actor,
            action="patient.read",
            subject=Subject(
                "guarantor",
                guarantor.id,
                organization_id=keys.organization_id,
                patient_id=guarantor.id,
            ),
            details={"fields": ["first_name", "last_name", "date_of_birth"], "purpose": purpose},
        )
        return view

    def find_guarantors(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        phone: str | None = None,
        email: str | None = None,
        last_name: str | None = None,
        date_of_birth: date | None = None,
    ) -> list[uuid.UUID]:
        """Guarantor ids matching every given criterion exactly.

        Blind indexes return candidates (truncated HMACs collide by design); each candidate
        is decrypted and compared, so false positives never reach the caller. The search
        and the ids it returned are audited; the search terms are not.
        """
        cipher, blind = keys.cipher(), keys.blind()
        candidate_sets: list[set[uuid.UUID]] = []
        criteria: list[str] = []
        if phone is not None:
            e164 = normalize_phone(phone)
            points = patient_repository.contact_points_by_bidx(session, "phone", blind.phone(e164))
            candidate_sets.append(
                {p.guarantor_id for p in points if cipher.open_row(p, "value") == e164}
            )
            criteria.append("phone")
        if email is not None:
            address = normalize_email(email)
            points = patient_repository.contact_points_by_bidx(
                session, "email", blind.email(address)
            )
            candidate_sets.append(
                {p.guarantor_id for p in points if cipher.open_row(p, "value") == address}
            )
            criteria.append("email")
        if last_name is not None or date_of_birth is not None:
            if last_name is None or date_of_birth is None:
                raise BadInput("search by name needs both last name and date of birth")
            bidx = blind.name_dob(last_name, date_of_birth.isoformat())
            wanted_name = _fold(last_name)
            matches = set()
            for g in patient_repository.guarantors_by_name_dob_bidx(session, bidx):
                if (
                    _fold(cipher.open_row(g, "last_name") or "") == wanted_name
                    and cipher.open_row(g, "date_of_birth") == date_of_birth.isoformat()
                ):
                    matches.add(g.id)
            candidate_sets.append(matches)
            criteria.append("last_name+date_of_birth")
        if not candidate_sets:
            raise BadInput("give at least one search criterion")
        found = sorted(set.intersection(*candidate_sets))
        record(
            session,
            actor=actor,
            action="patient.search",
            subject=Subject("guarantor", None, organization_id=keys.organization_id),
            details={
                "criteria": criteria,
                "count": len(found),
                "result_ids": [str(i) for i in found],
            },
        )
        return found

    def raise_flag(
        self,
        session: Session,
        *,
        keys: OrganizationKeys,
        actor: Actor,
        guarantor_id: uuid.UUID,
        kind: str,
        raised_at: datetime,
        account_id: uuid.UUID | None = None,
        in_writing: bool = False,
        attributes: dict[str, object] | None = None,
        source: str = "staff",
    ) -> Flag:
        if kind not in FLAG_KINDS:
            raise BadInput(f"unknown flag kind {kind!r}")
        if patient_repository.guarantor(session, guarantor_id) is None:
            raise NotFound("no such guarantor")
        flag = Flag(
            organization_id=keys.organization_id,
            guarantor_id=guarantor_id,
            account_id=account_id,
            kind=kind,
            raised_at=raised_at,
            in_writing=in_writing,
            attributes=dict(attributes or {}),
            source=source,
        )
        session.add(flag)
        session.flush()
        record(
            session,
            actor=actor,
            action="flag.raise",
            subject=Subject(
                "flag", flag.id, organization_id=keys.organization_id, patient_id=guarantor_id
            ),
            details={"kind": kind},
        )
        if kind == "dispute":
            emit_event(
                session,
                organization_id=keys.organization_id,
                type="dispute.received",
                data={
                    "flag_id": flag.id,
                    "guarantor_id": guarantor_id,
                    "account_id": account_id,
                    "in_writing": in_writing,
                    "received_at": raised_at,
                },
            )
        return flag


    def review_flag(
        self,
        session: Session,
        *,
        actor: Actor,
        flag_id: uuid.UUID,
        outcome: str,
        at: datetime,
        clear: bool,
    ) -> Flag:
        """Record a person's review of a flag: `clear` ends it (outreach it suppressed may
        resume), otherwise it stays in force and leaves the review queue. History is kept:
        the outcome and time go into the flag's attributes, never edited away."""
        flag = session.get(Flag, flag_id)
        if flag is None:
            raise NotFound("no such flag")
        if flag.cleared_at is not None:
            raise BadInput("this flag is already cleared")
        attributes = dict(flag.attributes or {})
        if attributes.get("reviewed_at") and not clear:
            raise BadInput("this flag is already reviewed")
        attributes.update({"reviewed_at": at.isoformat(), "review_outcome": outcome,
                           "reviewed_by": f"{actor.type}:{actor.id}"[:80]})
        flag.attributes = attributes  # a new dict: JSON columns track assignment only
        if clear:
            flag.cleared_at = at
        session.flush()
        record(
            session,
            actor=actor,
            action="flag.clear" if clear else "flag.review",
            subject=Subject("flag", flag.id, organization_id=flag.organization_id,
                            patient_id=flag.guarantor_id),
            details={"kind": flag.kind, "outcome": outcome},
        )
        return flag


def _fold(name: str) -> str:
    from carecollect.kit.crypto.blind import normalize_name

    return normalize_name(name)


patient_service = PatientService()
