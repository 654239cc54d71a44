"""`/api/v1/campaigns`: list, read (with steps), create as a draft, activate, pause, and
the dry-run simulator the staff campaign page uses (`cadence_service.dry_run`).

Campaigns are configuration, not PHI. A dry run lists the accounts it simulated only to
callers who may read accounts, and records one `patient.read` per person listed plus one
`outreach.dry_run` summary event, like the staff page (HIPAA 164.312(b)).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from carecollect.api import views
from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_RESPONSES
from carecollect.api.schemas import Page
from carecollect.api.schemas_campaigns import (
    CampaignCreate,
    CampaignOut,
    DryRunIn,
    DryRunOut,
    DryRunRowOut,
    RuleOut,
    StepOut,
)
from carecollect.api.v1_common import Context, Cursor, IdempotencyKey, Limit, page_of
from carecollect.audit import Subject, record
from carecollect.errors import AppError, BadInput
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.outreach.cadence import (
    CampaignSpec,
    CampaignSummary,
    StepSpec,
    cadence_service,
    explain_rule,
)

router = APIRouter(prefix="/api/v1", tags=["campaigns"], responses=PROBLEM_RESPONSES)
DRY_RUN_ROWS = 500  # rows returned (totals cover every simulated row), as on the staff page


class CampaignStateConflictError(AppError):
    status_code = 409


class CampaignRefusedError(AppError):
    status_code = 422


def _out(summary: CampaignSummary, *, steps: list[Any] | None = None) -> CampaignOut:
    c = summary.campaign
    return CampaignOut(
        id=c.id,
        key=c.key,
        name=c.name,
        description=c.description,
        priority=c.priority,
        active=c.active,
        min_balance_cents=c.min_balance_cents,
        max_balance_cents=c.max_balance_cents,
        min_age_days=c.min_age_days,
        max_age_days=c.max_age_days,
        plan_status=c.plan_status,
        holdout_basis_points=c.holdout_basis_points,
        stop_on=list(c.stop_on),
        pause_on=list(c.pause_on),
        enrollments=dict(summary.enrollments),
        steps=None
        if steps is None
        else [
            StepOut(
                position=s.position,
                wait_days=s.wait_days,
                channels=list(s.channels),
                send_hour=s.send_hour,
                condition=dict(s.condition),
                variants=[dict(v) for v in s.variants],
            )
            for s in steps
        ],
    )


def _summary(session: Session, campaign_id: uuid.UUID) -> CampaignSummary:
    campaign = cadence_service.campaign(session, campaign_id)  # NotFound when absent
    return next(s for s in cadence_service.summaries(session) if s.campaign.id == campaign.id)


def _detail(session: Session, campaign_id: uuid.UUID) -> CampaignOut:
    summary = _summary(session, campaign_id)
    return _out(summary, steps=cadence_service.steps(session, campaign_id))


@router.get("/campaigns", response_model=Page[CampaignOut])
def list_campaigns(
    context: Context,
    principal: Principal = api_permission(Permission.CAMPAIGN_READ),
    active: bool | None = Query(default=None, description="only active (or paused) ones"),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    with context.session(principal.organization_id) as session:
        rows = sorted(cadence_service.summaries(session), key=lambda s: s.campaign.id)
        if active is not None:
            rows = [s for s in rows if s.campaign.active == active]
        if cursor is not None:
            rows = [s for s in rows if s.campaign.id > cursor]
        rows = rows[:limit]
        return page_of([_out(s) for s in rows], limit, rows[-1].campaign.id if rows else None)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut)
def get_campaign(
    context: Context,
    campaign_id: uuid.UUID,
    principal: Principal = api_permission(Permission.CAMPAIGN_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        return _detail(session, campaign_id)


def _spec(body: CampaignCreate) -> CampaignSpec:
    return CampaignSpec(
        key=body.key,
        name=body.name,
        description=body.description,
        priority=body.priority,
        min_balance_cents=body.min_balance_cents,
        max_balance_cents=body.max_balance_cents,
        min_age_days=body.min_age_days,
        max_age_days=body.max_age_days,
        plan_status=body.plan_status,
        holdout_basis_points=body.holdout_basis_points,
        stop_on=tuple(body.stop_on),
        pause_on=tuple(body.pause_on),
        steps=tuple(
            StepSpec(
                wait_days=s.wait_days,
                channels=tuple(s.channels),
                send_hour=s.send_hour,
                condition={k: list(v) for k, v in s.condition.model_dump().items() if v},
                variants=tuple(
                    {"name": v.name, "weight": v.weight, "templates": dict(v.templates)}
                    for v in s.variants
                ),
            )
            for s in body.steps
        ),
    )


@router.post("/campaigns", status_code=201, response_model=CampaignOut)
def create_campaign(
    request: Request,
    context: Context,
    body: CampaignCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.CAMPAIGN_MANAGE),
) -> JSONResponse:
    """Create a campaign as a draft: it enrolls nobody until activated. A campaign the
    outreach service refuses (an unknown template, a template of another channel, a
    variant without a template for a step's channel) is a 422 and nothing is stored; a key
    already in use is a 409."""

    def handler(session: Session) -> tuple[int, Any]:
        try:
            campaign = cadence_service.create_campaign(
                session,
                organization_id=principal.organization_id,
                actor=principal.actor,
                spec=_spec(body),
            )
        except BadInput as exc:
            raise CampaignRefusedError(exc.message) from None
        cadence_service.set_active(
            session,
            organization_id=principal.organization_id,
            actor=principal.actor,
            campaign_id=campaign.id,
            active=False,
            at=context.now(),
        )
        return 201, _detail(session, campaign.id)

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


def _set_active(
    request: Request,
    context: Context,
    principal: Principal,
    campaign_id: uuid.UUID,
    key: str | None,
    active: bool,
) -> JSONResponse:
    def handler(session: Session) -> tuple[int, Any]:
        try:
            cadence_service.set_active(
                session,
                organization_id=principal.organization_id,
                actor=principal.actor,
                campaign_id=campaign_id,
                active=active,
                at=context.now(),
            )
        except BadInput as exc:
            raise CampaignStateConflictError(exc.message) from None
        return 200, _detail(session, campaign_id)

    return run_post(
        context, principal, key=key, path=request.url.path, payload=None, handler=handler
    )


@router.post("/campaigns/{campaign_id}/activate", response_model=CampaignOut)
def activate_campaign(
    request: Request,
    context: Context,
    campaign_id: uuid.UUID,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.CAMPAIGN_MANAGE),
) -> JSONResponse:
    """Activate a draft or paused campaign (409 when it is already active); enrollments
    the pause stopped resume, and a step that fell due meanwhile is due now."""
    return _set_active(request, context, principal, campaign_id, idempotency_key, True)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignOut)
def pause_campaign(
    request: Request,
    context: Context,
    campaign_id: uuid.UUID,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.CAMPAIGN_MANAGE),
) -> JSONResponse:
    """Pause a campaign (409 when it is already paused) and its live enrollments."""
    return _set_active(request, context, principal, campaign_id, idempotency_key, False)


def _rules(ids: Any) -> list[RuleOut]:
    return [RuleOut(rule_id=r, title=explain_rule(r)[0], citation=explain_rule(r)[1]) for r in ids]


@router.post("/campaigns/{campaign_id}/dry-run", response_model=DryRunOut)
def dry_run_campaign(
    request: Request,
    context: Context,
    campaign_id: uuid.UUID,
    body: DryRunIn,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.CAMPAIGN_READ),
) -> JSONResponse:
    """Simulate the campaign at `at` (default now) for at most `sample` due accounts
    (default 2000): what each would get and why. Nothing is sent or changed."""
    at = body.at or context.now()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if not 2000 <= at.year <= 2200:
        raise CampaignRefusedError("the simulated instant is between the years 2000 and 2200")
    show_ids = principal.can(Permission.ACCOUNT_READ)

    def handler(session: Session) -> tuple[int, Any]:
        try:
            run = cadence_service.dry_run(
                session,
                organization_id=principal.organization_id,
                campaign_id=campaign_id,
                at=at,
                sample=body.sample,
            )
        except BadInput as exc:
            raise CampaignRefusedError(exc.message) from None
        rows = run.rows[:DRY_RUN_ROWS]
        if show_ids:
            for person in sorted({r.guarantor_id for r in rows}):
                views.record_read(
                    session,
                    principal,
                    person,
                    fields=["accounts", "outreach_plan"],
                    purpose="campaign_dry_run",
                )
        record(
            session,
            actor=principal.actor,
            action="outreach.dry_run",
            subject=Subject("campaign", campaign_id, organization_id=principal.organization_id),
            details={
                "at": run.at.isoformat(),
                "simulated": len(run.rows),
                "due": run.due_total,
                "shown": len(rows),
                **run.outcome_totals(),
            },
        )
        out = DryRunOut(
            campaign_id=run.campaign_id,
            at=run.at,
            due_total=run.due_total,
            simulated=len(run.rows),
            sampled=run.sampled,
            outcome_totals=run.outcome_totals(),
            rule_totals=[
                {"rule_id": r, "accounts": n, "title": t, "citation": c}
                for r, n, t, c in run.rule_totals()
            ],
            rows=[
                DryRunRowOut(
                    **{
                        f.name: getattr(r, f.name)
                        for f in dataclasses.fields(r)
                        if f.name not in ("reasons", "tried", "account_id", "guarantor_id")
                    },
                    account_id=r.account_id if show_ids else None,
                    guarantor_id=r.guarantor_id if show_ids else None,
                    reasons=_rules(r.reasons),
                    tried=[
                        {"channel": channel, "rules": [x.model_dump() for x in _rules(ids)]}
                        for channel, ids in r.tried_channels()
                    ],
                )
                for r in rows
            ],
        )
        return 200, out

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


__all__ = ["router"]
