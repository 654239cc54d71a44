"""Autopay enrollment through a processor's hosted page (Stripe Checkout, `setup` mode),
and the patient's own autopay controls (turn off, replace the card).

Flow (docs/PAYMENTS.md, "Autopay enrollment with Stripe"):

1. `start_hosted_enrollment` (portal, patient actor): the payer ticked the autopay
   authorization. We find or create the guarantor's processor Customer (ids only in its
   metadata; the id is kept on the enrollment and on saved methods), open a Checkout
   Session in `setup` mode for that Customer, and store an `autopay_enrollment` row
   (`pending`). Its id is derived from the idempotency key, so a double submit (which
   the processor answers with its first session) finds the same row. Audited as
   `plan.autopay_setup`.
2. The card is typed on the processor's page. Nothing changes here until the signed
   webhook (`checkout.session.completed` in setup mode, or `setup_intent.succeeded`)
   arrives: `prepare_setup_event` retrieves the SetupIntent and its payment method from
   the processor (outside any transaction), and `apply_setup_event` (inside the webhook's
   transaction, which also records the event id, so a replay is refused) stores the
   saved method (brand, last four digits, expiry only), attaches it to the plan and turns
   autopay on (`plan.autopay_on`). The second of the two events reports `duplicate`.
3. Installments are then charged off-session by `plan_service.charge_installment`
   (unchanged): a decline follows the plan's retry, grace and missed-payment path.

`turn_off` and `replace_with_token` (the sandbox's equivalent of the hosted page) are the
patient's controls; every change is audited.

A card replaced on a plan (and used by no other live plan) is marked `removed` and, in the
same transaction, a `payment.detach_method` job is queued: the worker detaches it at the
processor (outside any transaction; idempotent, retried while the processor is down), so
a retired card can never be charged again there either (`payment_method.detach`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs.queue import enqueue
from carecollect.payment import processor as proc
from carecollect.payment.models import AutopayEnrollment, SavedPaymentMethod
from carecollect.payment.processor import (
    MethodDetails,
    PaymentProcessor,
    ProcessorError,
    WebhookEventData,
)
from carecollect.payment_plan.models import PaymentPlan

LIVE_PLAN_STATUSES = ("active", "paused")
DETACH_JOB = "payment.detach_method"
SETUP_EVENTS = (proc.SETUP_SUCCEEDED, proc.CHECKOUT_COMPLETED, proc.CHECKOUT_EXPIRED)
_ENROLLMENT_NAMESPACE = uuid.UUID("5b0d51c6-6a3e-4c52-9a34-0a7f1b0c2e11")


def enrollment_id_for(
    processor_name: str, organization_id: uuid.UUID, idempotency_key: str
) -> uuid.UUID:
    """The enrollment id of one submitted form: stable across a double submit."""
    return uuid.uuid5(
        _ENROLLMENT_NAMESPACE, f"{processor_name}:{organization_id}:{idempotency_key}"
    )


def _plan_of(
    session: Session, guarantor_id: uuid.UUID, plan_id: uuid.UUID, *, lock: bool = False
) -> PaymentPlan:
    stmt = select(PaymentPlan).where(
        PaymentPlan.id == plan_id, PaymentPlan.guarantor_id == guarantor_id
    )
    if lock:
        stmt = stmt.with_for_update()
    plan = session.scalar(stmt)
    if plan is None:
        raise NotFound("no such plan")
    return plan


def customer_of(session: Session, processor_name: str, guarantor_id: uuid.UUID) -> str | None:
    """The guarantor's stored processor Customer id (from an earlier enrollment or a saved
    method), so that every card of one guarantor lives on one Customer."""
    found = session.scalar(
        select(AutopayEnrollment.processor_customer_id)
        .where(
            AutopayEnrollment.guarantor_id == guarantor_id,
            AutopayEnrollment.processor == processor_name,
        )
        .order_by(AutopayEnrollment.created_at.desc())
        .limit(1)
    )
    if found:
        return str(found)
    found = session.scalar(
        select(SavedPaymentMethod.processor_customer_id)
        .where(
            SavedPaymentMethod.guarantor_id == guarantor_id,
            SavedPaymentMethod.processor == processor_name,
            SavedPaymentMethod.processor_customer_id != "",
        )
        .order_by(SavedPaymentMethod.created_at.desc())
        .limit(1)
    )
    return str(found) if found else None


def pending_enrollment(session: Session, plan_id: uuid.UUID) -> AutopayEnrollment | None:
    return session.scalar(
        select(AutopayEnrollment)
        .where(AutopayEnrollment.plan_id == plan_id, AutopayEnrollment.status == "pending")
        .order_by(AutopayEnrollment.created_at.desc())
        .limit(1)
    )


def start_hosted_enrollment(
    session: Session,
    *,
    keys: OrganizationKeys,
    actor: Actor,
    processor: PaymentProcessor,
    guarantor_id: uuid.UUID,
    plan_id: uuid.UUID,
    consent: bool,
    idempotency_key: str,
    success_url: str,
    cancel_url: str,
    now: datetime,
) -> str:
    """Open the processor's hosted setup page for one of the guarantor's live plans and
    return its URL. Raises BadInput (no consent, plan not live), ProcessorError
    `not_offered` (no hosted setup page), Forbidden (no active BAA) or the
    processor's errors; nothing is stored then."""
    from carecollect.payment.service import require_processor_baa

    if not consent:
        raise BadInput("Tick the box to authorize automatic payments.")
    plan = _plan_of(session, guarantor_id, plan_id, lock=True)
    if plan.status not in LIVE_PLAN_STATUSES:
        raise BadInput("Autopay is not available for this plan.")
    create = getattr(processor, "create_setup_checkout", None)
    if create is None:
        raise ProcessorError("not_offered")
    require_processor_baa(session, processor, now)  # HIPAA-BAA: Forbidden without one
    org_id = keys.organization_id
    ids = {"organization_id": str(org_id), "guarantor_id": str(guarantor_id)}
    customer = customer_of(session, processor.name, guarantor_id)
    if customer is None:
        customer = processor.create_customer(
            idempotency_key=f"customer:{org_id}:{guarantor_id}", metadata=ids
        )
    enrollment_id = enrollment_id_for(processor.name, org_id, idempotency_key)
    hosted = create(
        customer_id=customer,
        idempotency_key=f"autopay:{idempotency_key}",
        metadata={
            **ids,
            "plan_id": str(plan.id),
            "enrollment_id": str(enrollment_id),
            "source": "portal",
        },
        success_url=success_url,
        cancel_url=cancel_url,
    )
    url = getattr(hosted, "url", None)
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ProcessorError("no_checkout_url")
    if session.get(AutopayEnrollment, enrollment_id) is not None:
        return url  # a double submit: the processor answered with its first session
    kind = "replace" if plan.autopay and plan.payment_method_id else "enroll"
    session.add(
        AutopayEnrollment(
            id=enrollment_id,
            organization_id=org_id,
            guarantor_id=guarantor_id,
            plan_id=plan.id,
            processor=processor.name,
            processor_customer_id=str(hosted.customer_id)[:120],
            processor_session_id=str(hosted.processor_session_id)[:120],
            processor_setup_id=(
                str(hosted.processor_setup_id)[:120] if hosted.processor_setup_id else None
            ),
            kind=kind,
            status="pending",
            consented_at=now,
            created_at=now,
        )
    )
    session.flush()
    record(
        session,
        actor=actor,
        action="plan.autopay_setup",
        subject=Subject("payment_plan", plan.id, organization_id=org_id, patient_id=guarantor_id),
        details={"enrollment_id": str(enrollment_id), "kind": kind, "processor": processor.name},
    )
    return url


