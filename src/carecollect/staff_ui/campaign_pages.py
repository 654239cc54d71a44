"""Staff app pages: campaigns (cadences) with their builder and dry run, the template
editor, and the organization's payment-plan policy.

Thin like `pages.py`: authorize with one permission of the matrix, parse the form, call
the outreach / payment-plan services, render. Bad input re-renders the form with every
problem listed and a 400, and stores nothing. The dry run shows accounts masked unless the
viewer may read unmasked PHI, and records one `patient.read` event per person shown plus
one `outreach.dry_run` summary event (HIPAA 164.312(b)).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from carecollect.api import views
from carecollect.api.context import AppContext, get_context
from carecollect.audit import Subject, record
from carecollect.errors import BadInput
from carecollect.identity.auth import StaffAuth, csrf_protect, staff_permission
from carecollect.identity.permissions import Permission
from carecollect.outreach import org_templates
from carecollect.outreach.cadence import (
    DRY_RUN_MAX,
    CampaignSpec,
    DryRun,
    StepSpec,
    cadence_service,
    check_template,
    explain_rule,
    template_catalog,
    template_draft,
)
from carecollect.outreach.cadence_models import BEHAVIOURS, PLAN_STATUSES, STEP_CHANNELS
from carecollect.outreach.templates import CHANNEL_SURFACES, LANGUAGES, default_templates
from carecollect.payment_plan.schedule import PolicyTerms, TermTier
from carecollect.payment_plan.service import plan_service
from carecollect.staff_ui.render import page
from carecollect.staff_ui.render import tenant_session as _tenant
from carecollect.tenant.models import Organization

router = APIRouter(prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)])
Context = Annotated[AppContext, Depends(get_context)]
MAX_FALLBACKS = 3  # channel slots per step: the primary and two fallbacks
MAX_VARIANTS = 3
DISPLAY_ROWS = 500  # dry-run rows listed on the page (totals cover every simulated row)
TIER_ROWS = 4



def _zone(context: AppContext, auth: StaffAuth) -> str:
    with _tenant(context, auth) as session:
        org = session.get(Organization, auth.principal.organization_id)
        return org.timezone if org is not None else "UTC"


def _template_choices() -> dict[str, list[str]]:
    """Template ids usable on each step channel (calls leave a voicemail)."""
    by_channel: dict[str, set[str]] = {c: set() for c in STEP_CHANNELS}
    for template_id, _ in default_templates():
        channel = default_templates()[(template_id, "en")].channel
        for target in STEP_CHANNELS:
            if target == channel or {target, channel} <= {"call", "voicemail"}:
                by_channel[target].add(template_id)
    return {c: sorted(ids) for c, ids in by_channel.items()}


# Builder form <-> spec -----------------------------------------------------------------


def _money_text(cents: int | None) -> str:
    return "" if cents is None else f"{cents // 100}.{cents % 100:02d}"


def _blank_step() -> dict[str, Any]:
    return {"wait_days": "0", "send_hour": "10", "channels": [""] * MAX_FALLBACKS,
            "requires": [], "unless": [],
            "variants": [{"name": "A", "weight": "1", "templates": {}}]
            + [{"name": "", "weight": "", "templates": {}}] * (MAX_VARIANTS - 1)}


def _draft_of(spec: CampaignSpec | None) -> dict[str, Any]:
    """The form's values for a spec (or a blank campaign)."""
    if spec is None:
        return {"key": "", "name": "", "description": "", "priority": "100",
                "min_balance": "", "max_balance": "", "min_age": "", "max_age": "",
                "plan_status": "any", "holdout_percent": "0",
                "stop_on": ["paid", "promised", "plan_active"], "pause_on": ["replied"],
                "steps": [_blank_step()]}
    steps = []
    for step in spec.steps:
        variants = [{"name": str(v.get("name", "")), "weight": str(v.get("weight", 1)),
                     "templates": dict(v.get("templates", {}))} for v in step.variants]
        variants += [{"name": "", "weight": "", "templates": {}}] * (
            MAX_VARIANTS - len(variants))
        channels = list(step.channels) + [""] * (MAX_FALLBACKS - len(step.channels))
        steps.append({"wait_days": str(step.wait_days), "send_hour": str(step.send_hour),
                      "channels": channels, "requires": list(step.condition.get("requires", [])),
                      "unless": list(step.condition.get("unless", [])), "variants": variants})
    bps = spec.holdout_basis_points
    return {"key": spec.key, "name": spec.name, "description": spec.description,
            "priority": str(spec.priority), "min_balance": _money_text(spec.min_balance_cents),
            "max_balance": _money_text(spec.max_balance_cents),
            "min_age": "" if spec.min_age_days is None else str(spec.min_age_days),
            "max_age": "" if spec.max_age_days is None else str(spec.max_age_days),
            "plan_status": spec.plan_status,
            "holdout_percent": f"{bps // 100}" + (f".{bps % 100:02d}" if bps % 100 else ""),
            "stop_on": list(spec.stop_on), "pause_on": list(spec.pause_on), "steps": steps}


