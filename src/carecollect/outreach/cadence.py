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
import re
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.kit.ids import uuid7
from carecollect.ledger.models import Account, LedgerEntry
from carecollect.outreach.cadence_models import (
    BEHAVIOURS,
    ENROLLMENT_STATUSES,
    PLAN_STATUSES,
    STEP_CHANNELS,
    Campaign,
    CampaignEnrollment,
    CampaignStep,
    OutreachExclusion,
    OutreachSignal,
)
from carecollect.outreach.templates import (
    LANGUAGES,
    OPT_OUT_TEXT,
    SURFACES,
    Conditions,
    LintIssue,
    Template,
    default_templates,
    lint,
)

PLAN_SIGNALS = ("plan_active", "plan_broken", "plan_completed")
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_STEPS = 12


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


CAMPAIGN_PAUSED = "campaign_paused"  # status_reason of enrollments a campaign pause stopped
DRY_RUN_MAX = 2_000  # accounts one dry run simulates at most (a page request stays bounded)
DRY_RUN_ACTOR = Actor.system("outreach.dry_run")
OUTCOME_ORDER = {"blocked": 0, "retime": 1, "send": 2, "holdout": 3, "skipped": 4,
                 "stopped": 5}
# Planner outcomes that are not compliance rules (the planner's own reasons).
PLANNER_REASONS: dict[str, tuple[str, str]] = {
    "PLAN-NO-CONTACT-POINT": ("No contact point for this channel", "planner"),
    "PLAN-PAID": ("Balance is zero: the cadence stops", "planner"),
    "PLAN-STOP-SIGNAL": ("A stop behaviour was seen since enrollment", "campaign stop_on"),
    "PLAN-STEP-CONDITION": ("The step's behaviour condition is not met", "campaign step"),
}


def explain_rule(rule_id: str) -> tuple[str, str]:
    """(title, citation) of a rule id or planner reason, for people reading a dry run."""
    from carecollect.compliance.registry import BY_ID

    meta = BY_ID.get(rule_id)
    if meta is not None:
        return meta.title, meta.citation
    return PLANNER_REASONS.get(rule_id, ("Unknown rule", ""))


@dataclasses.dataclass(frozen=True, slots=True)
class CampaignSummary:
    campaign: Campaign
    step_channels: tuple[tuple[str, ...], ...]  # per step: primary channel, then fallbacks
    enrollments: dict[str, int]  # by enrollment status

    @property
    def enrolled(self) -> int:
        return self.enrollments.get("active", 0) + self.enrollments.get("paused", 0)


