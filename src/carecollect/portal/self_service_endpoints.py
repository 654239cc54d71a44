"""Portal self-service pages (`/pay/preferences`, `/pay/dispute`, `/pay/help`,
`/pay/access-log`): thin handlers over `portal.self_service`.

Every page needs the verified portal session (`PortalSession`); every POST also needs its
CSRF token (`PortalFormSession`). Forms post back with ids and codes only (no PHI in any
URL); a successful change redirects (303) to a page named by a fixed word. Messages come
from the portal catalog in English and Spanish; service messages are mapped to catalog
keys so that the Spanish page never shows an English error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from carecollect.api.context import get_context
from carecollect.audit import Actor
from carecollect.errors import BadInput, NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.portal import service as portal_service
from carecollect.portal.auth import PortalAuth, PortalFormSession, PortalNotFound, PortalSession
from carecollect.portal.i18n import register_messages
from carecollect.portal.render import page
from carecollect.portal.self_service import (
    DISPUTE_REASONS,
    HARDSHIP_REASONS,
    PORTAL_MEDIA,
    PreferencesUpdate,
    self_service,
)
from carecollect.portal.self_service_messages import ERROR_KEYS, MESSAGES

register_messages(MESSAGES)

router = APIRouter(prefix="/pay", include_in_schema=False)
T = TypeVar("T")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DONE_PAGES = {"dispute": "self.done.dispute", "help": "self.done.help"}


def _run(request: Request, auth: PortalAuth,
         work: Callable[[Session, OrganizationKeys, Actor], T]) -> T:
    """One transaction of the session's organization (committed on success)."""
    context = get_context(request)
    with context.session(auth.organization_id) as session:
        keys = context.org_keys(session, auth.organization_id)
        return work(session, keys, Actor.patient(auth.guarantor_id))


def _error_key(exc: BadInput) -> str:
    return ERROR_KEYS.get(exc.message, "self.err.generic")


async def _form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    form = await request.form()
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            single[key] = value.strip()[:100]
            multi.setdefault(key, []).append(value.strip()[:100])
    return single, multi


# -- contact preferences --------------------------------------------------------------------

def _preferences_page(request: Request, auth: PortalAuth, *, error_key: str | None = None,
                      status_code: int = 200, saved: bool = False) -> HTMLResponse:
    prefs = _run(request, auth, lambda s, k, a: self_service.preferences(
        s, keys=k, actor=a, guarantor_id=auth.guarantor_id))
    return page(request, "portal/self_preferences.html", title_key="title.self.preferences",
                auth=auth, status_code=status_code, prefs=prefs, days=DAYS,
                error_key=error_key, saved=saved)


@router.get("/preferences")
def preferences(request: Request, auth: PortalSession) -> Response:
    return _preferences_page(request, auth, saved=request.query_params.get("saved") == "1")


@router.post("/preferences")
async def save_preferences(request: Request, auth: PortalFormSession) -> Response:
    single, multi = await _form(request)
    update = PreferencesUpdate(
        channels={m: single.get(f"channel_{m}") == "on" for m in PORTAL_MEDIA},
        best_time_start=single.get("best_start", ""), best_time_end=single.get("best_end", ""),
        avoid_days=multi.get("avoid_day", []), language=single.get("language", ""))
    context = get_context(request)

    def work(session: Session, keys: OrganizationKeys, actor: Actor) -> list[str]:
        changes = self_service.update_preferences(
            session, keys=keys, actor=actor, guarantor_id=auth.guarantor_id, update=update,
            now=context.now())
        # The portal follows the language the patient chose for their messages.
        portal_service.set_language(session, session_id=auth.session_id,
                                    language=update.language)
        return changes

    try:
        await run_in_threadpool(_run, request, auth, work)
    except BadInput as exc:
        return await run_in_threadpool(_preferences_page, request, auth,
                                       error_key=_error_key(exc), status_code=422)
    return RedirectResponse("/pay/preferences?saved=1", status_code=303)


