"""Staff screen for outbound webhook endpoints (`/app/admin/webhooks`): list with delivery
counts, register (the signing secret is shown once), pause or resume, delete, rotate the
signing secret (shown once; the old one signs beside it for 24 hours), and an endpoint's
deliveries with a button to send a finished one again.

Thin like `pages.py`: one permission of the matrix (`webhook.manage`), the CSRF router
dependency, the integration service; bad input re-renders the form with a 400 and stores
nothing.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carecollect.api.context import AppContext, get_context
from carecollect.errors import BadInput, NotFound
from carecollect.identity.auth import StaffAuth, csrf_protect, staff_permission
from carecollect.identity.permissions import Permission
from carecollect.integration.endpoints import allow_loopback_http
from carecollect.integration.repository import integration_repository
from carecollect.integration.service import (
    EVENT_TYPES,
    ROTATION_GRACE_HOURS,
    webhook_service,
)
from carecollect.staff_ui.render import page

router = APIRouter(prefix="/app", include_in_schema=False, dependencies=[Depends(csrf_protect)])
Context = Annotated[AppContext, Depends(get_context)]


def _render(request: Request, context: AppContext, auth: StaffAuth, *, secret: str | None,
            error: str, status_code: int = 200, form: dict[str, Any] | None = None) -> Response:
    with context.session(auth.principal.organization_id) as session:
        endpoints = integration_repository.endpoints(session)
        counts = integration_repository.delivery_counts(session)
    return page(request, "webhooks.html", title="Webhooks", endpoints=endpoints, counts=counts,
                event_types=EVENT_TYPES, secret=secret, error=error, form=form or {},
                status_code=status_code)


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request, context: Context,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
) -> Response:
    return _render(request, context, auth, secret=None, error="")


@router.post("/admin/webhooks", response_class=HTMLResponse)
def create_webhook(
    request: Request,
    context: Context,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
    url: Annotated[str, Form(max_length=2100)] = "",
    description: Annotated[str, Form(max_length=300)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
) -> Response:
    secret: str | None = None
    try:
        with context.session(auth.principal.organization_id) as session:
            _, secret = webhook_service.create_endpoint(
                session,
                keys=context.org_keys(session, auth.principal.organization_id),
                actor=auth.principal.actor,
                url=url,
                event_types=list(event_types or []),
                description=description,
                allow_loopback_http=allow_loopback_http(context),
            )
    except BadInput as exc:
        form = {"url": url, "description": description, "event_types": event_types or []}
        return _render(request, context, auth, secret=None, error=exc.message,
                       status_code=400, form=form)
    return _render(request, context, auth, secret=secret, error="")


@router.post("/admin/webhooks/{endpoint_id}/active")
def set_webhook_active(
    context: Context,
    endpoint_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    with context.session(auth.principal.organization_id) as session:
        webhook_service.set_active(session, actor=auth.principal.actor,
                                   endpoint_id=endpoint_id, active=active == "true")
    return RedirectResponse("/app/admin/webhooks", status_code=303)


@router.post("/admin/webhooks/{endpoint_id}/delete")
def delete_webhook(
    context: Context,
    endpoint_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
) -> Response:
    with context.session(auth.principal.organization_id) as session:
        webhook_service.delete_endpoint(session, actor=auth.principal.actor,
                                        endpoint_id=endpoint_id, now=context.now())
    return RedirectResponse("/app/admin/webhooks", status_code=303)


@router.post("/admin/webhooks/{endpoint_id}/rotate", response_class=HTMLResponse)
def rotate_webhook_secret(
    request: Request,
    context: Context,
    endpoint_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
) -> Response:
    with context.session(auth.principal.organization_id) as session:
        _, secret = webhook_service.rotate_secret(
            session,
            keys=context.org_keys(session, auth.principal.organization_id),
            actor=auth.principal.actor,
            endpoint_id=endpoint_id,
            now=context.now(),
            grace_hours=ROTATION_GRACE_HOURS,
        )
    return _render(request, context, auth, secret=secret, error="")


def _deliveries_page(request: Request, context: AppContext, auth: StaffAuth,
                     endpoint_id: uuid.UUID, *, error: str = "", status_code: int = 200
                     ) -> Response:
    with context.session(auth.principal.organization_id) as session:
        endpoint = integration_repository.endpoint(session, endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        rows = integration_repository.endpoint_deliveries(session, endpoint_id, limit=200)
    return page(request, "webhook_deliveries.html", title="Webhook deliveries",
                endpoint=endpoint, rows=rows, error=error, status_code=status_code)


@router.get("/admin/webhooks/{endpoint_id}/deliveries", response_class=HTMLResponse)
def webhook_deliveries_page(
    request: Request, context: Context, endpoint_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
) -> Response:
    return _deliveries_page(request, context, auth, endpoint_id)


@router.post("/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
             response_class=HTMLResponse)
def redeliver_webhook(
    request: Request,
    context: Context,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    auth: StaffAuth = staff_permission(Permission.WEBHOOK_MANAGE),
) -> Response:
    try:
        with context.session(auth.principal.organization_id) as session:
            webhook_service.redeliver(session, actor=auth.principal.actor,
                                      delivery_id=delivery_id, now=context.now())
    except BadInput as exc:
        return _deliveries_page(request, context, auth, endpoint_id, error=exc.message,
                                status_code=400)
    return RedirectResponse(f"/app/admin/webhooks/{endpoint_id}/deliveries", status_code=303)