def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _draft_from_form(form: FormData) -> dict[str, Any]:
    """The submitted values as the form shows them again (steps marked removed dropped)."""
    try:
        count = min(int(_text(form, "step_count", 3) or "0"), 12)
    except ValueError:
        count = 0
    steps = []
    for i in range(max(count, 0)):
        prefix = f"step-{i}-"
        if _text(form, prefix + "remove"):
            continue
        variants = []
        for j in range(MAX_VARIANTS):
            vp = f"{prefix}variant-{j}-"
            variants.append({
                "name": _text(form, vp + "name", 32), "weight": _text(form, vp + "weight", 8),
                "templates": {c: _text(form, f"{vp}template-{c}", 64) for c in STEP_CHANNELS
                              if _text(form, f"{vp}template-{c}", 64)}})
        steps.append({
            "wait_days": _text(form, prefix + "wait_days", 8),
            "send_hour": _text(form, prefix + "send_hour", 8),
            "channels": [_text(form, f"{prefix}channel-{k}", 16) for k in range(MAX_FALLBACKS)],
            "requires": [str(b) for b in form.getlist(prefix + "requires")][:8],
            "unless": [str(b) for b in form.getlist(prefix + "unless")][:8],
            "variants": variants})
    return {"key": _text(form, "key", 64), "name": _text(form, "name", 200),
            "description": _text(form, "description", 1000),
            "priority": _text(form, "priority", 8), "min_balance": _text(form, "min_balance", 20),
            "max_balance": _text(form, "max_balance", 20), "min_age": _text(form, "min_age", 8),
            "max_age": _text(form, "max_age", 8), "plan_status": _text(form, "plan_status", 16),
            "holdout_percent": _text(form, "holdout_percent", 8),
            "stop_on": [str(b) for b in form.getlist("stop_on")][:8],
            "pause_on": [str(b) for b in form.getlist("pause_on")][:8], "steps": steps}


class _Errors(list[str]):
    def integer(self, value: str, label: str, *, optional: bool = False) -> int | None:
        if not value and optional:
            return None
        try:
            return int(value)
        except ValueError:
            self.append(f"{label}: enter a whole number")
            return None

    def cents(self, value: str, label: str) -> int | None:
        if not value:
            return None
        try:
            amount = Decimal(value.replace("$", "").replace(",", ""))
        except InvalidOperation:
            self.append(f"{label}: enter an amount in dollars, like 250.00")
            return None
        cents = amount * 100
        if cents != cents.to_integral_value() or not amount.is_finite():
            self.append(f"{label}: at most two decimals")
            return None
        return int(cents)

    def basis_points(self, value: str, label: str) -> int:
        try:
            points = Decimal(value or "0") * 100
        except InvalidOperation:
            self.append(f"{label}: enter a percentage, like 5 or 2.5")
            return 0
        if not points.is_finite() or points != points.to_integral_value():
            self.append(f"{label}: at most two decimals")
            return 0
        return int(points)