@dataclasses.dataclass(frozen=True, slots=True)
class DryRunRow:
    """One account's simulated decision (ids and rule ids only, no PHI)."""

    account_id: uuid.UUID
    guarantor_id: uuid.UUID
    step: int
    cohort: str
    variant: str | None
    outcome: str
    channel: str | None
    template_id: str | None
    proposed_at: dt.datetime
    scheduled_for: dt.datetime | None
    local_zone: str
    reasons: tuple[str, ...]
    tried: tuple[str, ...]  # "sms:TCPA-CONSENT-WIRELESS+TCPA-RND"

    def rules(self) -> list[str]:
        """Every rule id met for this account: the outcome's and the fallbacks' on the way."""
        found = set(self.reasons)
        for attempt in self.tried:
            _, _, ids = attempt.partition(":")
            found.update(i for i in ids.split("+") if i)
        return sorted(found)

    def tried_channels(self) -> list[tuple[str, list[str]]]:
        out = []
        for attempt in self.tried:
            channel, _, ids = attempt.partition(":")
            out.append((channel, [i for i in ids.split("+") if i]))
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class DryRun:
    campaign_id: uuid.UUID
    at: dt.datetime
    rows: tuple[DryRunRow, ...]
    due_total: int  # the campaign's due accounts at `at` before sampling
    limit: int

    @property
    def sampled(self) -> bool:
        return self.due_total > len(self.rows)

    def outcome_totals(self) -> dict[str, int]:
        totals = dict.fromkeys(OUTCOME_ORDER, 0)
        for row in self.rows:
            totals[row.outcome] = totals.get(row.outcome, 0) + 1
        return totals

    def rule_totals(self) -> list[tuple[str, int, str, str]]:
        """(rule id, accounts that met it, title, citation), most frequent first."""
        counts: dict[str, int] = {}
        for row in self.rows:
            for rule in row.rules():
                counts[rule] = counts.get(rule, 0) + 1
        return [(rule, count, *explain_rule(rule))
                for rule, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


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
    _validate_builder_limits(spec)


def _validate_builder_limits(spec: CampaignSpec) -> None:
    """Bounds the staff campaign builder relies on (checked after the structural rules)."""
    if not KEY_PATTERN.fullmatch(spec.key):
        raise BadInput("the key is 1-64 lowercase letters, digits, '_' or '-'")
    if not spec.name.strip() or len(spec.name) > 200:
        raise BadInput("the name is 1-200 characters")
    if len(spec.description) > 1000:
        raise BadInput("the description is at most 1000 characters")
    if not 0 <= spec.priority <= 10_000:
        raise BadInput("priority is between 0 and 10000 (lower is chosen first)")
    if len(spec.steps) > MAX_STEPS:
        raise BadInput(f"a campaign has at most {MAX_STEPS} steps")
    for label, value in (("minimum balance", spec.min_balance_cents),
                         ("maximum balance", spec.max_balance_cents),
                         ("minimum age", spec.min_age_days), ("maximum age", spec.max_age_days)):
        if value is not None and value < 0:
            raise BadInput(f"the {label} cannot be negative")
    if spec.min_balance_cents is not None and spec.max_balance_cents is not None and \
            spec.min_balance_cents > spec.max_balance_cents:
        raise BadInput("the minimum balance is above the maximum balance")
    if spec.min_age_days is not None and spec.max_age_days is not None and \
            spec.min_age_days > spec.max_age_days:
        raise BadInput("the minimum age is above the maximum age")
    for number, step in enumerate(spec.steps, start=1):
        if not 0 <= step.wait_days <= 365:
            raise BadInput(f"step {number}: the wait is 0-365 days")
        if len(set(step.channels)) != len(step.channels):
            raise BadInput(f"step {number}: a channel is listed twice")
        names = [str(v.get("name", "")).strip() for v in step.variants]
        if any(not n or len(n) > 32 for n in names) or len(set(names)) != len(names):
            raise BadInput(f"step {number}: variant names are 1-32 characters and distinct")
        weights = [v.get("weight", 1) for v in step.variants]
        if any(not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 10_000
               for w in weights) or sum(weights) <= 0:
            raise BadInput(f"step {number}: variant weights are whole numbers 0-10000 with "
                           "a positive total")


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
                       account_id: uuid.UUID, at: dt.datetime,
                       reason: str | None = None) -> int:
        """Lift the account's exclusions in force; with `reason`, only those made for that
        reason (closing a hardship review must not lift a dispute's exclusion)."""
        condition = and_(OutreachExclusion.account_id == account_id,
                         OutreachExclusion.lifted_at.is_(None))
        if reason is not None:
            condition = and_(condition, OutreachExclusion.reason == reason)
        result = session.execute(update(OutreachExclusion).where(condition)
                                 .values(lifted_at=at))
        count = int(getattr(result, "rowcount", 0) or 0)
        record(session, actor=actor, action="outreach.exclude_lift",
               subject=Subject("account", account_id, organization_id=organization_id),
               details={"lifted": count, "reason": reason})
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

    # -- staff campaign builder (issue 8) -------------------------------------------------
    def campaign(self, session: Session, campaign_id: uuid.UUID) -> Campaign:
        found = session.get(Campaign, campaign_id)
        if found is None:
            raise NotFound("no such campaign")
        return found

    def summaries(self, session: Session) -> list[CampaignSummary]:
        """Every campaign of the tenant with its steps' channels and enrollments by status."""
        campaigns = list(session.scalars(select(Campaign).order_by(Campaign.priority,
                                                                   Campaign.key)))
        channels: dict[uuid.UUID, list[tuple[str, ...]]] = {}
        for step in session.scalars(select(CampaignStep).order_by(CampaignStep.campaign_id,
                                                                  CampaignStep.position)):
            channels.setdefault(step.campaign_id, []).append(tuple(step.channels))
        counts: dict[uuid.UUID, dict[str, int]] = {}
        for campaign_id, status, count in session.execute(
                select(CampaignEnrollment.campaign_id, CampaignEnrollment.status, func.count())
                .group_by(CampaignEnrollment.campaign_id, CampaignEnrollment.status)):
            counts.setdefault(campaign_id, {})[status] = int(count)
        return [CampaignSummary(campaign=c, step_channels=tuple(channels.get(c.id, [])),
                                enrollments={s: counts.get(c.id, {}).get(s, 0)
                                             for s in ENROLLMENT_STATUSES})
                for c in campaigns]

    def spec_of(self, session: Session, campaign: Campaign) -> CampaignSpec:
        """The campaign as the spec the builder edits."""
        return CampaignSpec(
            key=campaign.key, name=campaign.name, description=campaign.description,
            priority=campaign.priority, min_balance_cents=campaign.min_balance_cents,
            max_balance_cents=campaign.max_balance_cents, min_age_days=campaign.min_age_days,
            max_age_days=campaign.max_age_days, plan_status=campaign.plan_status,
            holdout_basis_points=campaign.holdout_basis_points, seed=campaign.seed,
            stop_on=tuple(campaign.stop_on), pause_on=tuple(campaign.pause_on),
            steps=tuple(StepSpec(wait_days=s.wait_days, channels=tuple(s.channels),
                                 variants=tuple(dict(v) for v in s.variants),
                                 send_hour=s.send_hour, condition=dict(s.condition))
                        for s in self.steps(session, campaign.id)))

    def update_campaign(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                        campaign_id: uuid.UUID, spec: CampaignSpec) -> Campaign:
        """Replace a campaign's criteria and steps (the key and the assignment seed stay, so
        cohorts already drawn remain re-derivable). Refuses, changing nothing, to drop a
        step that enrolled accounts are waiting at."""
        campaign = self.campaign(session, campaign_id)
        if spec.key != campaign.key:
            raise BadInput("a campaign's key cannot change")
        _validate(spec)
        waiting = session.scalar(select(func.max(CampaignEnrollment.next_step)).where(
            CampaignEnrollment.campaign_id == campaign.id,
            CampaignEnrollment.status.in_(("active", "paused"))))
        if waiting is not None and waiting >= len(spec.steps):
            raise BadInput(f"accounts are waiting at step {waiting + 1}; keep at least "
                           f"{waiting + 1} steps")
        before = self.spec_of(session, campaign)
        values = {"name": spec.name, "description": spec.description,
                  "priority": spec.priority, "min_balance_cents": spec.min_balance_cents,
                  "max_balance_cents": spec.max_balance_cents,
                  "min_age_days": spec.min_age_days, "max_age_days": spec.max_age_days,
                  "plan_status": spec.plan_status,
                  "holdout_basis_points": spec.holdout_basis_points,
                  "stop_on": list(spec.stop_on), "pause_on": list(spec.pause_on)}
        changed = sorted(name for name, value in values.items()
                         if getattr(campaign, name) != value)
        for name, value in values.items():
            setattr(campaign, name, value)
        steps_changed = before.steps != tuple(
            dataclasses.replace(s, channels=tuple(s.channels),
                                variants=tuple(dict(v) for v in s.variants))
            for s in spec.steps)
        if steps_changed:
            changed.append("steps")
            session.execute(delete(CampaignStep).where(CampaignStep.campaign_id == campaign.id))
            session.flush()
            for position, step in enumerate(spec.steps):
                session.add(CampaignStep(
                    id=uuid7(), organization_id=organization_id, campaign_id=campaign.id,
                    position=position, wait_days=step.wait_days, channels=list(step.channels),
                    send_hour=step.send_hour, condition=dict(step.condition),
                    variants=[dict(v) for v in step.variants]))
        session.flush()
        if changed:
            record(session, actor=actor, action="config.change",
                   subject=Subject("campaign", campaign.id, organization_id=organization_id),
                   details={"change": "campaign_update", "key": campaign.key,
                            "fields": changed, "steps": len(spec.steps)})
        return campaign

    def set_active(self, session: Session, *, organization_id: uuid.UUID, actor: Actor,
                   campaign_id: uuid.UUID, active: bool, at: dt.datetime) -> int:
        """Pause or resume a whole campaign: no new enrollments while paused, and its live
        enrollments are paused with it (the planner only plans active enrollments). Resuming
        reactivates exactly the enrollments the pause stopped; a step that fell due
        meanwhile is due now. Returns the number of enrollments changed."""
        campaign = self.campaign(session, campaign_id)
        if campaign.active == active:
            raise BadInput("the campaign is already " + ("active" if active else "paused"))
        campaign.active = active
        e = CampaignEnrollment
        if not active:
            result = session.execute(update(e).where(
                e.campaign_id == campaign.id, e.status == "active").values(
                status="paused", status_reason=CAMPAIGN_PAUSED, status_changed_at=at,
                updated_at=at))
        else:
            mine = and_(e.campaign_id == campaign.id, e.status == "paused",
                        e.status_reason == CAMPAIGN_PAUSED)
            session.execute(update(e).where(mine, e.next_due_at < at).values(next_due_at=at))
            result = session.execute(update(e).where(mine).values(
                status="active", status_reason="resumed", status_changed_at=at, updated_at=at))
        count = int(getattr(result, "rowcount", 0) or 0)
        session.flush()
        record(session, actor=actor, action="config.change",
               subject=Subject("campaign", campaign.id, organization_id=organization_id),
               details={"change": "campaign_resume" if active else "campaign_pause",
                        "key": campaign.key, "enrollments": count})
        return count

    def dry_run(self, session: Session, *, organization_id: uuid.UUID,
                campaign_id: uuid.UUID, at: dt.datetime, sample: int | None = None,
                max_accounts: int = DRY_RUN_MAX) -> DryRun:
        """The planner's simulator for one campaign at `at`: what each due account would
        get (send, re-time, block, holdout, skip, stop) and why. Everything happens inside a
        savepoint that is rolled back: newly eligible accounts are enrolled as a real run
        would (a paused campaign is treated as active), the other campaigns' due
        enrollments and those beyond the sample are set aside, and the planner decides the
        rest. At most `max_accounts` accounts (the first by account id) are simulated, so
        a page request stays bounded. Writes nothing; the caller audits what it shows."""
        from carecollect.outreach.planner import build_plan

        if sample is not None and not 1 <= sample <= max_accounts:
            raise BadInput(f"the sample is 1 to {max_accounts} accounts")
        limit = sample or max_accounts
        campaign = self.campaign(session, campaign_id)
        e = CampaignEnrollment
        savepoint = session.begin_nested()
        try:
            if not campaign.active:
                campaign.active = True
                session.flush()
            self.enroll_eligible(session, organization_id=organization_id,
                                 actor=DRY_RUN_ACTOR, at=at)
            due = and_(e.status == "active", e.next_due_at <= at)
            total = int(session.scalar(select(func.count()).select_from(e).where(
                due, e.campaign_id == campaign.id)) or 0)
            chosen = select(e.id).where(due, e.campaign_id == campaign.id).order_by(
                e.account_id).limit(limit)
            # No ORM synchronisation: it would fetch every set-aside row back (RETURNING),
            # and the savepoint is rolled back anyway.
            session.execute(update(e).where(due, or_(e.campaign_id != campaign.id,
                                                     e.id.not_in(chosen)))
                            .values(status="paused", status_reason="dry_run_set_aside")
                            .execution_options(synchronize_session=False))
            plan = build_plan(session, organization_id=organization_id, at=at)
            rows = [DryRunRow(account_id=a.account_id, guarantor_id=a.guarantor_id,
                              step=a.step, cohort=a.cohort, variant=a.variant,
                              outcome=a.outcome, channel=a.channel, template_id=a.template_id,
                              proposed_at=a.proposed_at, scheduled_for=a.scheduled_for,
                              local_zone=a.local_zone, reasons=a.reasons, tried=a.tried)
                    for a in plan.attempts() if a.campaign_id == campaign.id]
        finally:
            savepoint.rollback()
        rows.sort(key=lambda r: (OUTCOME_ORDER.get(r.outcome, 9), str(r.account_id)))
        return DryRun(campaign_id=campaign.id, at=at, rows=tuple(rows), due_total=total,
                      limit=limit)




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



