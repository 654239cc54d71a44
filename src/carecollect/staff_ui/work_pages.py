"""The staff work lists: the review queue (cease, dispute, attorney, bankruptcy and
hardship flags, each closed with an outcome from a fixed list), today's manual call tasks
(re-checked against the rules at the moment of dialing, outcome logged into contact
history where it counts toward the caps) and failed autopay charges.

The lists show no PHI (kinds, dates, amounts and a link to the account page, where masking
and audited reveal apply), so showing them reads none.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carecollect.api.context import AppContext, get_context
from carecollect.audit import Subject, record
from carecollect.channel import calls
from carecollect.channel.config import ChannelSettings
from carecollect.compliance.overlay_settings import overlay_for
from carecollect.compliance.registry import BY_ID
from carecollect.errors import AppError
from carecollect.identity.auth import StaffAuth, csrf_protect, staff_permission
from carecollect.identity.permissions import Permission
from carecollect.outreach.models import OUTCOMES as CALL_OUTCOMES
from carecollect.outreach.outbox import CallTask
from carecollect.outreach.review import OUTCOMES, review_service
from carecollect.payment_plan.repository import plan_repository
from carecollect.staff_ui.render import page
from carecollect.staff_ui.render import tenant_session as _tenant
from carecollect.tenant.models import Organization

router = APIRouter(prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)])
Context = Annotated[AppContext, Depends(get_context)]

KIND_LABELS = {
    "cease_requested": "Cease request",
    "dispute": "Dispute",
    "attorney_represented": "Attorney",
    "bankruptcy": "Bankruptcy",
    "hardship": "Financial help",
}
# Outcomes a person can log for a manual call (the dispatcher's own outcomes excluded).
LOGGABLE_CALL_OUTCOMES = tuple(o for o in CALL_OUTCOMES if o not in ("delivered",))
MESSAGES = {
    "resolved": "Review recorded.",
    "logged": "Call outcome logged.",
}
FAILED_DAYS = 30



def work_lists_view(request: Request, context: AppContext, auth: StaffAuth, *,
                    error: str | None = None, status: int = 200) -> Response:
    """The work lists page (GET /app/work, and re-rendered with an error on a refused
    action)."""
    now = context.now()
    org_id = auth.principal.organization_id
    with _tenant(context, auth) as session:
        org = session.get(Organization, org_id)
        zone = ZoneInfo(org.timezone if org is not None else "UTC")
        flags = [
            {"id": f.id, "kind": f.kind, "label": KIND_LABELS.get(f.kind, f.kind),
             "raised_on": f.raised_at.astimezone(zone).date().isoformat(),
             "in_writing": f.in_writing, "source": f.source, "guarantor_id": f.guarantor_id,
             "outcomes": OUTCOMES.get(f.kind, ())}
            for f in review_service.queue(session)
        ]
        tasks = [
            {"id": t.task_id, "guarantor_id": t.guarantor_id,
             "due": t.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
             "script": t.script_key}
            for t in calls.work_list(session, now=now)
        ]
        failed = [
            {"when": attempt.started_at.astimezone(zone).strftime("%Y-%m-%d"),
             "amount": f"${attempt.amount_cents / 100:,.2f}",
             "code": attempt.failure_code or attempt.state,
             "attempt": attempt.attempt_number,
             "next_try": installment.next_attempt_on.isoformat()
             if installment.next_attempt_on else "",
             "installment": installment.status, "plan": plan.status,
             "guarantor_id": plan.guarantor_id}
            for attempt, installment, plan in plan_repository.failed_charges(
                session, since=now - dt.timedelta(days=FAILED_DAYS))
        ]
    return page(request, "work.html", title="Work lists", flags=flags, tasks=tasks,
                failed=failed, call_outcomes=LOGGABLE_CALL_OUTCOMES, error=error,
                message=MESSAGES.get(request.query_params.get("m", "")),
                failed_days=FAILED_DAYS, status_code=status)


@router.post("/work/flags/{flag_id}/resolve", response_class=HTMLResponse)
def resolve_flag(
    request: Request,
    flag_id: uuid.UUID,
    context: Context,
    outcome: Annotated[str, Form()] = "",
    auth: StaffAuth = staff_permission(Permission.FLAG_WRITE),
) -> Response:
    try:
        with _tenant(context, auth) as session:
            review_service.resolve(session, actor=auth.principal.actor, flag_id=flag_id,
                                   outcome=outcome, at=context.now())
    except AppError as exc:
        return work_lists_view(request, context, auth, error=exc.message, status=exc.status_code)
    return RedirectResponse("/app/work?m=resolved", status_code=303)


@router.post("/work/calls/{task_id}/check", response_class=HTMLResponse)
def check_call(
    request: Request,
    task_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CALL_WORK),
) -> Response:
    """Re-check the call now, under the debtor's lock, and show the decision with the
    limited-content voicemail script and the outcome form."""
    now = context.now()
    org_id = auth.principal.organization_id
    channels = ChannelSettings()
    try:
        with _tenant(context, auth) as session:
            task = session.get(CallTask, task_id)
            org = session.get(Organization, org_id)
            if task is None or org is None or task.state != "open":
                return work_lists_view(request, context, auth, status=404,
                                       error="No such open call task.")
            keys = context.keys.for_organization(session, org_id)
            decision = calls.check_before_dial(
                session, keys, task_id, now=now, profile="strict",
                overlay=overlay_for(session, organization_id=org_id))
            record(session, actor=auth.principal.actor, action="call_task.check",
                   subject=Subject("call_task", task_id, organization_id=org_id,
                                   patient_id=task.guarantor_id),
                   details={"decision": decision.decision, "reasons": list(decision.reasons)})
            zone = ZoneInfo(decision.zone)
            script = calls.voicemail_script(org.billing_display_name,
                                            contact_person=channels.contact_person,
                                            callback_phone=channels.callback_phone)
            guarantor_id = task.guarantor_id
    except AppError as exc:
        return work_lists_view(request, context, auth, error=exc.message, status=exc.status_code)
    reasons = [{"id": rule, "title": BY_ID[rule].title if rule in BY_ID else rule,
                "citation": BY_ID[rule].citation if rule in BY_ID else ""}
               for rule in decision.reasons]
    next_allowed = (decision.next_allowed_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
                    if decision.next_allowed_at else None)
    return page(request, "work_call.html", title="Call check", task_id=task_id,
                guarantor_id=guarantor_id, decision=decision.decision, reasons=reasons,
                explanation=list(decision.explanation), next_allowed=next_allowed,
                script=script, call_outcomes=LOGGABLE_CALL_OUTCOMES)


@router.post("/work/calls/{task_id}/outcome", response_class=HTMLResponse)
def log_call_outcome(
    request: Request,
    task_id: uuid.UUID,
    context: Context,
    outcome: Annotated[str, Form()] = "",
    auth: StaffAuth = staff_permission(Permission.CALL_WORK),
) -> Response:
    org_id = auth.principal.organization_id
    try:
        with _tenant(context, auth) as session:
            if outcome not in LOGGABLE_CALL_OUTCOMES:
                return work_lists_view(request, context, auth, status=400,
                                       error="Choose what happened on the call.")
            keys = context.keys.for_organization(session, org_id)
            task = calls.log_outcome(session, keys, auth.principal.actor, task_id,
                                     outcome=outcome, occurred_at=context.now())
            record(session, actor=auth.principal.actor, action="call_task.outcome",
                   subject=Subject("call_task", task_id, organization_id=org_id,
                                   patient_id=task.guarantor_id),
                   details={"outcome": outcome})
    except AppError as exc:
        return work_lists_view(request, context, auth, error=exc.message, status=exc.status_code)
    return RedirectResponse("/app/work?m=logged", status_code=303)
