"""The missed-payment notice of a payment plan, by e-mail.

RULES.md section 8 / HIPAA-CONTENT-CLASS: the subject and From name are C0 (the neutral
billing display name, PLAT-NEUTRAL-NAME; no amount, no "past due"); the body is C0-C1:
the missed amount, its due date, how to pay and where to ask for financial help. Never a
service, a date of service, a provider, the account number or the patient's name.

`PlanNoticeSender` is the worker's `plan_notice_sender` resource: it builds the notice and
hands it to `carecollect.outreach.transactional`, which re-checks consent and compliance
(a notice is a collection communication), the e-mail vendor's BAA, and sends it once.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from carecollect.errors import NotFound
from carecollect.patient.models import Guarantor
from carecollect.payment.receipts import dollars
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.tenant.models import Organization

if TYPE_CHECKING:
    from carecollect.outreach.transactional import (
        Outcome,
        TransactionalEmail,
        TransactionalSender,
    )

NOTICE_TEMPLATE = "plan_missed_notice_email"
NOTICE_CONTAINS = ("neutral_notice", "practice_name_neutral", "balance_amount",
                   "statement_date")

# A collection notice waits while a dispute, a cease request or a hardship request is open.
NOTICE_SUPPRESSED_BY = ("dispute", "cease_requested", "hardship")

_TEXT = {
    "en": {
        "subject": "A message from {name}",
        "body": (
            "We did not receive the payment of {amount} that was due on {due} under your "
            "payment plan.\n\n"
            "You can still pay it online through the link in your latest statement, or call "
            "us at {phone}. Your plan stays in place while you catch up.\n\n"
            "If paying is hard right now, ask us about financial help: we can pause the "
            "plan while we look at your request.\n\n"
            "{name}"
        ),
    },
    "es": {
        "subject": "Un mensaje de {name}",
        "body": (
            "No recibimos el pago de {amount} que vencía el {due} según su plan de pagos.\n\n"
            "Todavía puede pagarlo en línea con el enlace de su último estado de cuenta, o "
            "llamarnos al {phone}. Su plan sigue vigente mientras se pone al día.\n\n"
            "Si ahora le cuesta pagar, pregúntenos por la ayuda financiera: podemos pausar "
            "el plan mientras revisamos su solicitud.\n\n"
            "{name}"
        ),
    },
}


def notice_content(session: Session, installment_id: uuid.UUID, *, callback_phone: str,
                   language: str | None = None) -> TransactionalEmail:
    """The notice for one missed installment, in the guarantor's preferred language."""
    from carecollect.outreach.transactional import TransactionalEmail

    installment = session.get(PlanInstallment, installment_id)
    plan = session.get(PaymentPlan, installment.plan_id) if installment is not None else None
    if installment is None or plan is None:
        raise NotFound("no such installment")
    org = session.get(Organization, plan.organization_id)
    if org is None:
        raise NotFound("no such organization")
    if language is None:
        guarantor = session.get(Guarantor, plan.guarantor_id)
        language = guarantor.preferred_language if guarantor is not None else "en"
    language = language if language in _TEXT else "en"
    text = _TEXT[language]
    name = org.billing_display_name
    body = text["body"].format(amount=dollars(installment.amount_cents - installment.paid_cents),
                               due=installment.due_on.isoformat(), phone=callback_phone,
                               name=name)
    return TransactionalEmail(template_key=NOTICE_TEMPLATE,
                              subject=text["subject"].format(name=name), from_name=name,
                              text_body=body + "\n", language=language,
                              contains=NOTICE_CONTAINS, account_id=plan.account_id,
                              suppressed_by_flags=NOTICE_SUPPRESSED_BY)


class PlanNoticeSender:
    """The worker's `plan_notice_sender` resource (see the module docstring)."""

    def __init__(self, transactional: TransactionalSender) -> None:
        self.transactional = transactional

    def __call__(self, organization_id: uuid.UUID, guarantor_id: uuid.UUID,
                 installment_id: uuid.UUID, idempotency_key: str) -> Outcome:
        phone = self.transactional.resources.settings.callback_phone
        with self.transactional.db.tenant_session(organization_id) as session:
            email = notice_content(session, installment_id, callback_phone=phone)
        return self.transactional.send(organization_id, guarantor_id, email, idempotency_key)
