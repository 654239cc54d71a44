"""Portal rules: issue and revoke payment links, check a visitor's identity with rate
limits and lockout, and run the server-side patient session.

Every function takes the session first and keyword-only arguments after; none commits.
The portal holds no payment rules of its own: bills, payments and plans come from the
ledger, payment and payment_plan services, always scoped to the session's guarantor.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from carecollect.audit import Actor, Subject, record
from carecollect.errors import BadInput, Forbidden, NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.kit.ids import uuid7
from carecollect.ledger.models import Account
from carecollect.payment.models import Payment
from carecollect.payment.processor import PaymentProcessor
from carecollect.payment_plan.models import PaymentPlan
from carecollect.portal import repository
from carecollect.portal.bill import BillLine, ChargeFacts, CreditFacts, itemize, service_key
from carecollect.portal.config import PortalSettings
from carecollect.portal.i18n import normalize_language
from carecollect.portal.models import PortalLink, PortalSession, PortalVerificationAttempt

TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 256 bits, well above the 128-bit floor
MAX_TOKEN_LENGTH = 100


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def client_key(secret: bytes, address: str | None) -> str:
    """A keyed hash of the client address: counts per address without storing it."""
    return hmac.new(secret, f"portal-client:{address or '-'}".encode(), hashlib.sha256).hexdigest()


def plausible_token(token: str) -> bool:
    """Shape check before any lookup (URL-safe base64 of the expected length)."""
    if not 40 <= len(token) <= MAX_TOKEN_LENGTH:
        return False
    return all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in token)


# -- links --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLink:
    link_id: uuid.UUID
    token: str
    url: str
    expires_at: datetime


def link_path(token: str) -> str:
    return f"/pay/{token}"


def new_link(
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    guarantor_id: uuid.UUID,
    ttl: timedelta,
    now: datetime,
    purpose: str = "payment",
) -> tuple[PortalLink, str]:
    """An unsaved link row and its token (256 random bits; only the SHA-256 is stored).
    The caller adds the row and records `portal.link_issue` with `link_row_subject` and
    `link_issue_details` (`issue_link` does both; the dispatcher batches them)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = PortalLink(
        id=uuid7(),
        organization_id=organization_id,
        guarantor_id=guarantor_id,
        token_hash=sha256_hex(token),
        created_at=now,
        expires_at=now + ttl,
        created_by=f"{actor.type}:{actor.id}"[:64],
        purpose=purpose,
        failed_attempts=0,
    )
    return row, token


def link_row_subject(row: PortalLink) -> Subject:
    return Subject("portal_link", row.id, organization_id=row.organization_id,
                   patient_id=row.guarantor_id)


def link_issue_details(row: PortalLink) -> dict[str, str]:
    return {"expires_at": row.expires_at.isoformat(), "purpose": row.purpose}


def issue_link(
    session: Session,
    *,
    actor: Actor,
    organization_id: uuid.UUID,
    guarantor_id: uuid.UUID,
    ttl: timedelta,
    now: datetime,
    base_url: str = "",
    purpose: str = "payment",
) -> IssuedLink:
    """A new opaque link for one guarantor; the token is returned once and stored hashed.

    Tenant session of `organization_id`. Audited as `portal.link_issue` (ids only).
    """
    if ttl <= timedelta(0):
        raise BadInput("the link lifetime must be positive")
    if not _guarantor_exists(session, guarantor_id):
        raise NotFound("no such guarantor")
    row, token = new_link(actor=actor, organization_id=organization_id,
                          guarantor_id=guarantor_id, ttl=ttl, now=now, purpose=purpose)
    session.add(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="portal.link_issue",
        subject=link_row_subject(row),
        details=link_issue_details(row),
    )
    url = base_url.rstrip("/") + link_path(token)
    return IssuedLink(link_id=row.id, token=token, url=url, expires_at=row.expires_at)


MESSAGE_ACTOR = Actor.system("outreach.dispatch")


def message_link(
    session: Session,
    *,
    organization_id: uuid.UUID,
    guarantor_id: uuid.UUID,
    now: datetime,
    base_url: str,
    ttl: timedelta | None = None,
) -> str:
    """The payment link to put in an outreach message (`payment_url` / `portal_url`): a
    new opaque link per message, so each can expire or be revoked on its own. For the
    dispatcher's lazy template variables (issued only when a template uses the link)."""
    return issue_link(
        session, actor=MESSAGE_ACTOR, organization_id=organization_id,
        guarantor_id=guarantor_id, ttl=ttl or PortalSettings().link_ttl, now=now,
        base_url=base_url,
    ).url


