"""`/api/v1/payments`: list and read with allocations and reversals, take a payment with
a sandbox test card (declines, bad amounts: a problem and nothing posted), refund."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from carecollect.db import Database
from carecollect.ledger.service import ledger_service
from tests.web.api_world import World, assert_problem, make_world


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return make_world(db, tmp_path)


def _balance(world: World) -> int:
    with world.web.db.tenant_session(world.web.tenant.id) as session:
        return ledger_service.balance_cents(session, account_id=world.ids.account_id)


def test_list_and_get_with_allocations(world: World) -> None:
    listed = world.call("GET", "/api/v1/payments", role="collector").json()
    (payment,) = listed["items"]
    assert payment["id"] == str(world.ids.payment_id)
    assert payment["amount_cents"] == 2_000
    assert payment["status"] == "succeeded"
    assert payment["allocations"] is None
    for query, count in (
        ("status=refunded", 0),
        ("status=succeeded", 1),
        (f"account_id={world.ids.plan_account_id}", 0),
    ):
        assert len(world.call("GET", f"/api/v1/payments?{query}").json()["items"]) == count
    one = world.call("GET", "/api/v1/payments/{payment_id}").json()
    assert sum(a["amount_cents"] for a in one["allocations"]) == 2_000
    assert one["reversals"] == []
    assert world.actions("patient.read")[-1]["details"]["fields"] == ["payment"]


def test_take_a_payment(world: World) -> None:
    before = _balance(world)
    body = {
        "account_id": str(world.ids.account_id),
        "amount_cents": 2_500,
        "payment_method": "pm_sandbox_visa",
    }
    response = world.call(
        "POST", "/api/v1/payments", json=body, headers={"Idempotency-Key": "pay-1"}
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["source"] == "api"
    assert payment["processor"] == "sandbox"
    assert sum(a["amount_cents"] for a in payment["allocations"]) == 2_500
    assert _balance(world) == before - 2_500
    assert world.actions("payment.post")[-1]["details"]["amount_cents"] == 2_500
    # A retry with the same key is the same payment: one charge, one posting.
    state = world.state()
    again = world.call("POST", "/api/v1/payments", json=body, headers={"Idempotency-Key": "pay-1"})
    assert again.status_code == 201
    assert again.json()["id"] == payment["id"]
    assert world.state() == state
    assert _balance(world) == before - 2_500


def test_a_decline_posts_nothing_and_is_audited(world: World) -> None:
    before = _balance(world)
    payments = world.call("GET", "/api/v1/payments").json()["items"]
    body = {
        "account_id": str(world.ids.account_id),
        "amount_cents": 1_000,
        "payment_method": "pm_sandbox_decline",
    }
    response = world.call("POST", "/api/v1/payments", json=body)
    problem = assert_problem(response, 402)
    assert "card_declined" in problem["detail"]
    assert _balance(world) == before
    assert world.call("GET", "/api/v1/payments").json()["items"] == payments
    attempt = world.actions("payment.attempt")[-1]
    assert attempt["outcome"] == "failure"
    assert attempt["details"]["code"] == "card_declined"


BAD_PAYMENTS: list[tuple[str, Any, int, str]] = [
    ("over_the_balance", {"amount_cents": 99_999_00, "payment_method": "pm_sandbox_visa"}, 422, ""),
    (
        "unknown_test_card",
        {"amount_cents": 100, "payment_method": "pm_real_card"},
        422,
        "unknown sandbox test card",
    ),
    (
        "zero",
        {"amount_cents": 0, "payment_method": "pm_sandbox_visa"},
        422,
        "the request is not valid",
    ),
    (
        "negative",
        {"amount_cents": -5, "payment_method": "pm_sandbox_visa"},
        422,
        "the request is not valid",
    ),
    (
        "card_number_punctuation",
        {"amount_cents": 100, "payment_method": "4242/4242"},
        422,
        "the request is not valid",
    ),
    (
        "unknown_field",
        {
            "amount_cents": 100,
            "payment_method": "pm_sandbox_visa",
            "card_number": "4242424242424242",
        },
        422,
        "the request is not valid",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "fragment"), [b[1:] for b in BAD_PAYMENTS], ids=[b[0] for b in BAD_PAYMENTS]
)
def test_bad_payments_store_and_charge_nothing(
    world: World, body: dict[str, Any], status: int, fragment: str
) -> None:
    before = world.state()
    response = world.call(
        "POST", "/api/v1/payments", json={"account_id": str(world.ids.account_id), **body}
    )
    problem = assert_problem(response, status)
    assert fragment in problem["detail"]
    assert "4242424242424242" not in response.text
    assert world.state() == before


def test_unknown_account_is_404(world: World) -> None:
    before = world.state()
    response = world.call(
        "POST",
        "/api/v1/payments",
        json={
            "account_id": "00000000-0000-7000-8000-000000000000",
            "amount_cents": 100,
            "payment_method": "pm_sandbox_visa",
        },
    )
    assert "no such account" in assert_problem(response, 404)["detail"]
    assert world.state() == before


def test_refund(world: World) -> None:
    before = _balance(world)
    response = world.call(
        "POST", "/api/v1/payments/{payment_id}/refund", json={"amount_cents": 500}
    )
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "partially_refunded"
    assert payment["reversed_cents"] == 500
    assert [(r["kind"], r["amount_cents"]) for r in payment["reversals"]] == [("refund", 500)]
    assert sum(a["amount_cents"] for a in payment["allocations"]) == 1_500
    assert _balance(world) == before + 500
    state = world.state()
    over = world.call("POST", "/api/v1/payments/{payment_id}/refund", json={"amount_cents": 1_501})
    assert "more than what is left" in assert_problem(over, 422)["detail"]
    assert world.state() == state


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/payments/00000000-0000-7000-8000-000000000000/refund", {"amount_cents": 1}, 404),
        ("/api/v1/payments/{payment_id}/refund", {"amount_cents": 0}, 422),
        ("/api/v1/payments/{payment_id}/refund", {"amount_cents": 10, "reason": "whim"}, 422),
    ],
    ids=["unknown_payment", "zero", "unknown_reason"],
)
def test_bad_refund_changes_nothing(world: World, path: str, body: Any, status: int) -> None:
    before = world.state()
    assert_problem(world.call("POST", path, json=body), status)
    assert world.state() == before
