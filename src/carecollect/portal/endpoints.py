"""Patient portal routes (`/pay/...`): thin handlers that parse the form, resolve the
session, call the portal service and render.

The link route only matches token-shaped paths (`/pay/{token:portaltoken}`, 40 to 100
URL-safe characters), so named pages such as `/pay/bill` (here or in other portal
routers) are never taken for a token.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor

from carecollect.api.context import AppContext, get_context
from carecollect.audit import Actor, record
from carecollect.errors import AppError, NotFound
from carecollect.payment.processor import PaymentProcessor
from carecollect.portal import service as portal_service
from carecollect.portal.auth import (
    COOKIE_PATH,
    VERIFY_COOKIE,
    PortalAuth,
    PortalCsrfRejected,
    PortalError,
    PortalFormSession,
    PortalNotFound,
    PortalSession,
    clear_session_cookie,
    cookie_name,
    portal_settings,
    set_session_cookie,
)
from carecollect.portal.config import PortalSettings
from carecollect.portal.i18n import normalize_language
from carecollect.portal.render import page, request_language
from carecollect.portal.service import PaymentRefused, VerificationInput, VerificationOutcome


class PortalTokenConvertor(Convertor[str]):
    regex = "[A-Za-z0-9_-]{40,100}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("portaltoken", PortalTokenConvertor())

router = APIRouter(prefix="/pay", include_in_schema=False)

Settings = Annotated[PortalSettings, Depends(portal_settings)]


def _client(request: Request) -> str:
    context = get_context(request)
    host = request.client.host if request.client else None
    return portal_service.client_key(context.secret, host)


def _verify_csrf(context: AppContext, cookie_value: str, token: str) -> str:
    # Double submit bound to this link: the form token is an HMAC of the visitor's own
    # random cookie and the link's hash, so neither a planted cookie nor another link's
    # form can be replayed (OWASP CSRF cheat sheet, signed double-submit cookie).
    return context.sign("portal-verify", f"{cookie_value}:{portal_service.sha256_hex(token)}")


def _invalid(request: Request, status_code: int = 404) -> HTMLResponse:
    return page(request, "portal/message.html", title_key="title.invalid",
                status_code=status_code, message_key="invalid.body")


def _locked(request: Request) -> HTMLResponse:
    return page(request, "portal/message.html", title_key="title.locked", status_code=429,
                message_key="verify.locked")


def _verify_form(
    request: Request,
    token: str,
    *,
    error_key: str | None = None,
    status_code: int = 200,
    last_name: str = "",
    method: str = "dob",
) -> HTMLResponse:
    context = get_context(request)
    cookie_value = request.cookies.get(VERIFY_COOKIE) or secrets.token_urlsafe(24)
    response = page(
        request, "portal/verify.html", title_key="title.verify", status_code=status_code,
        csrf_token=_verify_csrf(context, cookie_value, token), error_key=error_key,
        action=portal_service.link_path(token), last_name=last_name, method=method,
    )
    if VERIFY_COOKIE not in request.cookies:
        response.set_cookie(VERIFY_COOKIE, cookie_value, httponly=True,
                            secure=context.cookie_secure, samesite="strict", path=COOKIE_PATH)
    return response


def _refuse_guess(request: Request, settings: PortalSettings, *, outcome: str) -> None:
    """Count and audit a try on an unknown, expired or revoked token (system session)."""
    context = get_context(request)
    with context.db.system_session() as session:
        portal_service.note_attempt(session, client=_client(request), outcome=outcome,
                                    now=context.now())
        record(session, actor=Actor.system("portal.verify"), action="portal.link_unknown",
               outcome="failure", details={"reason": outcome})


@router.get("/{token:portaltoken}")
def open_link(request: Request, token: str, settings: Settings) -> Response:
    context = get_context(request)
    now = context.now()
    client = _client(request)
    with context.db.system_session() as session:
        if portal_service.address_limited(session, client=client, now=now, settings=settings):
            return _locked(request)
        found = portal_service.find_link(session, token=token, now=now)
    if found is None:
        _refuse_guess(request, settings, outcome=VerificationOutcome.UNKNOWN_LINK)
        return _invalid(request)
    return _verify_form(request, token)


@router.post("/{token:portaltoken}")
async def verify(request: Request, token: str, settings: Settings) -> Response:
    context = get_context(request)
    now = context.now()
    client = _client(request)
    form = await request.form()

    def field(name: str) -> str:
        value = form.get(name)
        return value.strip()[:200] if isinstance(value, str) else ""

    cookie_value = request.cookies.get(VERIFY_COOKIE) or ""
    sent = field("csrf_token")
    if not cookie_value or not secrets.compare_digest(
        sent, _verify_csrf(context, cookie_value, token)
    ):
        return page(request, "portal/message.html", title_key="title.error", status_code=403,
                    message_key="error.csrf")
    with context.db.system_session() as session:
        if portal_service.address_limited(session, client=client, now=now, settings=settings):
            portal_service.note_attempt(session, client=client, now=now,
                                        outcome=VerificationOutcome.RATE_LIMITED)
            record(session, actor=Actor.system("portal.verify"), action="portal.login",
                   outcome="denied", details={"reason": "address_rate_limited"})
            return _locked(request)
        found = portal_service.find_link(session, token=token, now=now)
        if found is not None and portal_service.link_limited(
            session, link_id=found.link_id, now=now, settings=settings
        ):
            portal_service.note_attempt(session, client=client, now=now,
                                        outcome=VerificationOutcome.RATE_LIMITED,
                                        link_id=found.link_id,
                                        organization_id=found.organization_id)
            limited = True
        else:
            limited = False
    if found is None:
        _refuse_guess(request, settings, outcome=VerificationOutcome.UNKNOWN_LINK)
        return _invalid(request)
    if limited:
        with context.session(found.organization_id) as session:
            record(session, actor=Actor.system("portal.verify"), action="portal.login",
                   outcome="denied",
                   subject=portal_service.link_subject(found),
                   details={"reason": "link_rate_limited"})
        return _locked(request)

    # Whichever second factor was filled in: the date of birth first, else the ZIP code.
    has_dob = any(field(name) for name in ("dob_year", "dob_month", "dob_day"))
    method = "dob" if has_dob or not field("zip") else "zip"
    last_name = field("last_name")
    birth = None
    zip5 = None
    if method == "dob":
        birth = portal_service.parse_birth_date(field("dob_year"), field("dob_month"),
                                                field("dob_day"))
    else:
        zip5 = portal_service.normalize_zip5(field("zip"))
    if not portal_service.fold_text(last_name) or (birth is None and zip5 is None):
        # Counted against the address and audited like any try, but not a failure of the
        # link: nothing was compared.
        with context.db.system_session() as session:
            portal_service.note_attempt(session, client=client, outcome="incomplete", now=now,
                                        link_id=found.link_id,
                                        organization_id=found.organization_id)
        with context.session(found.organization_id) as session:
            record(session, actor=Actor.system("portal.verify"), action="portal.login",
                   outcome="failure", subject=portal_service.link_subject(found),
                   details={"reason": "incomplete", "method": method})
        return _verify_form(request, token, error_key="verify.incomplete", status_code=422,
                            method=method)

    language = normalize_language(field("lang") or request_language(request))
    cookie: str | None = None
    with context.session(found.organization_id) as session:
        keys = context.org_keys(session, found.organization_id)
        outcome = portal_service.verify_identity(
            session, keys=keys, link_id=found.link_id, now=now, settings=settings,
            given=VerificationInput(last_name=last_name, date_of_birth=birth, zip5=zip5),
        )
        if outcome == VerificationOutcome.SUCCESS:
            _row, cookie = portal_service.start_session(
                session, link_id=found.link_id, language=language, now=now, settings=settings
            )
    with context.db.system_session() as session:
        portal_service.note_attempt(session, client=client, outcome=outcome, now=now,
                                    link_id=found.link_id, organization_id=found.organization_id)
    if outcome == VerificationOutcome.SUCCESS and cookie is not None:
        response = RedirectResponse("/pay/bill", status_code=303)
        set_session_cookie(response, context, cookie)
        response.delete_cookie(VERIFY_COOKIE, path=COOKIE_PATH)
        return response
    if outcome == VerificationOutcome.LOCKED:
        return _locked(request)
    if outcome == VerificationOutcome.UNKNOWN_LINK:
        return _invalid(request)
    return _verify_form(request, token, error_key="verify.failed", status_code=401,
                        method=method)


@router.post("/logout")
def logout(request: Request, auth: PortalFormSession) -> Response:
    context = get_context(request)
    with _tenant(context, auth) as session:
        portal_service.end_session(session, session_id=auth.session_id, now=context.now())
    response = page(request, "portal/message.html", title_key="title.signed_out",
                    language=auth.language, message_key="logout.body")
    clear_session_cookie(response, context)
    return response


@router.post("/language")
async def change_language(request: Request, auth: PortalFormSession) -> Response:
    context = get_context(request)
    form = await request.form()
    raw = form.get("lang")
    target = form.get("next")
    with _tenant(context, auth) as session:
        portal_service.set_language(session, session_id=auth.session_id,
                                    language=raw if isinstance(raw, str) else "")
    # Only back to a portal page of this site (no open redirect).
    path = target if isinstance(target, str) else ""
    if (not path.startswith("/pay/") or any(bad in path for bad in ("//", "\\", ":", ".."))
            or not path.isascii()):
        path = "/pay/bill"
    return RedirectResponse(path, status_code=303)


# -- bill, payments, plans ------------------------------------------------------------------

ATTEMPT_FIELD = "attempt"
_ATTEMPT_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _processor(request: Request) -> PaymentProcessor | None:
    context = get_context(request)
    processors: dict[str, PaymentProcessor] = getattr(
        request.app.state, "payment_processors", {}
    )
    return processors.get(context.settings.payment_processor)


def _test_cards(processor: PaymentProcessor | None) -> list[tuple[str, str]]:
    """The sandbox's documented test cards as (token, label): the browser sends the token,
    never a card number. Empty for a real processor."""
    if processor is None or processor.name != "sandbox":
        return []
    from carecollect.payment.sandbox import TEST_CARDS

    return [(card.token, f"{card.brand.title()} {card.number[:4]} •••• {card.number[-4:]}"
             f" ({card.outcome.replace('_', ' ')})") for card in TEST_CARDS]


def _attempt_key(auth: PortalAuth, raw: object) -> str | None:
    # One random value per rendered form: a double submit repeats the key, so the
    # processor answers with its first result and the payment posts once.
    if not isinstance(raw, str) or not 16 <= len(raw) <= 64 or not set(raw) <= _ATTEMPT_OK:
        return None
    return f"portal:{auth.session_id}:{raw}"


def _form_text(form: Any, name: str, limit: int = 100) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@contextmanager
def _tenant(context: AppContext, auth: PortalAuth) -> Iterator[Session]:
    """The session guarantor's tenant transaction; a domain error becomes a portal page
    (another guarantor's record answers exactly like a missing one)."""
    try:
        with context.session(auth.organization_id) as session:
            yield session
    except PortalError:
        raise
    except NotFound:
        raise PortalNotFound("not found") from None
    except AppError as exc:
        error = PortalError(exc.message)
        error.status_code = exc.status_code
        raise error from None


def _parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PortalNotFound("not found") from None


@router.get("/bill")
def bill(request: Request, auth: PortalSession) -> Response:
    context = get_context(request)
    with _tenant(context, auth) as session:
        keys = context.org_keys(session, auth.organization_id)
        the_bill = portal_service.read_bill(session, keys=keys, guarantor_id=auth.guarantor_id)
    return page(request, "portal/bill.html", title_key="title.bill", auth=auth, bill=the_bill)


def _pay_page(request: Request, auth: PortalAuth, account_id: uuid.UUID, *,
              error_key: str | None = None, error_text: str = "", amount: str = "",
              status_code: int = 200) -> HTMLResponse:
    context = get_context(request)
    processor = _processor(request)
    with _tenant(context, auth) as session:
        balance = portal_service.view_account(session, guarantor_id=auth.guarantor_id,
                                              account_id=account_id, page="pay")
    return page(
        request, "portal/pay.html", title_key="title.pay", auth=auth, status_code=status_code,
        account_id=account_id, balance_cents=balance, cards=_test_cards(processor),
        hosted=processor is not None and _hosted(processor),
        attempt=secrets.token_urlsafe(18), error_key=error_key, error_text=error_text,
        amount=amount,
    )


@router.get("/accounts/{account_id}/pay")
def pay_form(request: Request, account_id: str, auth: PortalSession) -> Response:
    return _pay_page(request, auth, _parse_uuid(account_id))


@router.post("/accounts/{account_id}/pay")
async def pay(request: Request, account_id: str, auth: PortalFormSession) -> Response:
    context = get_context(request)
    account = _parse_uuid(account_id)
    form = await request.form()
    amount = _form_text(form, "amount", 40)
    card = _form_text(form, "card", 64)
    key = _attempt_key(auth, form.get(ATTEMPT_FIELD))
    processor = _processor(request)
    cards = {token for token, _ in _test_cards(processor)}
    if key is None:
        raise PortalCsrfRejected("the form is incomplete")
    if processor is not None and _hosted(processor):
        return _checkout(request, auth, account, amount, key, processor)
    if processor is None or card not in cards:
        return _pay_page(request, auth, account, error_key="pay.card_invalid", amount=amount,
                         status_code=422)
    try:
        with _tenant(context, auth) as session:
            keys = context.org_keys(session, auth.organization_id)
            outcome = portal_service.pay(
                session, keys=keys, guarantor_id=auth.guarantor_id, processor=processor,
                account_id=account, amount=amount, payment_method=card, idempotency_key=key,
                now=context.now(),
            )
            if not isinstance(outcome, PaymentRefused):
                payment_id = outcome.id
    except PaymentRefused as refused:
        outcome = refused
    if isinstance(outcome, PaymentRefused):
        return _pay_page(request, auth, account, error_key=outcome.message_key,
                         error_text=outcome.message, amount=amount, status_code=422)
    return RedirectResponse(f"/pay/receipts/{payment_id}", status_code=303)


def _hosted(processor: PaymentProcessor) -> bool:
    """A real processor whose card entry happens on its own hosted page."""
    return processor.name != "sandbox" and hasattr(processor, "create_checkout")


def _hosted_setup(processor: PaymentProcessor | None) -> bool:
    """A real processor that saves autopay cards on its own hosted page."""
    return processor is not None and processor.name != "sandbox" and hasattr(
        processor, "create_setup_checkout")


def _checkout(request: Request, auth: PortalAuth, account: uuid.UUID, amount: str, key: str,
              processor: PaymentProcessor) -> Response:
    context = get_context(request)
    base = portal_settings(request).public_base_url.rstrip("/") or str(
        request.base_url).rstrip("/")
    try:
        with _tenant(context, auth) as session:
            keys = context.org_keys(session, auth.organization_id)
            url = portal_service.start_checkout(
                session, keys=keys, guarantor_id=auth.guarantor_id, processor=processor,
                account_id=account, amount=amount, idempotency_key=key, now=context.now(),
                return_url=f"{base}/pay/return",
            )
    except PaymentRefused as refused:
        return _pay_page(request, auth, account, error_key=refused.message_key,
                         error_text=refused.message, amount=amount, status_code=422)
    # A link, not a redirect: CSP `form-action 'self'` also governs a form's redirects,
    # and following a link to the processor's page needs no change to the policy.
    return page(request, "portal/checkout.html", title_key="title.pay", auth=auth,
                checkout_url=url)


@router.get("/return")
def processor_return(request: Request) -> Response:
    """Where the processor's page sends the patient back. The Strict session cookie is not
    sent on that cross-site navigation, so this page needs no session; its link back to the
    bill is same-site and carries the cookie again."""
    return page(request, "portal/message.html", title_key="title.returned",
                message_key="pay.returned", back_link=True)


@router.get("/receipts/{payment_id}")
def receipt(request: Request, payment_id: str, auth: PortalSession) -> Response:
    context = get_context(request)
    with _tenant(context, auth) as session:
        view = portal_service.read_receipt(session, guarantor_id=auth.guarantor_id,
                                           payment_id=_parse_uuid(payment_id))
    return page(request, "portal/receipt.html", title_key="title.receipt", auth=auth,
                receipt=view)


@router.get("/receipts/{payment_id}/pdf")
def receipt_pdf(request: Request, payment_id: str, auth: PortalSession) -> Response:
    context = get_context(request)
    with _tenant(context, auth) as session:
        name, pdf = portal_service.receipt_document(
            session, guarantor_id=auth.guarantor_id, payment_id=_parse_uuid(payment_id),
            language=auth.language,
        )
    return _pdf(name, pdf)


def _pdf(name: str, body: bytes) -> Response:
    return Response(body, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="{name}"'})


def _plan_page(request: Request, auth: PortalAuth, account_id: uuid.UUID, *,
               error_key: str | None = None, error_text: str = "",
               status_code: int = 200) -> HTMLResponse:
    context = get_context(request)
    with _tenant(context, auth) as session:
        portal_service.view_account(session, guarantor_id=auth.guarantor_id,
                                    account_id=account_id, page="plan")
        choices = portal_service.plan_choices(session, guarantor_id=auth.guarantor_id,
                                              account_id=account_id, now=context.now())
    return page(
        request, "portal/plan.html", title_key="title.plan", auth=auth, status_code=status_code,
        choices=choices, cards=_test_cards(_processor(request)),
        hosted_autopay=_hosted_setup(_processor(request)),
        attempt=secrets.token_urlsafe(18), error_key=error_key, error_text=error_text,
    )


@router.get("/accounts/{account_id}/plan")
def plan_form(request: Request, account_id: str, auth: PortalSession) -> Response:
    return _plan_page(request, auth, _parse_uuid(account_id))


@router.post("/accounts/{account_id}/plan")
async def plan_create(request: Request, account_id: str, auth: PortalFormSession) -> Response:
    context = get_context(request)
    account = _parse_uuid(account_id)
    form = await request.form()
    key = _attempt_key(auth, form.get(ATTEMPT_FIELD))
    if key is None:
        raise PortalCsrfRejected("the form is incomplete")
    try:
        count = int(_form_text(form, "installments", 4))
    except ValueError:
        return _plan_page(request, auth, account, error_key="plan.choose_option",
                          status_code=422)
    autopay = _form_text(form, "autopay", 8) == "yes"
    card = _form_text(form, "card", 64) if autopay else ""
    processor = _processor(request)
    if autopay and processor is not None and _hosted_setup(processor):
        # Stripe: the card is saved on the processor's hosted setup page (autopay parts:
        # portal/self_service_autopay.py); autopay turns on when its webhook arrives.
        from carecollect.portal.self_service_autopay import hosted_plan_autopay

        outcome = hosted_plan_autopay(request, auth, account, count, key, processor)
        if isinstance(outcome, PaymentRefused):
            return _plan_page(request, auth, account, error_key=outcome.message_key,
                              error_text=outcome.message, status_code=422)
        return outcome
    if autopay and card not in {token for token, _ in _test_cards(processor)}:
        return _plan_page(request, auth, account, error_key="plan.autopay_card_needed",
                          status_code=422)
    try:
        with _tenant(context, auth) as session:
            keys = context.org_keys(session, auth.organization_id)
            plan = portal_service.create_plan(
                session, keys=keys, guarantor_id=auth.guarantor_id, account_id=account,
                installments=count, processor=processor,
                autopay_method=card if autopay else None, idempotency_key=f"setup:{key}",
                now=context.now(),
            )
    except PaymentRefused as refused:
        return _plan_page(request, auth, account, error_key=refused.message_key,
                          error_text=refused.message, status_code=422)
    return RedirectResponse(f"/pay/plans/{plan.id}", status_code=303)


@router.get("/plans/{plan_id}")
def plan_view(request: Request, plan_id: str, auth: PortalSession) -> Response:
    context = get_context(request)
    with _tenant(context, auth) as session:
        view = portal_service.read_plan(session, guarantor_id=auth.guarantor_id,
                                        plan_id=_parse_uuid(plan_id))
    return page(request, "portal/plan_view.html", title_key="title.plan_done", auth=auth,
                plan=view)


@router.get("/plans/{plan_id}/agreement")
def plan_agreement(request: Request, plan_id: str, auth: PortalSession) -> Response:
    context = get_context(request)
    with _tenant(context, auth) as session:
        keys = context.org_keys(session, auth.organization_id)
        name, pdf = portal_service.agreement_document(
            session, keys=keys, guarantor_id=auth.guarantor_id, plan_id=_parse_uuid(plan_id))
    return _pdf(name, pdf)


__all__ = ["cookie_name", "router"]
