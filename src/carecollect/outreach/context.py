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
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Uuid, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from carecollect.compliance import scenario as sc
from carecollect.consent.models import (
    ConfidentialCommunicationRequest,
    Consent,
    InconvenientDesignation,
    MediumOptOut,
    Revocation,
)
from carecollect.consent.preferences import ScenarioAdditions
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.ledger.models import Account, LedgerEntry
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
_R = TypeVar("_R")


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
    wanted = (guarantor_id, account_id)
    return load_debtors(session, keys, organization, [wanted], now=now, profile=profile)[wanted]


def history_event(*, at: datetime, channel: str, direction: str,
                  contact_point_id: uuid.UUID | None, person: str, account_ids: Sequence[str],
                  dialer: str | None, outcome: str, text: str | None) -> sc.HistoryEvent:
    """One stored contact-history row in the engine's terms. The batch dispatcher builds the
    rows it records within a batch with this too, so a later attempt of the same batch sees
    exactly what a fresh load would."""
    return sc.HistoryEvent(
        at=at, channel=channel,  # type: ignore[arg-type]
        direction=direction,  # type: ignore[arg-type]
        contact_point=str(contact_point_id) if contact_point_id else None,
        person=person, debt_ids=tuple(account_ids or ()),
        dialer=dialer if dialer in _DIALERS else None,  # type: ignore[arg-type]
        outcome=outcome, text=text)


def _grouped(rows: Iterable[_R], key: Callable[[_R], uuid.UUID]) -> dict[uuid.UUID, list[_R]]:
    out: dict[uuid.UUID, list[_R]] = {}
    for row in rows:
        out.setdefault(key(row), []).append(row)
    return out


_UUID_ARRAY = ARRAY(Uuid())


def _read(session: Session, statement: Any) -> Any:
    """Run a Core select on the session's connection: rows of plain columns, without the
    ORM's per-statement work (the caller filters by organization itself; on PostgreSQL
    row-level security applies as well)."""
    return session.connection().execute(statement)


