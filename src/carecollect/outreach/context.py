"""Build the compliance engine's `Context` for one proposed message from stored state.

Everything the engine may look at for one debtor is loaded here, inside the delivery
transaction that holds the debtor's lock, so the decision sees every earlier send,
revocation and flag (ARCHITECTURE.md §6 step 2, PLAT-HONOR-IMMEDIATELY). Sealed values are
opened only where a rule needs them: phone numbers (zones when the area code is ambiguous),
the mailing ZIP (PLAT-TZ-RESOLVE) and inbound message texts (TCPA-REVOKE-ANYMEANS).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from carecollect.compliance import scenario as sc
from carecollect.consent.models import Consent, Revocation
from carecollect.consent.preferences import scenario_additions
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.ledger.models import Account
from carecollect.ledger.repository import ledger_repository
from carecollect.outreach.models import ContactEvent
from carecollect.patient.models import ContactPoint, Flag, Guarantor
from carecollect.tenant.models import Organization

HISTORY_WINDOW = timedelta(days=400)
_ENTITY_KINDS = {"dental_practice", "physician_group", "hospital_nonprofit_501r",
                 "behavioral_health_practice", "collection_agency"}
_LINE_TYPES = {"wireless", "landline", "voip", "hospital_patient_room"}
_OWNERS = {"debtor", "spouse", "parent", "employer", "unknown"}
_HISTORY_CHANNELS = {"call", "sms", "email", "letter", "voicemail"}
_DIALERS = {"manual", "autodialer", "prerecorded"}


@dataclasses.dataclass
class DebtorFacts:
    """The stored state of one debtor, loaded once per delivery."""

    organization: Organization
    guarantor: Guarantor
    contact_points: dict[uuid.UUID, ContactPoint]
    opened_values: dict[uuid.UUID, str]
    context: sc.Context
    active_flags: list[Flag]
    accounts: list[Account]
    balance_cents: int


def load_debtor(
    session: Session,
    keys: OrganizationKeys,
    organization: Organization,
    guarantor_id: uuid.UUID,
    *,
    now: datetime,
    profile: str = "strict",
    account_id: uuid.UUID | None = None,
) -> DebtorFacts:
    """Load a debtor's contact points, consent ledger, history and flags as a Context
    whose proposed action is a placeholder (see `with_action`)."""
    cipher = keys.cipher()
    guarantor = session.get(Guarantor, guarantor_id)
    if guarantor is None:
        raise LookupError("no such guarantor")
    points = list(session.scalars(
        select(ContactPoint).where(ContactPoint.guarantor_id == guarantor_id,
                                   ContactPoint.active.is_(True))
    ))
    opened: dict[uuid.UUID, str] = {}
    zip5 = ""
    cps: list[sc.ContactPoint] = []
    for cp in points:
        value = cipher.open_row(cp, "value") or ""
        opened[cp.id] = value
        if cp.kind == "postal":
            if cp.is_primary or not zip5:
                zip5 = cipher.open_row(cp, "postal_code") or zip5
            shown = "postal"
        else:
            shown = value
        zones = list(cp.area_code_tzs or [])
        cps.append(sc.ContactPoint(
            id=str(cp.id),
            type=cp.kind if cp.kind in ("phone", "email", "postal") else "postal",  # type: ignore[arg-type]
            value=shown,
            line_type=cp.line_type if cp.line_type in _LINE_TYPES else None,  # type: ignore[arg-type]
            area_code_tz=zones[0] if len(zones) == 1 else None,
            owner=cp.owner if cp.owner in _OWNERS else "unknown",  # type: ignore[arg-type]
            employer_provided=cp.employer_provided,
            source=cp.source,
        ))
    consents = tuple(
        sc.Consent(contact_point=str(c.contact_point_id) if c.contact_point_id else None,
                   kind=c.kind,  # type: ignore[arg-type]
                   granted_at=c.granted_at, given_to=c.given_to,  # type: ignore[arg-type]
                   method=c.method)
        for c in session.scalars(select(Consent).where(Consent.guarantor_id == guarantor_id))
    )
    revocations = tuple(
        sc.Revocation(contact_point=str(r.contact_point_id) if r.contact_point_id else None,
                      channel=r.channel, received_at=r.received_at, method=r.method)
        for r in session.scalars(
            select(Revocation).where(Revocation.guarantor_id == guarantor_id))
    )
    history: list[sc.HistoryEvent] = []
    for e in session.scalars(
        select(ContactEvent)
        .where(ContactEvent.guarantor_id == guarantor_id,
               ContactEvent.occurred_at >= now - HISTORY_WINDOW)
        .order_by(ContactEvent.occurred_at)
    ):
        if e.channel not in _HISTORY_CHANNELS:
            continue
        text = cipher.open_row(e, "text") if e.direction == "inbound" and e.text else None
        history.append(sc.HistoryEvent(
            at=e.occurred_at, channel=e.channel,  # type: ignore[arg-type]
            direction=e.direction,  # type: ignore[arg-type]
            contact_point=str(e.contact_point_id) if e.contact_point_id else None,
            person=e.person, debt_ids=tuple(e.account_ids or ()),
            dialer=e.dialer if e.dialer in _DIALERS else None,  # type: ignore[arg-type]
            outcome=e.outcome, text=text))
    flags = [f for f in session.scalars(select(Flag).where(Flag.guarantor_id == guarantor_id))
             if f.raised_at <= now and (f.cleared_at is None or f.cleared_at > now)]
    account_q = select(Account).where(Account.guarantor_id == guarantor_id)
    if account_id is not None:
        account_q = account_q.where(or_(Account.id == account_id, Account.status == "open"))
    accounts = [a for a in session.scalars(account_q.order_by(Account.opened_at))
                if a.status == "open" or a.id == account_id]
    target = [a for a in accounts if a.id == account_id] or accounts
    balance = sum(ledger_repository.balance_cents(session, a.id) for a in target)
    debt_ids = tuple(str(a.id) for a in target) or (str(guarantor_id),)
    kind = target[0].debt_kind if target and target[0].debt_kind in ("medical", "dental") \
        else ("dental" if organization.entity_kind == "dental_practice" else "medical")
    delinquent = min((a.first_delinquency_at for a in target if a.first_delinquency_at),
                     default=None)
    creditor = sc.Creditor(
        type="first_party",
        entity_kind=organization.entity_kind if organization.entity_kind in _ENTITY_KINDS
        else "physician_group",  # type: ignore[arg-type]
        display_name=organization.billing_display_name,
        provider_license_state=organization.provider_license_state,
    )
    # Plan time and send time must see the same consent ledger: designations, the
    # confidential-communication request and medium opt-outs (HIPAA-CONF-COMM,
    # REGF-TIME-DESIGNATED, REGF-MEDIUM-OPTOUT) join what the engine reads.
    additions = scenario_additions(session, guarantor_id=guarantor_id, now=now)
    revocations = revocations + additions.opt_outs
    debtor = sc.Debtor(
        person_id=str(guarantor.id),
        designated_inconvenient=additions.designations,
        confidential_comm_request=additions.confidential,
        state=(guarantor.state or organization.provider_license_state or "").upper(),
        zip=zip5 or "00000",
        mailing_tz=guarantor.mailing_tz or organization.timezone,
        city_is_nyc=guarantor.city_is_nyc,
        other_known_tz=tuple(guarantor.other_known_tz or ()),
        deceased=any(f.kind == "deceased" for f in flags),
    )
    debt = sc.Debt(debt_ids=debt_ids, kind=kind, balance_cents=balance,  # type: ignore[arg-type]
                   first_delinquency_date=delinquent.date() if delinquent else None)
    ctx = sc.Context(
        as_of=now,
        policy_profile=profile,  # type: ignore[arg-type]
        creditor=creditor,
        debtor=debtor,
        debt=debt,
        proposed_action=sc.ProposedAction(channel="letter", time=now, recipient="debtor",
                                          debt_ids=debt_ids),
        contact_points=tuple(cps),
        consents=consents,
        revocations=revocations,
        contact_history=tuple(history),
        flags=_flags(flags),
    )
    by_id = {cp.id: cp for cp in points}
    return DebtorFacts(organization, guarantor, by_id, opened, ctx, flags, target, balance)


def _attr(flag: Flag, key: str, default: Any) -> Any:
    return (flag.attributes or {}).get(key, default)


def _flags(flags: list[Flag]) -> sc.Flags:
    values: dict[str, Any] = {}
    for f in sorted(flags, key=lambda x: x.raised_at):
        if f.kind == "dispute":
            values["disputed"] = sc.DisputeFlag(received_at=f.raised_at, in_writing=f.in_writing)
        elif f.kind == "bankruptcy":
            values["bankruptcy"] = sc.BankruptcyFlag(
                filed_at=f.raised_at, chapter=int(_attr(f, "chapter", 7)),
                status=str(_attr(f, "status", "filed")))
        elif f.kind == "attorney_represented":
            values["attorney_represented"] = sc.AttorneyFlag(
                since=f.raised_at, attorney_name_known=bool(_attr(f, "attorney_name_known", False)))
        elif f.kind == "cease_requested":
            values["cease_requested"] = sc.CeaseFlag(
                received_at=f.raised_at, in_writing=f.in_writing,
                scope=str(_attr(f, "scope", "all")))
    return sc.Flags(**values)


def with_action(
    ctx: sc.Context,
    *,
    channel: str,
    at: datetime,
    contact_point_id: uuid.UUID | None,
    template: str,
    contains: tuple[str, ...],
    includes_opt_out: bool,
    subject: str | None = None,
    url: str | None = None,
    dialer: str | None = None,
) -> sc.Context:
    """The context with its proposed action set to one concrete message."""
    content = sc.Content(template=template, subject=subject,
                         contains=cast(Any, tuple(contains)),
                         url=url, includes_opt_out=includes_opt_out)
    action = sc.ProposedAction(
        channel=channel,  # type: ignore[arg-type]
        time=at, recipient="debtor",
        contact_point=str(contact_point_id) if contact_point_id else None,
        dialer=dialer,  # type: ignore[arg-type]
        debt_ids=ctx.debt.debt_ids, content=content)
    return dataclasses.replace(ctx, as_of=at, proposed_action=action)


def postal_address(value: str) -> dict[str, Any]:
    """The postal contact point's opened JSON (line1, line2, city, state, zip)."""
    data = json.loads(value)
    return data if isinstance(data, dict) else {}