# -- the webhook side ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedSetup:
    """What the processor says about a completed setup, fetched before the transaction."""

    setup_id: str
    customer_id: str
    method: MethodDetails


def _object(event: WebhookEventData) -> dict[str, Any]:
    data = event.raw.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def prepare_setup_event(
    processor: PaymentProcessor, event: WebhookEventData
) -> PreparedSetup | None:
    """Retrieve the SetupIntent named by a verified setup webhook and its payment method's
    card details. None when the event is not a completed card setup (a payment-mode
    Checkout Session, a processor without SetupIntent retrieval, a setup not succeeded)."""
    obj = _object(event)
    if event.type == proc.CHECKOUT_COMPLETED:
        if obj.get("mode") != "setup":
            return None
        setup = obj.get("setup_intent")
        setup_id = setup.get("id") if isinstance(setup, dict) else setup
    elif event.type == proc.SETUP_SUCCEEDED:
        setup_id = event.object_id
    else:
        return None
    retrieve = getattr(processor, "setup_result", None)
    if not isinstance(setup_id, str) or not setup_id or retrieve is None:
        return None
    result = retrieve(setup_id)
    if result.status != "succeeded" or not result.payment_method_id:
        return None
    details = processor.method_details(result.payment_method_id)
    return PreparedSetup(setup_id=setup_id, customer_id=result.customer_id, method=details)