def revoke_link(
    session: Session, *, actor: Actor, link_id: uuid.UUID, now: datetime, reason: str = "revoked"
) -> PortalLink:
    """Revoke a link and end every session opened through it. Audited."""
    row = repository.link(session, link_id)
    if row is None:
        raise NotFound("no such link")
    if row.revoked_at is None:
        row.revoked_at = now
        row.revoke_reason = reason[:32]
    for live in repository.live_sessions_of_link(session, row.id):
        live.revoked_at = now
        live.revoke_reason = "link_revoked"
    record(
        session,
        actor=actor,
        action="portal.link_revoke",
        subject=Subject("portal_link", row.id, organization_id=row.organization_id,
                        patient_id=row.guarantor_id),
        details={"reason": reason[:32]},
    )
    session.flush()
    return row


def revoke_links_of_guarantor(
    session: Session, *, actor: Actor, guarantor_id: uuid.UUID, now: datetime
) -> int:
    """Revoke every live link of a guarantor; returns how many were revoked."""
    count = 0
    for row in repository.links_of_guarantor(session, guarantor_id):
        if row.revoked_at is None and row.expires_at > now:
            revoke_link(session, actor=actor, link_id=row.id, now=now)
            count += 1
    return count


def _guarantor_exists(session: Session, guarantor_id: uuid.UUID) -> bool:
    from carecollect.patient.models import Guarantor

    return session.get(Guarantor, guarantor_id) is not None


@dataclass(frozen=True)
class LinkLookup:
    """What the system-session lookup of a token found (ids only)."""

    link_id: uuid.UUID
    organization_id: uuid.UUID
    guarantor_id: uuid.UUID