# -- template editor (issue 8): lint and preview drafts ----------------------------------
# Synthetic sample values for previews: no real person, account or service.
SAMPLE_VARIABLES: dict[str, Any] = {
    "payment_url": "https://pay.example.org/t/SAMPLEtoken0123456789abcd",
    "portal_url": "https://pay.example.org/p/SAMPLEportal0123456789abc",
    "payment_token": "SAMPLEtoken0123456789abcd",
    "callback_phone": "(555) 010-0000",
    "contact_person": "Sam Example",
    "patient_first_name": "Alex",
    "balance_cents": 12_345,
    "statement_date": dt.date(2026, 1, 15),
    "due_date": dt.date(2026, 2, 15),
    "account_last4": "0000",
    "date_of_service": dt.date(2025, 12, 1),
    "service_description": "Sample visit",
    "procedure_code": "X0000",
    "provider_specialty": "Sample specialty",
    "diagnosis_code": "Z00.0",
}
SAMPLE_OPT_OUT_URL = "https://pay.example.org/u/SAMPLEoptout0123456789abc"


@dataclasses.dataclass(frozen=True, slots=True)
class TemplateCheck:
    """A draft's linter findings and its preview with the synthetic sample."""

    template: Template
    issues: tuple[LintIssue, ...]
    preview: dict[str, str]  # surface -> rendered text (opt-out text appended as sent)
    preview_error: str | None