def _spec_from_draft(draft: dict[str, Any], *, seed: str | None) -> tuple[CampaignSpec | None,
                                                                          list[str]]:
    """Parse the form's values; every problem is listed (the service checks the rest)."""
    errors = _Errors()
    for name in ("stop_on", "pause_on"):
        for behaviour in draft[name]:
            if behaviour not in BEHAVIOURS:
                errors.append(f"unknown behaviour {behaviour[:20]!r}")
    if draft["plan_status"] not in PLAN_STATUSES:
        errors.append("plan status: choose one of the listed values")
    steps = []
    for number, step in enumerate(draft["steps"], start=1):
        label = f"step {number}"
        wait = errors.integer(step["wait_days"], f"{label} wait (days)")
        hour = errors.integer(step["send_hour"], f"{label} send hour")
        channels = tuple(c for c in step["channels"] if c)
        if not channels:
            errors.append(f"{label}: choose a primary channel")
        variants = []
        for variant in step["variants"]:
            if not variant["name"] and not variant["templates"]:
                continue
            weight = errors.integer(variant["weight"] or "1",
                                    f"{label} variant {variant['name'] or '?'} weight")
            variants.append({"name": variant["name"], "weight": weight or 0,
                             "templates": {c: t for c, t in variant["templates"].items()
                                           if c in channels}})
        if not variants:
            errors.append(f"{label}: add at least one variant")
        condition = {k: list(step[k]) for k in ("requires", "unless") if step[k]}
        steps.append(StepSpec(wait_days=wait or 0, channels=channels,
                              variants=tuple(variants), send_hour=hour or 0,
                              condition=condition))
    if not steps:
        errors.append("add at least one step")
    priority = errors.integer(draft["priority"] or "100", "priority")
    spec = CampaignSpec(
        key=draft["key"], name=draft["name"], description=draft["description"],
        steps=tuple(steps), priority=priority if priority is not None else 100,
        min_balance_cents=errors.cents(draft["min_balance"], "minimum balance"),
        max_balance_cents=errors.cents(draft["max_balance"], "maximum balance"),
        min_age_days=errors.integer(draft["min_age"], "minimum age (days)", optional=True),
        max_age_days=errors.integer(draft["max_age"], "maximum age (days)", optional=True),
        plan_status=draft["plan_status"],
        holdout_basis_points=errors.basis_points(draft["holdout_percent"], "holdout"),
        seed=seed, stop_on=tuple(draft["stop_on"]), pause_on=tuple(draft["pause_on"]))
    return (None, list(errors)) if errors else (spec, [])


def _builder(request: Request, *, draft: dict[str, Any], campaign_id: uuid.UUID | None,
             errors: list[str], status_code: int = 200) -> Response:
    return page(request, "campaign_form.html", title="Campaign builder", draft=draft,
                campaign_id=campaign_id, errors=errors, channels=STEP_CHANNELS,
                behaviours=BEHAVIOURS, plan_statuses=PLAN_STATUSES,
                choices=_template_choices(), max_variants=MAX_VARIANTS,
                max_fallbacks=MAX_FALLBACKS, status_code=status_code)


# Campaign list, detail, builder --------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
def campaign_list(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_READ),
) -> Response:
    with _tenant(context, auth) as session:
        rows = cadence_service.summaries(session)
    return page(request, "campaigns.html", title="Campaigns", rows=rows)


@router.get("/campaigns/new", response_class=HTMLResponse)
def campaign_new(
    request: Request, auth: StaffAuth = staff_permission(Permission.CAMPAIGN_MANAGE)
) -> Response:
    return _builder(request, draft=_draft_of(None), campaign_id=None, errors=[])


async def _save(request: Request, context: AppContext, auth: StaffAuth,
                campaign_id: uuid.UUID | None) -> Response:
    form = await request.form()
    draft = _draft_from_form(form)
    if _text(form, "action", 16) == "add_step":
        if len(draft["steps"]) < 12:
            draft["steps"].append(_blank_step())
        return _builder(request, draft=draft, campaign_id=campaign_id, errors=[])

    def work() -> Response:
        seed = None
        if campaign_id is not None:
            with _tenant(context, auth) as session:
                current = cadence_service.campaign(session, campaign_id)
                seed, draft["key"] = current.seed, current.key
        spec, errors = _spec_from_draft(draft, seed=seed)
        saved: uuid.UUID | None = None
        if spec is not None:
            with _tenant(context, auth) as session:
                try:
                    if campaign_id is None:
                        saved = cadence_service.create_campaign(
                            session, organization_id=auth.principal.organization_id,
                            actor=auth.principal.actor, spec=spec).id
                    else:
                        saved = cadence_service.update_campaign(
                            session, organization_id=auth.principal.organization_id,
                            actor=auth.principal.actor, campaign_id=campaign_id, spec=spec).id
                except BadInput as exc:
                    session.rollback()
                    errors = [exc.message]
        if saved is None:
            return _builder(request, draft=draft, campaign_id=campaign_id, errors=errors,
                            status_code=400)
        return RedirectResponse(f"/app/campaigns/{saved}", status_code=303)

    return await run_in_threadpool(work)


