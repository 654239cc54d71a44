"""Transactional e-mails to a guarantor (payment receipts, missed-payment notices) through
the same e-mail channel, consent ledger, compliance engine and BAA gate as outreach.

A transactional e-mail is not free-form: the caller hands over text it built from C0-C1
content only (RULES.md section 8, HIPAA-CONTENT-CLASS), and this module

1. in one transaction (the debtor's write lock, as `dispatch.deliver` takes it): records an
   `outreach_attempt` keyed by the caller's idempotency key (so the one-click opt-out,
   delivery callbacks and the attempt history work as for any e-mail), picks the
   guarantor's e-mail address, re-checks compliance with the engine (e-mail opt-outs,
   revocations, confidential-communication requests, time of day, dispute and cease flags
   all apply: a receipt is still a communication about the debt), checks the e-mail
   vendor's BAA (HIPAA-BAA), records the contact and marks the attempt `sending`;
2. hands the message to the provider outside any transaction;
3. records `sent` (audit `message.send`), or `unknown` when SMTP may have queued it.

A block by a time rule snoozes the job to the next allowed instant; any other block is
final and audited with its rule ids: the receipt stays downloadable in the portal.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carecollect.channel.base import (
    Ambiguous,
    ChannelError,
    ChannelRefused,
    NotSent,
    OutboundMessage,
    Provider,
)
from carecollect.compliance import zones as tz
from carecollect.compliance.engine import evaluate
from carecollect.compliance.overlay_settings import overlay_for
from carecollect.db import Database
from carecollect.kit.crypto.keys import KeyManager, OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.kit.jobs import RetryableError, Snooze, TerminalError
from carecollect.kit.jobs.sessions import write_locked_session
from carecollect.outreach.context import load_debtor, with_action
from carecollect.outreach.dispatch import (
    ACTOR,
    BaaInactive,
    DispatchResources,
    _finish,
    _lock_contact_state,
    _mark_event,
    _record_sent,
    unsubscribe_token,
)
from carecollect.outreach.outbox import OutreachAttempt, ReviewItem
from carecollect.outreach.service import contact_history_service
from carecollect.outreach.templates import OPT_OUT_TEXT
from carecollect.tenant.models import BusinessAssociate, Organization

# Engine modifications a transactional e-mail satisfies by construction: the From name is
# the neutral billing name, there is no link but the opaque opt-out, the subject is C0,
# the opt-out is appended here, and the body carries C0-C1 only.
_SATISFIED = {"use_neutral_display_name", "use_opaque_link", "use_neutral_subject",
              "append_opt_out", "strip_to_C1"}
# Content tags of the C0 class (RULES.md HIPAA-CONTENT-CLASS).
_C0_TAGS = {"neutral_notice", "practice_name_neutral", "payment_link_opaque"}
_FLAG_RULES = {"dispute": "REGF-DISPUTE-CEASE", "cease_requested": "REGF-CEASE"}
# A time-of-day block further away than this is treated as final, not snoozed.
_MAX_SNOOZE_SECONDS = 4 * 24 * 3600


@dataclass(frozen=True)
class TransactionalEmail:
    """One transactional e-mail as its domain built it. Holds C1 data: never logged."""

    template_key: str
    subject: str
    from_name: str
    text_body: str
    language: str
    contains: tuple[str, ...]
    account_id: uuid.UUID | None = None
    # Flag kinds that suppress this e-mail while in force on the guarantor or its account
    # (a collection notice names "dispute", "cease_requested", "hardship"; a receipt none).
    suppressed_by_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What happened: `sent`, `unknown`, `blocked`, `failed` or `skipped` (already done),
    with rule ids or a fixed code."""

    state: str
    attempt_id: uuid.UUID | None
    reasons: tuple[str, ...] = ()
    code: str | None = None


def html_body(text_body: str, opt_out_url: str, language: str) -> str:
    paragraphs = "".join(
        "<p>" + "<br>".join(html.escape(line) for line in block.splitlines()) + "</p>"
        for block in text_body.strip().split("\n\n") if block.strip())
    link = html.escape(opt_out_url, quote=True)
    notice = html.escape(OPT_OUT_TEXT["email"][language].format(url="")).rstrip()
    return (f"<!doctype html><html lang=\"{language}\"><body>{paragraphs}"
            f"<p><small>{notice} <a href=\"{link}\">{link}</a></small></p></body></html>")


