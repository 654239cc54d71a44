"""Autopay in the portal: enroll through the processor's hosted page (Stripe Checkout in
`setup` mode), see the autopay state, turn it off, replace the card.

Routes (`autopay_router`, included by `self_service_endpoints.router` under `/pay`):

```
/pay/plans/<id>/autopay        GET: state (on / off / waiting for the processor), card brand
                               and last four digits, the two forms below
/pay/plans/<id>/autopay/off    POST (CSRF): turn autopay off, cancel a pending enrollment
/pay/plans/<id>/autopay/card   POST (CSRF, attempt, consent box): a new card. Stripe: a page
                               linking to the hosted setup page; sandbox: a test-card token
/pay/autopay/return            the processor's return page (no session: Strict cookie)
```

Plan creation with the autopay box ticked and Stripe configured (`POST
/pay/accounts/<id>/plan`, `endpoints.plan_create`) calls `hosted_plan_autopay`: the plan
and the pending enrollment are stored in one transaction with the Stripe call, so a
refused or failed setup stores neither. As with hosted payments, the portal answers with
a page that links to Stripe (a redirect after a POST would be checked against CSP
`form-action 'self'`). Domain rules live in `payment/autopay.py`.
"""

from __future__ import annotations

import secrets
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carecollect.api.context import get_context
from carecollect.audit import Actor
from carecollect.errors import BadInput, Forbidden
from carecollect.payment import autopay
from carecollect.payment.processor import (
    PaymentDeclined,
    PaymentProcessor,
    ProcessorError,
    ProcessorUnavailable,
)
from carecollect.portal import service as portal_service
from carecollect.portal.auth import PortalAuth, PortalCsrfRejected, PortalFormSession, PortalSession
from carecollect.portal.auth import portal_settings as _portal_settings
from carecollect.portal.i18n import register_messages
from carecollect.portal.render import page
from carecollect.portal.service import PaymentRefused

MESSAGES: dict[str, dict[str, str]] = {
    "title.autopay": {"en": "Autopay", "es": "Pago automático"},
    "title.autopay_returned": {"en": "Thank you", "es": "Gracias"},
    "autopay.manage": {"en": "Manage autopay", "es": "Administrar el pago automático"},
    "autopay.on": {
        "en": "Autopay is on with {card}.",
        "es": "El pago automático está activado con {card}.",
    },
    "autopay.on_nocard": {"en": "Autopay is on.", "es": "El pago automático está activado."},
    "autopay.expires": {"en": "Expires {date}.", "es": "Vence {date}."},
    "autopay.off": {
        "en": "Autopay is off. You can pay each installment on your bill.",
        "es": "El pago automático está desactivado. Puede pagar cada cuota en su factura.",
    },
    "autopay.pending": {
        "en": "We are waiting for the card processor to confirm your card. Autopay starts "
        "once it does; nothing has been charged.",
        "es": "Estamos esperando que el procesador de tarjetas confirme su tarjeta. El pago "
        "automático empieza cuando lo confirme; no se ha cobrado nada.",
    },
    "autopay.returned": {
        "en": "If you saved your card, autopay will show as on in a few minutes. Nothing "
        "has been charged yet.",
        "es": "Si guardó su tarjeta, el pago automático aparecerá activado en unos minutos. "
        "Todavía no se ha cobrado nada.",
    },
    "autopay.not_live": {
        "en": "Autopay can no longer be changed for this plan.",
        "es": "Ya no se puede cambiar el pago automático de este plan.",
    },
    "autopay.turn_off": {"en": "Turn autopay off", "es": "Desactivar el pago automático"},
    "autopay.turned_off": {
        "en": "Autopay is now off.",
        "es": "El pago automático está desactivado ahora.",
    },
    "autopay.turned_on": {
        "en": "Autopay is now on.",
        "es": "El pago automático está activado ahora.",
    },
    "autopay.new_card": {
        "en": "Use a new card for autopay",
        "es": "Usar una tarjeta nueva para el pago automático",
    },
    "autopay.start": {"en": "Turn autopay on", "es": "Activar el pago automático"},
    "autopay.replace": {"en": "Replace the card", "es": "Cambiar la tarjeta"},
    "autopay.consent": {
        "en": "Pay each remaining installment automatically with this card (autopay). I "
        "authorize these charges on their due dates and can turn autopay off here at any "
        "time or by calling the billing office.",
        "es": "Pagar cada cuota pendiente automáticamente con esta tarjeta (pago "
        "automático). Autorizo estos cargos en sus fechas y puedo desactivarlo aquí en "
        "cualquier momento o llamando a la oficina de facturación.",
    },
    "autopay.consent_needed": {
        "en": "Tick the box to authorize automatic payments.",
        "es": "Marque la casilla para autorizar los pagos automáticos.",
    },
    "autopay.hosted_note": {
        "en": "You will type your card on our payment processor's secure page. We keep only "
        "the card's brand, last four digits and expiry.",
        "es": "Escribirá su tarjeta en la página segura de nuestro procesador de pagos. Solo "
        "guardamos la marca, los últimos cuatro dígitos y el vencimiento.",
    },
    "autopay.setup_ready": {
        "en": "Your plan is saved. To finish autopay, save your card on the secure page. "
        "Nothing has been charged.",
        "es": "Su plan está guardado. Para terminar el pago automático, guarde su tarjeta en "
        "la página segura. No se ha cobrado nada.",
    },
    "autopay.card_ready": {
        "en": "Your secure card page is ready. Nothing has been charged.",
        "es": "Su página segura para la tarjeta está lista. No se ha cobrado nada.",
    },
    "autopay.continue": {
        "en": "Continue to the secure card page",
        "es": "Continuar a la página segura de la tarjeta",
    },
    "autopay.back_plan": {"en": "Back to your plan", "es": "Volver a su plan"},
}