def among(session: Session, column: Any, ids: Sequence[uuid.UUID],
          name: str = "ids") -> ColumnElement[bool]:
    """`column IN ids`. On PostgreSQL `column = ANY(:ids)` with one uuid[] parameter: the
    statement text stays the same whatever the number of ids (cached by the driver and
    prepared once), instead of one parameter per id expanded into the text at every
    execution."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(
            bindparam(name, list(ids), type_=_UUID_ARRAY)))
    return cast(ColumnElement[bool], column.in_(list(ids)))


def load_debtors(
    session: Session,
    keys: OrganizationKeys,
    organization: Organization,
    wanted: Sequence[tuple[uuid.UUID, uuid.UUID | None]],
    *,
    now: datetime,
    profile: str = "strict",
) -> dict[tuple[uuid.UUID, uuid.UUID | None], DebtorFacts]:
    """`load_debtor` for many (guarantor, account) pairs at once: one query per table for
    all of their guarantors (the batch dispatcher's path), then the same per-debtor
    assembly. Raises LookupError if a guarantor does not exist."""
    gids = sorted({g for g, _ in wanted})
    if not gids:
        return {}
    cipher = keys.cipher()
    org_id = organization.id
    session.flush()  # what the Core reads below see, as an ORM query's autoflush would
    guarantors = {g.id: g for g in session.scalars(
        select(Guarantor).where(among(session, Guarantor.id, gids)))}
    missing = [g for g in gids if g not in guarantors]
    if missing:
        raise LookupError("no such guarantor")
    points = _grouped(session.scalars(
        select(ContactPoint).where(among(session, ContactPoint.guarantor_id, gids),
                                   ContactPoint.active.is_(True)).order_by(ContactPoint.id)),
        lambda r: r.guarantor_id)
    # Rows only turned into the engine's tuples are read as plain columns (Core).
    c = Consent.__table__.c
    consents = _grouped(_read(session, select(
        c.guarantor_id, c.contact_point_id, c.kind, c.granted_at, c.given_to, c.method)
        .where(c.organization_id == org_id, among(session, c.guarantor_id, gids))
        .order_by(c.id)), lambda r: r.guarantor_id)
    c = Revocation.__table__.c
    revocations = _grouped(_read(session, select(
        c.guarantor_id, c.contact_point_id, c.channel, c.received_at, c.method)
        .where(c.organization_id == org_id, among(session, c.guarantor_id, gids))
        .order_by(c.id)), lambda r: r.guarantor_id)
    c = ContactEvent.__table__.c
    events = _grouped(_read(session, select(
        c.guarantor_id, c.id, c.occurred_at, c.channel, c.direction, c.contact_point_id,
        c.person, c.account_ids, c.dialer, c.outcome, c.text)
        .where(c.organization_id == org_id, among(session, c.guarantor_id, gids),
               c.occurred_at >= now - HISTORY_WINDOW)
        .order_by(c.occurred_at, c.id)), lambda r: r.guarantor_id)
    flags = _grouped(session.scalars(
        select(Flag).where(among(session, Flag.guarantor_id, gids)).order_by(Flag.id)),
        lambda r: r.guarantor_id)
    named = sorted({a for _, a in wanted if a is not None})
    account_q = select(Account).where(among(session, Account.guarantor_id, gids))
    account_q = account_q.where(or_(Account.status == "open",
                                    among(session, Account.id, named, "named"))) \
        if named else account_q.where(Account.status == "open")
    accounts = _grouped(session.scalars(account_q.order_by(Account.opened_at, Account.id)),
                        lambda r: r.guarantor_id)
    account_ids = sorted({a.id for rows in accounts.values() for a in rows})
    balances: dict[uuid.UUID, int] = {}
    if account_ids:
        c = LedgerEntry.__table__.c
        balances = {aid: int(total or 0) for aid, total in _read(session, select(
            c.account_id, func.sum(c.amount_cents))
            .where(c.organization_id == org_id, among(session, c.account_id, account_ids))
            .group_by(c.account_id))}
    additions = _scenario_additions(session, gids, now, org_id)

    out: dict[tuple[uuid.UUID, uuid.UUID | None], DebtorFacts] = {}
    shared: dict[uuid.UUID, tuple[Any, ...]] = {}
    for guarantor_id, account_id in wanted:
        if (guarantor_id, account_id) in out:
            continue
        if guarantor_id not in shared:
            shared[guarantor_id] = _debtor_parts(
                cipher, points.get(guarantor_id, []), consents.get(guarantor_id, []),
                revocations.get(guarantor_id, []), events.get(guarantor_id, []),
                flags.get(guarantor_id, []), now)
        by_id, opened, zip5, cps, consent_t, revocation_t, history, active = \
            shared[guarantor_id]
        out[(guarantor_id, account_id)] = _assemble(
            organization, guarantors[guarantor_id], now=now, profile=profile,
            account_id=account_id, all_accounts=accounts.get(guarantor_id, []),
            balances=balances, additions=additions.get(guarantor_id, _NO_ADDITIONS),
            by_id=by_id, opened=opened, zip5=zip5, cps=cps, consents=consent_t,
            revocations=revocation_t, history=history, flags=active)
    return out


def _debtor_parts(cipher: Any, points: list[ContactPoint], consent_rows: list[Any],
                  revocation_rows: list[Any], event_rows: list[Any],
                  flag_rows: list[Flag], now: datetime) -> tuple[Any, ...]:
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
                   kind=c.kind, granted_at=c.granted_at, given_to=c.given_to,
                   method=c.method)
        for c in consent_rows)
    revocations = tuple(
        sc.Revocation(contact_point=str(r.contact_point_id) if r.contact_point_id else None,
                      channel=r.channel, received_at=r.received_at, method=r.method)
        for r in revocation_rows)
    history: list[sc.HistoryEvent] = []
    for e in event_rows:
        if e.channel not in _HISTORY_CHANNELS:
            continue
        text = cipher.open(e.text, ContactEvent.__tablename__, "text", e.id) \
            if e.direction == "inbound" and e.text else None
        history.append(history_event(
            at=e.occurred_at, channel=e.channel, direction=e.direction,
            contact_point_id=e.contact_point_id, person=e.person,
            account_ids=e.account_ids or (), dialer=e.dialer, outcome=e.outcome, text=text))
    active = [f for f in flag_rows
              if f.raised_at <= now and (f.cleared_at is None or f.cleared_at > now)]
    by_id = {cp.id: cp for cp in points}
    return by_id, opened, zip5, cps, consents, revocations, tuple(history), active


def _assemble(organization: Organization, guarantor: Guarantor, *, now: datetime,
              profile: str, account_id: uuid.UUID | None, all_accounts: list[Account],
              balances: dict[uuid.UUID, int], additions: ScenarioAdditions,
              by_id: dict[uuid.UUID, ContactPoint], opened: dict[uuid.UUID, str], zip5: str,
              cps: list[sc.ContactPoint], consents: tuple[sc.Consent, ...],
              revocations: tuple[sc.Revocation, ...], history: tuple[sc.HistoryEvent, ...],
              flags: list[Flag]) -> DebtorFacts:
    accounts = [a for a in all_accounts if a.status == "open" or a.id == account_id]
    target = [a for a in accounts if a.id == account_id] or accounts
    balance = sum(balances.get(a.id, 0) for a in target)
    debt_ids = tuple(str(a.id) for a in target) or (str(guarantor.id),)
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
        contact_history=history,
        flags=_flags(flags),
    )
    return DebtorFacts(organization, guarantor, by_id, opened, ctx, flags, target, balance)


_NO_ADDITIONS = ScenarioAdditions((), None, ())


def _scenario_additions(session: Session, gids: Sequence[uuid.UUID], now: datetime,
                        organization_id: uuid.UUID | None = None,
                        ) -> dict[uuid.UUID, ScenarioAdditions]:
    """`consent.preferences.scenario_additions` for many guarantors, one query per table
    (same filters and the same result per guarantor; a test holds the two together).
    Read as plain columns, in the session's organization unless one is given."""
    org_id = organization_id or session.info.get("organization_id")
    if org_id is None:
        raise LookupError("no organization to read the consent ledger of")
    session.flush()
    c = InconvenientDesignation.__table__.c
    designations = _grouped(_read(session, select(
        c.guarantor_id, c.kind, c.value, c.designated_at, c.revoked_at)
        .where(c.organization_id == org_id, among(session, c.guarantor_id, gids),
               c.designated_at <= now).order_by(c.id)), lambda r: r.guarantor_id)
    c = ConfidentialCommunicationRequest.__table__.c
    requests = _grouped(_read(session, select(
        c.guarantor_id, c.received_at, c.allowed_channels, c.withdrawn_at)
        .where(c.organization_id == org_id, among(session, c.guarantor_id, gids),
               c.received_at <= now).order_by(c.received_at, c.id)),
        lambda r: r.guarantor_id)
    c = MediumOptOut.__table__.c
    opt_outs = _grouped(_read(session, select(
        c.guarantor_id, c.contact_point_id, c.medium, c.received_at, c.method)
        .where(c.organization_id == org_id, among(session, c.guarantor_id, gids),
               c.received_at <= now).order_by(c.id)), lambda r: r.guarantor_id)
    out: dict[uuid.UUID, ScenarioAdditions] = {}
    for g in gids:
        marks = tuple(
            sc.Designation(kind=d.kind, value=d.value, at=d.designated_at)
            for d in designations.get(g, []) if d.revoked_at is None or d.revoked_at > now)
        live = [q for q in requests.get(g, []) if q.withdrawn_at is None or q.withdrawn_at > now]
        confidential = None
        if live:
            latest = live[-1]
            confidential = sc.ConfidentialRequest(
                at=latest.received_at,
                instruction=" and ".join(latest.allowed_channels) + " only")
        outs = tuple(
            sc.Revocation(contact_point=str(o.contact_point_id) if o.contact_point_id else None,
                          channel=o.medium, received_at=o.received_at, method=o.method)
            for o in opt_outs.get(g, []))
        if marks or confidential is not None or outs:
            out[g] = ScenarioAdditions(marks, confidential, outs)
    return out


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