def find_link(session: Session, *, token: str, now: datetime) -> LinkLookup | None:
    """The live link of a token (system session), or None for unknown, expired or revoked
    tokens alike: the caller shows one neutral page for all of them (no oracle)."""
    if not plausible_token(token):
        return None
    row = repository.link_by_token_hash(session, sha256_hex(token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return LinkLookup(link_id=row.id, organization_id=row.organization_id,
                      guarantor_id=row.guarantor_id)


def link_subject(found: LinkLookup) -> Subject:
    """The audit subject of a link (the guarantor is the patient concerned)."""
    return Subject("portal_link", found.link_id, organization_id=found.organization_id,
                   patient_id=found.guarantor_id)


# -- identity check -----------------------------------------------------------------------


def fold_text(value: str) -> str:
    """Case, spaces, punctuation and accents folded away: "Núñez-Ortiz " == "nunez ortiz"."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in stripped.casefold() if ch.isalnum())


def parse_birth_date(year: str, month: str, day: str) -> date | None:
    """A calendar date from three form fields, or None when not a real date."""
    try:
        return date(int(year.strip()), int(month.strip()), int(day.strip()))
    except ValueError:
        return None


def normalize_zip5(value: str) -> str | None:
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) not in (5, 9):
        return None
    return digits[:5]


@dataclass(frozen=True)
class VerificationInput:
    last_name: str
    date_of_birth: date | None
    zip5: str | None


class VerificationOutcome:
    SUCCESS = "success"
    FAILURE = "failure"
    LOCKED = "locked"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_LINK = "unknown_link"


def address_limited(
    session: Session, *, client: str, now: datetime, settings: PortalSettings
) -> bool:
    """Whether this client address used up its attempts in the window (system session)."""
    since = now - settings.window
    used = repository.attempts_by_client_since(session, client, since)
    return used >= settings.address_attempts_per_window


def note_attempt(
    session: Session,
    *,
    client: str,
    outcome: str,
    now: datetime,
    link_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> None:
    """Count one attempt for rate limiting (system session; no values, no address)."""
    repository.add_attempt(
        session,
        PortalVerificationAttempt(
            id=uuid7(), attempted_at=now, client_key=client, link_id=link_id,
            organization_id=organization_id, outcome=outcome,
        ),
    )


def link_limited(
    session: Session, *, link_id: uuid.UUID, now: datetime, settings: PortalSettings
) -> bool:
    since = now - settings.window
    return repository.attempts_by_link_since(session, link_id, since) >= (
        settings.link_attempts_per_window
    )


def verify_identity(
    session: Session,
    *,
    keys: OrganizationKeys,
    link_id: uuid.UUID,
    given: VerificationInput,
    now: datetime,
    settings: PortalSettings,
) -> str:
    """Compare what the visitor typed with the guarantor's sealed fields (tenant session).

    Returns a `VerificationOutcome`. Every call is audited as `portal.login` with the
    outcome and, on failure, the count; never the values. After `max_failures` failures
    in a row the link locks for `lockout` (NIST SP 800-63B 5.2.2).
    """
    link = repository.lock_link(session, link_id)
    if link is None or link.revoked_at is not None or link.expires_at <= now:
        return VerificationOutcome.UNKNOWN_LINK
    subject = Subject("portal_link", link.id, organization_id=link.organization_id,
                      patient_id=link.guarantor_id)
    actor = Actor.system("portal.verify")
    if link.locked_until is not None and link.locked_until > now:
        record(session, actor=actor, action="portal.login", subject=subject,
               outcome="denied", details={"reason": "locked"})
        return VerificationOutcome.LOCKED
    matched, method = _matches(session, keys=keys, guarantor_id=link.guarantor_id, given=given)
    if matched:
        link.failed_attempts = 0
        link.locked_until = None
        link.last_verified_at = now
        record(session, actor=Actor.patient(link.guarantor_id), action="portal.login",
               subject=subject, details={"method": method})
        return VerificationOutcome.SUCCESS
    link.failed_attempts += 1
    details: dict[str, object] = {"reason": "mismatch", "method": method,
                                  "failures": link.failed_attempts}
    outcome = VerificationOutcome.FAILURE
    if link.failed_attempts >= settings.max_failures:
        link.locked_until = now + settings.lockout
        link.failed_attempts = 0
        details["locked"] = True
        outcome = VerificationOutcome.LOCKED
    record(session, actor=actor, action="portal.login", subject=subject,
           outcome="failure", details=details)
    session.flush()
    return outcome


def _matches(
    session: Session, *, keys: OrganizationKeys, guarantor_id: uuid.UUID, given: VerificationInput
) -> tuple[bool, str]:
    from carecollect.patient.models import ContactPoint, Guarantor
    from carecollect.patient.repository import patient_repository

    method = "dob" if given.date_of_birth is not None else "zip"
    guarantor = session.get(Guarantor, guarantor_id)
    if guarantor is None:
        return False, method
    cipher = keys.cipher()
    # Decrypt only to compare; nothing decrypted leaves this function. Both checks are
    # computed (constant work) so the time taken does not say which part was wrong.
    last_name = cipher.open_row(guarantor, "last_name") or ""
    name_ok = bool(given.last_name) and hmac.compare_digest(
        fold_text(last_name).encode(), fold_text(given.last_name).encode()
    )
    second_ok = False
    if given.date_of_birth is not None:
        stored = cipher.open_row(guarantor, "date_of_birth") or ""
        second_ok = hmac.compare_digest(stored.encode(), given.date_of_birth.isoformat().encode())
    elif given.zip5 is not None:
        points: list[ContactPoint] = [
            p for p in patient_repository.contact_points_of(session, guarantor_id)
            if p.kind == "postal" and p.postal_code is not None
        ]
        for point in points:
            stored_zip = cipher.open_row(point, "postal_code") or ""
            if hmac.compare_digest(stored_zip[:5].encode(), given.zip5.encode()):
                second_ok = True
    return name_ok and second_ok, method


# -- sessions -----------------------------------------------------------------------------


def split_cookie(value: str) -> tuple[uuid.UUID, str] | None:
    """(organization id, token) of a portal cookie `<org hex>.<token>`, or None."""
    org_hex, _, token = value.partition(".")
    if len(org_hex) != 32 or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        return uuid.UUID(hex=org_hex), token
    except ValueError:
        return None


def start_session(
    session: Session,
    *,
    link_id: uuid.UUID,
    language: str,
    now: datetime,
    settings: PortalSettings,
) -> tuple[PortalSession, str]:
    """A new verified session for the link's guarantor; returns it and the cookie value.

    A fresh random token at verification (no session fixation); only its SHA-256 is kept.
    """
    link = repository.link(session, link_id)
    if link is None:
        raise NotFound("no such link")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = PortalSession(
        id=uuid7(),
        organization_id=link.organization_id,
        guarantor_id=link.guarantor_id,
        link_id=link.id,
        token_hash=sha256_hex(token),
        csrf_secret=secrets.token_hex(32),
        language=normalize_language(language),
        created_at=now,
        verified_at=now,
        last_seen_at=now,
        idle_expires_at=now + settings.idle_timeout,
        absolute_expires_at=now + settings.absolute_timeout,
    )
    session.add(row)
    session.flush()
    return row, f"{link.organization_id.hex}.{token}"


def resolve_session(
    session: Session, *, token: str, now: datetime, settings: PortalSettings
) -> PortalSession | None:
    """The live session of a cookie token (tenant session), touched; or None.

    Idle and absolute expiry end the session server-side, so an old cookie stays dead.
    """
    row = repository.session_by_token_hash(session, sha256_hex(token))
    if row is None or row.revoked_at is not None:
        return None
    if now >= row.absolute_expires_at:
        row.revoked_at, row.revoke_reason = now, "absolute_timeout"
        return None
    if now >= row.idle_expires_at:
        row.revoked_at, row.revoke_reason = now, "idle_timeout"
        return None
    link = repository.link(session, row.link_id) if row.link_id is not None else None
    if link is not None and link.revoked_at is not None:
        row.revoked_at, row.revoke_reason = now, "link_revoked"
        return None
    row.last_seen_at = now
    row.idle_expires_at = min(now + settings.idle_timeout, row.absolute_expires_at)
    return row


def end_session(session: Session, *, session_id: uuid.UUID, now: datetime) -> None:
    """Log out: the session is revoked server-side. Audited."""
    row = session.get(PortalSession, session_id)
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at, row.revoke_reason = now, "logout"
    record(
        session,
        actor=Actor.patient(row.guarantor_id),
        action="portal.logout",
        subject=Subject("portal_session", row.id, organization_id=row.organization_id,
                        patient_id=row.guarantor_id),
    )


def set_language(session: Session, *, session_id: uuid.UUID, language: str) -> str:
    row = session.get(PortalSession, session_id)
    if row is None:
        raise NotFound("no such session")
    row.language = normalize_language(language)
    return row.language


# -- the bill -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSummary:
    plan_id: uuid.UUID
    status: str
    autopay: bool
    total_cents: int
    installment_count: int


@dataclass(frozen=True)
class AccountBill:
    account_id: uuid.UUID
    label: str  # "ending in 5001": the last four of the account number only
    balance_cents: int
    lines: list[BillLine]
    plan: PlanSummary | None


@dataclass(frozen=True)
class PaymentSummary:
    payment_id: uuid.UUID
    receipt_number: str
    amount_cents: int
    received_on: date  # in the organization's zone, as on the e-mailed receipt
    status: str


def _local_date(session: Session, organization_id: uuid.UUID, when: datetime) -> date:
    from zoneinfo import ZoneInfo

    from carecollect.tenant.models import Organization

    org = session.get(Organization, organization_id)
    return when.astimezone(ZoneInfo(org.timezone if org else "UTC")).date()


@dataclass(frozen=True)
class Bill:
    accounts: list[AccountBill]
    payments: list[PaymentSummary]

    @property
    def total_cents(self) -> int:
        return sum(max(a.balance_cents, 0) for a in self.accounts)


LIVE_PLAN_STATUSES = ("active", "paused")


def read_bill(
    session: Session, *, keys: OrganizationKeys, guarantor_id: uuid.UUID
) -> Bill:
    """The guarantor's itemized bill (tenant session), decrypted for the patient and
    audited as `portal.view` (counts only)."""
    from carecollect.ledger.service import ledger_service
    from carecollect.payment.repository import payment_repository

    cipher = keys.cipher()
    accounts = repository.accounts_of_guarantor(session, guarantor_id)
    entries = repository.entries_of_accounts(session, [a.id for a in accounts])
    plans = [p for p in repository.plans_of_guarantor(session, guarantor_id)
             if p.status in LIVE_PLAN_STATUSES]
    out: list[AccountBill] = []
    line_count = 0
    for account in accounts:
        mine = [e for e in entries if e.account_id == account.id]
        charges = [ChargeFacts(e.id, e.posted_at, e.amount_cents, e.patient_id)
                   for e in mine if e.kind == "charge"]
        credits = [CreditFacts(e.kind, e.amount_cents, e.posted_at, e.applies_to_entry_id,
                               e.patient_id) for e in mine if e.kind != "charge"]
        # The payment domain's own figure of what is open on each charge (the one its
        # allocation uses), so the bill and a payment never disagree.
        open_cents = {c.entry_id: c.open_cents
                      for c in payment_repository.open_charges(session, account.id)}
        by_id = {e.id: e for e in mine}
        lines = []
        for amounts in itemize(charges, credits, open_cents):
            entry = by_id[amounts.entry_id]
            raw_date = cipher.open_row(entry, "service_date")
            lines.append(BillLine(
                entry_id=entry.id,
                service_key=service_key(cipher.open_row(entry, "procedure_codes")),
                description=(cipher.open_row(entry, "description") or "").strip(),
                service_date=date.fromisoformat(raw_date) if raw_date else None,
                amounts=amounts,
            ))
        line_count += len(lines)
        number = cipher.open_row(account, "account_number") or ""
        plan = next((p for p in plans if p.account_id == account.id), None)
        out.append(AccountBill(
            account_id=account.id,
            label=number[-4:],
            balance_cents=ledger_service.balance_cents(session, account_id=account.id),
            lines=lines,
            plan=PlanSummary(plan.id, plan.status, plan.autopay, plan.total_cents,
                             plan.installment_count) if plan else None,
        ))
    payments = [
        PaymentSummary(p.id, p.receipt_number, p.amount_cents,
                       _local_date(session, p.organization_id, p.received_at), p.status)
        for p in repository.payments_of_guarantor(session, guarantor_id)
    ]
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="portal.view",
        subject=Subject("guarantor", guarantor_id, organization_id=keys.organization_id,
                        patient_id=guarantor_id),
        details={"page": "bill", "accounts": len(out), "lines": line_count,
                 "fields": ["service_date", "procedure_codes", "description",
                            "account_number"]},
    )
    return Bill(out, payments)


def own_account(session: Session, *, guarantor_id: uuid.UUID, account_id: uuid.UUID) -> Account:
    """The session guarantor's account; another guarantor's answers like a missing one."""
    account = repository.account_of_guarantor(session, guarantor_id, account_id)
    if account is None:
        raise NotFound("no such account")
    return account


def account_balance(session: Session, *, guarantor_id: uuid.UUID, account_id: uuid.UUID) -> int:
    from carecollect.ledger.service import ledger_service

    own_account(session, guarantor_id=guarantor_id, account_id=account_id)
    return ledger_service.balance_cents(session, account_id=account_id)


def view_account(
    session: Session, *, guarantor_id: uuid.UUID, account_id: uuid.UUID, page: str
) -> int:
    """The balance shown on the pay and plan pages; the read is audited (`portal.view`)."""
    balance = account_balance(session, guarantor_id=guarantor_id, account_id=account_id)
    account = own_account(session, guarantor_id=guarantor_id, account_id=account_id)
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="portal.view",
        subject=Subject("account", account.id, organization_id=account.organization_id,
                        patient_id=guarantor_id),
        details={"page": page},
    )
    return balance


# -- paying -------------------------------------------------------------------------------

# The payment domain's payer-facing messages, mapped to catalog keys so the portal can say
# them in the session's language. An unknown message is shown as written (English).
AMOUNT_MESSAGES: dict[str, str] = {
    "The amount must be more than zero.": "amount.positive",
    "Enter an amount in dollars and cents, like 25.00.": "amount.format",
    "The amount is more than what is owed on this account.": "amount.over",
    "There is nothing to pay on this account.": "amount.nothing",
    "The amount is too large.": "amount.over",
}


class PaymentRefused(Exception):  # noqa: N818 - reads as the event
    """A payment the portal refused or the processor declined: nothing was posted.
    `message_key` is a catalog key, or None with `message` shown as written."""

    def __init__(self, message_key: str | None, message: str = "") -> None:
        super().__init__(message_key or message)
        self.message_key = message_key
        self.message = message


def check_amount(
    session: Session, *, guarantor_id: uuid.UUID, account_id: uuid.UUID, amount: str
) -> int:
    """Parse and bound an amount typed by the payer (cents), or PaymentRefused."""
    from carecollect.payment.service import check_amount_against_balance, parse_amount_cents

    balance = account_balance(session, guarantor_id=guarantor_id, account_id=account_id)
    try:
        cents = parse_amount_cents(amount)
        check_amount_against_balance(cents, balance)
    except BadInput as exc:
        raise PaymentRefused(AMOUNT_MESSAGES.get(exc.message), exc.message) from None
    return cents


def pay(
    session: Session,
    *,
    keys: OrganizationKeys,
    guarantor_id: uuid.UUID,
    processor: PaymentProcessor,
    account_id: uuid.UUID,
    amount: str,
    payment_method: str,
    idempotency_key: str,
    now: datetime,
) -> Payment | PaymentRefused:
    """Pay all or part of an account's balance with a processor method token.

    The amount is refused (negative, zero, non-numeric, over the balance) before any
    processor call, so a refusal stores nothing (raised: the caller's transaction rolls
    back). A decline is returned, not raised, so that the caller commits its audit event
    (`payment.attempt`, outcome failure). The idempotency key comes from the form, so a
    double submit is one charge and one posting (payment is unique by processor id).
    """
    from carecollect.payment.processor import PaymentDeclined, ProcessorUnavailable
    from carecollect.payment.service import payment_service

    cents = check_amount(session, guarantor_id=guarantor_id, account_id=account_id,
                         amount=amount)
    try:
        result, payment = payment_service.start_payment(
            session, keys=keys, actor=Actor.patient(guarantor_id), processor=processor,
            account_id=account_id, amount=cents, idempotency_key=idempotency_key,
            payment_method=payment_method, source="portal", now=now,
            for_guarantor=guarantor_id,
        )
    except PaymentDeclined:
        raise PaymentRefused("pay.declined") from None
    except ProcessorUnavailable:
        raise PaymentRefused("pay.unavailable") from None
    except BadInput as exc:
        raise PaymentRefused(AMOUNT_MESSAGES.get(exc.message), exc.message) from None
    if payment is None:
        return PaymentRefused("pay.declined" if result.status == "failed" else "pay.unavailable")
    return payment


CHECKOUT_PRODUCT_NAME = "Account payment"  # shown on the processor's page: neutral


def start_checkout(
    session: Session,
    *,
    keys: OrganizationKeys,
    guarantor_id: uuid.UUID,
    processor: PaymentProcessor,
    account_id: uuid.UUID,
    amount: str,
    idempotency_key: str,
    now: datetime,
    return_url: str,
) -> str:
    """A hosted checkout page of a real processor (Stripe Checkout) for this amount; returns
    its URL. The card is typed on the processor's page (PCI DSS SAQ A); the payment posts
    when the processor's signed webhook arrives (docs/PAYMENTS.md). Metadata carries ids
    only, and the product name is neutral (PLAT-NEUTRAL-NAME)."""
    from carecollect.payment.processor import ProcessorUnavailable
    from carecollect.payment.service import require_processor_baa

    cents = check_amount(session, guarantor_id=guarantor_id, account_id=account_id,
                         amount=amount)
    account = own_account(session, guarantor_id=guarantor_id, account_id=account_id)
    create = getattr(processor, "create_checkout", None)
    if create is None:
        raise PaymentRefused("pay.unavailable")
    # HIPAA-BAA (45 CFR 164.502(e)): an off-machine processor only with an active BAA.
    try:
        require_processor_baa(session, processor, now)
    except Forbidden:
        raise PaymentRefused("pay.not_offered") from None
    metadata = {"organization_id": str(keys.organization_id), "account_id": str(account.id),
                "guarantor_id": str(guarantor_id), "source": "portal"}
    try:
        result = create(amount_cents=cents, idempotency_key=idempotency_key,
                        metadata=metadata, success_url=return_url, cancel_url=return_url,
                        product_name=CHECKOUT_PRODUCT_NAME)
    except ProcessorUnavailable:
        raise PaymentRefused("pay.unavailable") from None
    url = getattr(result, "redirect_url", None)
    if not isinstance(url, str) or not url.startswith("https://"):
        raise PaymentRefused("pay.unavailable")
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="payment.checkout",
        subject=Subject("account", account.id, organization_id=keys.organization_id,
                        patient_id=guarantor_id),
        details={"amount_cents": cents, "processor": processor.name, "source": "portal"},
    )
    return url


@dataclass(frozen=True)
class ReceiptView:
    payment_id: uuid.UUID
    account_id: uuid.UUID
    receipt_number: str
    received_on: date
    amount_cents: int
    method: str | None  # "Visa ending in 4242"
    remaining_cents: int
    status: str


def read_receipt(
    session: Session, *, guarantor_id: uuid.UUID, payment_id: uuid.UUID
) -> ReceiptView:
    """The receipt of one of the guarantor's payments (C0-C1 content only). Audited."""
    from carecollect.ledger.service import ledger_service

    payment = repository.payment_of_guarantor(session, guarantor_id, payment_id)
    if payment is None:
        raise NotFound("no such payment")
    method = (repository.method_of_guarantor(session, guarantor_id, payment.payment_method_id)
              if payment.payment_method_id else None)
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="portal.view",
        subject=Subject("payment", payment.id, organization_id=payment.organization_id,
                        patient_id=guarantor_id),
        details={"page": "receipt"},
    )
    return ReceiptView(
        payment_id=payment.id, account_id=payment.account_id,
        receipt_number=payment.receipt_number,
        received_on=_local_date(session, payment.organization_id, payment.received_at),
        amount_cents=payment.amount_cents,
        method=f"{method.brand.title()} •••• {method.last4}" if method else None,
        remaining_cents=ledger_service.balance_cents(session, account_id=payment.account_id),
        status=payment.status,
    )


def receipt_document(
    session: Session, *, guarantor_id: uuid.UUID, payment_id: uuid.UUID, language: str
) -> tuple[str, bytes]:
    """(file name, PDF bytes) of one of the guarantor's receipts. Audited."""
    from carecollect.payment.receipts import receipt_pdf

    payment = repository.payment_of_guarantor(session, guarantor_id, payment_id)
    if payment is None:
        raise NotFound("no such payment")
    pdf = receipt_pdf(session, payment.id, for_guarantor=guarantor_id, language=language)
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="portal.download",
        subject=Subject("payment", payment.id, organization_id=payment.organization_id,
                        patient_id=guarantor_id),
        details={"document": "receipt"},
    )
    return f"receipt-{payment.receipt_number}.pdf", pdf