@router.post("/campaigns", response_class=HTMLResponse)
async def campaign_create(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_MANAGE),
) -> Response:
    return await _save(request, context, auth, None)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_detail(
    request: Request,
    campaign_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_READ),
) -> Response:
    zone = _zone(context, auth)
    with _tenant(context, auth) as session:
        campaign = cadence_service.campaign(session, campaign_id)
        summary = next(s for s in cadence_service.summaries(session)
                       if s.campaign.id == campaign.id)
        spec = cadence_service.spec_of(session, campaign)
    now_local = context.now().astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
    return page(request, "campaign.html", title="Campaign", summary=summary, spec=spec,
                zone=zone, now_local=now_local, max_accounts=DRY_RUN_MAX, error="")


@router.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
def campaign_edit(
    request: Request,
    campaign_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_MANAGE),
) -> Response:
    with _tenant(context, auth) as session:
        campaign = cadence_service.campaign(session, campaign_id)
        spec = cadence_service.spec_of(session, campaign)
    return _builder(request, draft=_draft_of(spec), campaign_id=campaign_id, errors=[])


@router.post("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_update(
    request: Request,
    campaign_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_MANAGE),
) -> Response:
    return await _save(request, context, auth, campaign_id)


def _set_active(context: AppContext, auth: StaffAuth, campaign_id: uuid.UUID,
                active: bool) -> Response:
    with _tenant(context, auth) as session:
        cadence_service.set_active(session, organization_id=auth.principal.organization_id,
                                   actor=auth.principal.actor, campaign_id=campaign_id,
                                   active=active, at=context.now())
    return RedirectResponse(f"/app/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/pause")
def campaign_pause(
    campaign_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_MANAGE),
) -> Response:
    return _set_active(context, auth, campaign_id, False)


@router.post("/campaigns/{campaign_id}/resume")
def campaign_resume(
    campaign_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_MANAGE),
) -> Response:
    return _set_active(context, auth, campaign_id, True)


# Dry run -----------------------------------------------------------------------------------


def _layout(request: Request) -> str:
    """htmx swaps the results into the campaign page; a plain form post gets a page."""
    return "campaign_fragment.html" if request.headers.get("hx-request") else "base.html"


def _dry_run_rows(session: Any, context: AppContext, auth: StaffAuth, run: DryRun,
                  zone: str) -> list[dict[str, Any]]:
    """The rows the page lists, with a masked (or, with permission, plain) name per person;
    each person shown is one audited read."""
    principal = auth.principal
    names = principal.can(Permission.PATIENT_READ)
    cipher = context.org_keys(session, principal.organization_id).cipher() if names else None
    shown: dict[uuid.UUID, str] = {}
    out = []
    for row in run.rows[:DISPLAY_ROWS]:
        label = ""
        if cipher is not None:
            if row.guarantor_id not in shown:
                person = views.guarantor_out(cipher, views.require_guarantor(
                    session, row.guarantor_id), show=views.unmasked(principal))
                shown[row.guarantor_id] = f"{person.first_name} {person.last_name}".strip()
                views.record_read(session, principal, row.guarantor_id,
                                  fields=["first_name", "last_name"],
                                  purpose="campaign_dry_run")
            label = shown[row.guarantor_id]
        local = ZoneInfo(row.local_zone or zone)
        when = row.scheduled_for.astimezone(local) if row.scheduled_for else None
        out.append({
            "row": row, "name": label, "link": names,
            "when": when.strftime("%Y-%m-%d %H:%M %Z") if when else "",
            "next_run": (run.at + dt.timedelta(days=1)).astimezone(ZoneInfo(zone))
            .strftime("%Y-%m-%d") if row.outcome == "blocked" else "",
            "reasons": [(r, *explain_rule(r)) for r in row.reasons],
            "tried": [(channel, [(r, *explain_rule(r)) for r in rules])
                      for channel, rules in row.tried_channels()]})
    return out


