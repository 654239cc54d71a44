"""The account page lists each outreach decision with its rules, the plans and the card
payments; the compliance console counts blocked and re-timed attempts by rule."""

from __future__ import annotations

from datetime import date, timedelta

from carecollect.outreach.dispatch import create_attempt
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.payment.models import Payment
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
    assert "No card payments." in text
    assert "No blocked or re-timed attempts." in web.login("compliance_officer").get(
        "/app/compliance").text
