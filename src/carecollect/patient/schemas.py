"""Pydantic shapes of the patient domain (inputs validated at the boundary)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GuarantorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    state: str | None = Field(default=None, min_length=2, max_length=2)
    preferred_language: Literal["en", "es"] = "en"
    other_known_tz: list[str] = Field(default_factory=list)
    source_id: str | None = Field(default=None, max_length=200)


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guarantor_id: uuid.UUID
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    relationship_to_guarantor: Literal["self", "child", "spouse", "dependent", "other"] = "self"
    source_id: str | None = Field(default=None, max_length=200)


class PostalAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    state: str = Field(min_length=2, max_length=2)
    zip: str = Field(min_length=5, max_length=10)


class ContactPointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guarantor_id: uuid.UUID
    kind: Literal["phone", "email", "postal"]
    value: str | PostalAddress
    line_type: Literal["wireless", "landline", "voip", "hospital_patient_room"] | None = None
    owner: Literal["debtor", "spouse", "parent", "employer", "unknown"] = "debtor"
    employer_provided: bool = False
    verified: bool = False
    is_primary: bool = False
    source: str = Field(default="staff", max_length=32)


class GuarantorView(BaseModel):
    """Decrypted guarantor, for a screen or a job that needs it (reads are audited)."""

    id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: date | None
    state: str | None
    mailing_tz: str | None
    preferred_language: str