@router.post("/campaigns/{campaign_id}/dry-run", response_class=HTMLResponse)
async def campaign_dry_run(
    request: Request,
    campaign_id: uuid.UUID,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_READ),
) -> Response:
    form = await request.form()
    when_text, sample_text = _text(form, "at", 32), _text(form, "sample", 8)

    layout = _layout(request)

    def work() -> Response:
        zone = _zone(context, auth)
        error = ""
        try:
            at = (dt.datetime.fromisoformat(when_text).replace(tzinfo=ZoneInfo(zone))
                  .astimezone(dt.UTC) if when_text else context.now())
        except ValueError:
            error = "enter the instant as a date and time"
        sample: int | None = None
        if not error and sample_text:
            try:
                sample = int(sample_text)
            except ValueError:
                error = f"the sample is 1 to {DRY_RUN_MAX} accounts"
        if error:
            return page(request, "campaign_dry_run.html", title="Dry run", layout=layout,
                        error=error, run=None, rows=[], status_code=400)
        with _tenant(context, auth) as session:
            try:
                run = cadence_service.dry_run(
                    session, organization_id=auth.principal.organization_id,
                    campaign_id=campaign_id, at=at, sample=sample)
            except BadInput as exc:
                return page(request, "campaign_dry_run.html", title="Dry run", layout=layout,
                            error=exc.message, run=None, rows=[], status_code=400)
            rows = _dry_run_rows(session, context, auth, run, zone)
            record(session, actor=auth.principal.actor, action="outreach.dry_run",
                   subject=Subject("campaign", campaign_id,
                                   organization_id=auth.principal.organization_id),
                   details={"at": run.at.isoformat(), "simulated": len(run.rows),
                            "due": run.due_total, "shown": len(rows),
                            **run.outcome_totals()})
        return page(request, "campaign_dry_run.html", title="Dry run", layout=layout,
                    error="", run=run, rows=rows, display_rows=DISPLAY_ROWS,
                    at_local=at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z"))

    return await run_in_threadpool(work)


# Template editor -------------------------------------------------------------------------


@router.get("/templates", response_class=HTMLResponse)
def template_list(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_READ),
) -> Response:
    with _tenant(context, auth) as session:
        saved = {(o.template.id, o.template.language): o for o in org_templates.overrides(
            session, organization_id=auth.principal.organization_id)}
    return page(request, "template_editor_list.html", title="Message templates",
                catalog=template_catalog(), overrides=saved)


def editor_page(request: Request, context: AppContext, auth: StaffAuth, *, template_id: str,
                language: str, channel: str, surfaces: dict[str, str], verified: bool,
                risk: bool, status_code: int = 200, save_error: str = "") -> Response:
    """The template editor for a draft: linter findings, preview, and the organization's
    version of the template in use (if any) with "revert to shipped"."""
    with _tenant(context, auth) as session:
        org = session.get(Organization, auth.principal.organization_id)
        display_name = org.billing_display_name if org is not None else ""
        current = org_templates.override(
            session, organization_id=auth.principal.organization_id, key=template_id,
            language=language) if language in LANGUAGES else None
    check = check_template(template_id=template_id, language=language, channel=channel,
                           surfaces=surfaces, phone_verified_and_consented=verified,
                           email_risk_acknowledged=risk, display_name=display_name)
    shipped = default_templates().get((template_id, language))
    return page(request, "template_editor.html", title="Template editor", check=check,
                surfaces=CHANNEL_SURFACES.get(channel, ()), values=surfaces,
                override=current, shipped=shipped, save_error=save_error,
                status_code=400 if check.issues or check.preview_error else status_code)


@router.get("/templates/{template_id}/{language}", response_class=HTMLResponse)
def template_edit(
    request: Request,
    template_id: str,
    language: str,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_READ),
) -> Response:
    template = template_draft(template_id, language)
    with _tenant(context, auth) as session:
        # The organization's version in use, if it saved one, is the draft to start from.
        current = org_templates.organization_template(
            session, organization_id=auth.principal.organization_id, key=template.id,
            language=language)
    template = current or template
    return editor_page(request, context, auth, template_id=template.id, language=language,
                       channel=template.channel, surfaces=dict(template.surfaces),
                       verified=template.requires.phone_verified_and_consented,
                       risk=template.requires.email_risk_acknowledged)


