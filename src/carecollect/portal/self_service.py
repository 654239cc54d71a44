"""Patient self-service in the portal (issue 7): contact preferences, disputing a charge,
asking for financial help, and the patient's own access log.

Services take the tenant session first and keyword arguments after `*`; they validate
everything before writing anything, audit every read and change of PHI in the caller's
transaction, and never commit (the portal route owns the transaction). The guarantor is
always the verified portal session's: another guarantor's account or charge answers
"not found", exactly like one that does not exist.

* Preferences feed the consent ledger (`consent/service.py`, `consent/preferences.py`):
  turning a medium off is a medium opt-out (REGF-MEDIUM-OPTOUT, 12 CFR 1006.14(h)), turning
  it back on is a re-consent (TCPA-RECONSENT: the latest event wins); the best time to
  reach the patient becomes a designated inconvenient time for the rest of the day, and
  days to avoid become day designations (REGF-TIME-DESIGNATED, 1006.6(b)(1)).
* A dispute raises a written `dispute` flag on the account (a portal form is a writing,
  Reg F 1006.38 and comment 38(d)(2)), excludes the account from collection cadences, and
  opens a staff review item, which suppresses outreach to the guarantor until a person
  has reviewed it (PLAT-REVOKE-NLU, the same queue as an inbound "I dispute this").
* A hardship request raises a `hardship` flag (the staff review queue), pauses the
  guarantor's active payment plans (`plan_service.pause`, which also excludes the account
  from outreach) and excludes every other account from collection cadences.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.audit.service import access_log
from carecollect.consent.preferences import (
    RECONSENT_KIND,
    WEEKDAYS,
    parse_window,
    preferences_service,
)
from carecollect.errors import BadInput, NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.outreach.cadence import cadence_service
from carecollect.outreach.outbox import ReviewItem
from carecollect.patient.models import ContactPoint
from carecollect.patient.service import patient_service
from carecollect.payment_plan.service import plan_service
from carecollect.portal.bill import service_key
from carecollect.portal.self_service_repository import self_service_repository as repo

# The media a patient can switch in the portal; letters stay (statements are required).
PORTAL_MEDIA = ("email", "sms", "call")
_MEDIUM_POINT = {"email": "email", "sms": "phone", "call": "phone"}
LANGUAGES = ("en", "es")
DISPUTE_REASONS = ("not_mine", "wrong_amount", "insurance", "already_paid", "not_received",
                   "other")
HARDSHIP_REASONS = ("income", "medical_costs", "unemployment", "other")
PORTAL_METHOD = "portal"
WORDING_VERSION = "portal-preferences-1"
# A re-consent and an opt-out written by one save must not tie: the opt-out of a medium
# the patient left off follows the consent that a shared phone needed for another medium.
_AFTER = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class ContactChannel:
    medium: str
    allowed: bool
    available: bool  # a contact point of this kind is on file
    masked: str | None  # e.g. "r•••@example.org", "•••• 0123"


@dataclass(frozen=True)
class ContactPreferences:
    channels: tuple[ContactChannel, ...]
    best_time: tuple[str, str] | None  # "HH:MM", "HH:MM" (local), from a portal designation
    avoid_days: tuple[str, ...]
    language: str


@dataclass(frozen=True)
class PreferencesUpdate:
    """The form as the patient submitted it (raw strings; validated by the service)."""

    channels: Mapping[str, bool]
    best_time_start: str = ""
    best_time_end: str = ""
    avoid_days: Sequence[str] = ()
    language: str = "en"


@dataclass(frozen=True)
class ChargeLine:
    entry_id: uuid.UUID
    account_id: uuid.UUID
    posted_on: dt.date
    service_on: str | None
    description: str
    amount_cents: int
    disputed: bool
    service_key: str | None = None  # the plain-words catalog key of its procedure code


@dataclass(frozen=True)
class Filed:
    """A dispute or hardship request: the flag id, and whether this call created it."""

    flag_id: uuid.UUID
    created: bool
    paused_plans: int = 0
    excluded_accounts: int = 0


@dataclass(frozen=True)
class AccessLine:
    """One line of the patient's own access log (`at` in the organization's zone). `who`
    is a staff member's display name, "you", "staff" (unknown staff id), "system",
    "integration" or "portal"; `role` is a staff role or None; `activity` is "viewed",
    "changed", "contacted", "paid", "signed_in" or "other"; `why` a purpose code or None.
    No ids, no details, nothing of others."""

    at: dt.datetime
    who: str
    role: str | None
    activity: str
    action: str
    why: str | None
    outcome: str
    is_self: bool = field(default=False)


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def _mask_phone(value: str) -> str:
    return f"•••• {value[-4:]}" if len(value) >= 4 else "••••"


def _later(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class SelfServiceService:
    # -- contact preferences ------------------------------------------------------------

    def preferences(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                    guarantor_id: uuid.UUID) -> ContactPreferences:
        """The patient's current choices, with their own addresses masked (an audited
        read: `portal.view`, page `preferences`)."""
        guarantor = repo.guarantor(session, guarantor_id)
        if guarantor is None:
            raise NotFound("no such guarantor")
        cipher = keys.cipher()
        points = repo.contact_points(session, guarantor_id)
        masked: dict[str, str] = {}
        for point in points:
            if point.kind not in ("email", "phone") or point.kind in masked:
                continue
            value = cipher.open_row(point, "value") or ""
            masked[point.kind] = _mask_email(value) if point.kind == "email" \
                else _mask_phone(value)
        allowed = self._allowed(session, guarantor_id)
        channels = tuple(ContactChannel(m, allowed[m], _MEDIUM_POINT[m] in masked,
                                        masked.get(_MEDIUM_POINT[m])) for m in PORTAL_MEDIA)
        best: tuple[str, str] | None = None
        days: list[str] = []
        for row in repo.designations(session, guarantor_id):
            if row.kind == "time" and row.method == PORTAL_METHOD:
                # Stored as the inconvenient span "end-start"; shown as the best time.
                start, end = row.value.split("-")
                best = (end, start)
            elif row.kind == "day":
                days.append(row.value)
        record(session, actor=actor, action="portal.view",
               subject=Subject("patient", guarantor_id, organization_id=keys.organization_id),
               details={"page": "preferences", "fields": ["contact_points"]})
        return ContactPreferences(channels, best,
                                  tuple(d for d in WEEKDAYS if d in days),
                                  guarantor.preferred_language)

    def _allowed(self, session: Session, guarantor_id: uuid.UUID) -> dict[str, bool]:
        """Per medium: no opt-out or revocation in force, i.e. none later than the latest
        consent of the kind that re-authorizes the medium (TCPA-RECONSENT)."""
        points = {p.id: p.kind for p in repo.contact_points(session, guarantor_id)}
        negative: dict[str, dt.datetime | None] = dict.fromkeys(PORTAL_MEDIA)
        positive: dict[str, dt.datetime | None] = dict.fromkeys(PORTAL_MEDIA)
        for rev in repo.revocations(session, guarantor_id):
            for m in PORTAL_MEDIA:
                if rev.channel in (m, "all"):
                    negative[m] = _later(negative[m], rev.received_at)
        for opt in repo.medium_opt_outs(session, guarantor_id):
            for m in PORTAL_MEDIA:
                if opt.medium in (m, "all"):
                    negative[m] = _later(negative[m], opt.received_at)
        for consent in repo.consents(session, guarantor_id):
            kind_of_point = points.get(consent.contact_point_id) \
                if consent.contact_point_id else None
            for m in PORTAL_MEDIA:
                if consent.kind == RECONSENT_KIND[m] and kind_of_point == _MEDIUM_POINT[m]:
                    positive[m] = _later(positive[m], consent.granted_at)
        out = {}
        for m in PORTAL_MEDIA:
            neg, pos = negative[m], positive[m]
            out[m] = neg is None or (pos is not None and pos > neg)
        return out

    def update_preferences(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                           guarantor_id: uuid.UUID, update: PreferencesUpdate,
                           now: dt.datetime) -> list[str]:
        """Apply the form. Returns the change codes made (empty when nothing changed).
        Every input is checked first: a bad one raises BadInput and writes nothing."""
        guarantor = repo.guarantor(session, guarantor_id)
        if guarantor is None:
            raise NotFound("no such guarantor")
        unknown = sorted(set(update.channels) - set(PORTAL_MEDIA))
        if unknown:
            raise BadInput("Choose among e-mail, text messages and phone calls.")
        if update.language not in LANGUAGES:
            raise BadInput("Choose English or Spanish.")
        start, end = update.best_time_start.strip(), update.best_time_end.strip()
        window: str | None = None
        if start or end:
            if not (start and end):
                raise BadInput("Give both the start and the end of the best time to reach "
                               "you, or leave both empty.")
            window = f"{end}-{start}"  # inconvenient = the rest of the day
            try:
                parse_window(window)
            except BadInput:
                raise BadInput("Enter times like 09:00 and 17:00.") from None
            if start == end:
                raise BadInput("The start and the end of the best time must differ.")
        days = [d.strip().lower() for d in update.avoid_days]
        if any(d not in WEEKDAYS for d in days):
            raise BadInput("Choose days of the week.")
        if len(set(days)) == len(WEEKDAYS):
            raise BadInput("Leave at least one day on which we may contact you.")
        points = repo.contact_points(session, guarantor_id)
        first_point: dict[str, ContactPoint] = {}
        for point in points:
            first_point.setdefault(point.kind, point)
        allowed = self._allowed(session, guarantor_id)
        wanted_on = [m for m in PORTAL_MEDIA if update.channels.get(m) and not allowed[m]]
        for m in wanted_on:
            if _MEDIUM_POINT[m] not in first_point:
                raise BadInput("We have no e-mail address on file to use." if m == "email"
                               else "We have no phone number on file to use.")

        changes: list[str] = []
        granted_kinds: set[str] = set()
        for m in wanted_on:
            point = first_point[_MEDIUM_POINT[m]]
            if RECONSENT_KIND[m] in granted_kinds:
                continue
            preferences_service.reconsent(
                session, keys=keys, actor=actor, guarantor_id=guarantor_id,
                contact_point_id=point.id, medium=m, granted_at=now, method=PORTAL_METHOD,
                wording_version=WORDING_VERSION)
            granted_kinds.add(RECONSENT_KIND[m])
            changes.append(f"on:{m}")
        for m in PORTAL_MEDIA:
            # Off: opt out when allowed now, or when a consent just granted for a shared
            # phone (sms and call) would otherwise switch this medium back on.
            leave_off = not update.channels.get(m)
            reopened = RECONSENT_KIND[m] in granted_kinds and m not in wanted_on
            if leave_off and (allowed[m] or reopened):
                preferences_service.opt_out_medium(
                    session, keys=keys, actor=actor, guarantor_id=guarantor_id, medium=m,
                    received_at=now + _AFTER, method=PORTAL_METHOD)
                changes.append(f"off:{m}")

        current = repo.designations(session, guarantor_id)
        current_window = [r for r in current if r.kind == "time" and r.method == PORTAL_METHOD]
        if [r.value for r in current_window] != ([window] if window else []):
            for row in current_window:
                preferences_service.revoke_designation(
                    session, keys=keys, actor=actor, designation_id=row.id, at=now)
            if window:
                preferences_service.designate_inconvenient(
                    session, keys=keys, actor=actor, guarantor_id=guarantor_id, kind="time",
                    value=window, designated_at=now, method=PORTAL_METHOD)
            changes.append("best_time")
        current_days = {r.value: r for r in current if r.kind == "day"}
        for day, row in current_days.items():
            if day not in days:
                preferences_service.revoke_designation(
                    session, keys=keys, actor=actor, designation_id=row.id, at=now)
                changes.append(f"day_on:{day}")
        for day in WEEKDAYS:
            if day in days and day not in current_days:
                preferences_service.designate_inconvenient(
                    session, keys=keys, actor=actor, guarantor_id=guarantor_id, kind="day",
                    value=day, designated_at=now, method=PORTAL_METHOD)
                changes.append(f"day_off:{day}")

        if guarantor.preferred_language != update.language:
            guarantor.preferred_language = update.language
            record(session, actor=actor, action="patient.update",
                   subject=Subject("patient", guarantor_id,
                                   organization_id=keys.organization_id),
                   details={"fields": ["preferred_language"], "via": "portal"})
            changes.append("language")
        return changes

    # -- disputes -----------------------------------------------------------------------

    def charges(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                guarantor_id: uuid.UUID) -> list[ChargeLine]:
        """The guarantor's charges for the dispute form (an audited PHI read: the service
        descriptions and dates are shown only inside the verified portal)."""
        accounts = repo.accounts(session, guarantor_id)
        disputed = {str((f.attributes or {}).get("charge_entry_id"))
                    for f in repo.open_flags(session, guarantor_id, "dispute")}
        cipher = keys.cipher()
        lines = [ChargeLine(entry.id, entry.account_id, entry.posted_at.date(),
                            cipher.open_row(entry, "service_date"),
                            cipher.open_row(entry, "description") or "",
                            entry.amount_cents, str(entry.id) in disputed,
                            service_key(cipher.open_row(entry, "procedure_codes")))
                 for entry in repo.charges(session, [a.id for a in accounts])]
        record(session, actor=actor, action="portal.view",
               subject=Subject("patient", guarantor_id, organization_id=keys.organization_id),
               details={"page": "dispute",
                        "fields": ["service_date", "description", "procedure_codes"],
                        "count": len(lines)})
        return lines

    def file_dispute(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                     guarantor_id: uuid.UUID, charge_entry_id: uuid.UUID, reason: str,
                     now: dt.datetime) -> Filed:
        """Dispute one charge. Idempotent per charge while the dispute is open."""
        if reason not in DISPUTE_REASONS:
            raise BadInput("Choose the reason for your dispute.")
        entry = None
        for account in repo.accounts(session, guarantor_id):
            entry = repo.charge(session, account.id, charge_entry_id)
            if entry is not None:
                break
        if entry is None:
            raise NotFound("no such charge")
        for flag in repo.open_flags(session, guarantor_id, "dispute"):
            if (flag.attributes or {}).get("charge_entry_id") == str(charge_entry_id):
                return Filed(flag.id, created=False)
        flag = patient_service.raise_flag(
            session, keys=keys, actor=actor, guarantor_id=guarantor_id, kind="dispute",
            raised_at=now, account_id=entry.account_id, in_writing=True, source="portal",
            attributes={"origin": "portal", "reason": reason,
                        "charge_entry_id": str(charge_entry_id)})
        cadence_service.exclude(session, organization_id=keys.organization_id, actor=actor,
                                account_id=entry.account_id, reason="dispute", at=now)
        session.add(ReviewItem(organization_id=keys.organization_id,
                               guarantor_id=guarantor_id, kind="dispute", flag_id=flag.id,
                               state="open", created_at=now))
        record(session, actor=actor, action="portal.dispute",
               subject=Subject("account", entry.account_id,
                               organization_id=keys.organization_id, patient_id=guarantor_id),
               details={"flag_id": str(flag.id), "charge_entry_id": str(charge_entry_id),
                        "reason": reason})
        return Filed(flag.id, created=True, excluded_accounts=1)

    # -- financial help -----------------------------------------------------------------

    def request_hardship(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                         guarantor_id: uuid.UUID, reason: str, now: dt.datetime) -> Filed:
        """Ask for financial help: staff decide a discount or a plan. Idempotent while a
        request is open."""
        if reason not in HARDSHIP_REASONS:
            raise BadInput("Choose what best describes your situation.")
        if repo.guarantor(session, guarantor_id) is None:
            raise NotFound("no such guarantor")
        open_flags = repo.open_flags(session, guarantor_id, "hardship")
        if open_flags:
            return Filed(open_flags[0].id, created=False)
        flag = patient_service.raise_flag(
            session, keys=keys, actor=actor, guarantor_id=guarantor_id, kind="hardship",
            raised_at=now, in_writing=True, source="portal",
            attributes={"origin": "portal", "reason": reason})
        paused_accounts: set[uuid.UUID] = set()
        for plan in repo.active_plans(session, guarantor_id):
            plan_service.pause(session, actor=actor, plan_id=plan.id, now=now,
                               reason="hardship")
            paused_accounts.add(plan.account_id)
        excluded = 0
        for account in repo.accounts(session, guarantor_id):
            if account.id in paused_accounts:
                continue  # the pause already excluded it
            cadence_service.exclude(session, organization_id=keys.organization_id,
                                    actor=actor, account_id=account.id, reason="hardship",
                                    at=now)
            excluded += 1
        record(session, actor=actor, action="portal.hardship",
               subject=Subject("patient", guarantor_id, organization_id=keys.organization_id),
               details={"flag_id": str(flag.id), "reason": reason,
                        "paused_plans": len(paused_accounts), "excluded_accounts": excluded})
        return Filed(flag.id, created=True, paused_plans=len(paused_accounts),
                     excluded_accounts=excluded + len(paused_accounts))

    # -- access log ---------------------------------------------------------------------

    def access_log(self, session: Session, *, keys: OrganizationKeys, actor: Actor,
                   guarantor_id: uuid.UUID, limit: int = 200) -> list[AccessLine]:
        """Who viewed or changed this patient's record, when and why (HIPAA 164.528
        accounting), newest first, from the audit trail. Shows staff display names and
        roles, never ids, details or anything about other patients; the view itself is
        audited (`audit.access_log`)."""
        entries = access_log(session, keys.organization_id, guarantor_id, limit=limit)
        zone = ZoneInfo(repo.organization_timezone(session, keys.organization_id))
        staff = repo.staff(session, {e.actor_id for e in entries if e.actor_type == "staff"})
        lines = []
        for e in entries:
            role = None
            is_self = False
            if e.actor_type == "staff":
                user = staff.get(e.actor_id)
                who = user.display_name if user is not None else "staff"
                role = user.role if user is not None else None
            elif e.actor_type == "patient":
                is_self = e.actor_id == str(guarantor_id)
                who = "you" if is_self else "portal"
            elif e.actor_type in ("api_key", "webhook"):
                who = "integration"
            else:
                who = "system"
            purpose = (e.details or {}).get("purpose")
            lines.append(AccessLine(
                at=e.recorded_at.astimezone(zone), who=who, role=role,
                activity=activity_of(e.action),
                action=e.action, why=purpose if isinstance(purpose, str)
                and purpose.replace("_", "").isalnum() else None,
                outcome=e.outcome, is_self=is_self))
        record(session, actor=actor, action="audit.access_log",
               subject=Subject("patient", guarantor_id, organization_id=keys.organization_id),
               details={"via": "portal", "count": len(lines)})
        return lines


_ACTIVITY_PREFIXES = (
    (("portal.login",), "signed_in"),
    (("payment.", "plan.", "payment_method."), "paid"),
    (("message.", "outreach.", "contact."), "contacted"),
)


def activity_of(action: str) -> str:
    for prefixes, activity in _ACTIVITY_PREFIXES:
        if action.startswith(prefixes):
            return activity
    verb = action.rsplit(".", 1)[-1]
    if verb in ("read", "view", "search", "export", "reveal", "access_log", "list"):
        return "viewed"
    if verb in ("create", "update", "change", "post", "raise", "delete", "dispute",
                "hardship", "exclude", "exclude_lift", "enroll"):
        return "changed"
    return "other"


self_service = SelfServiceService()