def template_catalog() -> list[tuple[Template, int]]:
    """Every template and language with its number of linter findings (0 for the shipped
    defaults, which `load_templates` refuses otherwise)."""
    return [(t, len(lint(t))) for _, t in sorted(default_templates().items())]


def template_draft(template_id: str, language: str) -> Template:
    """The shipped template to start a draft from."""
    found = default_templates().get((template_id, language))
    if found is None:
        raise NotFound("no such template")
    return found


def check_template(*, template_id: str, language: str, channel: str,
                   surfaces: dict[str, str], phone_verified_and_consented: bool,
                   email_risk_acknowledged: bool, display_name: str) -> TemplateCheck:
    """Lint a draft under the conditions it is written for (RULES.md section 8) and render
    it with the synthetic sample in the same sandboxed, strictly-undefined environment
    the dispatcher uses. Stores nothing."""
    if language not in LANGUAGES:
        raise BadInput("the language is en or es")
    if any(len(text) > 20_000 for text in surfaces.values()):
        raise BadInput("a surface is at most 20000 characters")
    template = Template(
        id=template_id, language=language, channel=channel, description="draft",
        surfaces={k: v for k, v in surfaces.items() if v.strip()},
        requires=Conditions(phone_verified_and_consented, email_risk_acknowledged))
    issues = tuple(lint(template))
    environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    environment.filters["money"] = lambda cents: (
        f"{'-' if cents < 0 else ''}${abs(cents) // 100:,}.{abs(cents) % 100:02d}")
    environment.filters["day"] = lambda value: value.isoformat()
    values = {**SAMPLE_VARIABLES, "practice_name": display_name}
    preview: dict[str, str] = {}
    error: str | None = None
    for surface, source in template.surfaces.items():
        if surface not in SURFACES:
            continue
        try:
            preview[surface] = environment.from_string(source).render(values).strip()
        except (TemplateError, TypeError, AttributeError) as exc:
            # The message names a variable or a syntax problem of the draft (sample data
            # only), never a person's value.
            error = f"{surface}: {exc.__class__.__name__}: {str(exc)[:200]}"
            break
    if error is None:
        if "sms_body" in preview and channel == "sms":
            preview["sms_body"] += " " + OPT_OUT_TEXT["sms"][language]
        if "email_body" in preview and channel == "email":
            preview["email_body"] += "\n\n" + OPT_OUT_TEXT["email"][language].format(
                url=SAMPLE_OPT_OUT_URL)
    return TemplateCheck(template=template, issues=issues,
                         preview=preview if error is None else {}, preview_error=error)


cadence_service = CadenceService()