@router.post("/templates/check", response_class=HTMLResponse)
async def template_check(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.CAMPAIGN_READ),
) -> Response:
    form = await request.form()
    channel = _text(form, "channel", 16)
    if channel not in CHANNEL_SURFACES:
        raise BadInput("unknown channel")
    language = _text(form, "language", 4)
    if language not in LANGUAGES:
        raise BadInput("the language is en or es")
    surfaces = {s: _text(form, f"surface-{s}", 20_000) for s in CHANNEL_SURFACES[channel]}
    template_id = _text(form, "template_id", 64) or "draft"
    return await run_in_threadpool(
        editor_page, request, context, auth, template_id=template_id, language=language,
        channel=channel, surfaces=surfaces, verified=bool(_text(form, "verified", 4)),
        risk=bool(_text(form, "risk", 4)))


# Payment-plan policy (organization settings) -------------------------------------------


def _policy_draft(terms: PolicyTerms) -> dict[str, Any]:
    tiers = [{"up_to": _money_text(t.up_to_cents), "months": str(t.max_months)}
             for t in terms.term_tiers]
    tiers += [{"up_to": "", "months": ""}] * (TIER_ROWS - len(tiers))
    return {"min_down": _money_text(terms.min_down_payment_cents),
            "min_down_percent": f"{Decimal(terms.min_down_payment_bps) / 100:f}",
            "min_installment": _money_text(terms.min_installment_cents), "tiers": tiers}


def _policy_page(request: Request, terms: PolicyTerms, draft: dict[str, Any],
                 errors: list[str], status_code: int = 200) -> Response:
    return page(request, "campaign_plan_policy.html", title="Payment plan policy",
                terms=terms, draft=draft, errors=errors, tier_rows=TIER_ROWS,
                status_code=status_code)


@router.get("/admin/plan-policy", response_class=HTMLResponse)
def plan_policy(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_READ),
) -> Response:
    with _tenant(context, auth) as session:
        _, terms = plan_service.policy(session)
    return _policy_page(request, terms, _policy_draft(terms), [])


@router.post("/admin/plan-policy", response_class=HTMLResponse)
async def plan_policy_save(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
) -> Response:
    form = await request.form()
    draft: dict[str, Any] = {"min_down": _text(form, "min_down", 20),
             "min_down_percent": _text(form, "min_down_percent", 8),
             "min_installment": _text(form, "min_installment", 20),
             "tiers": [{"up_to": _text(form, f"tier-{i}-up_to", 20),
                        "months": _text(form, f"tier-{i}-months", 8)} for i in range(TIER_ROWS)]}

    def work() -> Response:
        with _tenant(context, auth) as session:
            _, current = plan_service.policy(session)
        errors = _Errors()
        tiers = []
        for number, tier in enumerate(draft["tiers"], start=1):
            if not tier["up_to"] and not tier["months"]:
                continue
            months = errors.integer(tier["months"], f"tier {number} maximum term (months)")
            tiers.append(TermTier(errors.cents(tier["up_to"], f"tier {number} balance up to"),
                                  months or 0))
        terms = dataclasses.replace(
            current,
            min_down_payment_cents=errors.cents(draft["min_down"], "minimum down payment") or 0,
            min_down_payment_bps=errors.basis_points(draft["min_down_percent"],
                                                     "minimum down payment (%)"),
            min_installment_cents=errors.cents(draft["min_installment"],
                                               "minimum installment") or 0,
            term_tiers=tuple(tiers))
        if not errors:
            with _tenant(context, auth) as session:
                try:
                    plan_service.set_policy(session,
                                            organization_id=auth.principal.organization_id,
                                            actor=auth.principal.actor, terms=terms)
                except BadInput as exc:
                    session.rollback()
                    errors.append(exc.message)
        if errors:
            return _policy_page(request, current, draft, list(errors), status_code=400)
        return RedirectResponse("/app/admin/plan-policy", status_code=303)

    return await run_in_threadpool(work)