ERROR_KEYS: dict[str, str] = {
    "Tick the box to authorize automatic payments.": "autopay.consent_needed",
    "Autopay is not available for this plan.": "autopay.not_live",
}

register_messages(MESSAGES)

autopay_router = APIRouter(include_in_schema=False)
DONE = {"on": "autopay.turned_on", "off": "autopay.turned_off"}


def _processor(request: Request) -> PaymentProcessor | None:
    from carecollect.portal.endpoints import _processor as configured

    return configured(request)


def _hosted(processor: PaymentProcessor | None) -> bool:
    return (
        processor is not None
        and processor.name != "sandbox"
        and hasattr(processor, "create_setup_checkout")
    )


def _return_url(request: Request) -> str:
    base = _portal_settings(request).public_base_url.rstrip("/") or str(request.base_url).rstrip(
        "/"
    )
    return f"{base}/pay/autopay/return"


def _refusal(exc: Exception) -> PaymentRefused:
    """A domain or processor refusal as a portal message (PHI-free, catalog keys)."""
    if isinstance(exc, BadInput):
        key = ERROR_KEYS.get(exc.message)
        return PaymentRefused(key, "" if key else exc.message)
    if isinstance(exc, Forbidden):
        return PaymentRefused("pay.not_offered")  # no active BAA for the processor
    if isinstance(exc, PaymentDeclined):
        return PaymentRefused("pay.declined")
    if isinstance(exc, ProcessorUnavailable):
        return PaymentRefused("pay.unavailable")
    if isinstance(exc, ProcessorError):
        return PaymentRefused("pay.not_offered" if exc.code == "not_offered" else "pay.unavailable")
    raise exc


def hosted_plan_autopay(
    request: Request,
    auth: PortalAuth,
    account_id: uuid.UUID,
    installments: int,
    key: str,
    processor: PaymentProcessor,
) -> Response | PaymentRefused:
    """A self-service plan with autopay through the processor's hosted setup page: the
    plan (autopay off until the webhook) and the pending enrollment, in one transaction
    with the processor call. Returns the link page, or the refusal (nothing stored)."""
    from carecollect.portal.endpoints import _tenant

    context = get_context(request)
    now = context.now()
    try:
        with _tenant(context, auth) as session:
            keys = context.org_keys(session, auth.organization_id)
            plan = portal_service.create_plan(
                session,
                keys=keys,
                guarantor_id=auth.guarantor_id,
                account_id=account_id,
                installments=installments,
                processor=processor,
                autopay_method=None,
                idempotency_key=f"setup:{key}",
                now=now,
            )
            try:
                url = autopay.start_hosted_enrollment(
                    session,
                    keys=keys,
                    actor=Actor.patient(auth.guarantor_id),
                    processor=processor,
                    guarantor_id=auth.guarantor_id,
                    plan_id=plan.id,
                    consent=True,
                    idempotency_key=key,
                    success_url=_return_url(request),
                    cancel_url=_return_url(request),
                    now=now,
                )
            except (BadInput, Forbidden, ProcessorError) as exc:
                raise _refusal(exc) from None
    except PaymentRefused as refused:
        return refused
    return page(
        request,
        "portal/autopay_checkout.html",
        title_key="title.autopay",
        auth=auth,
        checkout_url=url,
        plan_id=plan.id,
        message_key="autopay.setup_ready",
    )


# -- the autopay page ---------------------------------------------------------------------


