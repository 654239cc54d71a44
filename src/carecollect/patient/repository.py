"""Every query of the patient domain. Takes the session, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.patient.models import ContactPoint, Guarantor, Patient


class PatientRepository:
    def guarantor(self, session: Session, guarantor_id: uuid.UUID) -> Guarantor | None:
        return session.get(Guarantor, guarantor_id)

    def guarantors_by_name_dob_bidx(self, session: Session, bidx: int) -> Sequence[Guarantor]:
        return session.scalars(select(Guarantor).where(Guarantor.name_dob_bidx == bidx)).all()

    def patients_by_name_dob_bidx(self, session: Session, bidx: int) -> Sequence[Patient]:
        return session.scalars(select(Patient).where(Patient.name_dob_bidx == bidx)).all()

    def contact_points_by_bidx(
        self, session: Session, kind: str, bidx: int
    ) -> Sequence[ContactPoint]:
        return session.scalars(
            select(ContactPoint).where(ContactPoint.kind == kind, ContactPoint.value_bidx == bidx)
        ).all()

    def contact_points_of(
        self, session: Session, guarantor_id: uuid.UUID
    ) -> Sequence[ContactPoint]:
        return session.scalars(
            select(ContactPoint)
            .where(ContactPoint.guarantor_id == guarantor_id)
            .order_by(ContactPoint.created_at, ContactPoint.id)
        ).all()

    def patients_of(self, session: Session, guarantor_id: uuid.UUID) -> Sequence[Patient]:
        return session.scalars(
            select(Patient).where(Patient.guarantor_id == guarantor_id).order_by(Patient.id)
        ).all()


patient_repository = PatientRepository()
