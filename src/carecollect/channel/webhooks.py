"""Provider webhooks: Twilio inbound messages and status callbacks, e-mail one-click
unsubscribe (RFC 8058). Handlers are framework-free (`TwilioWebhooks`, `email_unsubscribe`);
`make_router` wraps them in a FastAPI `APIRouter` for `/hooks/...`.

Every Twilio request is verified with the SDK's `RequestValidator` (HMAC-SHA1 of the full
URL and the sorted form parameters under the account's auth token) before anything is read
from it; a forged or unsigned request gets 403 and changes nothing (HIPAA-SEC-INTEGRITY).
The URL that was signed is the public one: the router rebuilds it from the configured public
base URL, not from the Host header a proxy may have rewritten.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from carecollect.audit import Actor, Subject, record
from carecollect.consent.service import consent_service
from carecollect.db import Database
from carecollect.errors import NotFound
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.kit.models import utcnow
from carecollect.outreach.dispatch import apply_status_callback, parse_unsubscribe_token
from carecollect.outreach.inbound import handle_inbound_sms
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.tenant.models import Organization
from carecollect.tenant.service import get_organization


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    body: str
    content_type: str = "text/plain"


FORBIDDEN = WebhookResponse(403, "invalid signature")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def verify_twilio_signature(auth_token: str, url: str, params: Mapping[str, str],
                            signature: str | None) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


class TwilioWebhooks:
    def __init__(self, db: Database, keys: KeyManager, auth_token: str, *,
                 callback_phone: str = "", clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.keys = keys
        self.auth_token = auth_token
        self.callback_phone = callback_phone
        self.clock = clock

    def _organization(self, slug: str) -> tuple[Organization, OrganizationKeys]:
        with self.db.system_session() as session:
            org = get_organization(session, slug)
            keys = self.keys.for_organization(session, org.id,
                                              blind_index_bits=org.blind_index_bits)
        return org, keys

    def inbound(self, org_slug: str, url: str, params: Mapping[str, str],
                signature: str | None) -> WebhookResponse:
        if not verify_twilio_signature(self.auth_token, url, params, signature):
            return FORBIDDEN
        try:
            org, keys = self._organization(org_slug)
        except NotFound:
            return WebhookResponse(404, "unknown organization")
        with self.db.tenant_session(org.id) as session:
            result = handle_inbound_sms(
                session, keys, org, from_number=params.get("From", ""),
                body=params.get("Body", ""), received_at=self.clock(),
                callback_phone=self.callback_phone)
        if result.reply is None:
            return WebhookResponse(200, EMPTY_TWIML, "application/xml")
        twiml = MessagingResponse()
        twiml.message(result.reply)
        return WebhookResponse(200, str(twiml), "application/xml")

    def status(self, org_slug: str, url: str, params: Mapping[str, str],
               signature: str | None, attempt: str | None) -> WebhookResponse:
        if not verify_twilio_signature(self.auth_token, url, params, signature):
            return FORBIDDEN
        try:
            org, _keys = self._organization(org_slug)
            attempt_id = uuid.UUID(attempt or "")
        except (NotFound, ValueError):
            return WebhookResponse(404, "unknown attempt")
        sid = params.get("MessageSid") or params.get("SmsSid") or ""
        status = params.get("MessageStatus") or params.get("SmsStatus") or "unknown"
        with self.db.tenant_session(org.id) as session:
            row = session.execute(select(OutreachAttempt).where(OutreachAttempt.id == attempt_id)
                                  .with_for_update()).scalar_one_or_none()
            if row is None:
                return WebhookResponse(404, "unknown attempt")
            if row.provider_message_id not in (None, sid):
                return WebhookResponse(409, "message id mismatch")
            apply_status_callback(session, row, provider="twilio", provider_message_id=sid,
                                  status=status, now=self.clock())
        return WebhookResponse(204, "")


def email_unsubscribe(db: Database, keys: KeyManager, secret: bytes, token: str, *,
                      now: datetime | None = None) -> WebhookResponse:
    """RFC 8058 one-click unsubscribe: revoke e-mail for the attempt's address at once
    (REGF-EOPTOUT, PLAT-HONOR-IMMEDIATELY). The token is an HMAC over the attempt id."""
    attempt_id = parse_unsubscribe_token(secret, token)
    if attempt_id is None:
        return WebhookResponse(404, "unknown link")
    with db.system_session() as session:
        found = session.execute(select(OutreachAttempt.organization_id,
                                       Organization.blind_index_bits)
                                .join(Organization, Organization.id ==
                                      OutreachAttempt.organization_id)
                                .where(OutreachAttempt.id == attempt_id)).first()
        if found is None:
            return WebhookResponse(404, "unknown link")
        org_id, bits = found
        org_keys = keys.for_organization(session, org_id, blind_index_bits=bits)
    with db.tenant_session(org_id) as session:
        attempt = session.get(OutreachAttempt, attempt_id)
        if attempt is None:
            return WebhookResponse(404, "unknown link")
        consent_service.revoke(session, keys=org_keys, actor=Actor.webhook("email"),
                               guarantor_id=attempt.guarantor_id,
                               contact_point_id=attempt.contact_point_id, channel="email",
                               received_at=now or utcnow(), method="list_unsubscribe")
        record(session, actor=Actor.webhook("email"), action="outreach.unsubscribe",
               subject=Subject("outreach_attempt", attempt.id, organization_id=org_id,
                               patient_id=attempt.guarantor_id), details={"channel": "email"})
    return WebhookResponse(200, "You are unsubscribed from these e-mails.")


def make_router(twilio: TwilioWebhooks | None, *, public_base_url: str,
                db: Database | None = None, keys: KeyManager | None = None,
                link_secret: bytes | None = None,
                clock: Callable[[], datetime] = utcnow) -> APIRouter:
    """A FastAPI router with POST /hooks/twilio/{org}/inbound, POST
    /hooks/twilio/{org}/status and GET/POST /hooks/email/unsubscribe/{token}."""
    router = APIRouter(prefix="/hooks", include_in_schema=False)
    base = public_base_url.rstrip("/")

    def signed_url(request: Request) -> str:
        query = request.url.query
        return f"{base}{request.url.path}" + (f"?{query}" if query else "")

    def respond(result: WebhookResponse) -> Response:
        return Response(result.body, status_code=result.status, media_type=result.content_type)

    if twilio is not None:
        @router.post("/twilio/{org}/inbound")
        async def twilio_inbound(org: str, request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            return respond(twilio.inbound(org, signed_url(request), form,
                                          request.headers.get("X-Twilio-Signature")))

        @router.post("/twilio/{org}/status")
        async def twilio_status(org: str, request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            return respond(twilio.status(org, signed_url(request), form,
                                         request.headers.get("X-Twilio-Signature"),
                                         request.query_params.get("attempt")))

    if db is not None and keys is not None and link_secret is not None:
        @router.post("/email/unsubscribe/{token}")
        async def unsubscribe_post(token: str) -> Response:
            return respond(email_unsubscribe(db, keys, link_secret, token, now=clock()))

        @router.get("/email/unsubscribe/{token}")
        async def unsubscribe_get(token: str) -> Response:
            # A GET must not unsubscribe (link scanners follow links): show a button.
            safe = html.escape(token, quote=True)
            page = (f'<!doctype html><form method="post" action="{base}/hooks/email/'
                    f'unsubscribe/{safe}"><button>Unsubscribe</button></form>')
            return Response(page, media_type="text/html")

    return router
