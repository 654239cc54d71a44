"""Consent-ledger additions: medium opt-outs, re-consent, confidential-communication
requests and designated inconvenient times. Each change is append-only and audited in the
caller's transaction (`consent.change`), like grants and revocations in `service.py`.

* REGF-MEDIUM-OPTOUT (12 CFR 1006.14(h)): a request not to use a medium (or one number or
  address) is honoured until a later consent on that medium (re-consent) lifts it; the
  planner compares timestamps, the latest event wins (TCPA-RECONSENT).
* HIPAA-CONF-COMM (45 CFR 164.522(b)): allowed channels / contact points; no reason asked.
* REGF-TIME-DESIGNATED (1006.6(b)(1)): a local time window, a weekday or a place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.compliance import scenario as sc
from carecollect.consent.models import (
    MEDIA,
    ConfidentialCommunicationRequest,
    Consent,
    InconvenientDesignation,
    MediumOptOut,
)
from carecollect.consent.service import consent_service
from carecollect.errors import BadInput
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PLACES = ("work", "home", "school", "hospital")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# Which consent kind re-authorizes which medium after an opt-out.
RECONSENT_KIND = {"sms": "tcpa_pec", "call": "tcpa_pec", "voicemail": "tcpa_pec",
                  "email": "email_use"}


def parse_window(value: str) -> tuple[dt.time, dt.time]:
    """'HH:MM-HH:MM' -> [start, end) local; wraps midnight when end <= start (the compliance
    engine's REGF-TIME-DESIGNATED reads the same format)."""
    match = _WINDOW.match(value)
    if match is None:
        raise BadInput("a time designation is 'HH:MM-HH:MM' in the consumer's local time")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return dt.time(h1, m1), dt.time(h2, m2)


class ConsentPreferencesService:
    def _audit(self, session: Session, keys: OrganizationKeys, actor: Actor, table: str,
               row_id: uuid.UUID, guarantor_id: uuid.UUID, details: dict[str, object]) -> None:
        record(session, actor=actor, action="consent.change",
               subject=Subject(table, row_id, organization_id=keys.organization_id,
                               patient_id=guarantor_id),
               details=details)

    def opt_out_medium(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                       guarantor_id: uuid.UUID, medium: str, received_at: dt.datetime,
                       method: str, contact_point_id: uuid.UUID | None = None,
                       text: str | None = None, captured_by: str | None = None
                       ) -> MediumOptOut:
        if medium not in MEDIA:
            raise BadInput(f"unknown medium {medium!r}")
        row_id = uuid7()
        row = MediumOptOut(id=row_id, organization_id=keys.organization_id,
                           guarantor_id=guarantor_id, contact_point_id=contact_point_id,
                           medium=medium, received_at=received_at, method=method,
                           captured_by=captured_by,
                           text=keys.cipher().seal("medium_opt_out", "text", row_id, text))
        session.add(row)
        session.flush()
        self._audit(session, keys, actor, "medium_opt_out", row_id, guarantor_id,
                    {"change": "medium_opt_out", "medium": medium, "method": method})
        return row

    def reconsent(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                  guarantor_id: uuid.UUID, contact_point_id: uuid.UUID, medium: str,
                  granted_at: dt.datetime, method: str, wording_version: str | None = None,
                  captured_by: str | None = None, evidence: str | None = None) -> Consent:
        """A new consent after an opt-out or revocation (e.g. START, a signed form): from
        `granted_at` it outranks every earlier revocation and opt-out on that point."""
        kind = RECONSENT_KIND.get(medium)
        if kind is None:
            raise BadInput(f"no consent re-authorizes medium {medium!r}")
        return consent_service.grant(
            session, keys=keys, actor=actor, guarantor_id=guarantor_id,
            contact_point_id=contact_point_id, kind=kind, granted_at=granted_at,
            method=method, source="reconsent", wording_version=wording_version,
            captured_by=captured_by, evidence=evidence)

    def request_confidential(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                             guarantor_id: uuid.UUID, received_at: dt.datetime, method: str,
                             allowed_channels: list[str],
                             allowed_contact_point_ids: list[uuid.UUID] | None = None,
                             instruction: str | None = None,
                             captured_by: str | None = None
                             ) -> ConfidentialCommunicationRequest:
        if not allowed_channels or any(c not in MEDIA[:-1] for c in allowed_channels):
            raise BadInput("a confidential-communication request names the allowed channels")
        row_id = uuid7()
        row = ConfidentialCommunicationRequest(
            id=row_id, organization_id=keys.organization_id, guarantor_id=guarantor_id,
            received_at=received_at, allowed_channels=sorted(set(allowed_channels)),
            allowed_contact_point_ids=[str(c) for c in allowed_contact_point_ids or []],
            instruction=keys.cipher().seal("confidential_comm_request", "instruction", row_id,
                                           instruction),
            method=method, captured_by=captured_by)
        # One request in force at a time: a new one supersedes the previous.
        session.execute(update(ConfidentialCommunicationRequest).where(
            ConfidentialCommunicationRequest.guarantor_id == guarantor_id,
            ConfidentialCommunicationRequest.withdrawn_at.is_(None)).values(
            withdrawn_at=received_at))
        session.add(row)
        session.flush()
        self._audit(session, keys, actor, "confidential_comm_request", row_id, guarantor_id,
                    {"change": "confidential_request", "channels": row.allowed_channels})
        return row

    def withdraw_confidential(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                              guarantor_id: uuid.UUID, at: dt.datetime) -> int:
        rows = list(session.scalars(select(ConfidentialCommunicationRequest).where(
            ConfidentialCommunicationRequest.guarantor_id == guarantor_id,
            ConfidentialCommunicationRequest.withdrawn_at.is_(None))))
        for row in rows:
            row.withdrawn_at = at
            self._audit(session, keys, actor, "confidential_comm_request", row.id,
                        guarantor_id, {"change": "confidential_withdraw"})
        return len(rows)

    def designate_inconvenient(self, session: Session, *, keys: OrganizationKeys,
                               actor: Actor, guarantor_id: uuid.UUID, kind: str, value: str,
                               designated_at: dt.datetime, method: str,
                               captured_by: str | None = None) -> InconvenientDesignation:
        if kind == "time":
            parse_window(value)
        elif kind == "day":
            if value not in WEEKDAYS:
                raise BadInput("a day designation is mon..sun")
        elif kind == "place":
            if value not in PLACES:
                raise BadInput(f"a place designation is one of {', '.join(PLACES)}")
        else:
            raise BadInput("a designation is of kind time, day or place")
        row_id = uuid7()
        row = InconvenientDesignation(id=row_id, organization_id=keys.organization_id,
                                      guarantor_id=guarantor_id, kind=kind, value=value,
                                      designated_at=designated_at, method=method,
                                      captured_by=captured_by)
        session.add(row)
        session.flush()
        self._audit(session, keys, actor, "inconvenient_designation", row_id, guarantor_id,
                    {"change": "designate_inconvenient", "kind": kind, "designation": value})
        return row

    def revoke_designation(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                           designation_id: uuid.UUID, at: dt.datetime) -> None:
        row = session.get(InconvenientDesignation, designation_id)
        if row is None:
            raise BadInput("no such designation")
        row.revoked_at = at
        self._audit(session, keys, actor, "inconvenient_designation", row.id, row.guarantor_id,
                    {"change": "designation_revoke"})


def designation_blocks(kind: str, value: str, local: dt.datetime) -> bool:
    """Whether a designation forbids contact at the consumer's local wall-clock `local`."""
    if kind == "day":
        return WEEKDAYS[local.weekday()] == value
    if kind == "time":
        start, end = parse_window(value)
        now = local.time()
        if start < end:
            return start <= now < end
        return now >= start or now < end  # window wraps midnight
    return False


def next_clear(designations: list[tuple[str, str]], local: dt.datetime,
               limit_days: int = 8) -> dt.datetime | None:
    """Earliest local instant at or after `local` that no time/day designation forbids
    (15-minute resolution); None if every slot in `limit_days` is forbidden."""
    candidate = local
    end = local + dt.timedelta(days=limit_days)
    while candidate < end:
        if not any(designation_blocks(k, v, candidate) for k, v in designations):
            return candidate
        step = 15 - candidate.minute % 15
        candidate = (candidate + dt.timedelta(minutes=step)).replace(second=0, microsecond=0)
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class ScenarioAdditions:
    """The consent-ledger additions in the compliance engine's scenario terms, for the
    dispatcher's send-time context (`outreach.context.load_debtor`)."""

    designations: tuple[sc.Designation, ...]
    confidential: sc.ConfidentialRequest | None
    opt_outs: tuple[sc.Revocation, ...]


def scenario_additions(session: Session, *, guarantor_id: uuid.UUID,
                       now: dt.datetime) -> ScenarioAdditions:
    """Designations and the confidential request in force at `now`, and every medium
    opt-out as a revocation of that medium (REGF-MEDIUM-OPTOUT reads revocations; a later
    consent lifts it, TCPA-RECONSENT)."""
    designations = tuple(
        sc.Designation(kind=d.kind, value=d.value, at=d.designated_at)  # type: ignore[arg-type]
        for d in session.scalars(select(InconvenientDesignation).where(
            InconvenientDesignation.guarantor_id == guarantor_id,
            InconvenientDesignation.designated_at <= now))
        if d.revoked_at is None or d.revoked_at > now)
    requests = [q for q in session.scalars(select(ConfidentialCommunicationRequest).where(
        ConfidentialCommunicationRequest.guarantor_id == guarantor_id,
        ConfidentialCommunicationRequest.received_at <= now).order_by(
        ConfidentialCommunicationRequest.received_at))
        if q.withdrawn_at is None or q.withdrawn_at > now]
    confidential = None
    if requests:
        latest = requests[-1]
        # Machine-readable for hipaa.conf_comm_blocks: "<media> only".
        confidential = sc.ConfidentialRequest(
            at=latest.received_at,
            instruction=" and ".join(latest.allowed_channels) + " only")
    opt_outs = tuple(
        sc.Revocation(contact_point=str(o.contact_point_id) if o.contact_point_id else None,
                      channel=o.medium, received_at=o.received_at, method=o.method)
        for o in session.scalars(select(MediumOptOut).where(
            MediumOptOut.guarantor_id == guarantor_id, MediumOptOut.received_at <= now)))
    return ScenarioAdditions(designations, confidential, opt_outs)


preferences_service = ConsentPreferencesService()
