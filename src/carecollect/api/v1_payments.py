"""`/api/v1/payments`: payments with their allocations and reversals; take a payment
through the organization's processor (`payment_service.start_payment`, the service the
portal and staff screens post through) and refund one (`payment_service.refund`).

An amount over the balance, zero, or an unknown sandbox test card is a 422 problem and
nothing is stored or charged. A decline is a 402 problem; its `payment.attempt` audit
event is kept (the decline is a fact), nothing is posted. A processor that cannot be
reached is a 503 and nothing is posted. Reads record one `patient.read` per person.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.api import views
from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_RESPONSES, Problem
from carecollect.api.schemas import Page
from carecollect.api.schemas_payments import (
    AllocationOut,
    PaymentCreate,
    PaymentOut,
    RefundCreate,
    ReversalOut,
)
from carecollect.api.v1_common import (
    Context,
    Cursor,
    IdempotencyKey,
    Limit,
    people_page,
    refused_as_422,
)
from carecollect.errors import AppError, NotFound
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.kit.ids import uuid7
from carecollect.payment.models import Payment, PaymentReversal
from carecollect.payment.processor import PaymentProcessor
from carecollect.payment.repository import payment_repository
from carecollect.payment.service import payment_service

router = APIRouter(prefix="/api/v1", tags=["payments"], responses=PROBLEM_RESPONSES)
PaymentStatus = Literal[
    "succeeded", "partially_refunded", "refunded", "charged_back", "pending", "failed"
]
PROCESSOR_RESPONSES: dict[int | str, dict[str, Any]] = {
    402: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {}},
        "description": "The processor declined the payment or the refund",
    },
    503: {
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {}},
        "description": "The payment processor could not be reached; nothing was posted",
    },
}


class ProcessorNotConfiguredError(AppError):
    status_code = 503


def _processor(request: Request, context: Any) -> PaymentProcessor:
    processors: dict[str, PaymentProcessor] = getattr(request.app.state, "payment_processors", {})
    found = processors.get(context.settings.payment_processor)
    if found is None:
        raise ProcessorNotConfiguredError("no payment processor is configured")
    return found


def payment_out(
    row: Payment,
    *,
    allocations: list[Any] | None = None,
    reversals: list[PaymentReversal] | None = None,
) -> PaymentOut:
    return PaymentOut(
        id=row.id,
        account_id=row.account_id,
        guarantor_id=row.guarantor_id,
        processor=row.processor,
        amount_cents=row.amount_cents,
        reversed_cents=row.reversed_cents,
        status=row.status,
        source=row.source,
        plan_id=row.plan_id,
        receipt_number=row.receipt_number,
        received_at=row.received_at,
        allocations=None
        if allocations is None
        else [
            AllocationOut(
                id=a.id,
                charge_entry_id=a.charge_entry_id,
                reversal_id=a.reversal_id,
                amount_cents=a.amount_cents,
            )
            for a in allocations
        ],
        reversals=None
        if reversals is None
        else [
            ReversalOut(
                id=r.id,
                kind=r.kind,
                amount_cents=r.amount_cents,
                reason=r.reason,
                created_at=r.created_at,
            )
            for r in reversals
        ],
    )


def _detail(session: Session, row: Payment) -> PaymentOut:
    reversals = list(
        session.scalars(
            select(PaymentReversal)
            .where(PaymentReversal.payment_id == row.id)
            .order_by(PaymentReversal.created_at, PaymentReversal.id)
        )
    )
    return payment_out(
        row, allocations=payment_repository.allocations(session, row.id), reversals=reversals
    )


@router.get("/payments", response_model=Page[PaymentOut])
def list_payments(
    context: Context,
    principal: Principal = api_permission(Permission.PAYMENT_READ),
    account_id: uuid.UUID | None = None,
    guarantor_id: uuid.UUID | None = None,
    status: PaymentStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    return people_page(
        context, principal, Payment, to_out=payment_out, field="payments", limit=limit,
        cursor=cursor, account_id=account_id, guarantor_id=guarantor_id, status=status,
    )


@router.get("/payments/{payment_id}", response_model=PaymentOut)
def get_payment(
    context: Context,
    payment_id: uuid.UUID,
    principal: Principal = api_permission(Permission.PAYMENT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        row = payment_repository.get(session, payment_id)
        if row is None:
            raise NotFound("no such payment")
        out = _detail(session, row)
        views.record_read(
            session,
            principal,
            row.guarantor_id,
            fields=["payment"],
            purpose="api",
            subject_type="payment",
            subject_id=row.id,
        )
        return out


def _as_problem(response: JSONResponse) -> JSONResponse:
    """A refusal the handler returned (so that its audit event commits) is still a
    problem+json response."""
    if response.status_code >= 400:
        response.headers["content-type"] = PROBLEM_MEDIA_TYPE
    return response


@router.post("/payments", status_code=201, response_model=PaymentOut, responses=PROCESSOR_RESPONSES)
def create_payment(
    request: Request,
    context: Context,
    body: PaymentCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PAYMENT_WRITE),
) -> JSONResponse:
    """Charge `payment_method` for `amount_cents` and post the payment to the account,
    allocated oldest charge first. With an Idempotency-Key, a retry is one charge."""
    processor = _processor(request, context)
    charge_key = (
        f"api:{principal.kind}:{principal.id}:{idempotency_key}"
        if idempotency_key is not None
        else f"api:{uuid7()}"
    )

    def handler(session: Session) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        with refused_as_422():
            result, payment = payment_service.start_payment(
                session,
                keys=keys,
                actor=principal.actor,
                processor=processor,
                account_id=body.account_id,
                amount=body.amount_cents,
                idempotency_key=charge_key[:120],
                payment_method=body.payment_method,
                source="api",
                now=context.now(),
            )
        if payment is None:
            code = result.failure_code or result.status
            return 402, Problem(
                title="Payment required", status=402, detail=f"the payment was not taken: {code}"
            ).model_dump(exclude_none=True)
        return 201, _detail(session, payment)

    return _as_problem(
        run_post(
            context,
            principal,
            key=idempotency_key,
            path=request.url.path,
            payload=body,
            handler=handler,
        )
    )


@router.post(
    "/payments/{payment_id}/refund",
    status_code=201,
    response_model=PaymentOut,
    responses=PROCESSOR_RESPONSES,
)
def refund_payment(
    request: Request,
    context: Context,
    payment_id: uuid.UUID,
    body: RefundCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PAYMENT_WRITE),
) -> JSONResponse:
    """Refund all or part of a payment through its processor; the reversal is posted to
    the ledger and the allocations are undone newest charge first. More than what is left
    of the payment is a 422 and nothing changes."""
    processor = _processor(request, context)

    def handler(session: Session) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        with refused_as_422():
            result = payment_service.refund(
                session,
                keys=keys,
                actor=principal.actor,
                processor=processor,
                payment_id=payment_id,
                amount=body.amount_cents,
                reason=body.reason,
                now=context.now(),
            )
        row = payment_repository.get(session, result.reversal.payment_id)
        if row is None:
            raise NotFound("no such payment")
        return 201, _detail(session, row)

    return _as_problem(
        run_post(
            context,
            principal,
            key=idempotency_key,
            path=request.url.path,
            payload=body,
            handler=handler,
        )
    )


__all__ = ["router"]
