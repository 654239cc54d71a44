"""`/api/v1/plans`: list and read with installments, create within the organization's
plan policy (bad terms: a 422 problem and nothing stored), cancel."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from carecollect.db import Database
from tests.web.api_world import World, assert_problem, make_world


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return make_world(db, tmp_path)


def test_list_and_get_with_installments(world: World) -> None:
    listed = world.call("GET", "/api/v1/plans", role="collector")
    assert listed.status_code == 200
    (plan,) = listed.json()["items"]
    assert plan["id"] == str(world.ids.plan_id)
    assert plan["installments"] is None
    assert plan["status"] == "active"
    assert plan["installment_count"] == 6
    assert plan["total_cents"] == 60_000
    for query, count in (
        ("status=cancelled", 0),
        ("status=active", 1),
        (f"account_id={world.ids.account_id}", 0),
        (f"guarantor_id={world.ids.guarantor_id}", 1),
    ):
        items = world.call("GET", f"/api/v1/plans?{query}").json()["items"]
        assert len(items) == count, query
    one = world.call("GET", "/api/v1/plans/{plan_id}").json()
    assert [i["sequence"] for i in one["installments"]] == [1, 2, 3, 4, 5, 6]  # no down payment
    assert sum(i["amount_cents"] for i in one["installments"]) == 60_000
    assert {i["status"] for i in one["installments"]} == {"scheduled"}
    reads = world.actions("patient.read")
    assert [r["details"]["fields"] for r in reads[-1:]] == [["payment_plan"]]
    assert reads[-1]["patient_id"] == str(world.ids.guarantor_id)


def test_create_within_policy(world: World) -> None:
    body = {"account_id": str(world.ids.account_id), "installments": 3}
    response = world.call("POST", "/api/v1/plans", json=body, headers={"Idempotency-Key": "p1"})
    assert response.status_code == 201, response.text
    plan = response.json()
    assert plan["status"] == "active"
    assert plan["created_by"] == "staff"
    # The seeded account owes 125.00 less the seeded 20.00 payment.
    assert plan["total_cents"] == 10_500
    assert [i["amount_cents"] for i in plan["installments"]] == [3_500, 3_500, 3_500]
    assert world.actions("plan.create")[-1]["details"]["installments"] == 3
    before = world.state()
    again = world.call("POST", "/api/v1/plans", json=body, headers={"Idempotency-Key": "p1"})
    assert again.status_code == 201
    assert again.json() == plan
    assert world.state() == before


def _in_days(world: World, days: int) -> str:
    return (world.web.clock() + timedelta(days=days)).date().isoformat()


BAD_PLANS: list[tuple[str, Any, int, str]] = [
    (
        "too_many_installments",
        lambda w: {"account_id": str(w.ids.account_id), "installments": 6},
        422,
        "1 to 4 monthly payments",
    ),
    (
        "down_payment_over_balance",
        lambda w: {"account_id": str(w.ids.account_id), "down_payment_cents": 20_000},
        422,
        "more than what is owed",
    ),
    (
        "starts_in_the_past",
        lambda w: {"account_id": str(w.ids.account_id), "start_on": _in_days(w, -3)},
        422,
        "cannot start in the past",
    ),
    (
        "account_has_a_plan",
        lambda w: {"account_id": str(w.ids.plan_account_id)},
        422,
        "already has a payment plan",
    ),
    (
        "starts_too_far_ahead",
        lambda w: {"account_id": str(w.ids.account_id), "start_on": _in_days(w, 400)},
        422,
        "a plan starts within a year",
    ),
    (
        "unknown_account",
        lambda w: {"account_id": "00000000-0000-7000-8000-000000000000"},
        404,
        "no such account",
    ),
    (
        "zero_installments",
        lambda w: {"account_id": str(w.ids.account_id), "installments": 0},
        422,
        "the request is not valid",
    ),
    (
        "negative_down_payment",
        lambda w: {"account_id": str(w.ids.account_id), "down_payment_cents": -1},
        422,
        "the request is not valid",
    ),
    (
        "interest_field",
        lambda w: {"account_id": str(w.ids.account_id), "interest_bps": 500},
        422,
        "the request is not valid",
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "fragment"), [b[1:] for b in BAD_PLANS], ids=[b[0] for b in BAD_PLANS]
)
def test_bad_terms_are_refused_and_nothing_stored(
    world: World, make: Any, status: int, fragment: str
) -> None:
    before = world.state()
    response = world.call("POST", "/api/v1/plans", json=make(world))
    body = assert_problem(response, status)
    assert fragment in body["detail"]
    assert world.state() == before


def test_cancel(world: World) -> None:
    response = world.call(
        "POST", "/api/v1/plans/{plan_id}/cancel", json={"reason": "entered_in_error"}
    )
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["status"] == "cancelled"
    assert plan["ended_at"] is not None
    assert {i["status"] for i in plan["installments"]} == {"cancelled"}
    event = world.actions("plan.cancel")[-1]
    assert event["details"] == {"reason": "entered_in_error", "installments_cancelled": 6}
    before = world.state()
    again = world.call("POST", "/api/v1/plans/{plan_id}/cancel", json={})
    assert "a cancelled plan cannot be cancelled" in assert_problem(again, 409)["detail"]
    assert world.state() == before
    # The account is free for a new plan.
    new = world.call(
        "POST",
        "/api/v1/plans",
        json={"account_id": str(world.ids.plan_account_id), "installments": 2},
    )
    assert new.status_code == 201, new.text


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/plans/00000000-0000-7000-8000-000000000000/cancel", {}, 404),
        ("/api/v1/plans/{plan_id}/cancel", {"reason": "because"}, 422),
        ("/api/v1/plans/{plan_id}/cancel", {"note": "x"}, 422),
    ],
    ids=["unknown_plan", "unknown_reason", "unknown_field"],
)
def test_bad_cancel_changes_nothing(world: World, path: str, body: Any, status: int) -> None:
    before = world.state()
    assert_problem(world.call("POST", path, json=body), status)
    assert world.state() == before
