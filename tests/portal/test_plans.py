"""Self-service payment plans in the portal: only the options the organization's policy
allows, exact schedules, autopay enrollment with the payer's authorization, the agreement
PDF; refused choices store nothing."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carecollect.payment.models import SavedPaymentMethod
from carecollect.payment_plan.models import PaymentPlan, PlanInstallment
from carecollect.payment_plan.schedule import PolicyTerms
from carecollect.payment_plan.service import plan_service
from tests.factories import audit_events
from tests.portal.conftest import STAFF, PortalWorld, csrf_of, title_of

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')
OPTION_RE = re.compile(r'name="installments" value="(\d+)"')


def _plan_form(client: TestClient, world: PortalWorld) -> tuple[str, str, str]:
    page = client.get(f"/pay/accounts/{world.alice.account_id}/plan")
    assert page.status_code == 200
    found = ATTEMPT_RE.search(page.text)
    return csrf_of(page.text), found.group(1) if found else "", page.text


def _submit(client: TestClient, world: PortalWorld, **fields: str) -> object:
    csrf, attempt, _ = _plan_form(client, world)
    return client.post(f"/pay/accounts/{world.alice.account_id}/plan",
                       data={"csrf_token": csrf, "attempt": attempt, **fields})


def _set_policy(world: PortalWorld, terms: PolicyTerms) -> None:
    with world.db.tenant_session(world.org_id) as session:
        plan_service.set_policy(session, organization_id=world.org_id, actor=STAFF, terms=terms)


def _nothing_stored(world: PortalWorld) -> None:
    assert world.count(PaymentPlan) == 0
    assert world.count(PlanInstallment) == 0
    assert world.count(SavedPaymentMethod) == 0
    assert audit_events(world.db, "plan.create") == []


def test_offers_only_what_the_policy_allows(world: PortalWorld) -> None:
    client = world.login()
    _, _, page = _plan_form(client, world)
    assert title_of(page) == "Set up a payment plan · Pay your bill"
    # $610.00: the default policy's tier up to $2,000 allows 12 months (>= $25 each).
    assert OPTION_RE.findall(page) == ["2", "3", "4", "6", "9", "12"]
    assert "12 monthly payments of about $50.84" in page
    assert "Total: $610.00. No interest. No fees." in page


def test_a_small_balance_is_limited_by_the_minimum_installment(world: PortalWorld) -> None:
    client = world.login()
    _pay_some(client, world, "530.00")  # leaves $80.00
    _, _, page = _plan_form(client, world)
    assert OPTION_RE.findall(page) == ["2", "3"]  # $80 / $25 = 3 installments at most


def _pay_some(client: TestClient, world: PortalWorld, amount: str) -> None:
    page = client.get(f"/pay/accounts/{world.alice.account_id}/pay")
    found = ATTEMPT_RE.search(page.text)
    assert found
    response = client.post(f"/pay/accounts/{world.alice.account_id}/pay",
                           data={"csrf_token": csrf_of(page.text), "attempt": found.group(1),
                                 "amount": amount, "card": "pm_sandbox_visa"})
    assert response.status_code == 303


def test_create_a_plan_without_autopay(world: PortalWorld) -> None:
    client = world.login()
    response = _submit(client, world, installments="6")
    assert response.status_code == 303  # type: ignore[attr-defined]
    with world.db.tenant_session(world.org_id) as session:
        plan = session.scalars(select(PaymentPlan)).one()
        rows = list(session.scalars(select(PlanInstallment)
                                    .order_by(PlanInstallment.sequence)))
    assert response.headers["location"] == f"/pay/plans/{plan.id}"  # type: ignore[attr-defined]
    assert plan.guarantor_id == world.alice.guarantor_id
    assert plan.account_id == world.alice.account_id
    assert plan.created_by == "patient"
    assert plan.installment_count == 6
    assert plan.total_cents == 61_000
    assert plan.autopay is False
    assert plan.payment_method_id is None
    assert [r.amount_cents for r in rows] == [10_167, 10_167, 10_167, 10_167, 10_166, 10_166]
    assert sum(r.amount_cents for r in rows) == 61_000
    assert world.count(SavedPaymentMethod) == 0
    created = audit_events(world.db, "plan.create")
    assert len(created) == 1
    assert created[0]["actor_type"] == "patient"
    assert created[0]["details"]["created_by"] == "patient"
    view = client.get(f"/pay/plans/{plan.id}").text
    assert "Your payment plan is set up." in view
    assert "Autopay is off." in view
    assert view.count("<td class=\"num\">$101.67</td>") == 4
    bill = client.get("/pay/bill").text
    assert "You have a payment plan on this account." in bill
    assert "Set up a payment plan</a>" not in bill


def test_enroll_in_autopay_with_a_sandbox_card(world: PortalWorld) -> None:
    client = world.login()
    response = _submit(client, world, installments="12", autopay="yes",
                       card="pm_sandbox_mastercard")
    assert response.status_code == 303  # type: ignore[attr-defined]
    with world.db.tenant_session(world.org_id) as session:
        plan = session.scalars(select(PaymentPlan)).one()
        method = session.scalars(select(SavedPaymentMethod)).one()
    assert plan.autopay is True
    assert plan.payment_method_id == method.id
    assert plan.installment_count == 12
    assert method.guarantor_id == world.alice.guarantor_id
    assert method.autopay_consented_at == world.clock()
    assert method.brand == "mastercard"
    assert method.last4 == "4444"
    saved = audit_events(world.db, "payment_method.create")
    assert [e["details"] for e in saved] == [{"processor": "sandbox", "autopay": True}]
    view = client.get(f"/pay/plans/{plan.id}").text
    assert "Autopay is on. Mastercard •••• 4444" in view


def test_agreement_pdf_download(world: PortalWorld) -> None:
    client = world.login()
    response = _submit(client, world, installments="3", autopay="yes", card="pm_sandbox_visa")
    location = response.headers["location"]  # type: ignore[attr-defined]
    pdf = client.get(f"{location}/agreement")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        'attachment; filename="payment-plan-agreement.pdf"')
    assert pdf.content.startswith(b"%PDF-")
    downloads = audit_events(world.db, "portal.download")
    assert [d["details"] for d in downloads] == [{"document": "plan_agreement"}]
    reads = [e for e in audit_events(world.db, "patient.read")
             if e["details"].get("purpose") == "plan_agreement"]
    assert [(e["actor_type"], e["actor_id"]) for e in reads] == [
        ("patient", str(world.alice.guarantor_id))]


@pytest.mark.parametrize("count", ["5", "13", "0", "-1", "abc", "", "1"])
def test_choices_outside_the_offer_are_refused(world: PortalWorld, count: str) -> None:
    client = world.login()
    response = _submit(client, world, installments=count, autopay="yes",
                       card="pm_sandbox_visa")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Choose one of the plans shown." in response.text  # type: ignore[attr-defined]
    _nothing_stored(world)


@pytest.mark.parametrize("card", ["", "4242424242424242", "pm_card_visa"])
def test_autopay_needs_a_test_card(world: PortalWorld, card: str) -> None:
    client = world.login()
    response = _submit(client, world, installments="6", autopay="yes", card=card)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Choose a card for autopay" in response.text  # type: ignore[attr-defined]
    _nothing_stored(world)


def test_a_card_without_the_autopay_box_is_not_saved(world: PortalWorld) -> None:
    client = world.login()
    response = _submit(client, world, installments="6", card="pm_sandbox_visa")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert world.count(SavedPaymentMethod) == 0
    with world.db.tenant_session(world.org_id) as session:
        assert session.scalars(select(PaymentPlan.autopay)).one() is False


def test_one_open_plan_per_account(world: PortalWorld) -> None:
    client = world.login()
    csrf, attempt, _ = _plan_form(client, world)
    assert _submit(client, world, installments="6").status_code == 303  # type: ignore[attr-defined]
    page = client.get(f"/pay/accounts/{world.alice.account_id}/plan").text
    assert "A payment plan cannot be set up online for this account." in page
    assert 'name="installments"' not in page
    again = client.post(f"/pay/accounts/{world.alice.account_id}/plan",
                        data={"csrf_token": csrf, "attempt": attempt, "installments": "6"})
    assert again.status_code == 422
    assert "A payment plan cannot be set up online for this account." in again.text
    assert world.count(PaymentPlan) == 1


def test_no_self_service_plans_when_the_policy_says_so(world: PortalWorld) -> None:
    _set_policy(world, replace(PolicyTerms(), allow_self_service=False))
    client = world.login()
    _, _, page = _plan_form(client, world)
    assert "A payment plan cannot be set up online for this account." in page
    csrf = csrf_of(page)
    response = client.post(f"/pay/accounts/{world.alice.account_id}/plan",
                           data={"csrf_token": csrf, "attempt": "a" * 24, "installments": "6"})
    assert response.status_code == 422
    _nothing_stored(world)


def test_a_required_down_payment_is_shown_and_scheduled_first(world: PortalWorld) -> None:
    _set_policy(world, replace(PolicyTerms(), min_down_payment_bps=1_000))  # 10 %
    client = world.login()
    _, _, page = _plan_form(client, world)
    assert "A first payment of $61.00 is due on March 2, 2026." in page
    assert _submit(client, world, installments="4").status_code == 303  # type: ignore[attr-defined]
    with world.db.tenant_session(world.org_id) as session:
        rows = list(session.scalars(select(PlanInstallment)
                                    .order_by(PlanInstallment.sequence)))
    assert [(r.sequence, r.amount_cents) for r in rows] == [
        (0, 6_100), (1, 13_725), (2, 13_725), (3, 13_725), (4, 13_725)]


def test_the_plan_page_of_an_unknown_id_is_not_found(world: PortalWorld) -> None:
    client = world.login()
    response = client.get(f"/pay/plans/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "We could not find that." in response.text
