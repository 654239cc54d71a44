"""Pydantic shapes of the REST API (outputs; inputs reuse the domains' schemas)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of results; pass `next_cursor` as `cursor` for the next page."""

    items: list[T]
    next_cursor: str | None = None


class OrganizationOut(BaseModel):
    id: uuid.UUID
    slug: str
    legal_name: str
    billing_display_name: str
    entity_kind: str
    provider_license_state: str
    timezone: str
    state: str


class OrganizationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    billing_display_name: str | None = Field(default=None, min_length=1, max_length=100)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: str
    state: str
    mfa_enabled: bool
    last_login_at: datetime | None


class GuarantorOut(BaseModel):
    """A guarantor. `masked` is true when the caller may not see PHI unmasked."""

    id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: str | None
    state: str | None
    mailing_tz: str | None
    preferred_language: str
    masked: bool


class PatientOut(BaseModel):
    id: uuid.UUID
    guarantor_id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: str | None
    relationship_to_guarantor: str
    masked: bool


class ContactPointOut(BaseModel):
    id: uuid.UUID
    guarantor_id: uuid.UUID
    kind: str
    value: str
    line_type: str | None
    owner: str
    employer_provided: bool
    verified: bool
    is_primary: bool
    active: bool
    masked: bool


class GuarantorSearch(BaseModel):
    """Search terms travel in the body (POST), never in a URL (ARCHITECTURE.md 2)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: str | None = Field(default=None, min_length=7, max_length=40)
    email: str | None = Field(default=None, min_length=3, max_length=254)
    last_name: str | None = Field(default=None, min_length=1, max_length=100)
    date_of_birth: date | None = None


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guarantor_id: uuid.UUID
    account_number: str = Field(min_length=1, max_length=64)
    opened_at: datetime
    debt_kind: Literal["medical", "dental"] = "dental"


class AccountOut(BaseModel):
    id: uuid.UUID
    guarantor_id: uuid.UUID
    account_number: str
    debt_kind: str
    status: str
    opened_at: datetime
    balance_cents: int
    masked: bool


class LedgerEntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal[
        "charge", "insurance_payment", "insurance_adjustment", "patient_payment", "write_off",
        "adjustment", "refund",
    ]
    amount_cents: int = Field(ge=-100_000_000_00, le=100_000_000_00)
    posted_at: datetime
    patient_id: uuid.UUID | None = None
    service_date: date | None = None
    procedure_codes: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=500)
    external_reference: str | None = Field(default=None, max_length=120)


class LedgerEntryOut(BaseModel):
    id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    amount_cents: int
    posted_at: datetime
    service_date: str | None
    procedure_codes: str | None
    description: str | None
    masked: bool


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guarantor_id: uuid.UUID
    contact_point_id: uuid.UUID | None = None
    kind: Literal[
        "tcpa_pec", "tcpa_pewc", "email_use", "esign", "direct_prior_consent_extra_calls",
        "inconvenient_time_ok",
    ]
    granted_at: datetime
    method: str = Field(min_length=1, max_length=40)
    given_to: Literal["creditor", "debt_collector"] = "creditor"
    wording_version: str | None = Field(default=None, max_length=40)


class RevocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guarantor_id: uuid.UUID
    contact_point_id: uuid.UUID | None = None
    channel: Literal["sms", "call", "email", "voicemail", "letter", "all"]
    received_at: datetime
    method: str = Field(min_length=1, max_length=40)


class ConsentOut(BaseModel):
    id: uuid.UUID
    guarantor_id: uuid.UUID
    contact_point_id: uuid.UUID | None
    event: Literal["grant", "revoke"]
    kind: str | None
    channel: str | None
    at: datetime
    method: str
    given_to: str | None


class FlagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guarantor_id: uuid.UUID
    kind: Literal[
        "dispute", "bankruptcy", "deceased", "attorney_represented", "cease_requested",
        "hardship", "do_not_contact",
    ]
    raised_at: datetime
    account_id: uuid.UUID | None = None
    in_writing: bool = False


class FlagOut(BaseModel):
    id: uuid.UUID
    guarantor_id: uuid.UUID
    account_id: uuid.UUID | None
    kind: str
    raised_at: datetime
    cleared_at: datetime | None
    in_writing: bool
    source: str


class BusinessAssociateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    service: Literal["sms", "email", "payments", "mail_house", "hosting", "agency"]
    baa_status: Literal["none", "pending", "active", "terminated"] = "none"
    baa_effective_on: date | None = None
    baa_expires_on: date | None = None
    baa_document_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class BusinessAssociateOut(BaseModel):
    id: uuid.UUID
    name: str
    service: str
    baa_status: str
    baa_effective_on: date | None
    baa_expires_on: date | None
    baa_document_sha256: str | None
    active_today: bool


class AuditEventOut(BaseModel):
    event_id: uuid.UUID
    seq: int | None
    recorded_at: datetime
    actor_type: str
    actor_id: str
    action: str
    outcome: str
    subject_type: str | None
    subject_id: str | None
    patient_id: str | None
    details: dict[str, Any]


class VerifyOut(BaseModel):
    ok: bool
    tree_size: int
    entries_checked: int
    checkpoints_checked: int
    first_bad_seq: int | None
    problems: list[dict[str, Any]]
