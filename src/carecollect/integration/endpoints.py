"""`/api/v1/webhook-endpoints`: register, list and delete outbound webhook endpoints.

Thin routes (parse, authorize with `Permission.WEBHOOK_MANAGE`, call the service, return);
the POST honours `Idempotency-Key` like every other POST (its stored response, which holds
the one-time secret, is sealed).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from carecollect.api.context import AppContext, get_context
from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_RESPONSES
from carecollect.api.schemas import Page
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.integration.models import WebhookEndpoint
from carecollect.integration.repository import integration_repository
from carecollect.integration.schemas import (
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointOut,
)
from carecollect.integration.service import webhook_service

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["webhooks"])
Context = Annotated[AppContext, Depends(get_context)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat a POST safely: the first response is replayed.",
    ),
]


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
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page")
    ] = None,
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
