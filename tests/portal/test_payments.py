"""Paying in the portal with the sandbox processor: amounts refused with a clear message and
nothing stored, one posting per payment even on a double submit, declines and processor
outages store nothing, receipts on screen and as a PDF."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carecollect.kit.jobs.models import Job
from carecollect.ledger.models import LedgerEntry
from carecollect.payment.models import Payment, PaymentAllocation
from tests.factories import audit_events
from tests.portal.conftest import PortalWorld, csrf_of, title_of

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')


def _pay_form(client: TestClient, world: PortalWorld) -> tuple[str, str]:
    page = client.get(f"/pay/accounts/{world.alice.account_id}/pay")
    assert page.status_code == 200
    assert title_of(page.text) in ("Make a payment · Pay your bill",
                                   "Hacer un pago · Pague su factura")
    found = ATTEMPT_RE.search(page.text)
    assert found
    return csrf_of(page.text), found.group(1)


def _pay(client: TestClient, world: PortalWorld, amount: str, card: str = "pm_sandbox_visa",
         form: tuple[str, str] | None = None) -> object:
    csrf, attempt = form or _pay_form(client, world)
    return client.post(f"/pay/accounts/{world.alice.account_id}/pay",
                       data={"csrf_token": csrf, "attempt": attempt, "amount": amount,
                             "card": card})


def _stored(world: PortalWorld) -> tuple[int, int, int, int, int]:
    with world.db.system_session() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Payment)) or 0),
            int(session.scalar(select(func.count()).select_from(PaymentAllocation)) or 0),
            int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0),
            int(session.scalar(select(func.count()).select_from(Job)) or 0),
            world.balance(world.alice),
        )


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-5.00", "The amount must be more than zero."),
        ("$-5", "The amount must be more than zero."),
        ("0", "The amount must be more than zero."),
        ("0.00", "The amount must be more than zero."),
        ("abc", "Enter an amount in dollars and cents, like 25.00."),
        ("", "Enter an amount in dollars and cents, like 25.00."),
        ("12.345", "Enter an amount in dollars and cents, like 25.00."),
        ("1e3", "Enter an amount in dollars and cents, like 25.00."),
        ("NaN", "Enter an amount in dollars and cents, like 25.00."),
        ("1,00.00", "Enter an amount in dollars and cents, like 25.00."),
        ("610.01", "The amount is more than what is owed on this account."),
        ("100000000000", "The amount is more than what is owed on this account."),
    ],
)
def test_bad_amounts_are_refused_and_nothing_changes(
    world: PortalWorld, amount: str, message: str
) -> None:
    client = world.login()
    before = _stored(world)
    events_before = len(audit_events(world.db))
    response = _pay(client, world, amount)
    assert response.status_code == 422  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert f'<p class="notice bad" role="alert" id="pay-error">{message}</p>' in text
    assert "$610.00" in text  # the form shows the balance again, not an error detail
    assert _stored(world) == before
    new_actions = [e["action"] for e in audit_events(world.db)[events_before:]]
    assert "payment.post" not in new_actions
    assert "payment.attempt" not in new_actions


def test_amount_message_in_spanish(world: PortalWorld) -> None:
    client = world.login(lang="es")
    response = _pay(client, world, "700")
    assert "El monto es mayor que lo que se debe en esta cuenta." in response.text  # type: ignore[attr-defined]


def test_partial_payment_posts_once_even_when_submitted_twice(world: PortalWorld) -> None:
    client = world.login()
    form = _pay_form(client, world)
    first = _pay(client, world, "$25.50", form=form)
    second = _pay(client, world, "$25.50", form=form)  # the same form, submitted again
    assert first.status_code == 303  # type: ignore[attr-defined]
    assert second.status_code == 303  # type: ignore[attr-defined]
    location = first.headers["location"]  # type: ignore[attr-defined]
    assert second.headers["location"] == location  # type: ignore[attr-defined]
    with world.db.tenant_session(world.org_id) as session:
        payments = list(session.scalars(select(Payment)))
        assert len(payments) == 1
        payment = payments[0]
        assert payment.amount_cents == 2_550
        assert payment.guarantor_id == world.alice.guarantor_id
        assert payment.account_id == world.alice.account_id
        assert payment.source == "portal"
        assert payment.processor == "sandbox"
        allocations = list(session.scalars(select(PaymentAllocation)))
        # Oldest charge first: the cleaning.
        assert [(a.charge_entry_id, a.amount_cents) for a in allocations] == [
            (world.alice.charges[0], 2_550)]
    assert location == f"/pay/receipts/{payment.id}"
    assert world.balance(world.alice) == 61_000 - 2_550
    posts = audit_events(world.db, "payment.post")
    assert len(posts) == 1
    assert posts[0]["actor_type"] == "patient"
    assert posts[0]["actor_id"] == str(world.alice.guarantor_id)
    with world.db.system_session() as session:
        receipts = list(session.scalars(select(Job).where(Job.kind == "payment.send_receipt")))
        assert len(receipts) == 1
    # A new form is a new payment.
    assert _pay(client, world, "10").status_code == 303  # type: ignore[attr-defined]
    assert world.count(Payment) == 2


def test_pay_in_full_then_nothing_is_owed(world: PortalWorld) -> None:
    client = world.login()
    response = _pay(client, world, "610.00", card="pm_sandbox_mastercard")
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert world.balance(world.alice) == 0
    receipt = client.get(response.headers["location"])  # type: ignore[attr-defined]
    assert receipt.status_code == 200
    assert title_of(receipt.text) == "Payment receipt · Pay your bill"
    assert '<dd id="receipt-amount">$610.00</dd>' in receipt.text
    assert '<dd id="receipt-remaining">$0.00</dd>' in receipt.text
    bill = client.get("/pay/bill").text
    assert '<p class="total" id="total-due">$0.00</p>' in bill
    assert "You have nothing to pay right now." in bill
    assert "Pay this account" not in bill
    assert "Paid in full. Nothing is owed." in bill
    again = _pay(client, world, "1.00")
    assert "There is nothing to pay on this account." in again.text  # type: ignore[attr-defined]
    assert world.count(Payment) == 1


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("pm_sandbox_decline", "Your card was declined. No money was taken."),
        ("pm_sandbox_insufficient_funds", "Your card was declined. No money was taken."),
        ("pm_sandbox_network_error", "We could not reach the payment service."),
    ],
)
def test_declines_and_outages_post_nothing(world: PortalWorld, card: str, message: str) -> None:
    client = world.login()
    before = _stored(world)
    response = _pay(client, world, "50.00", card=card)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert message in response.text  # type: ignore[attr-defined]
    after = _stored(world)
    assert after[:3] == before[:3]
    assert after[4] == before[4]
    assert audit_events(world.db, "payment.post") == []


def test_decline_is_audited_as_a_failed_attempt(world: PortalWorld) -> None:
    client = world.login()
    _pay(client, world, "50.00", card="pm_sandbox_decline")
    attempts = audit_events(world.db, "payment.attempt")
    assert len(attempts) == 1
    assert attempts[0]["outcome"] == "failure"
    assert attempts[0]["details"] == {"code": "card_declined", "source": "portal"}


@pytest.mark.parametrize("card", ["", "4242424242424242", "pm_card_visa", "tok_visa"])
def test_only_the_sandbox_test_tokens_are_accepted(world: PortalWorld, card: str) -> None:
    client = world.login()
    before = _stored(world)
    response = _pay(client, world, "20.00", card=card)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Choose one of the test cards shown." in response.text  # type: ignore[attr-defined]
    assert _stored(world) == before


def test_the_pay_page_never_asks_for_a_card_number(world: PortalWorld) -> None:
    client = world.login()
    page = client.get(f"/pay/accounts/{world.alice.account_id}/pay").text
    assert 'name="card_number"' not in page
    assert 'autocomplete="cc-number"' not in page
    assert '<option value="pm_sandbox_visa">' in page


@pytest.mark.parametrize("attempt", ["", "short", "x" * 65, "bad value with spaces!!"])
def test_a_pay_form_without_its_attempt_value_is_refused(
    world: PortalWorld, attempt: str
) -> None:
    client = world.login()
    csrf, _ = _pay_form(client, world)
    response = client.post(f"/pay/accounts/{world.alice.account_id}/pay",
                           data={"csrf_token": csrf, "attempt": attempt, "amount": "5",
                                 "card": "pm_sandbox_visa"})
    assert response.status_code == 403
    assert world.count(Payment) == 0


def test_receipt_pdf_download(world: PortalWorld) -> None:
    client = world.login()
    response = _pay(client, world, "20.00")
    location = response.headers["location"]  # type: ignore[attr-defined]
    pdf = client.get(f"{location}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    with world.db.tenant_session(world.org_id) as session:
        number = session.scalars(select(Payment.receipt_number)).one()
    assert pdf.headers["content-disposition"] == f'attachment; filename="receipt-{number}.pdf"'
    downloads = audit_events(world.db, "portal.download")
    assert [d["details"] for d in downloads] == [{"document": "receipt"}]
    bill = client.get("/pay/bill").text
    assert f'<a href="{location}">{number}</a>' in bill


def test_two_simultaneous_submits_of_one_form_post_once(world: PortalWorld) -> None:
    import threading

    client = world.login()
    csrf, attempt = _pay_form(client, world)
    cookie = client.cookies.get("cc_portal")
    assert cookie
    results: list[int] = []
    barrier = threading.Barrier(2)

    def submit() -> None:
        mine = TestClient(world.app, base_url="http://127.0.0.1", follow_redirects=False)
        mine.cookies.set("cc_portal", cookie, path="/pay")
        barrier.wait()
        response = mine.post(f"/pay/accounts/{world.alice.account_id}/pay",
                             data={"csrf_token": csrf, "attempt": attempt, "amount": "30.00",
                                   "card": "pm_sandbox_visa"})
        results.append(response.status_code)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [303, 303]
    assert world.count(Payment) == 1
    assert world.count(PaymentAllocation) == 1
    assert world.balance(world.alice) == 61_000 - 3_000
    assert len(audit_events(world.db, "payment.post")) == 1
