"""Value types of the audit API: who acted (`Actor`), on what (`Subject`), and the rows of
a per-patient access log (`AccessLogEntry`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

ActorType = Literal["staff", "patient", "api_key", "system", "webhook"]
Outcome = Literal["success", "failure", "denied"]

ACTOR_TYPES: tuple[str, ...] = ("staff", "patient", "api_key", "system", "webhook")
OUTCOMES: tuple[str, ...] = ("success", "failure", "denied")


class Actor(NamedTuple):
    """Who performed the action. Ids only: a user id, a guarantor id, an API key id, a job
    name or a webhook source, never a name or an address. (Named tuples, not dataclasses:
    one is built per audited request, and a tuple is several times cheaper to create.)"""

    type: ActorType
    id: str

    @classmethod
    def staff(cls, user_id: uuid.UUID | str) -> Actor:
        return cls("staff", str(user_id))

    @classmethod
    def patient(cls, guarantor_id: uuid.UUID | str) -> Actor:
        return cls("patient", str(guarantor_id))

    @classmethod
    def api_key(cls, key_id: uuid.UUID | str) -> Actor:
        return cls("api_key", str(key_id))

    @classmethod
    def system(cls, job_name: str) -> Actor:
        return cls("system", job_name)

    @classmethod
    def webhook(cls, source: str) -> Actor:
        return cls("webhook", source)


class Subject(NamedTuple):
    """What the action was about: a record type, its id and its organization.

    `patient_id` names the patient (guarantor) concerned when the subject is one of their
    records (an account, a consent, a payment); for a subject of type "patient" it
    defaults to the subject's own id. It is what the per-patient access log is keyed on.
    """

    type: str
    id: uuid.UUID | str | None = None
    organization_id: uuid.UUID | None = None
    patient_id: uuid.UUID | str | None = None


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    """One line of "who viewed or changed this patient's record, when, why"."""

    recorded_at: datetime
    actor_type: str
    actor_id: str
    action: str
    outcome: str
    subject_type: str | None
    subject_id: str | None
    patient_id: str | None
    details: dict[str, Any]
    event_id: uuid.UUID
    seq: int | None  # None until the integrator has sequenced the event