# -- dispute a charge -----------------------------------------------------------------------

def _dispute_page(request: Request, auth: PortalAuth, *, error_key: str | None = None,
                  status_code: int = 200, chosen: str = "", reason: str = "") -> HTMLResponse:
    charges = _run(request, auth, lambda s, k, a: self_service.charges(
        s, keys=k, actor=a, guarantor_id=auth.guarantor_id))
    return page(request, "portal/self_dispute.html", title_key="title.self.dispute",
                auth=auth, status_code=status_code, charges=charges, reasons=DISPUTE_REASONS,
                error_key=error_key, chosen=chosen, reason=reason)


@router.get("/dispute")
def dispute(request: Request, auth: PortalSession) -> Response:
    return _dispute_page(request, auth)


@router.post("/dispute")
async def file_dispute(request: Request, auth: PortalFormSession) -> Response:
    single, _ = await _form(request)
    chosen, reason = single.get("charge", ""), single.get("reason", "")
    try:
        charge_id = uuid.UUID(chosen)
    except ValueError:
        return await run_in_threadpool(_dispute_page, request, auth,
                                       error_key="self.err.choose_charge", status_code=422,
                                       reason=reason)
    context = get_context(request)
    try:
        await run_in_threadpool(_run, request, auth, lambda s, k, a: self_service.file_dispute(
            s, keys=k, actor=a, guarantor_id=auth.guarantor_id, charge_entry_id=charge_id,
            reason=reason, now=context.now()))
    except NotFound:
        raise PortalNotFound("no such charge") from None
    except BadInput as exc:
        return await run_in_threadpool(_dispute_page, request, auth,
                                       error_key=_error_key(exc), status_code=422,
                                       chosen=chosen, reason=reason)
    return RedirectResponse("/pay/done/dispute", status_code=303)


# -- financial help -------------------------------------------------------------------------

def _help_page(request: Request, auth: PortalAuth, *, error_key: str | None = None,
               status_code: int = 200) -> HTMLResponse:
    return page(request, "portal/self_hardship.html", title_key="title.self.help", auth=auth,
                status_code=status_code, reasons=HARDSHIP_REASONS, error_key=error_key)


@router.get("/help")
def financial_help(request: Request, auth: PortalSession) -> Response:
    return _help_page(request, auth)


@router.post("/help")
async def request_help(request: Request, auth: PortalFormSession) -> Response:
    single, _ = await _form(request)
    context = get_context(request)
    try:
        await run_in_threadpool(
            _run, request, auth, lambda s, k, a: self_service.request_hardship(
                s, keys=k, actor=a, guarantor_id=auth.guarantor_id,
                reason=single.get("reason", ""), now=context.now()))
    except BadInput as exc:
        return _help_page(request, auth, error_key=_error_key(exc), status_code=422)
    return RedirectResponse("/pay/done/help", status_code=303)


@router.get("/done/{what}")
def done(request: Request, what: str, auth: PortalSession) -> Response:
    key = DONE_PAGES.get(what)
    if key is None:
        raise PortalNotFound("no such page")
    return page(request, "portal/self_done.html", title_key=f"title.self.done_{what}",
                auth=auth, message_key=key)


# -- the patient's own access log -----------------------------------------------------------

@router.get("/access-log")
def access_log(request: Request, auth: PortalSession) -> Response:
    lines = _run(request, auth, lambda s, k, a: self_service.access_log(
        s, keys=k, actor=a, guarantor_id=auth.guarantor_id))
    return page(request, "portal/self_access_log.html", title_key="title.self.access_log",
                auth=auth, lines=lines)


__all__: list[str] = ["router"]


# Autopay (enroll through the processor's hosted page, turn off, replace the card).
from carecollect.portal.self_service_autopay import autopay_router  # noqa: E402

router.include_router(autopay_router)
