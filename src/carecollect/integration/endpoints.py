"""`/api/v1/webhook-endpoints`: register, list and delete outbound webhook endpoints,
rotate an endpoint's signing secret, list its deliveries and redeliver one.

Thin routes (parse, authorize with `Permission.WEBHOOK_MANAGE`, call the service, return);
the POST honours `Idempotency-Key` like every other POST (its stored response, which holds
the one-time secret, is sealed).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from carecollect.api.context import AppContext
from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_RESPONSES
from carecollect.api.schemas import Page
from carecollect.api.v1_common import Context, Cursor, IdempotencyKey, Limit
from carecollect.errors import NotFound
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.integration.models import WebhookDelivery, WebhookEndpoint
from carecollect.integration.repository import integration_repository
from carecollect.integration.schemas import (
    SecretRotated,
    SecretRotation,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
)
from carecollect.integration.service import webhook_service

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["webhooks"])


def endpoint_out(row: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=list(row.event_types),
        active=row.active,
        created_at=row.created_at,
    )


def allow_loopback_http(context: AppContext) -> bool:
    """Plain-http receivers only on loopback and only outside production."""
    return context.settings.environment != "production"


@router.post("/webhook-endpoints", status_code=201, response_model=WebhookEndpointCreated)
def create_webhook_endpoint(
    request: Request,
    context: Context,
    body: WebhookEndpointCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.WEBHOOK_MANAGE),
) -> JSONResponse:
    def handler(session: Any) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        row, secret = webhook_service.create_endpoint(
            session,
            keys=keys,
            actor=principal.actor,
            url=body.url,
            event_types=list(body.event_types),
            description=body.description,
            allow_loopback_http=allow_loopback_http(context),
        )
        return 201, WebhookEndpointCreated(**endpoint_out(row).model_dump(), secret=secret)

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.get("/webhook-endpoints", response_model=Page[WebhookEndpointOut])
def list_webhook_endpoints(
    context: Context,
    principal: Principal = api_permission(Permission.WEBHOOK_MANAGE),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    with context.session(principal.organization_id) as session:
        rows = integration_repository.endpoints(session, after=cursor, limit=limit)
        items = [endpoint_out(r) for r in rows]
    return {
        "items": items,
        "next_cursor": str(rows[-1].id) if len(rows) == limit else None,
    }


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_webhook_endpoint(
    context: Context,
    endpoint_id: uuid.UUID,
    principal: Principal = api_permission(Permission.WEBHOOK_MANAGE),
) -> Response:
    with context.session(principal.organization_id) as session:
        webhook_service.delete_endpoint(
            session, actor=principal.actor, endpoint_id=endpoint_id, now=context.now()
        )
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=SecretRotated)
def rotate_webhook_secret(
    request: Request,
    context: Context,
    endpoint_id: uuid.UUID,
    body: SecretRotation,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.WEBHOOK_MANAGE),
) -> JSONResponse:
    """A new signing secret (shown once); the old one also signs for `grace_hours`."""

    def handler(session: Any) -> tuple[int, Any]:
        row, secret = webhook_service.rotate_secret(
            session,
            keys=context.org_keys(session, principal.organization_id),
            actor=principal.actor,
            endpoint_id=endpoint_id,
            now=context.now(),
            grace_hours=body.grace_hours,
        )
        return 200, SecretRotated(
            id=row.id, secret=secret, previous_secret_expires_at=row.previous_secret_expires_at
        )

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


def delivery_out(row: WebhookDelivery, event_type: str) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=event_type,
        endpoint_id=row.endpoint_id,
        state=row.state,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        failed_at=row.failed_at,
        created_at=row.created_at,
    )


DeliveryState = Literal["pending", "delivered", "failed", "cancelled"]


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries", response_model=Page[WebhookDeliveryOut]
)
def list_webhook_deliveries(
    context: Context,
    endpoint_id: uuid.UUID,
    principal: Principal = api_permission(Permission.WEBHOOK_MANAGE),
    state: Annotated[DeliveryState | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    """The endpoint's deliveries, newest first, optionally of one state."""
    with context.session(principal.organization_id) as session:
        if integration_repository.endpoint(session, endpoint_id) is None:
            raise NotFound("no such webhook endpoint")
        rows = integration_repository.endpoint_deliveries(
            session, endpoint_id, state=state, before=cursor, limit=limit
        )
        items = [delivery_out(row, kind) for row, kind in rows]
    return {
        "items": items,
        "next_cursor": str(rows[-1][0].id) if len(rows) == limit else None,
    }


@router.post("/webhook-deliveries/{delivery_id}/redeliver", response_model=WebhookDeliveryOut)
def redeliver_webhook(
    request: Request,
    context: Context,
    delivery_id: uuid.UUID,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.WEBHOOK_MANAGE),
) -> JSONResponse:
    """Send a delivered, failed or cancelled delivery again (same event id and body)."""

    def handler(session: Any) -> tuple[int, Any]:
        row = webhook_service.redeliver(
            session, actor=principal.actor, delivery_id=delivery_id, now=context.now()
        )
        event = integration_repository.event(session, row.event_id)
        return 200, delivery_out(row, event.type if event is not None else "")

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=None,
        handler=handler,
    )
