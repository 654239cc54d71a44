"""Cadence service: campaigns and their steps, enrollment of eligible accounts with a
deterministic A/B variant and holdout cohort, exclusions, pause/resume and behaviour
signals, plus the default cadences for a dental practice and a physician group.

Assignment is a pure function of (campaign seed, account id): `assign` hashes them with
SHA-256, so a cohort can be re-derived and audited later and does not depend on the order
in which accounts were enrolled. Holdout accounts are enrolled and advanced like the
others but never sent anything; the planner reports them, which is what makes the
holdout a measurement rather than an accident.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.kit.ids import uuid7
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.outreach.cadence_models import (
    BEHAVIOURS,
    PLAN_STATUSES,
    STEP_CHANNELS,
    Campaign,
    CampaignEnrollment,
    CampaignStep,
    OutreachExclusion,
    OutreachSignal,
)
from carecollect.outreach.templates import default_templates

PLAN_SIGNALS = ("plan_active", "plan_broken", "plan_completed")


@dataclasses.dataclass(frozen=True, slots=True)
class StepSpec:
    wait_days: int
    channels: tuple[str, ...]
    variants: tuple[dict[str, Any], ...]
    send_hour: int = 10
    condition: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class CampaignSpec:
    key: str
    name: str
    steps: tuple[StepSpec, ...]
    description: str = ""
    priority: int = 100
    min_balance_cents: int | None = None
    max_balance_cents: int | None = None
    min_age_days: int | None = None
    max_age_days: int | None = None
    plan_status: str = "any"
    holdout_basis_points: int = 0
    seed: str | None = None
    stop_on: tuple[str, ...] = ("paid", "promised", "plan_active")
    pause_on: tuple[str, ...] = ("replied",)


def _unit(seed: str, label: str, account_id: uuid.UUID) -> float:
    digest = hashlib.sha256(f"{seed}:{label}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(seed: str, account_id: uuid.UUID, holdout_basis_points: int,
           variants: Sequence[dict[str, Any]]) -> tuple[str, str | None]:
    """(cohort, variant) for one account: deterministic in (seed, account id)."""
    if _unit(seed, "holdout", account_id) * 10_000 < holdout_basis_points:
        return "holdout", None
    total = sum(int(v.get("weight", 1)) for v in variants)
    if total <= 0:
        return "treatment", None
    point = _unit(seed, "variant", account_id) * total
    for variant in variants:
        point -= int(variant.get("weight", 1))
        if point < 0:
            return "treatment", str(variant["name"])
    return "treatment", str(variants[-1]["name"])


def _validate(spec: CampaignSpec) -> None:
    if not spec.steps:
        raise BadInput("a campaign needs at least one step")
    if spec.plan_status not in PLAN_STATUSES:
        raise BadInput(f"unknown plan status {spec.plan_status!r}")
    if not 0 <= spec.holdout_basis_points <= 10_000:
        raise BadInput("holdout is between 0 and 10000 basis points")
    for behaviour in (*spec.stop_on, *spec.pause_on):
        if behaviour not in BEHAVIOURS:
            raise BadInput(f"unknown behaviour {behaviour!r}")
    known = {key[0]: tpl.channel for key, tpl in default_templates().items()}
    for step in spec.steps:
        if not step.channels or any(c not in STEP_CHANNELS for c in step.channels):
            raise BadInput("each step names one or more known channels")
        if not 0 <= step.send_hour <= 23:
            raise BadInput("send_hour is a local hour 0-23")
        if not step.variants:
            raise BadInput("each step has at least one variant")
        for variant in step.variants:
            for channel in step.channels:
                template_id = variant.get("templates", {}).get(channel)
                if template_id is None:
                    raise BadInput(f"variant {variant.get('name')} has no {channel} template")
                if template_id not in known:
                    raise BadInput(f"unknown template {template_id!r}")
                if {known[template_id], channel} - {"call", "voicemail"} and \
                        known[template_id] != channel:
                    raise BadInput(f"template {template_id} is not a {channel} template")
        for key in ("requires", "unless"):
            for behaviour in step.condition.get(key, []):
                if behaviour not in BEHAVIOURS:
                    raise BadInput(f"unknown behaviour {behaviour!r}")


class CadenceService:
    def create_campaign(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                        spec: CampaignSpec) -> Campaign:
        _validate(spec)
        campaign = Campaign(
            id=uuid7(), organization_id=organization_id, key=spec.key, name=spec.name,
            description=spec.description, priority=spec.priority,
            min_balance_cents=spec.min_balance_cents, max_balance_cents=spec.max_balance_cents,
            min_age_days=spec.min_age_days, max_age_days=spec.max_age_days,
            plan_status=spec.plan_status, holdout_basis_points=spec.holdout_basis_points,
            seed=spec.seed or secrets.token_hex(16), stop_on=list(spec.stop_on),
            pause_on=list(spec.pause_on), active=True)
        session.add(campaign)
        session.flush()
        for position, step in enumerate(spec.steps):
            session.add(CampaignStep(
                id=uuid7(), organization_id=organization_id, campaign_id=campaign.id,
                position=position, wait_days=step.wait_days, channels=list(step.channels),
                send_hour=step.send_hour, condition=dict(step.condition),
                variants=[dict(v) for v in step.variants]))
        session.flush()
        record(session, actor=actor, action="config.change",
               subject=Subject("campaign", campaign.id, organization_id=organization_id),
               details={"change": "campaign_create", "key": spec.key,
                        "steps": len(spec.steps)})
        return campaign

    def install_defaults(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                         entity_kind: str) -> list[Campaign]:
        """Create the default cadences for `entity_kind` (idempotent by campaign key)."""
        specs = DEFAULTS.get(entity_kind, DEFAULTS["physician_group"])
        existing = set(session.scalars(select(Campaign.key)).all())
        return [self.create_campaign(session, organization_id=organization_id, actor=actor,
                                     spec=spec)
                for spec in specs if spec.key not in existing]

    def steps(self, session: Session, campaign_id: uuid.UUID) -> list[CampaignStep]:
        return list(session.scalars(select(CampaignStep).where(
            CampaignStep.campaign_id == campaign_id).order_by(CampaignStep.position)))

    def enroll_eligible(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                        at: dt.datetime) -> int:
        """Enroll every open account with a positive balance and no live enrollment in the
        highest-priority active campaign whose criteria it meets. Returns the count."""
        campaigns = list(session.scalars(select(Campaign).where(Campaign.active.is_(True))
                                         .order_by(Campaign.priority, Campaign.key)))
        if not campaigns:
            return 0
        first_variants = {c.id: self.steps(session, c.id)[0].variants for c in campaigns}
        live = select(CampaignEnrollment.account_id).where(
            CampaignEnrollment.status.in_(("active", "paused")))
        balance = func.coalesce(func.sum(LedgerEntry.amount_cents), 0)
        rows = session.execute(
            select(Account.id, Account.guarantor_id, Account.opened_at,
                   Account.first_delinquency_at, balance)
            .join(LedgerEntry, LedgerEntry.account_id == Account.id, isouter=True)
            .where(Account.status == "open", Account.id.not_in(live))
            .group_by(Account.id, Account.guarantor_id, Account.opened_at,
                      Account.first_delinquency_at)
            .having(balance > 0)).all()
        plan = self.plan_statuses(session, [r[0] for r in rows])
        values = []
        for account_id, guarantor_id, opened_at, delinquent_at, cents in rows:
            age = (at - (delinquent_at or opened_at)).days
            status = plan.get(account_id, "none")
            for campaign in campaigns:
                if not _matches(campaign, int(cents), age, status):
                    continue
                cohort, variant = assign(campaign.seed, account_id,
                                         campaign.holdout_basis_points,
                                         first_variants[campaign.id])
                values.append({
                    "id": uuid7(), "organization_id": organization_id,
                    "campaign_id": campaign.id, "account_id": account_id,
                    "guarantor_id": guarantor_id, "cohort": cohort, "variant": variant,
                    "enrolled_at": at, "next_step": 0, "next_due_at": at, "status": "active",
                    "created_at": at, "updated_at": at})
                break
        if values:
            session.execute(insert(CampaignEnrollment), values)
            record(session, actor=actor, action="outreach.enroll",
                   subject=Subject("organization", organization_id,
                                   organization_id=organization_id),
                   details={"enrolled": len(values),
                            "holdout": sum(v["cohort"] == "holdout" for v in values)})
        return len(values)

    def plan_statuses(self, session: Session,
                      account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Latest payment-plan signal per account: active | broken | none (completed)."""
        latest = select(OutreachSignal.account_id, OutreachSignal.kind,
                        OutreachSignal.occurred_at).where(
            OutreachSignal.kind.in_(PLAN_SIGNALS)).order_by(OutreachSignal.occurred_at)
        wanted = set(account_ids)
        out: dict[uuid.UUID, str] = {}
        for account_id, kind, _at in session.execute(latest):
            if account_id in wanted:
                out[account_id] = {"plan_active": "active", "plan_broken": "broken"}.get(
                    kind, "none")
        return out

    def record_signal(self, session: Session, *, organization_id: uuid.UUID,
                      account_id: uuid.UUID, kind: str, occurred_at: dt.datetime,
                      source: str = "system", attempt_id: uuid.UUID | None = None) -> None:
        """Store a behaviour and apply the campaigns' stop/pause rules to the account."""
        if kind not in BEHAVIOURS:
            raise BadInput(f"unknown behaviour {kind!r}")
        session.add(OutreachSignal(id=uuid7(), organization_id=organization_id,
                                   account_id=account_id, kind=kind, occurred_at=occurred_at,
                                   source=source, attempt_id=attempt_id))
        session.flush()
        enrollments = session.execute(
            select(CampaignEnrollment, Campaign.stop_on, Campaign.pause_on)
            .join(Campaign, Campaign.id == CampaignEnrollment.campaign_id)
            .where(CampaignEnrollment.account_id == account_id,
                   CampaignEnrollment.status == "active")).all()
        for enrollment, stop_on, pause_on in enrollments:
            if kind in stop_on:
                self._set_status(enrollment, "stopped", kind, occurred_at)
            elif kind in pause_on:
                self._set_status(enrollment, "paused", kind, occurred_at)

    @staticmethod
    def _set_status(enrollment: CampaignEnrollment, status: str, reason: str,
                    at: dt.datetime) -> None:
        enrollment.status = status
        enrollment.status_reason = reason
        enrollment.status_changed_at = at

    def _enrollment(self, session: Session, account_id: uuid.UUID,
                    statuses: tuple[str, ...]) -> CampaignEnrollment:
        found = session.scalars(select(CampaignEnrollment).where(
            CampaignEnrollment.account_id == account_id,
            CampaignEnrollment.status.in_(statuses))).first()
        if found is None:
            raise NotFound("no such enrollment for this account")
        return found

    def pause(self, session: Session, *, actor: Actor, account_id: uuid.UUID, reason: str,
              at: dt.datetime) -> CampaignEnrollment:
        enrollment = self._enrollment(session, account_id, ("active",))
        self._set_status(enrollment, "paused", reason, at)
        self._audit(session, actor, enrollment, "pause", reason)
        return enrollment

    def resume(self, session: Session, *, actor: Actor, account_id: uuid.UUID,
               at: dt.datetime) -> CampaignEnrollment:
        """Resume where the cadence stopped; a step that fell due while paused is due now."""
        enrollment = self._enrollment(session, account_id, ("paused",))
        self._set_status(enrollment, "active", "resumed", at)
        if enrollment.next_due_at is not None and enrollment.next_due_at < at:
            enrollment.next_due_at = at
        self._audit(session, actor, enrollment, "resume", "resumed")
        return enrollment

    def exclude(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                account_id: uuid.UUID, reason: str, at: dt.datetime,
                campaign_id: uuid.UUID | None = None,
                until: dt.datetime | None = None) -> OutreachExclusion:
        exclusion = OutreachExclusion(id=uuid7(), organization_id=organization_id,
                                      account_id=account_id, campaign_id=campaign_id,
                                      reason=reason, excluded_at=at, until=until,
                                      created_by=f"{actor.type}:{actor.id}"[:80])
        session.add(exclusion)
        session.flush()
        record(session, actor=actor, action="outreach.exclude",
               subject=Subject("account", account_id, organization_id=organization_id),
               details={"reason": reason,
                        "campaign_id": str(campaign_id) if campaign_id else None})
        return exclusion

    def lift_exclusion(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                       account_id: uuid.UUID, at: dt.datetime) -> int:
        result = session.execute(update(OutreachExclusion).where(
            OutreachExclusion.account_id == account_id,
            OutreachExclusion.lifted_at.is_(None)).values(lifted_at=at))
        count = int(getattr(result, "rowcount", 0) or 0)
        record(session, actor=actor, action="outreach.exclude_lift",
               subject=Subject("account", account_id, organization_id=organization_id),
               details={"lifted": count})
        return count

    @staticmethod
    def exclusion_filter(at: dt.datetime) -> Any:
        """SQL condition: an exclusion row in force at `at`."""
        return and_(OutreachExclusion.excluded_at <= at, OutreachExclusion.lifted_at.is_(None),
                    or_(OutreachExclusion.until.is_(None), OutreachExclusion.until > at))

    @staticmethod
    def _audit(session: Session, actor: Actor, enrollment: CampaignEnrollment, change: str,
               reason: str) -> None:
        record(session, actor=actor, action="outreach.enrollment_change",
               subject=Subject("campaign_enrollment", enrollment.id,
                               organization_id=enrollment.organization_id),
               details={"change": change, "reason": reason,
                        "account_id": str(enrollment.account_id)})


