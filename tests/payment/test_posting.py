"""Posting payments: amounts, idempotency by processor id, allocation, reversals, receipts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from carecollect.audit import Actor
from carecollect.errors import BadInput, Forbidden
from carecollect.kit.jobs.sessions import write_locked_session
from carecollect.payment.models import Payment, PaymentReversal
from carecollect.payment.receipts import receipt_content
from carecollect.payment.sandbox import SandboxProcessor
from carecollect.payment.service import RECEIPT_JOB, parse_amount_cents, payment_service
from tests.factories import TEST_ACTOR, audit_events
from tests.payment.world import World, make_world

NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
PATIENT = Actor.patient("00000000-0000-7000-8000-0000000000aa")


@pytest.mark.parametrize(("text", "cents"), [
    ("25", 2500), ("25.5", 2550), ("25.50", 2550), ("$1,025.07", 102507), (" 0.01 ", 1),
    ("$ 40", 4000), (1999, 1999),
])
def test_amounts_parse_exactly(text: str | int, cents: int) -> None:
    assert parse_amount_cents(text) == cents


@pytest.mark.parametrize(("text", "message"), [
    ("-5", "The amount must be more than zero."),
    ("$-5.00", "The amount must be more than zero."),
    ("0", "The amount must be more than zero."),
    ("0.00", "The amount must be more than zero."),
    (0, "The amount must be more than zero."),
    (-100, "The amount must be more than zero."),
    ("abc", "Enter an amount in dollars and cents, like 25.00."),
    ("12.345", "Enter an amount in dollars and cents, like 25.00."),
    ("1e3", "Enter an amount in dollars and cents, like 25.00."),
    ("", "Enter an amount in dollars and cents, like 25.00."),
    ("NaN", "Enter an amount in dollars and cents, like 25.00."),
    ("12,34", "Enter an amount in dollars and cents, like 25.00."),
    (True, "Enter an amount in dollars and cents, like 25.00."),
])
def test_bad_amounts_are_refused_with_a_clear_message(text: str | int, message: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_amount_cents(text)
    assert info.value.message == message


def _pay(world: World, amount: str, card: str = "pm_sandbox_visa",
         processor: SandboxProcessor | None = None, key: str = "k1") -> Payment | None:
    processor = processor or SandboxProcessor()
    with world.db.tenant_session(world.org_id) as s:
        _, payment = payment_service.start_payment(
            s, keys=world.tenant.keys, actor=PATIENT, processor=processor,
            account_id=world.account_id, amount=amount, idempotency_key=key,
            payment_method=card, now=NOW)
        return payment


@pytest.mark.parametrize("amount", ["-1", "0", "150.01", "lots", "1000000"])
def test_refused_amounts_store_nothing(db, amount: str) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    processor = SandboxProcessor()
    with pytest.raises(BadInput):
        _pay(world, amount, processor=processor)
    assert processor.calls == []
    assert world.count(Payment) == 0
    assert world.balance() == 15_000
    assert world.jobs(RECEIPT_JOB) == []


def test_over_balance_message_does_not_state_the_balance(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    with pytest.raises(BadInput) as info:
        _pay(world, "150.01")
    assert info.value.message == "The amount is more than what is owed on this account."


def test_sandbox_payment_posts_oldest_charge_first(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    payment = _pay(world, "120.00")
    assert payment is not None
    assert (payment.amount_cents, payment.status, payment.processor) == (12_000, "succeeded",
                                                                         "sandbox")
    assert world.balance() == 3_000
    older, newer = world.charges
    assert world.allocations() == {older: 10_000, newer: 2_000}
    assert world.ledger_kinds()[-1] == ("patient_payment", -12_000)
    posted = audit_events(db, "payment.post")
    assert len(posted) == 1
    assert posted[0]["details"]["amount_cents"] == 12_000
    assert [j.args for j in world.jobs(RECEIPT_JOB)] == [{"payment_id": str(payment.id)}]


def test_declined_card_posts_nothing(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    for card, code in (("4000000000000002", "card_declined"),
                       ("pm_sandbox_insufficient_funds", "insufficient_funds")):
        with world.db.tenant_session(world.org_id) as s:
            result, payment = payment_service.start_payment(
                s, keys=world.tenant.keys, actor=PATIENT, processor=SandboxProcessor(),
                account_id=world.account_id, amount="10", idempotency_key=card,
                payment_method=card, now=NOW)
        assert (result.status, result.failure_code, payment) == ("failed", code, None)
    assert world.count(Payment) == 0
    assert world.balance() == 15_000
    assert [e["outcome"] for e in audit_events(db, "payment.attempt")] == ["failure", "failure"]


def test_staff_allocation_overrides_oldest_first(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    older, newer = world.charges
    with world.db.tenant_session(world.org_id) as s:
        payment_service.record_payment(
            s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
            processor_payment_id="sbx_pi_staff", account_id=world.account_id,
            amount_cents=6_000, received_at=NOW, source="staff",
            allocation={newer: 5_000})
    # Staff named 50.00 for the newer charge; the remaining 10.00 goes oldest first.
    assert world.allocations() == {newer: 5_000, older: 1_000}


def test_same_processor_payment_posts_once(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    results = []
    for _ in range(3):
        with world.db.tenant_session(world.org_id) as s:
            results.append(payment_service.record_payment(
                s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
                processor_payment_id="sbx_pi_same", account_id=world.account_id,
                amount_cents=4_000, received_at=NOW).created)
    assert results == [True, False, False]
    assert world.count(Payment) == 1
    assert world.balance() == 11_000
    assert len(world.jobs(RECEIPT_JOB)) == 1


def test_concurrent_posts_of_one_payment_post_once(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait()
            with write_locked_session(world.db, world.org_id) as s:
                payment_service.record_payment(
                    s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
                    processor_payment_id="sbx_pi_race", account_id=world.account_id,
                    amount_cents=2_500, received_at=NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The second waits for the first (PostgreSQL: on the unique index, inside a savepoint;
    # SQLite: on the write lock) and then finds its row: no error, one posting.
    assert errors == []
    assert world.count(Payment) == 1
    assert world.balance() == 12_500


def test_refund_reverses_newest_charge_first(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    processor = SandboxProcessor()
    payment = _pay(world, "120.00", processor=processor)
    assert payment is not None
    older, _newer = world.charges
    with world.db.tenant_session(world.org_id) as s:
        first = payment_service.refund(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                                       processor=processor, payment_id=payment.id,
                                       amount="30.00", now=NOW)
    assert first.created
    assert world.balance() == 6_000
    assert world.allocations() == {older: 9_000}
    with world.db.tenant_session(world.org_id) as s:
        payment_service.refund(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                               processor=processor, payment_id=payment.id, amount="90",
                               now=NOW)
        with pytest.raises(BadInput, match="more than what is left"):
            payment_service.refund(s, keys=world.tenant.keys, actor=TEST_ACTOR,
                                   processor=processor, payment_id=payment.id, amount="0.01",
                                   now=NOW)
    assert world.balance() == 15_000
    assert world.allocations() == {}
    [row] = world.payments()
    assert (row.status, row.reversed_cents) == ("refunded", 12_000)
    assert [k for k, _ in world.ledger_kinds()][-2:] == ["refund", "refund"]
    assert len(audit_events(db, "payment.refund")) == 2


def test_chargeback_reverses_and_is_idempotent(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    payment = _pay(world, "50.00")
    assert payment is not None
    for _ in range(2):
        with world.db.tenant_session(world.org_id) as s:
            payment_service.record_reversal(
                s, keys=world.tenant.keys, actor=Actor.webhook("sandbox"),
                processor="sandbox", kind="chargeback", processor_reversal_id="sbx_dp_1",
                processor_payment_id=payment.processor_payment_id, amount_cents=5_000,
                at=NOW, reason="fraudulent")
    assert world.count(PaymentReversal) == 1
    assert world.balance() == 15_000
    [row] = world.payments()
    assert row.status == "charged_back"
    # No chargeback fee is added (REGF-UNAUTH-AMOUNT).
    assert world.ledger_kinds()[-1] == ("refund", 5_000)


def test_overpayment_stays_a_credit_and_is_reversed_first(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db, charges=((3_000, datetime(2026, 1, 10, tzinfo=UTC)),))
    with world.db.tenant_session(world.org_id) as s:
        payment_service.record_payment(
            s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox",
            processor_payment_id="sbx_pi_over", account_id=world.account_id,
            amount_cents=5_000, received_at=NOW)
    assert world.balance() == -2_000
    assert world.allocations() == {world.charges[0]: 3_000}
    with world.db.tenant_session(world.org_id) as s:
        payment_service.record_reversal(
            s, keys=world.tenant.keys, actor=TEST_ACTOR, processor="sandbox", kind="refund",
            processor_reversal_id="sbx_re_over", processor_payment_id="sbx_pi_over",
            amount_cents=2_000, at=NOW)
    assert world.balance() == 0
    assert world.allocations() == {world.charges[0]: 3_000}


def test_offsite_processor_needs_an_active_baa(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)

    class Offsite(SandboxProcessor):
        offsite = True

    processor = Offsite()
    with pytest.raises(Forbidden, match="business associate"):
        _pay(world, "10", processor=processor)
    assert processor.calls == []
    assert world.count(Payment) == 0


def test_receipt_has_no_clinical_content(db) -> None:  # type: ignore[no-untyped-def]
    world = make_world(db)
    payment = _pay(world, "20.00")
    assert payment is not None
    with world.db.tenant_session(world.org_id) as s:
        email = receipt_content(s, payment.id)
        spanish = receipt_content(s, payment.id, language="es")
    assert email.from_name == "Lakeside Billing"
    assert email.subject == "Your payment receipt"
    assert "Amount paid: $20.00" in email.text_body
    assert "Remaining balance: $130.00" in email.text_body
    assert f"Receipt number: {payment.receipt_number}" in email.text_body
    assert "Date: 2026-03-02" in email.text_body
    for word in ("Cleaning", "Dental", "Testperson", "Robin", "ACC-1001", "2026-01-10"):
        assert word not in email.text_body
        assert word not in email.subject
    assert spanish.subject == "Su recibo de pago"
    assert "Monto pagado: $20.00" in spanish.text_body


def test_other_guarantors_and_tenants_see_nothing(db) -> None:  # type: ignore[no-untyped-def]
    from carecollect.errors import NotFound
    from carecollect.payment.receipts import receipt_pdf

    world = make_world(db)
    other = make_world(db)
    payment = _pay(world, "20.00")
    assert payment is not None
    with world.db.tenant_session(world.org_id) as s:
        pdf = receipt_pdf(s, payment.id, for_guarantor=world.guarantor_id)
        assert pdf.startswith(b"%PDF-")
        with pytest.raises(NotFound, match="no such payment"):
            receipt_pdf(s, payment.id, for_guarantor=other.guarantor_id)
        with pytest.raises(NotFound, match="no such account"):
            payment_service.start_payment(
                s, keys=world.tenant.keys, actor=PATIENT, processor=SandboxProcessor(),
                account_id=world.account_id, amount="5", idempotency_key="x",
                payment_method="pm_sandbox_visa", now=NOW, for_guarantor=other.guarantor_id)
    # Another organization's session sees none of this organization's payments.
    with world.db.tenant_session(other.org_id) as s:
        assert s.get(Payment, payment.id) is None
        with pytest.raises(NotFound):
            receipt_pdf(s, payment.id)
    assert len(other.payments()) == 0
    assert world.count(Payment) == 1