def _uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def _store_method(
    session: Session,
    *,
    enrollment: AutopayEnrollment,
    actor: Actor,
    details: MethodDetails,
    customer_id: str,
    now: datetime,
) -> SavedPaymentMethod | None:
    existing = session.scalar(
        select(SavedPaymentMethod).where(
            SavedPaymentMethod.processor == enrollment.processor,
            SavedPaymentMethod.processor_method_id == details.processor_method_id,
        )
    )
    if existing is not None:
        if existing.guarantor_id != enrollment.guarantor_id:
            return None  # someone else's method: never attach it
        existing.status = "active"
        existing.autopay_consented_at = existing.autopay_consented_at or enrollment.consented_at
        return existing
    method = SavedPaymentMethod(
        id=uuid7(),
        organization_id=enrollment.organization_id,
        guarantor_id=enrollment.guarantor_id,
        processor=enrollment.processor,
        processor_customer_id=customer_id[:120],
        processor_method_id=details.processor_method_id[:120],
        brand=details.brand[:16],
        last4=details.last4[-4:],
        exp_month=details.exp_month,
        exp_year=details.exp_year,
        status="active",
        autopay_consented_at=enrollment.consented_at,
        created_at=now,
    )
    session.add(method)
    session.flush()
    record(
        session,
        actor=actor,
        action="payment_method.create",
        subject=Subject(
            "saved_payment_method",
            method.id,
            organization_id=enrollment.organization_id,
            patient_id=enrollment.guarantor_id,
        ),
        details={
            "processor": enrollment.processor,
            "autopay": True,
            "enrollment_id": str(enrollment.id),
        },
    )
    return method


def _attach(
    session: Session,
    *,
    plan: PaymentPlan,
    method: SavedPaymentMethod,
    actor: Actor,
    kind: str,
    source: str,
    enrollment_id: uuid.UUID | None,
) -> None:
    """Put a method on a plan and turn autopay on; retire the card it replaces (unless
    another live plan still uses it)."""
    old = plan.payment_method_id
    plan.payment_method_id = method.id
    plan.autopay = True
    if old is not None and old != method.id:
        still_used = session.scalar(
            select(PaymentPlan.id)
            .where(
                PaymentPlan.payment_method_id == old,
                PaymentPlan.id != plan.id,
                PaymentPlan.status.in_(LIVE_PLAN_STATUSES),
            )
            .limit(1)
        )
        previous = session.get(SavedPaymentMethod, old)
        if previous is not None and still_used is None:
            previous.status = "removed"
            enqueue(session, DETACH_JOB, {"payment_method_id": str(previous.id)},
                    queue="payments", organization_id=plan.organization_id,
                    max_attempts=12, unique_key=f"detach:{previous.id}")
    record(
        session,
        actor=actor,
        action="plan.autopay_on",
        subject=Subject(
            "payment_plan",
            plan.id,
            organization_id=plan.organization_id,
            patient_id=plan.guarantor_id,
        ),
        details={
            "kind": kind,
            "source": source,
            "payment_method_id": str(method.id),
            "replaced_method_id": str(old) if old and old != method.id else None,
            "enrollment_id": str(enrollment_id) if enrollment_id else None,
        },
    )