# -- payment plans ------------------------------------------------------------------------

OFFERED_COUNTS = (2, 3, 4, 6, 9, 12, 18, 24, 36, 48, 60)


@dataclass(frozen=True)
class PlanOption:
    installments: int
    down_payment_cents: int
    monthly_cents: int  # the largest monthly amount (they differ by a cent at most)
    total_cents: int
    first_due_on: date


@dataclass(frozen=True)
class PlanChoices:
    account_id: uuid.UUID
    balance_cents: int
    options: list[PlanOption]
    available: bool  # self-service allowed, a balance, and no open plan


def plan_choices(
    session: Session, *, guarantor_id: uuid.UUID, account_id: uuid.UUID, now: datetime
) -> PlanChoices:
    """The plans the organization's policy allows for this account, as PlanService quotes
    them (nothing stored)."""
    from carecollect.payment_plan.schedule import max_installments, required_down_payment
    from carecollect.payment_plan.service import plan_service

    balance = account_balance(session, guarantor_id=guarantor_id, account_id=account_id)
    _, terms = plan_service.policy(session)
    live = [p for p in repository.plans_of_guarantor(session, guarantor_id)
            if p.account_id == account_id and p.status in LIVE_PLAN_STATUSES]
    if balance <= 0 or not terms.allow_self_service or live:
        return PlanChoices(account_id, balance, [], False)
    financed = balance - required_down_payment(terms, balance) + terms.setup_fee_cents
    limit = max_installments(terms, balance, financed)
    counts = sorted({n for n in OFFERED_COUNTS if n <= limit} | ({limit} if limit > 1 else set()))
    options = []
    for count in counts:
        schedule = plan_service.quote(session, account_id=account_id, now=now,
                                      installments=count)
        monthly = [i for i in schedule.installments if not i.is_down_payment]
        options.append(PlanOption(
            installments=count, down_payment_cents=schedule.down_payment_cents,
            monthly_cents=max(i.amount_cents for i in monthly) if monthly else 0,
            total_cents=schedule.total_cents,
            first_due_on=schedule.installments[0].due_on,
        ))
    return PlanChoices(account_id, balance, options, bool(options))


