"""Staff app organization settings: quiet days and the compliance overlay, and saving or
reverting the organization's versions of the message templates.

Thin like `pages.py`: authorize with one permission of the matrix (`organization.read` to
view, `organization.manage` to change), parse the form, call the compliance / outreach
services, render. A refused overlay re-renders the form with every problem (the overlay's
own message for each setting that would loosen a legal limit) and a 400, and stores
nothing; a template with linter findings is shown again in the editor with the findings,
a 400, and nothing stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from carecollect.api.context import AppContext, get_context
from carecollect.compliance.overlay import OrgOverlay
from carecollect.compliance.overlay_settings import (
    WEEKDAY_NAMES,
    holiday_calendars,
    holiday_country_names,
    overlay_json,
    overlay_problems,
    set_overlay,
    stored_overlay,
)
from carecollect.errors import BadInput
from carecollect.identity.auth import StaffAuth, csrf_protect, staff_permission
from carecollect.identity.permissions import Permission
from carecollect.outreach.org_templates import draft_of, revert_template, save_template
from carecollect.outreach.templates import CHANNEL_SURFACES, LANGUAGES, TemplateRefused
from carecollect.staff_ui.campaign_pages import editor_page
from carecollect.staff_ui.render import page
from carecollect.staff_ui.render import tenant_session as _tenant

router = APIRouter(prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)])
Context = Annotated[AppContext, Depends(get_context)]
WEEKDAY_LABELS = dict(zip(WEEKDAY_NAMES, ("Monday", "Tuesday", "Wednesday", "Thursday",
                                          "Friday", "Saturday", "Sunday"), strict=True))
_DATE_SEPARATORS = re.compile(r"[\s,;]+")



def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


# Quiet days and the compliance overlay ----------------------------------------------------


def _draft(overlay: OrgOverlay | None) -> dict[str, Any]:
    """The form's values for a stored overlay (or the defaults: overlay off)."""
    data = overlay_json(overlay or OrgOverlay())
    return {
        "window_start": data["window_start"], "window_end": data["window_end"],
        "quiet_weekdays": list(data["quiet_weekdays"]),
        "extra_quiet_dates": "\n".join(data["extra_quiet_dates"]),
        "holiday_country": data["holiday_country"] or "",
        "holiday_subdivision": data["holiday_subdivision"] or "",
        "max_calls_per_7_days": "" if data["max_calls_per_7_days"] is None
        else str(data["max_calls_per_7_days"]),
        "max_contacts_per_7_days": "" if data["max_contacts_per_7_days"] is None
        else str(data["max_contacts_per_7_days"]),
    }


def _draft_from_form(form: FormData) -> dict[str, Any]:
    return {
        "window_start": _text(form, "window_start", 8),
        "window_end": _text(form, "window_end", 8),
        "quiet_weekdays": [str(d)[:3] for d in form.getlist("quiet_weekdays")][:7],
        "extra_quiet_dates": _text(form, "extra_quiet_dates", 8_000),
        "holiday_country": _text(form, "holiday_country", 8),
        "holiday_subdivision": _text(form, "holiday_subdivision", 16),
        "max_calls_per_7_days": _text(form, "max_calls_per_7_days", 8),
        "max_contacts_per_7_days": _text(form, "max_contacts_per_7_days", 8),
    }


