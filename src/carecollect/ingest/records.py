"""What every parser produces: normalized, validated records grouped into units.

A `Unit` is everything one source row (or one FHIR resource, one 835 claim) contributes.
It is written whole or not at all: when any of its records is invalid, or refers to a
person or account that exists neither earlier in the file nor in the database, the unit
is rejected and reported, and none of its records is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from carecollect.ingest.normalize import Phone, Place


@dataclass(slots=True)
class AddressIn:
    line1: str
    line2: str | None
    city: str
    state: str
    place: Place | None  # None when the export has no ZIP


@dataclass(slots=True)
class GuarantorIn:
    source_id: str
    first_name: str
    last_name: str
    date_of_birth: str | None  # ISO date
    state: str | None = None
    preferred_language: str = "en"
    phones: list[Phone] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    address: AddressIn | None = None


@dataclass(slots=True)
class PatientIn:
    source_id: str
    guarantor_source_id: str
    first_name: str
    last_name: str
    date_of_birth: str | None
    relationship: str = "self"
    sex: str | None = None
    minor: bool = False


@dataclass(slots=True)
class AccountIn:
    source_id: str
    guarantor_source_id: str
    account_number: str
    opened_at: datetime
    debt_kind: str = "medical"


@dataclass(slots=True)
class EntryIn:
    """One ledger line. `amount_cents` is signed as stored (charges positive)."""

    source_id: str
    account_source_id: str
    kind: str
    amount_cents: int
    posted_at: datetime
    patient_source_id: str | None = None
    service_date: str | None = None
    procedure_codes: str | None = None
    description: str | None = None
    # Set when the account is already known by id (an 835 matched by account number)
    # rather than by a source id of this import's system.
    account_id: uuid.UUID | None = None


@dataclass(slots=True)
class ConsentIn:
    """Communication consent (permit) or its revocation (deny) for a guarantor's phones
    or e-mail addresses."""

    guarantor_source_id: str
    kind: str  # consent.models.CONSENT_KINDS
    permit: bool
    at: datetime
    method: str = "import"
    channel: str = "all"  # revocation channel
    contact_kind: str | None = None  # phone | email | None (every point)


@dataclass(slots=True)
class CoverageIn:
    """A patient's insurance coverage (FHIR Coverage)."""

    source_id: str
    patient_source_id: str
    payer_name: str
    status: str = "active"
    member_id: str | None = None
    group_number: str | None = None
    period_start: str | None = None  # ISO date
    period_end: str | None = None  # ISO date
    relationship: str | None = None
    priority: int | None = None


@dataclass(slots=True)
class Unit:
    row: int
    guarantors: list[GuarantorIn] = field(default_factory=list)
    patients: list[PatientIn] = field(default_factory=list)
    accounts: list[AccountIn] = field(default_factory=list)
    entries: list[EntryIn] = field(default_factory=list)
    consents: list[ConsentIn] = field(default_factory=list)
    coverages: list[CoverageIn] = field(default_factory=list)
    # Counters a format reports without storing anything (e.g. skipped resources).
    noted: dict[str, int] = field(default_factory=dict)