class TransactionalSender:
    """Sends transactional e-mails for the worker. Built once per worker with the database,
    the key manager and the outreach `DispatchResources` (channels and settings)."""

    def __init__(self, db: Database, keys: KeyManager, resources: DispatchResources,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.keys = keys
        self.resources = resources
        self.clock = clock or (lambda: datetime.now(tz.zone("UTC")))

    def organization_keys(self, organization_id: uuid.UUID) -> OrganizationKeys:
        with self.db.system_session() as session:
            org = session.get(Organization, organization_id)
            bits = org.blind_index_bits if org is not None else None
            return self.keys.for_organization(session, organization_id, blind_index_bits=bits)

    def send(self, organization_id: uuid.UUID, guarantor_id: uuid.UUID,
             email: TransactionalEmail, idempotency_key: str) -> Outcome:
        keys = self.organization_keys(organization_id)
        provider = self.resources.channels.get("email")
        now = self.clock()
        refused: TerminalError | None = None
        snooze: float | None = None
        prepared: tuple[OutboundMessage, uuid.UUID | None] | None = None
        with write_locked_session(self.db, organization_id) as session:
            attempt = self._attempt(session, organization_id, guarantor_id, email,
                                    idempotency_key, now)
            if attempt.state not in ("planned", "sending"):
                return Outcome("skipped", attempt.id, tuple(attempt.reasons), attempt.error_code)
            if attempt.state == "sending":
                # A previous run died after `sending`: SMTP may have queued it. Never resend.
                _finish(session, attempt, "unknown", error_code="interrupted")
                return Outcome("unknown", attempt.id, code="interrupted")
            if provider is None:
                _finish(session, attempt, "failed", error_code="channel_not_configured",
                        outcome="failure")
                return Outcome("failed", attempt.id, code="channel_not_configured")
            _lock_contact_state(session, organization_id, guarantor_id, now)
            try:
                result = self._prepare(session, keys, attempt, provider, email, now)
            except BaaInactive as exc:
                refused = exc
                result = None
            if isinstance(result, float):
                snooze, result = result, None
                session.rollback()
            if isinstance(result, Outcome):
                return result
            prepared = result
        if refused is not None:
            raise refused
        if snooze is not None:
            raise Snooze(snooze)
        if prepared is None or provider is None:
            raise TerminalError("not_prepared")
        return self._send(organization_id, attempt.id, provider, *prepared)

    def _attempt(self, session: Session, organization_id: uuid.UUID, guarantor_id: uuid.UUID,
                 email: TransactionalEmail, idempotency_key: str,
                 now: datetime) -> OutreachAttempt:
        attempt = session.execute(select(OutreachAttempt).where(
            OutreachAttempt.organization_id == organization_id,
            OutreachAttempt.idempotency_key == idempotency_key).with_for_update()
        ).scalar_one_or_none()
        if attempt is not None:
            return attempt
        attempt = OutreachAttempt(
            id=uuid7(), organization_id=organization_id, guarantor_id=guarantor_id,
            account_id=email.account_id, channel="email", template_key=email.template_key,
            language=email.language, idempotency_key=idempotency_key, state="planned",
            scheduled_for=now, reasons=[], details={"transactional": True})
        session.add(attempt)
        session.flush()
        return attempt

    def _prepare(self, session: Session, keys: OrganizationKeys, attempt: OutreachAttempt,
                 provider: Provider, email: TransactionalEmail,
                 now: datetime) -> Outcome | float | tuple[OutboundMessage, uuid.UUID | None]:
        settings = self.resources.settings
        org = session.get(Organization, attempt.organization_id)
        if org is None:
            raise TerminalError("missing_organization")
        if email.from_name != org.billing_display_name:
            # PLAT-NEUTRAL-NAME: the From name is the neutral billing display name only.
            raise TerminalError("from_name_not_neutral")

        def blocked(reasons: list[str], code: str | None = None) -> Outcome:
            _finish(session, attempt, "blocked", reasons=reasons, error_code=code)
            return Outcome("blocked", attempt.id, tuple(reasons), code)

        if session.scalar(select(ReviewItem.id).where(
                ReviewItem.guarantor_id == attempt.guarantor_id,
                ReviewItem.state == "open").limit(1)) is not None:
            return blocked(["PLAT-REVOKE-NLU"])
        facts = load_debtor(session, keys, org, attempt.guarantor_id, now=now,
                            profile=settings.profile, account_id=email.account_id)
        if any(f.kind == "do_not_contact" for f in facts.active_flags):
            return blocked(["PLAT-DO-NOT-CONTACT"])
        suppressing = sorted({f.kind for f in facts.active_flags
                              if f.kind in email.suppressed_by_flags
                              and (f.account_id is None or f.account_id == email.account_id)})
        if suppressing:
            # A dispute or cease pauses collection until staff resolve it (REGF-DISPUTE-CEASE,
            # REGF-CEASE, as platform policy for first-party creditors too); a hardship
            # request pauses collection while staff decide (issue 7).
            return blocked(sorted({_FLAG_RULES.get(k, "PLAT-HARDSHIP-PAUSE")
                                   for k in suppressing}), "flag_in_force")
        emails = sorted((cp for cp in facts.contact_points.values() if cp.kind == "email"),
                        key=lambda cp: (not cp.is_primary, not cp.verified, cp.created_at))
        if not emails:
            return blocked([], "no_email_address")
        cp = emails[0]
        attempt.contact_point_id = cp.id
        opt_out_url = (f"{settings.public_base_url.rstrip('/')}/hooks/email/unsubscribe/"
                       f"{unsubscribe_token(settings.link_secret, attempt.id)}")
        language = email.language if email.language in OPT_OUT_TEXT["email"] else "en"
        text = (email.text_body.rstrip("\n") + "\n\n"
                + OPT_OUT_TEXT["email"][language].format(url=opt_out_url) + "\n")
        context = with_action(facts.context, channel="email", at=now, contact_point_id=cp.id,
                              template=email.template_key, contains=email.contains,
                              includes_opt_out=True, subject=email.subject, url=opt_out_url)
        overlay = overlay_for(session, organization_id=keys.organization_id) or settings.overlay
        decision = evaluate(context, overlay)
        if decision.decision == "block":
            wait = (decision.next_allowed_at - now).total_seconds() \
                if decision.next_allowed_at is not None else None
            if wait is not None and 0 < wait <= _MAX_SNOOZE_SECONDS:
                return wait
            attempt.next_allowed_at = decision.next_allowed_at
            return blocked(list(decision.reasons))
        if decision.decision == "allow_with_modification":
            codes = {c.strip() for c in (decision.modification or "").split(";") if c.strip()}
            if "strip_to_C0" in codes and set(email.contains) <= _C0_TAGS:
                codes.discard("strip_to_C0")
            unresolved = sorted(codes - _SATISFIED)
            if unresolved:
                _finish(session, attempt, "blocked", reasons=list(decision.reasons),
                        details={"modifications": unresolved})
                return Outcome("blocked", attempt.id, tuple(decision.reasons))
        if provider.service is not None:
            today = tz.local_date(now, org.timezone)
            vendors = session.scalars(select(BusinessAssociate).where(
                BusinessAssociate.service == provider.service)).all()
            if not any(v.baa_is_active(today) for v in vendors):
                _finish(session, attempt, "failed", error_code="baa_inactive",
                        outcome="denied", details={"service": provider.service})
                raise BaaInactive(provider.service)
        message = OutboundMessage(
            attempt_id=attempt.id, organization_id=attempt.organization_id,
            idempotency_key=attempt.idempotency_key, channel="email",
            to=facts.opened_values[cp.id], from_name=org.billing_display_name,
            subject=email.subject, text_body=text,
            html_body=html_body(email.text_body, opt_out_url, language),
            list_unsubscribe_url=opt_out_url,
            list_unsubscribe_mailto=settings.unsubscribe_mailto, language=language,
            extra={"organization_slug": org.slug})
        event = contact_history_service.record_contact(
            session, keys=keys, actor=ACTOR, guarantor_id=attempt.guarantor_id,
            contact_point_id=cp.id, occurred_at=now, channel="email", direction="outbound",
            outcome="delivered", account_ids=[a.id for a in facts.accounts])
        attempt.contact_event_id = event.id
        attempt.provider = provider.name
        attempt.sending_at = now
        attempt.send_count += 1
        _finish(session, attempt, "sending", reasons=list(decision.reasons),
                details={"template": email.template_key})
        return message, event.id

    def _send(self, organization_id: uuid.UUID, attempt_id: uuid.UUID, provider: Provider,
              message: OutboundMessage, event_id: uuid.UUID | None) -> Outcome:
        def settle(state: str, code: str, outcome: str, undeliverable: bool) -> None:
            with self.db.tenant_session(organization_id) as session:
                attempt = session.get(OutreachAttempt, attempt_id)
                if attempt is None or attempt.state != "sending":
                    return
                if undeliverable:
                    _mark_event(session, event_id, "undeliverable")
                    attempt.contact_event_id = None
                if state == "planned":
                    attempt.state, attempt.error_code = "planned", code
                else:
                    _finish(session, attempt, state, error_code=code, outcome=outcome)

        try:
            result = provider.send(message)
        except Ambiguous as exc:
            settle("unknown", exc.code, "failure", undeliverable=False)
            return Outcome("unknown", attempt_id, code=exc.code)
        except NotSent as exc:
            if exc.retryable:
                settle("planned", exc.code, "failure", undeliverable=True)
                raise RetryableError(exc.code) from None
            settle("failed", exc.code, "failure", undeliverable=True)
            return Outcome("failed", attempt_id, code=exc.code)
        except ChannelRefused as exc:
            settle("failed", exc.code, "denied", undeliverable=True)
            raise TerminalError(exc.code) from None
        except ChannelError as exc:
            settle("unknown", exc.code, "failure", undeliverable=False)
            return Outcome("unknown", attempt_id, code=exc.code)
        with self.db.tenant_session(organization_id) as session:
            attempt = session.get(OutreachAttempt, attempt_id)
            if attempt is not None:
                _record_sent(session, attempt, result, self.clock())
        return Outcome("sent", attempt_id)
