"""`/api/v1/plans`: payment plans with their installments; create one within the
organization's plan policy (`plan_service.create_plan`, the validation the staff app and
the portal use) and cancel one.

Terms the policy refuses (too many installments, too small a down payment, a start in
the past, an account that already has a plan) are a 422 problem and nothing is stored.
Every list and read records one `patient.read` per person whose plans were returned.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from carecollect.api import views
from carecollect.api.idempotency import run_post
from carecollect.api.problems import PROBLEM_RESPONSES
from carecollect.api.schemas import Page
from carecollect.api.schemas_payments import InstallmentOut, PlanCancel, PlanCreate, PlanOut
from carecollect.api.v1_common import (
    Context,
    Cursor,
    IdempotencyKey,
    Limit,
    UnprocessableError,
    people_page,
    refused_as_422,
)
from carecollect.errors import NotFound
from carecollect.identity.auth import api_permission
from carecollect.identity.permissions import Permission
from carecollect.identity.service import Principal
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.payment_plan.repository import plan_repository
from carecollect.payment_plan.service import plan_service

router = APIRouter(prefix="/api/v1", tags=["plans"], responses=PROBLEM_RESPONSES)
MAX_START_AHEAD = timedelta(days=366)
PlanStatus = Literal["active", "paused", "completed", "defaulted", "cancelled", "replaced"]


def plan_out(row: PaymentPlan, installments: list[PlanInstallment] | None = None) -> PlanOut:
    return PlanOut(
        id=row.id,
        account_id=row.account_id,
        guarantor_id=row.guarantor_id,
        status=row.status,
        total_cents=row.total_cents,
        down_payment_cents=row.down_payment_cents,
        fee_cents=row.fee_cents,
        installment_count=row.installment_count,
        start_on=row.start_on,
        timezone=row.timezone,
        autopay=row.autopay,
        created_by=row.created_by,
        misses=row.misses,
        created_at=row.created_at,
        ended_at=row.ended_at,
        installments=None
        if installments is None
        else [
            InstallmentOut(
                id=i.id,
                sequence=i.sequence,
                due_on=i.due_on,
                amount_cents=i.amount_cents,
                paid_cents=i.paid_cents,
                status=i.status,
                attempts=i.attempts,
                paid_at=i.paid_at,
                missed_at=i.missed_at,
            )
            for i in installments
        ],
    )


def _detail(session: Session, plan: PaymentPlan) -> PlanOut:
    return plan_out(plan, plan_service.installments(session, plan.id))


@router.get("/plans", response_model=Page[PlanOut])
def list_plans(
    context: Context,
    principal: Principal = api_permission(Permission.PAYMENT_READ),
    account_id: uuid.UUID | None = None,
    guarantor_id: uuid.UUID | None = None,
    status: PlanStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    return people_page(
        context, principal, PaymentPlan, to_out=plan_out, field="payment_plans", limit=limit,
        cursor=cursor, account_id=account_id, guarantor_id=guarantor_id, status=status,
    )


@router.get("/plans/{plan_id}", response_model=PlanOut)
def get_plan(
    context: Context,
    plan_id: uuid.UUID,
    principal: Principal = api_permission(Permission.PAYMENT_READ),
) -> Any:
    with context.session(principal.organization_id) as session:
        plan = plan_repository.plan(session, plan_id)
        if plan is None:
            raise NotFound("no such plan")
        out = _detail(session, plan)
        views.record_read(
            session,
            principal,
            plan.guarantor_id,
            fields=["payment_plan"],
            purpose="api",
            subject_type="payment_plan",
            subject_id=plan.id,
        )
        return out


@router.post("/plans", status_code=201, response_model=PlanOut)
def create_plan(
    request: Request,
    context: Context,
    body: PlanCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PAYMENT_WRITE),
) -> JSONResponse:
    """Create a staff plan for the account's balance. Terms outside the organization's
    plan policy are refused with a 422 problem naming the rule, and nothing is stored."""

    if body.start_on is not None and body.start_on > context.now().date() + MAX_START_AHEAD:
        raise UnprocessableError("a plan starts within a year")

    def handler(session: Session) -> tuple[int, Any]:
        keys = context.org_keys(session, principal.organization_id)
        with refused_as_422():
            plan = plan_service.create_plan(
                session,
                keys=keys,
                actor=principal.actor,
                account_id=body.account_id,
                created_by="staff",
                now=context.now(),
                installments=body.installments,
                down_payment_cents=body.down_payment_cents,
                start_on=body.start_on,
                waive_down_payment=body.waive_down_payment,
            )
        return 201, _detail(session, plan)

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


@router.post("/plans/{plan_id}/cancel", response_model=PlanOut)
def cancel_plan(
    request: Request,
    context: Context,
    plan_id: uuid.UUID,
    body: PlanCancel,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = api_permission(Permission.PAYMENT_WRITE),
) -> JSONResponse:
    """Cancel an active or paused plan (409 for a plan that already ended)."""

    def handler(session: Session) -> tuple[int, Any]:
        plan = plan_service.cancel(
            session, actor=principal.actor, plan_id=plan_id, now=context.now(), reason=body.reason
        )
        return 200, _detail(session, plan)

    return run_post(
        context,
        principal,
        key=idempotency_key,
        path=request.url.path,
        payload=body,
        handler=handler,
    )


__all__ = ["router"]