def _autopay_page(
    request: Request,
    auth: PortalAuth,
    plan_id: uuid.UUID,
    *,
    error_key: str | None = None,
    error_text: str = "",
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    from carecollect.portal.endpoints import _tenant, _test_cards

    context = get_context(request)
    with _tenant(context, auth) as session:
        view = autopay.autopay_view(session, guarantor_id=auth.guarantor_id, plan_id=plan_id)
    processor = _processor(request)
    return page(
        request,
        "portal/autopay.html",
        title_key="title.autopay",
        auth=auth,
        status_code=status_code,
        view=view,
        cards=_test_cards(processor),
        hosted=_hosted(processor),
        attempt=secrets.token_urlsafe(18),
        error_key=error_key,
        error_text=error_text,
        done_key=DONE.get(done or ""),
    )


def _plan_uuid(value: str) -> uuid.UUID:
    from carecollect.portal.endpoints import _parse_uuid

    return _parse_uuid(value)


@autopay_router.get("/plans/{plan_id}/autopay")
def autopay_page(request: Request, plan_id: str, auth: PortalSession) -> Response:
    done = request.query_params.get("done")
    return _autopay_page(request, auth, _plan_uuid(plan_id), done=done)


@autopay_router.post("/plans/{plan_id}/autopay/off")
def autopay_off(request: Request, plan_id: str, auth: PortalFormSession) -> Response:
    from carecollect.portal.endpoints import _tenant

    plan = _plan_uuid(plan_id)
    context = get_context(request)
    with _tenant(context, auth) as session:
        autopay.turn_off(
            session,
            actor=Actor.patient(auth.guarantor_id),
            guarantor_id=auth.guarantor_id,
            plan_id=plan,
        )
    return RedirectResponse(f"/pay/plans/{plan}/autopay?done=off", status_code=303)


@autopay_router.post("/plans/{plan_id}/autopay/card")
async def autopay_card(request: Request, plan_id: str, auth: PortalFormSession) -> Response:
    from carecollect.portal.endpoints import (
        ATTEMPT_FIELD,
        _attempt_key,
        _form_text,
        _tenant,
        _test_cards,
    )

    plan = _plan_uuid(plan_id)
    form = await request.form()
    key = _attempt_key(auth, form.get(ATTEMPT_FIELD))
    if key is None:
        raise PortalCsrfRejected("the form is incomplete")
    consent = _form_text(form, "autopay", 8) == "yes"
    processor = _processor(request)
    hosted = _hosted(processor)
    card = _form_text(form, "card", 64)
    if processor is None or (not hosted and card not in {t for t, _ in _test_cards(processor)}):
        return _autopay_page(
            request, auth, plan, error_key="plan.autopay_card_needed", status_code=422
        )
    context = get_context(request)
    now = context.now()
    actor = Actor.patient(auth.guarantor_id)
    try:
        with _tenant(context, auth) as session:
            keys = context.org_keys(session, auth.organization_id)
            try:
                if hosted:
                    url = autopay.start_hosted_enrollment(
                        session,
                        keys=keys,
                        actor=actor,
                        processor=processor,
                        guarantor_id=auth.guarantor_id,
                        plan_id=plan,
                        consent=consent,
                        idempotency_key=key,
                        success_url=_return_url(request),
                        cancel_url=_return_url(request),
                        now=now,
                    )
                else:
                    method = autopay.replace_with_token(
                        session,
                        keys=keys,
                        actor=actor,
                        processor=processor,
                        guarantor_id=auth.guarantor_id,
                        plan_id=plan,
                        payment_method=card,
                        consent=consent,
                        idempotency_key=f"setup:{key}",
                        now=now,
                    )
                    if method is None:
                        raise PaymentRefused("pay.declined")
            except (BadInput, Forbidden, ProcessorError) as exc:
                raise _refusal(exc) from None
    except PaymentRefused as refused:
        return _autopay_page(
            request,
            auth,
            plan,
            error_key=refused.message_key,
            error_text=refused.message,
            status_code=422,
        )
    if hosted:
        return page(
            request,
            "portal/autopay_checkout.html",
            title_key="title.autopay",
            auth=auth,
            checkout_url=url,
            plan_id=plan,
            message_key="autopay.card_ready",
        )
    return RedirectResponse(f"/pay/plans/{plan}/autopay?done=on", status_code=303)


@autopay_router.get("/autopay/return")
def autopay_return(request: Request) -> Response:
    """Where the processor's setup page sends the patient back: the pending state. No
    session (the Strict cookie is not sent on that cross-site navigation); the link back to
    the bill is same-site and carries the cookie again."""
    return page(
        request,
        "portal/message.html",
        title_key="title.autopay_returned",
        message_key="autopay.returned",
        back_link=True,
    )
