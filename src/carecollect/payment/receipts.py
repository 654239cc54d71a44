"""Receipt e-mail content.

RULES.md section 8 / HIPAA-CONTENT-CLASS: an unencrypted e-mail body may carry C0-C1
only (the neutral practice name, amounts, dates, a receipt number, the card's brand and
last four digits); never a service, a date of service, a provider, a procedure or a
diagnosis (C2). The subject and From name are C0: the neutral billing display name
(PLAT-NEUTRAL-NAME) and "Your payment receipt", with no amount.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from carecollect.errors import NotFound
from carecollect.ledger.service import ledger_service
from carecollect.patient.models import Guarantor
from carecollect.payment.models import Payment, SavedPaymentMethod
from carecollect.tenant.models import Organization

if TYPE_CHECKING:
    from carecollect.outreach.transactional import Outcome, TransactionalSender

# Content tags of the receipt body for the compliance engine (HIPAA-CONTENT-CLASS): the
# neutral name and notice (C0), amounts and a date (C1). Nothing clinical.
RECEIPT_CONTAINS = ("neutral_notice", "practice_name_neutral", "balance_amount",
                    "statement_date")
RECEIPT_TEMPLATE = "payment_receipt_email"

_TEXT = {
    "en": {
        "subject": "Your payment receipt",
        "lines": [
            "Thank you. We received your payment.",
            "",
            "Receipt number: {receipt}",
            "Date: {date}",
            "Amount paid: {amount}",
            "{method_line}",
            "Remaining balance: {balance}",
            "",
            "Questions? Reply to this e-mail or call the office.",
            "{name}",
        ],
        "method": "Paid with: {brand} ending in {last4}",
    },
    "es": {
        "subject": "Su recibo de pago",
        "lines": [
            "Gracias. Recibimos su pago.",
            "",
            "Número de recibo: {receipt}",
            "Fecha: {date}",
            "Monto pagado: {amount}",
            "{method_line}",
            "Saldo pendiente: {balance}",
            "",
            "¿Preguntas? Responda a este correo o llame a la oficina.",
            "{name}",
        ],
        "method": "Pagado con: {brand} terminada en {last4}",
    },
}


@dataclass(frozen=True, slots=True)
class ReceiptEmail:
    from_name: str
    subject: str
    text_body: str
    language: str
    account_id: uuid.UUID | None = None


def dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def receipt_content(session: Session, payment_id: object, *, language: str | None = None,
                    timezone: str | None = None) -> ReceiptEmail:
    """The receipt e-mail, in `language` or else the guarantor's preferred language."""
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound("no such payment")
    if language is None:
        guarantor = session.get(Guarantor, payment.guarantor_id)
        language = guarantor.preferred_language if guarantor is not None else "en"
    org = session.get(Organization, payment.organization_id)
    if org is None:
        raise NotFound("no such organization")
    text = _TEXT.get(language, _TEXT["en"])
    method = session.get(SavedPaymentMethod, payment.payment_method_id) \
        if payment.payment_method_id else None
    method_line = str(text["method"]).format(brand=method.brand.title(), last4=method.last4) \
        if method else ""
    zone = ZoneInfo(timezone or org.timezone)
    body = "\n".join(
        line.format(
            receipt=payment.receipt_number,
            date=payment.received_at.astimezone(zone).date().isoformat(),
            amount=dollars(payment.amount_cents),
            method_line=method_line,
            balance=dollars(ledger_service.balance_cents(session, account_id=payment.account_id)),
            name=org.billing_display_name,
        )
        for line in text["lines"] if line != "{method_line}" or method_line
    )
    return ReceiptEmail(from_name=org.billing_display_name, subject=str(text["subject"]),
                        text_body=body + "\n", language=language if language in _TEXT else "en",
                        account_id=payment.account_id)


def receipt_pdf(session: Session, payment_id: object, *, for_guarantor: object | None = None,
                language: str = "en") -> bytes:
    """The receipt as a PDF for the portal's "download receipt" (same C0-C1 content as the
    e-mail). With `for_guarantor`, another guarantor's payment answers like a missing one."""
    import io
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import LETTER
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    payment = session.get(Payment, payment_id)
    if payment is None or (for_guarantor is not None and payment.guarantor_id != for_guarantor):
        raise NotFound("no such payment")
    email = receipt_content(session, payment_id, language=language)
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=LETTER, title=email.subject, invariant=True)
    story = [Paragraph(escape(email.from_name), styles["Title"]),
             Paragraph(escape(email.subject), styles["Heading2"])]
    story += [Paragraph(escape(line) or "&nbsp;", styles["Normal"])
              for line in email.text_body.splitlines()]
    doc.build(story)
    return buffer.getvalue()


class ReceiptSender:
    """The worker's `receipt_sender` resource: e-mails a receipt through the outreach
    e-mail channel with its consent, compliance and BAA checks
    (`carecollect.outreach.transactional`). A receipt that may not be e-mailed (opt-out,
    dispute, no address, ...) is recorded as blocked and stays downloadable in the portal."""

    def __init__(self, transactional: TransactionalSender) -> None:
        self.transactional = transactional

    def __call__(self, organization_id: uuid.UUID, guarantor_id: uuid.UUID,
                 email: ReceiptEmail, idempotency_key: str) -> Outcome:
        from carecollect.outreach.transactional import TransactionalEmail

        return self.transactional.send(organization_id, guarantor_id, TransactionalEmail(
            template_key=RECEIPT_TEMPLATE, subject=email.subject, from_name=email.from_name,
            text_body=email.text_body, language=email.language, contains=RECEIPT_CONTAINS,
            account_id=email.account_id), idempotency_key)