def apply_setup_event(
    session: Session,
    *,
    processor_name: str,
    event: WebhookEventData,
    prepared: PreparedSetup | None,
    now: datetime,
) -> str:
    """Complete the enrollment a verified setup webhook reports (in the webhook's
    transaction). Returns `posted`, `duplicate` (already completed, e.g. the second of
    the two events) or `ignored` (unknown, cancelled or mismatched)."""
    if event.type == proc.CHECKOUT_EXPIRED:
        return _expire(session, processor_name=processor_name, event=event)
    if prepared is None:
        return "ignored"
    enrollment_id = _uuid(event.metadata.get("enrollment_id"))
    enrollment = session.get(AutopayEnrollment, enrollment_id) if enrollment_id else None
    if enrollment is None or enrollment.processor != processor_name:
        return "ignored"
    if str(enrollment.guarantor_id) != event.metadata.get("guarantor_id"):
        return "ignored"
    if event.type == proc.CHECKOUT_COMPLETED and event.object_id != enrollment.processor_session_id:
        return "ignored"
    if enrollment.processor_setup_id and enrollment.processor_setup_id != prepared.setup_id:
        return "ignored"
    if prepared.customer_id != enrollment.processor_customer_id:
        return "ignored"  # a method on another Customer is never attached
    if enrollment.status == "completed":
        return "duplicate"
    if enrollment.status != "pending":
        return "ignored"  # cancelled: the patient turned autopay off meanwhile
    actor = Actor.webhook(processor_name)
    method = _store_method(
        session,
        enrollment=enrollment,
        actor=actor,
        details=prepared.method,
        customer_id=prepared.customer_id,
        now=now,
    )
    if method is None:
        return "ignored"
    enrollment.status = "completed"
    enrollment.completed_at = now
    enrollment.processor_setup_id = prepared.setup_id[:120]
    enrollment.payment_method_id = method.id
    plan = session.scalar(
        select(PaymentPlan).where(PaymentPlan.id == enrollment.plan_id).with_for_update()
    )
    if plan is not None and plan.status in LIVE_PLAN_STATUSES:
        _attach(
            session,
            plan=plan,
            method=method,
            actor=actor,
            kind=enrollment.kind,
            source="webhook",
            enrollment_id=enrollment.id,
        )
    return "posted"


def _expire(session: Session, *, processor_name: str, event: WebhookEventData) -> str:
    """`checkout.session.expired`: the patient left the setup page unfinished (Stripe
    expires a session after 24 hours). The enrollment stops being `pending`."""
    if _object(event).get("mode") != "setup":
        return "ignored"
    enrollment_id = _uuid(event.metadata.get("enrollment_id"))
    enrollment = session.get(AutopayEnrollment, enrollment_id) if enrollment_id else None
    if (
        enrollment is None
        or enrollment.processor != processor_name
        or enrollment.processor_session_id != event.object_id
        or enrollment.status != "pending"
    ):
        return "ignored"
    enrollment.status = "expired"
    return "posted"


# -- the patient's controls -----------------------------------------------------------------