def create_plan(
    session: Session,
    *,
    keys: OrganizationKeys,
    guarantor_id: uuid.UUID,
    account_id: uuid.UUID,
    installments: int,
    processor: PaymentProcessor | None,
    autopay_method: str | None,
    idempotency_key: str,
    now: datetime,
) -> PaymentPlan:
    """A self-service plan with one of the offered installment counts; with autopay, the
    card is saved through the processor first (the payer's express authorization is the
    ticked box, recorded as `autopay_consented_at`). Plan rules stay in PlanService."""
    from carecollect.payment.processor import PaymentDeclined, ProcessorUnavailable
    from carecollect.payment.service import payment_service
    from carecollect.payment_plan.service import plan_service

    choices = plan_choices(session, guarantor_id=guarantor_id, account_id=account_id, now=now)
    if not choices.available:
        raise PaymentRefused("plan.not_available")
    if installments not in {o.installments for o in choices.options}:
        raise PaymentRefused("plan.choose_option")
    actor = Actor.patient(guarantor_id)
    method_id = None
    if autopay_method is not None:
        if processor is None:
            raise PaymentRefused("pay.unavailable")
        try:
            _setup, method = payment_service.setup_method(
                session, keys=keys, actor=actor, processor=processor,
                guarantor_id=guarantor_id, idempotency_key=idempotency_key,
                payment_method=autopay_method, autopay_consent=True, now=now,
            )
        except PaymentDeclined:
            raise PaymentRefused("pay.declined") from None
        except ProcessorUnavailable:
            raise PaymentRefused("pay.unavailable") from None
        if method is None:
            raise PaymentRefused("pay.declined")
        method_id = method.id
    try:
        return plan_service.create_plan(
            session, keys=keys, actor=actor, account_id=account_id, created_by="patient",
            now=now, installments=installments, payment_method_id=method_id,
            for_guarantor=guarantor_id,
        )
    except BadInput as exc:
        raise PaymentRefused(None, exc.message) from None


