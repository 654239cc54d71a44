"""The account page lists each outreach decision with its rules, the plans and the card
payments; the compliance console counts blocked and re-timed attempts by rule."""

from __future__ import annotations

from datetime import date, timedelta

from carecollect.outreach.dispatch import create_attempt
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.payment.models import AutopayEnrollment, Payment, SavedPaymentMethod
from carecollect.payment_plan.models import PaymentPlan
from tests.web.conftest import Seed, Web, seed


def _history(web: Web, ids: Seed) -> None:
    tenant, now = web.tenant, web.clock()
    with web.db.tenant_session(tenant.id) as session:
        blocked = create_attempt(session, organization_id=tenant.id,
                                 guarantor_id=ids.guarantor_id, channel="sms",
                                 idempotency_key="a-1", contact_point_id=ids.phone_id,
                                 account_id=ids.account_id,
                                 scheduled_for=now - timedelta(days=1))
        blocked.state = "blocked"
        blocked.reasons = ["REGF-TIME-8TO9", "TCPA-CONSENT"]
        blocked.next_allowed_at = now + timedelta(hours=10)
        retimed = create_attempt(session, organization_id=tenant.id,
                                 guarantor_id=ids.guarantor_id, channel="sms",
                                 idempotency_key="a-2", contact_point_id=ids.phone_id,
                                 account_id=ids.account_id,
                                 scheduled_for=now - timedelta(days=2))
        retimed.state = "sent"
        retimed.reasons = ["REGF-TIME-8TO9"]
        retimed.details = {"planned_outcome": "retime"}
        retimed.next_allowed_at = now - timedelta(days=2)
        session.add(PaymentPlan(organization_id=tenant.id, account_id=ids.account_id,
                                guarantor_id=ids.guarantor_id, status="paused",
                                total_cents=12_500, installment_count=5,
                                start_on=date(2026, 2, 1), timezone="America/New_York",
                                created_by="patient", autopay=True, misses=1,
                                pause_reason="hardship"))
        session.add(Payment(organization_id=tenant.id, account_id=ids.account_id,
                            guarantor_id=ids.guarantor_id, processor="sandbox",
                            processor_payment_id="pi_test_1", amount_cents=2_500,
                            reversed_cents=500, status="partially_refunded", source="portal",
                            receipt_number="R-0001", received_at=now - timedelta(days=3)))
        session.flush()
        assert session.get(OutreachAttempt, blocked.id) is not None


def test_account_page_shows_decisions_plans_and_payments(web: Web) -> None:
    ids = seed(web)
    _history(web, ids)
    text = web.login("billing_manager").get(f"/app/guarantors/{ids.guarantor_id}").text
    decisions = text.split('id="outreach-decisions"')[1].split("</section>")[0]
    assert "<td>blocked</td><td>REGF-TIME-8TO9, TCPA-CONSENT</td>" in decisions
    assert decisions.count("<tr>") == 3  # header + two attempts
    plans = text.split('id="plans"')[1].split("</section>")[0]
    assert "<td>paused (hardship)</td><td class=\"num\">$125.00</td><td>5</td>" in plans
    assert "<td>2026-02-01</td><td>yes</td><td>1</td><td>patient</td>" in plans
    payments = text.split('id="payments"')[1].split("</section>")[0]
    assert ('<td class="num">$25.00</td><td class="num">$5.00</td>'
            "<td>partially_refunded</td><td>portal</td><td>R-0001</td>") in payments


def test_compliance_console_counts_blocks_and_retimes_by_rule(web: Web) -> None:
    ids = seed(web)
    _history(web, ids)
    text = web.login("compliance_officer").get("/app/compliance").text
    table = text.split('id="blocks-by-rule"')[1].split("</section>")[0]
    assert "<th>rule</th><th>channel</th><th>blocked</th><th>retimed</th>" in table
    assert "<td>REGF-TIME-8TO9</td><td>sms</td><td>1</td><td>1</td>" in table
    assert "<td>TCPA-CONSENT</td><td>sms</td><td>1</td><td>0</td>" in table


def test_empty_sections_say_so(web: Web) -> None:
    ids = seed(web)
    client = web.login("billing_manager")
    text = client.get(f"/app/guarantors/{ids.guarantor_id}").text
    assert "No outreach attempts." in text
    assert "No payment plans." in text
    assert "No autopay enrollments." in text
    assert "No card payments." in text
    assert "No blocked or re-timed attempts." in web.login("compliance_officer").get(
        "/app/compliance").text


def test_account_page_shows_the_autopay_card_and_enrollments(web: Web) -> None:
    ids = seed(web)
    tenant, now = web.tenant, web.clock()
    with web.db.tenant_session(tenant.id) as session:
        old = SavedPaymentMethod(organization_id=tenant.id, guarantor_id=ids.guarantor_id,
                                 processor="stripe", processor_customer_id="cus_1",
                                 processor_method_id="pm_old", brand="visa", last4="4242",
                                 exp_month=12, exp_year=2031, status="removed")
        new = SavedPaymentMethod(organization_id=tenant.id, guarantor_id=ids.guarantor_id,
                                 processor="stripe", processor_customer_id="cus_1",
                                 processor_method_id="pm_new", brand="mastercard",
                                 last4="4444", exp_month=3, exp_year=2030)
        session.add_all([old, new])
        session.flush()
        plan = PaymentPlan(organization_id=tenant.id, account_id=ids.account_id,
                           guarantor_id=ids.guarantor_id, status="active", total_cents=9_000,
                           installment_count=3, start_on=date(2026, 2, 1),
                           timezone="America/New_York", created_by="patient", autopay=True,
                           payment_method_id=new.id)
        session.add(plan)
        session.flush()
        for kind, status, method, age in (("enroll", "completed", old, 9),
                                          ("replace", "completed", new, 5),
                                          ("replace", "pending", None, 1)):
            session.add(AutopayEnrollment(
                organization_id=tenant.id, guarantor_id=ids.guarantor_id, plan_id=plan.id,
                processor="stripe", processor_customer_id="cus_1",
                processor_session_id=f"cs_{kind}_{age}", kind=kind, status=status,
                payment_method_id=method.id if method else None,
                consented_at=now - timedelta(days=age), created_at=now - timedelta(days=age),
                completed_at=now - timedelta(days=age) if status == "completed" else None))
    text = web.login("billing_manager").get(f"/app/guarantors/{ids.guarantor_id}").text
    plans = text.split('id="plans"')[1].split("</section>")[0]
    assert "<td>yes: Mastercard •••• 4444 (03/2030)</td>" in plans
    section = text.split('id="autopay-enrollments"')[1].split("</section>")[0]
    rows = [r.split("</tr>")[0] for r in section.split("<tr>")[2:]]

    def day(days: int) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%d %H:%M")

    assert rows == [
        f"<td>{day(1)}</td><td>replace</td><td>pending</td><td></td><td></td><td></td>"
        "<td>stripe</td>",
        f"<td>{day(5)}</td><td>replace</td><td>completed</td><td>Mastercard •••• 4444</td>"
        f"<td>active</td><td>{day(5)}</td><td>stripe</td>",
        f"<td>{day(9)}</td><td>enroll</td><td>completed</td><td>Visa •••• 4242</td>"
        f"<td>removed</td><td>{day(9)}</td><td>stripe</td>",
    ]
    # Processor references stay inside.
    assert "pm_old" not in text
    assert "cus_1" not in text
