"""The plain-language bill: codes in words, and each charge explained so that charge =
insurance + adjustments + paid + owed, with the owed figure taken from the payment domain."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from carecollect.ledger.service import ledger_service
from carecollect.portal import service as portal_service
from carecollect.portal.bill import ChargeFacts, CreditFacts, LineAmounts, itemize, service_key
from carecollect.portal.i18n import translate
from tests.factories import TEST_ACTOR, audit_events
from tests.portal.conftest import START, PortalWorld

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B = uuid.UUID(int=1), uuid.UUID(int=2)
P1, P2 = uuid.UUID(int=11), uuid.UUID(int=12)


def test_codes_in_words_in_both_languages() -> None:
    assert service_key("D1110") == "service.D1110"
    assert service_key("d0120, D1110") == "service.D0120"
    assert service_key("X999;99213") == "service.99213"
    assert service_key("X999") is None
    assert service_key(None) is None
    assert translate("en", "service.D2740") == "Crown (porcelain cap on a tooth)"
    assert translate("es", "service.D2740") == "Corona (funda de porcelana en un diente)"


def test_directed_lines_count_for_their_charge() -> None:
    charges = [ChargeFacts(A, T0, 10_000, P1), ChargeFacts(B, T0 + timedelta(days=1), 5_000, P1)]
    credits = [CreditFacts("insurance_payment", -3_000, T0 + timedelta(days=20), B, P1),
               CreditFacts("insurance_adjustment", -500, T0 + timedelta(days=20), B, P1)]
    lines = itemize(charges, credits, {A: 10_000, B: 1_500})
    assert lines == [LineAmounts(A, 10_000, 0, 0, 0, 10_000),
                     LineAmounts(B, 5_000, 3_000, 500, 0, 1_500)]
    assert [line.why_key for line in lines] == ["why.no_insurance_payment",
                                                 "why.insurance_partial"]


def test_undirected_insurance_goes_to_the_same_patients_earlier_charge() -> None:
    # As in the demo data: insurance lines carry the patient but not the charge.
    charges = [ChargeFacts(A, T0, 10_000, P1), ChargeFacts(B, T0 + timedelta(days=2), 8_000, P2)]
    credits = [CreditFacts("insurance_payment", -6_000, T0 + timedelta(days=30), None, P2),
               CreditFacts("insurance_adjustment", -1_000, T0 + timedelta(days=30), None, P2)]
    lines = itemize(charges, credits, {A: 10_000, B: 1_000})
    assert lines[1] == LineAmounts(B, 8_000, 6_000, 1_000, 0, 1_000)
    assert lines[0] == LineAmounts(A, 10_000, 0, 0, 0, 10_000)


def test_overflow_moves_on_and_payments_fill_the_rest() -> None:
    charges = [ChargeFacts(A, T0, 2_000, None), ChargeFacts(B, T0, 3_000, None)]
    credits = [CreditFacts("write_off", -2_500, T0 + timedelta(days=5), None, None),
               CreditFacts("adjustment", 700, T0 + timedelta(days=6), None, None),  # a debit
               CreditFacts("patient_payment", -1_000, T0 + timedelta(days=7), None, None)]
    lines = itemize(charges, credits, {B: 1_500})
    assert lines == [LineAmounts(A, 2_000, 0, 2_000, 0, 0),
                     LineAmounts(B, 3_000, 0, 500, 1_000, 1_500)]
    assert lines[0].why_key == "why.paid"
    for line in lines:
        assert line.charge_cents == (line.insurance_cents + line.adjustment_cents
                                     + line.paid_cents + line.owed_cents)


def test_the_owed_figure_wins_when_attribution_disagrees() -> None:
    charges = [ChargeFacts(A, T0, 1_000, None)]
    credits = [CreditFacts("insurance_payment", -600, T0, A, None),
               CreditFacts("insurance_adjustment", -300, T0, A, None)]
    line = itemize(charges, credits, {A: 500})[0]
    assert line == LineAmounts(A, 1_000, 500, 0, 0, 500)


def test_bill_reading_is_audited_without_values(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as session:
        ledger_service.post(session, keys=world.tenant.keys, actor=TEST_ACTOR,
                            account_id=world.alice.account_id, kind="charge",
                            amount_cents=4_200, posted_at=START - timedelta(days=5),
                            service_date=date(2026, 2, 20), procedure_codes="Z0000",
                            description="Night guard")
    with world.db.tenant_session(world.org_id) as session:
        bill = portal_service.read_bill(session, keys=world.tenant.keys,
                                        guarantor_id=world.alice.guarantor_id)
    assert [a.account_id for a in bill.accounts] == [world.alice.account_id]
    account = bill.accounts[0]
    assert account.label == "5001"
    assert account.balance_cents == 61_000 + 4_200
    assert bill.total_cents == 65_200
    assert [(line.service_key, line.description) for line in account.lines] == [
        ("service.D1110", "PROPHY ADULT"), ("service.D2740", "CROWN PORC/CERAMIC"),
        (None, "Night guard")]
    assert account.lines[2].service_date == date(2026, 2, 20)
    views = audit_events(world.db, "portal.view")
    assert len(views) == 1
    assert views[0]["actor_type"] == "patient"
    assert views[0]["details"] == {"page": "bill", "accounts": 1, "lines": 3, "fields": [
        "service_date", "procedure_codes", "description", "account_number"]}
    assert "Night guard" not in str(views[0])


def test_pay_and_plan_pages_audit_the_balance_read(world: PortalWorld) -> None:
    client = world.login()
    assert client.get(f"/pay/accounts/{world.alice.account_id}/pay").status_code == 200
    assert client.get(f"/pay/accounts/{world.alice.account_id}/plan").status_code == 200
    views = audit_events(world.db, "portal.view")
    assert [(v["details"]["page"], v["subject_type"], v["subject_id"]) for v in views] == [
        ("pay", "account", str(world.alice.account_id)),
        ("plan", "account", str(world.alice.account_id))]
    assert all(v["actor_id"] == str(world.alice.guarantor_id) for v in views)
