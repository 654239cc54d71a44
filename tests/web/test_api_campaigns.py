"""`/api/v1/campaigns`: list, read with steps, create as a draft, activate and pause, the
dry run; every refused request is a problem+json and changes nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from carecollect.db import Database
from tests.web.api_world import PROBLEM, World, assert_problem, make_world

NEW = {
    "key": "api_new",
    "name": "New reminder",
    "priority": 50,
    "min_balance_cents": 1000,
    "steps": [
        {
            "wait_days": 0,
            "channels": ["email", "letter"],
            "send_hour": 9,
            "variants": [
                {
                    "name": "A",
                    "weight": 1,
                    "templates": {"email": "reminder_email", "letter": "statement_letter"},
                }
            ],
        },
        {
            "wait_days": 7,
            "channels": ["sms"],
            "condition": {"unless": ["clicked"]},
            "variants": [{"name": "A", "templates": {"sms": "balance_reminder_sms"}}],
        },
    ],
}


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return make_world(db, tmp_path)


def test_list_and_get_with_steps(world: World) -> None:
    listed = world.call("GET", "/api/v1/campaigns")
    assert listed.status_code == 200
    assert [c["key"] for c in listed.json()["items"]] == ["api_seed_sms"]
    assert listed.json()["items"][0]["steps"] is None
    assert listed.json()["next_cursor"] is None
    paused = world.call("GET", "/api/v1/campaigns", params={"active": "false"})
    assert paused.json()["items"] == []
    one = world.call("GET", "/api/v1/campaigns/{campaign_id}", role="auditor")
    assert one.status_code == 200
    body = one.json()
    assert body["active"] is True
    assert body["enrollments"] == {"active": 0, "paused": 0, "completed": 0, "stopped": 0}
    assert body["steps"] == [
        {
            "position": 0,
            "wait_days": 0,
            "channels": ["sms"],
            "send_hour": 10,
            "condition": {},
            "variants": [{"name": "A", "weight": 1, "templates": {"sms": "balance_reminder_sms"}}],
        }
    ]


def test_pagination_by_cursor(world: World) -> None:
    for n in range(3):
        body = copy.deepcopy(NEW) | {"key": f"api_page_{n}"}
        assert world.call("POST", "/api/v1/campaigns", json=body).status_code == 201
    first = world.call("GET", "/api/v1/campaigns", params={"limit": 2}).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"] is not None
    second = world.call(
        "GET", "/api/v1/campaigns", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    keys = [c["key"] for c in first["items"] + second["items"]]
    assert sorted(keys) == ["api_page_0", "api_page_1", "api_page_2", "api_seed_sms"]


def test_create_is_a_paused_draft_and_audited(world: World) -> None:
    response = world.call(
        "POST", "/api/v1/campaigns", json=NEW, headers={"Idempotency-Key": "camp-1"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["active"] is False
    assert body["key"] == "api_new"
    assert body["min_balance_cents"] == 1000
    assert [s["channels"] for s in body["steps"]] == [["email", "letter"], ["sms"]]
    assert body["steps"][1]["condition"] == {"unless": ["clicked"]}
    changes = [e["details"].get("change") for e in world.actions("config.change")]
    assert changes[-2:] == ["campaign_create", "campaign_pause"]
    # The same key and request replay the first response; nothing new is stored.
    before = world.state()
    again = world.call("POST", "/api/v1/campaigns", json=NEW, headers={"Idempotency-Key": "camp-1"})
    assert again.status_code == 201
    assert again.json() == body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert world.state() == before


def _bad(change: Any) -> dict[str, Any]:
    body = copy.deepcopy(NEW)
    change(body)
    return body


BAD_CAMPAIGNS = [
    (
        "unknown_template",
        lambda b: b["steps"][0]["variants"][0]["templates"].update(email="no_such_template"),
        422,
        "unknown template",
    ),
    (
        "template_of_another_channel",
        lambda b: b["steps"][1]["variants"][0]["templates"].update(sms="reminder_email"),
        422,
        "is not a sms template",
    ),
    (
        "variant_without_channel_template",
        lambda b: b["steps"][0]["variants"][0]["templates"].pop("letter"),
        422,
        "has no letter template",
    ),
    (
        "channel_listed_twice",
        lambda b: b["steps"][1].update(channels=["sms", "sms"]),
        422,
        "a channel is listed twice",
    ),
    (
        "min_above_max_balance",
        lambda b: b.update(max_balance_cents=10),
        422,
        "minimum balance is above",
    ),
    ("bad_key", lambda b: b.update(key="Has Spaces"), 422, "the request is not valid"),
    (
        "unknown_channel",
        lambda b: b["steps"][0].update(channels=["fax"]),
        422,
        "the request is not valid",
    ),
    ("no_steps", lambda b: b.update(steps=[]), 422, "the request is not valid"),
    ("send_hour_24", lambda b: b["steps"][0].update(send_hour=24), 422, "the request is not valid"),
    ("unknown_field", lambda b: b.update(colour="blue"), 422, "the request is not valid"),
    ("key_in_use", lambda b: b.update(key="api_seed_sms"), 409, "conflicts"),
]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [c[1:] for c in BAD_CAMPAIGNS],
    ids=[c[0] for c in BAD_CAMPAIGNS],
)
def test_bad_campaign_is_refused_and_nothing_stored(
    world: World, change: Any, status: int, message: str
) -> None:
    before = world.state()
    response = world.call("POST", "/api/v1/campaigns", json=_bad(change))
    body = assert_problem(response, status)
    assert message in body["detail"]
    assert world.state() == before


def test_pause_and_activate(world: World) -> None:
    paused = world.call("POST", "/api/v1/campaigns/{campaign_id}/pause")
    assert paused.status_code == 200
    assert paused.json()["active"] is False
    before = world.state()
    again = world.call("POST", "/api/v1/campaigns/{campaign_id}/pause")
    assert "already paused" in assert_problem(again, 409)["detail"]
    assert world.state() == before
    active = world.call("POST", "/api/v1/campaigns/{campaign_id}/activate")
    assert active.status_code == 200
    assert active.json()["active"] is True
    before = world.state()
    assert_problem(world.call("POST", "/api/v1/campaigns/{campaign_id}/activate"), 409)
    assert world.state() == before


def test_unknown_campaign_is_404(world: World) -> None:
    missing = "/api/v1/campaigns/00000000-0000-7000-8000-000000000000"
    before = world.state()
    for method, path in (
        ("GET", missing),
        ("POST", missing + "/pause"),
        ("POST", missing + "/activate"),
    ):
        assert "no such campaign" in assert_problem(world.call(method, path), 404)["detail"]
    assert_problem(world.call("POST", missing + "/dry-run", json={}), 404)
    assert world.state() == before


def test_dry_run_lists_decisions_and_audits_each_person(world: World) -> None:
    before_reads = len(world.actions("patient.read"))
    response = world.call(
        "POST",
        "/api/v1/campaigns/{campaign_id}/dry-run",
        json={"sample": 50},
        role="billing_manager",
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["campaign_id"] == str(world.ids.campaign_id)
    # The seeded guarantor's two accounts (the balance and the plan account) are due.
    assert run["simulated"] == len(run["rows"]) == 2
    assert {r["account_id"] for r in run["rows"]} == {
        str(world.ids.account_id),
        str(world.ids.plan_account_id),
    }
    assert {r["guarantor_id"] for r in run["rows"]} == {str(world.ids.guarantor_id)}
    for row in run["rows"]:
        assert row["outcome"] in ("blocked", "retime", "send", "stopped", "holdout")
        assert all({"rule_id", "title", "citation"} <= set(r) for r in row["reasons"])
    assert sum(run["outcome_totals"].values()) == 2
    # One read event for the one person listed.
    reads = world.actions("patient.read")[before_reads:]
    assert [r["details"]["purpose"] for r in reads] == ["campaign_dry_run"]
    assert world.actions("outreach.dry_run")[-1]["details"]["simulated"] == 2


def test_dry_run_hides_accounts_from_callers_without_account_access(world: World) -> None:
    before = world.state()
    before_reads = len(world.actions("patient.read"))
    response = world.call(
        "POST", "/api/v1/campaigns/{campaign_id}/dry-run", json={}, role="auditor"
    )
    assert response.status_code == 200
    rows = response.json()["rows"]
    assert rows
    assert all(r["account_id"] is None and r["guarantor_id"] is None for r in rows)
    assert len(world.actions("patient.read")) == before_reads
    # Nothing simulated is kept: only the dry-run audit event was added.
    after = world.state()
    changed = {t for t in after[0] if after[0][t] != before[0][t]}
    assert changed <= {"audit_event", "audit_log_entry", "audit_tree_hash", "audit_checkpoint"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"sample": 0}, "the request is not valid"),
        ({"sample": 2001}, "the request is not valid"),
        ({"at": "yesterday"}, "the request is not valid"),
        ({"at": "1990-01-01T00:00:00Z"}, "between the years 2000 and 2200"),
        ({"extra": 1}, "the request is not valid"),
    ],
    ids=["sample_zero", "sample_too_big", "bad_instant", "instant_out_of_range", "unknown_field"],
)
def test_bad_dry_run_is_refused(world: World, body: dict[str, Any], fragment: str) -> None:
    before = world.state()
    response = world.call("POST", "/api/v1/campaigns/{campaign_id}/dry-run", json=body)
    assert fragment in assert_problem(response, 422)["detail"]
    assert response.headers["content-type"] == PROBLEM
    assert world.state() == before