def _data_of(draft: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The overlay JSON for the form's values, with the problems only the form can have
    (labels of the page); the overlay checks the rest."""
    errors: list[str] = []
    data: dict[str, Any] = {}
    for key in ("window_start", "window_end"):
        if draft[key]:
            data[key] = draft[key]
    unknown = [d for d in draft["quiet_weekdays"] if d not in WEEKDAY_NAMES]
    if unknown:
        errors.append("quiet weekdays: choose from the listed days")
    data["quiet_weekdays"] = [d for d in WEEKDAY_NAMES if d in draft["quiet_weekdays"]]
    data["extra_quiet_dates"] = [d for d in _DATE_SEPARATORS.split(draft["extra_quiet_dates"])
                                 if d]
    if draft["holiday_country"]:
        data["holiday_country"] = draft["holiday_country"]
        if draft["holiday_subdivision"]:
            data["holiday_subdivision"] = draft["holiday_subdivision"]
    labels = {"max_calls_per_7_days": "call cap", "max_contacts_per_7_days": "contact cap"}
    for key, label in labels.items():
        if not draft[key]:
            continue
        try:
            data[key] = int(draft[key])
        except ValueError:
            errors.append(f"{label}: enter a whole number (or leave it empty for no cap)")
    return data, errors


def _overlay_page(request: Request, context: AppContext, auth: StaffAuth, *,
                  draft: dict[str, Any] | None, errors: list[str],
                  status_code: int = 200) -> Response:
    with _tenant(context, auth) as session:
        overlay, updated_at, _ = stored_overlay(
            session, organization_id=auth.principal.organization_id)
    draft = draft if draft is not None else _draft(overlay)
    calendars = holiday_calendars()
    return page(request, "org_settings_compliance.html", title="Quiet days and contact limits",
                overlay=overlay, updated_at=updated_at, draft=draft, errors=errors,
                weekdays=WEEKDAY_LABELS, countries=holiday_country_names(),
                subdivisions=calendars.get(draft["holiday_country"], ()),
                status_code=status_code)


@router.get("/admin/compliance-settings", response_class=HTMLResponse)
def compliance_settings(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_READ),
) -> Response:
    return _overlay_page(request, context, auth, draft=None, errors=[])


@router.post("/admin/compliance-settings", response_class=HTMLResponse)
async def compliance_settings_save(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
) -> Response:
    form = await request.form()
    draft = _draft_from_form(form)

    def work() -> Response:
        data, errors = _data_of(draft)
        errors += overlay_problems(data)
        if not errors:
            with _tenant(context, auth) as session:
                try:
                    set_overlay(session, actor=auth.principal.actor,
                                organization_id=auth.principal.organization_id, data=data)
                except BadInput as exc:
                    session.rollback()
                    errors.append(exc.message)
        if errors:
            return _overlay_page(request, context, auth, draft=draft, errors=errors,
                                 status_code=400)
        return RedirectResponse("/app/admin/compliance-settings", status_code=303)

    return await run_in_threadpool(work)


# Organization templates -----------------------------------------------------------------


@router.post("/admin/templates/save", response_class=HTMLResponse)
async def template_save(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
) -> Response:
    form = await request.form()
    channel = _text(form, "channel", 16)
    if channel not in CHANNEL_SURFACES:
        raise BadInput("unknown channel")
    language = _text(form, "language", 4)
    if language not in LANGUAGES:
        raise BadInput("the language is en or es")
    surfaces = {s: _text(form, f"surface-{s}", 20_000) for s in CHANNEL_SURFACES[channel]}
    template_id = _text(form, "template_id", 64)
    verified, risk = bool(_text(form, "verified", 4)), bool(_text(form, "risk", 4))

    def work() -> Response:
        template = draft_of(key=template_id, language=language, channel=channel,
                            surfaces=surfaces, phone_verified_and_consented=verified,
                            email_risk_acknowledged=risk)
        with _tenant(context, auth) as session:
            try:
                save_template(session, actor=auth.principal.actor,
                              organization_id=auth.principal.organization_id,
                              template=template)
            except TemplateRefused:
                session.rollback()
                return editor_page(
                    request, context, auth, template_id=template_id, language=language,
                    channel=channel, surfaces=surfaces, verified=verified, risk=risk,
                    save_error="Not saved: the linter found the problems listed below.",
                    status_code=400)
        return RedirectResponse(f"/app/templates/{template_id}/{language}", status_code=303)

    return await run_in_threadpool(work)


@router.post("/admin/templates/{template_id}/{language}/revert", response_class=HTMLResponse)
def template_revert(
    template_id: str,
    language: str,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.ORG_MANAGE),
) -> Response:
    with _tenant(context, auth) as session:
        revert_template(session, actor=auth.principal.actor,
                        organization_id=auth.principal.organization_id, key=template_id[:64],
                        language=language[:4])
    return RedirectResponse(f"/app/templates/{template_id}/{language}", status_code=303)
