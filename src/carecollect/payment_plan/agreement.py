"""The plan agreement PDF (ReportLab), delivered in the portal and to staff.

A plan agreement is a written contract creating (or restructuring) a health-care debt:
it states the amounts, the dates, 0% interest, the fee (none unless the account agreement
authorizes one: REGF-UNAUTH-AMOUNT), what happens on a missed payment and on default,
the autopay authorization when autopay is on, and for California guarantors from
2025-07-01 the exact statutory term of Cal. Civ. Code 1785.27(c)(1) (STATE-CA-MEDDEBT-CR).
The PDF is a secure-portal document (C0-C2 allowed), but it carries no clinical content.
"""

from __future__ import annotations

import io
import uuid
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy.orm import Session

from carecollect.audit import Actor
from carecollect.errors import NotFound
from carecollect.kit.crypto.keys import OrganizationKeys
from carecollect.patient.service import patient_service
from carecollect.payment.models import SavedPaymentMethod
from carecollect.payment.receipts import dollars
from carecollect.payment_plan.models import PlanPolicy
from carecollect.payment_plan.repository import plan_repository
from carecollect.payment_plan.service import CA_MEDICAL_DEBT_TERM, terms_of
from carecollect.tenant.models import Organization


def agreement_text(session: Session, *, keys: OrganizationKeys, actor: Actor,
                   plan_id: uuid.UUID) -> list[tuple[str, str]]:
    """The agreement as (style, text) paragraphs; the PDF renders exactly these."""
    plan = plan_repository.plan(session, plan_id)
    if plan is None:
        raise NotFound("no such plan")
    org = session.get(Organization, plan.organization_id)
    if org is None:
        raise NotFound("no such organization")
    terms = terms_of(session.get(PlanPolicy, plan.policy_id) if plan.policy_id else None)
    person = patient_service.read_guarantor(session, keys=keys, actor=actor,
                                            guarantor_id=plan.guarantor_id,
                                            purpose="plan_agreement")
    out = [
        ("Title", f"Payment plan agreement: {org.billing_display_name}"),
        ("Normal", f"Between {org.legal_name} (the practice) and "
                   f"{person.first_name} {person.last_name} (the responsible party)."),
        ("Normal", f"Agreement number {plan.id}. Made on {plan.start_on.isoformat()}."),
        ("Heading2", "What you agree to pay"),
        ("Normal", f"Total: {dollars(plan.total_cents)} in {plan.installment_count} "
                   f"payments. Interest: 0%. Fee: {dollars(plan.fee_cents)}."),
    ]
    if plan.fee_cents:
        out.append(("Normal", "The fee is charged because your account agreement allows it."))
    out.append(("Normal", "You may pay more, or pay off the whole balance, at any time, "
                          "with no penalty."))
    if plan.autopay:
        method = session.get(SavedPaymentMethod, plan.payment_method_id) \
            if plan.payment_method_id else None
        card = f"{method.brand.title()} ending in {method.last4}" if method else "your card"
        out += [("Heading2", "Automatic payments"),
                ("Normal", f"You authorize {org.billing_display_name} to charge {card} for "
                           "each payment below on its due date. You can cancel automatic "
                           "payments at any time in the portal or by calling the office.")]
    retries = ", ".join(str(d) for d in terms.retry_days) or "no"
    out += [
        ("Heading2", "If a payment is missed"),
        ("Normal", f"If an automatic payment fails we will try again {retries} days after "
                   f"the due date. A payment not made within {terms.grace_days} days of its "
                   "due date is missed and we will let you know. After "
                   f"{terms.misses_to_default} missed payments the plan ends and the rest "
                   "of the balance is due. If you are having trouble paying, ask for "
                   "financial help in the portal: we can pause or change the plan."),
    ]
    if plan.ca_medical_debt_term:
        out += [("Heading2", "California notice"), ("Normal", CA_MEDICAL_DEBT_TERM)]
    return out


def agreement_pdf(session: Session, *, keys: OrganizationKeys, actor: Actor,
                  plan_id: uuid.UUID) -> bytes:
    paragraphs = agreement_text(session, keys=keys, actor=actor, plan_id=plan_id)
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=LETTER, title="Payment plan agreement",
                            leftMargin=inch, rightMargin=inch, topMargin=inch,
                            bottomMargin=inch, invariant=True)
    story: list[object] = []
    for style, text in paragraphs:
        story += [Paragraph(escape(text), styles[style]), Spacer(1, 6)]
    rows = [["#", "Due date", "Amount"]] + [
        [str(i.sequence), i.due_on.isoformat(), dollars(i.amount_cents)]
        for i in plan_repository.installments(session, plan_id)]
    table = Table(rows, hAlign="LEFT")
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                               ("ALIGN", (2, 0), (2, -1), "RIGHT")]))
    story += [Paragraph("Payment schedule", styles["Heading2"]), table,
              Spacer(1, 24), Paragraph("Signature: ______________________  Date: ________",
                                       styles["Normal"])]
    doc.build(story)
    return buffer.getvalue()