def _matches(campaign: Campaign, cents: int, age_days: int, plan_status: str) -> bool:
    if campaign.min_balance_cents is not None and cents < campaign.min_balance_cents:
        return False
    if campaign.max_balance_cents is not None and cents > campaign.max_balance_cents:
        return False
    if campaign.min_age_days is not None and age_days < campaign.min_age_days:
        return False
    if campaign.max_age_days is not None and age_days > campaign.max_age_days:
        return False
    return campaign.plan_status in ("any", plan_status)


def _v(name: str, weight: int = 1, **templates: str) -> dict[str, Any]:
    return {"name": name, "weight": weight, "templates": templates}


# Patient-centred defaults: e-mail and paper first, a text nudge later, a person on the
# phone only after several written contacts, and a 5 % holdout to measure the lift.
DENTAL = (
    CampaignSpec(
        key="dental_plan_broken", name="Payment plan missed (dental)", priority=10,
        plan_status="broken", holdout_basis_points=0, stop_on=("paid", "plan_active"),
        steps=(
            StepSpec(0, ("sms", "email"), (_v("A", sms="statement_ready_sms",
                                              email="reminder_email"),)),
            StepSpec(5, ("call",), (_v("A", call="callback_voicemail"),), send_hour=11),
        )),
    CampaignSpec(
        key="dental_standard", name="Dental balance follow-up", priority=100,
        min_balance_cents=1_000, plan_status="none", holdout_basis_points=500,
        steps=(
            StepSpec(0, ("email", "letter"), (
                _v("A", 50, email="statement_email", letter="statement_letter"),
                _v("B", 50, email="reminder_email", letter="statement_letter"))),
            StepSpec(10, ("sms", "email"), (
                _v("A", sms="statement_ready_sms", email="reminder_email"),
                _v("B", sms="statement_ready_sms", email="reminder_email")),
                send_hour=17, condition={"unless": ["clicked"]}),
            StepSpec(14, ("call", "letter"), (
                _v("A", call="callback_voicemail", letter="statement_letter"),
                _v("B", call="callback_voicemail", letter="statement_letter")), send_hour=11),
            StepSpec(21, ("letter",), (_v("A", letter="statement_letter"),
                                       _v("B", letter="statement_letter"))),
        )),
)
PHYSICIAN = (
    CampaignSpec(
        key="physician_plan_broken", name="Payment plan missed (physician group)",
        priority=10, plan_status="broken", stop_on=("paid", "plan_active"),
        steps=(
            StepSpec(0, ("email", "sms"), (_v("A", email="reminder_email",
                                              sms="statement_ready_sms"),)),
            StepSpec(7, ("letter",), (_v("A", letter="statement_letter"),)),
        )),
    CampaignSpec(
        key="physician_standard", name="Physician group balance follow-up", priority=100,
        min_balance_cents=2_500, plan_status="none", holdout_basis_points=500,
        steps=(
            StepSpec(0, ("letter",), (_v("A", 50, letter="statement_letter"),
                                      _v("B", 50, letter="statement_letter"))),
            StepSpec(7, ("email", "letter"), (
                _v("A", email="statement_email", letter="statement_letter"),
                _v("B", email="reminder_email", letter="statement_letter"))),
            StepSpec(10, ("sms", "email"), (
                _v("A", sms="statement_ready_sms", email="reminder_email"),
                _v("B", sms="statement_ready_sms", email="reminder_email")),
                send_hour=17, condition={"unless": ["clicked"]}),
            StepSpec(14, ("call",), (_v("A", call="callback_voicemail"),
                                     _v("B", call="callback_voicemail")), send_hour=11),
            StepSpec(30, ("letter",), (_v("A", letter="statement_letter"),
                                       _v("B", letter="statement_letter"))),
        )),
)
DEFAULTS: dict[str, tuple[CampaignSpec, ...]] = {
    "dental_practice": DENTAL,
    "physician_group": PHYSICIAN,
}

cadence_service = CadenceService()