def turn_off(
    session: Session, *, actor: Actor, guarantor_id: uuid.UUID, plan_id: uuid.UUID
) -> bool:
    """Stop autopay on one of the guarantor's plans and cancel any enrollment still
    waiting for its webhook (a late webhook then changes nothing). Installments stay owed
    and can be paid in the portal. True when something changed (audited)."""
    plan = _plan_of(session, guarantor_id, plan_id, lock=True)
    pending = list(
        session.scalars(
            select(AutopayEnrollment).where(
                AutopayEnrollment.plan_id == plan.id, AutopayEnrollment.status == "pending"
            )
        )
    )
    for enrollment in pending:
        enrollment.status = "canceled"
    if not plan.autopay and not pending:
        return False
    was_on = plan.autopay
    plan.autopay = False
    record(
        session,
        actor=actor,
        action="plan.autopay_off",
        subject=Subject(
            "payment_plan", plan.id, organization_id=plan.organization_id, patient_id=guarantor_id
        ),
        details={"was_on": was_on, "cancelled_enrollments": len(pending)},
    )
    return True


def replace_with_token(
    session: Session,
    *,
    keys: OrganizationKeys,
    actor: Actor,
    processor: PaymentProcessor,
    guarantor_id: uuid.UUID,
    plan_id: uuid.UUID,
    payment_method: str,
    consent: bool,
    idempotency_key: str,
    now: datetime,
) -> SavedPaymentMethod | None:
    """Turn autopay on, or replace its card, with a method token saved at once (the
    sandbox's stand-in for the hosted page). None when the processor declined the card."""
    from carecollect.payment.service import payment_service

    if not consent:
        raise BadInput("Tick the box to authorize automatic payments.")
    plan = _plan_of(session, guarantor_id, plan_id, lock=True)
    if plan.status not in LIVE_PLAN_STATUSES:
        raise BadInput("Autopay is not available for this plan.")
    kind = "replace" if plan.autopay and plan.payment_method_id else "enroll"
    _setup, method = payment_service.setup_method(
        session,
        keys=keys,
        actor=actor,
        processor=processor,
        guarantor_id=guarantor_id,
        idempotency_key=idempotency_key,
        payment_method=payment_method,
        autopay_consent=True,
        now=now,
    )
    if method is None:
        return None
    if method.status != "active" or method.autopay_consented_at is None:
        method.status = "active"
        method.autopay_consented_at = method.autopay_consented_at or now
    _attach(
        session,
        plan=plan,
        method=method,
        actor=actor,
        kind=kind,
        source="portal",
        enrollment_id=None,
    )
    return method


@dataclass(frozen=True)
class AutopayView:
    plan_id: uuid.UUID
    plan_status: str
    autopay: bool
    method: str | None  # "Visa •••• 4242"
    expires: str | None  # "12/2031"
    pending: bool
    can_change: bool


def autopay_view(session: Session, *, guarantor_id: uuid.UUID, plan_id: uuid.UUID) -> AutopayView:
    """The autopay state of one of the guarantor's plans (audited as a portal view)."""
    plan = _plan_of(session, guarantor_id, plan_id)
    method = (
        session.get(SavedPaymentMethod, plan.payment_method_id) if plan.payment_method_id else None
    )
    if method is not None and method.guarantor_id != guarantor_id:
        method = None
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="portal.view",
        subject=Subject(
            "payment_plan", plan.id, organization_id=plan.organization_id, patient_id=guarantor_id
        ),
        details={"page": "autopay"},
    )
    return AutopayView(
        plan_id=plan.id,
        plan_status=plan.status,
        autopay=plan.autopay,
        method=f"{method.brand.title()} •••• {method.last4}" if method else None,
        expires=(
            f"{method.exp_month:02d}/{method.exp_year}"
            if method and method.exp_month and method.exp_year
            else None
        ),
        pending=pending_enrollment(session, plan.id) is not None,
        can_change=plan.status in LIVE_PLAN_STATUSES,
    )