@dataclass(frozen=True)
class PlanView:
    plan_id: uuid.UUID
    account_id: uuid.UUID
    status: str
    autopay: bool
    method: str | None
    total_cents: int
    schedule: list[tuple[int, date, int, str]]  # sequence, due on, cents, status


def read_plan(session: Session, *, guarantor_id: uuid.UUID, plan_id: uuid.UUID) -> PlanView:
    plan = repository.plan_of_guarantor(session, guarantor_id, plan_id)
    if plan is None:
        raise NotFound("no such plan")
    method = (repository.method_of_guarantor(session, guarantor_id, plan.payment_method_id)
              if plan.payment_method_id else None)
    record(
        session,
        actor=Actor.patient(guarantor_id),
        action="portal.view",
        subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                        patient_id=guarantor_id),
        details={"page": "plan"},
    )
    return PlanView(
        plan_id=plan.id, account_id=plan.account_id, status=plan.status, autopay=plan.autopay,
        method=f"{method.brand.title()} •••• {method.last4}" if method else None,
        total_cents=plan.total_cents,
        schedule=[(i.sequence, i.due_on, i.amount_cents, i.status)
                  for i in repository.installments_of_plan(session, plan.id)],
    )


def agreement_document(
    session: Session, *, keys: OrganizationKeys, guarantor_id: uuid.UUID, plan_id: uuid.UUID
) -> tuple[str, bytes]:
    """(file name, PDF) of the guarantor's own plan agreement (its PHI read is audited by
    the agreement module; the download is audited here)."""
    from carecollect.payment_plan.agreement import agreement_pdf

    plan = repository.plan_of_guarantor(session, guarantor_id, plan_id)
    if plan is None:
        raise NotFound("no such plan")
    actor = Actor.patient(guarantor_id)
    pdf = agreement_pdf(session, keys=keys, actor=actor, plan_id=plan.id)
    record(
        session,
        actor=actor,
        action="portal.download",
        subject=Subject("payment_plan", plan.id, organization_id=plan.organization_id,
                        patient_id=guarantor_id),
        details={"document": "plan_agreement"},
    )
    return "payment-plan-agreement.pdf", pdf
