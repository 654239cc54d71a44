"""`/api/v1/outreach/attempts`: filters, the compliance decision of one attempt, the
audit of every read, and message text masked without permission to read PHI unmasked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from carecollect.db import Database
from carecollect.kit.ids import uuid7
from carecollect.outreach.outbox import OutreachAttempt
from carecollect.outreach.service import contact_history_service
from tests.factories import TEST_ACTOR
from tests.web.api_world import World, assert_problem, make_world

CANARY = "Please stop texting me, Robin Canaryname here"


@pytest.fixture
def world(db: Database, tmp_path: Path) -> World:
    return make_world(db, tmp_path)


def _inbound_attempt(world: World) -> str:
    """A sent attempt whose contact event carries (sealed) message text."""
    tenant, now = world.web.tenant, world.web.clock()
    with world.web.db.tenant_session(tenant.id) as session:
        event = contact_history_service.record_contact(
            session,
            keys=tenant.keys,
            actor=TEST_ACTOR,
            guarantor_id=world.ids.guarantor_id,
            contact_point_id=world.ids.phone_id,
            occurred_at=now - timedelta(minutes=5),
            channel="sms",
            direction="inbound",
            outcome="delivered",
            text=CANARY,
        )
        attempt = OutreachAttempt(
            id=uuid7(),
            organization_id=tenant.id,
            guarantor_id=world.ids.guarantor_id,
            account_id=world.ids.account_id,
            contact_point_id=world.ids.phone_id,
            channel="sms",
            template_key="statement_ready_sms",
            idempotency_key="inbound-1",
            state="sent",
            scheduled_for=now - timedelta(minutes=10),
            reasons=[],
            contact_event_id=event.id,
            details={},
            created_at=now,
            updated_at=now,
            sent_at=now - timedelta(minutes=10),
        )
        session.add(attempt)
        return str(attempt.id)


def test_list_filters(world: World) -> None:
    seeded = str(world.ids.attempt_id)
    other = _inbound_attempt(world)
    everything = world.call("GET", "/api/v1/outreach/attempts").json()["items"]
    assert {a["id"] for a in everything} == {seeded, other}
    cases = {
        "state=blocked": [seeded],
        "state=sent": [other],
        "channel=email": [],
        "channel=sms": [seeded, other],
        f"guarantor_id={world.ids.guarantor_id}": [seeded, other],
        f"account_id={world.ids.plan_account_id}": [],
    }
    for query, expected in cases.items():
        items = world.call("GET", f"/api/v1/outreach/attempts?{query}").json()["items"]
        assert sorted(a["id"] for a in items) == sorted(expected), query
    now = world.web.clock()
    window = {
        "scheduled_from": (now - timedelta(hours=3)).isoformat(),
        "scheduled_to": (now - timedelta(hours=1)).isoformat(),
    }
    items = world.call("GET", "/api/v1/outreach/attempts", params=window).json()["items"]
    assert [a["id"] for a in items] == [seeded]
    page = world.call("GET", "/api/v1/outreach/attempts", params={"limit": 1}).json()
    rest = world.call(
        "GET", "/api/v1/outreach/attempts", params={"limit": 1, "cursor": page["next_cursor"]}
    ).json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {seeded, other}


def test_every_list_is_an_audited_read(world: World) -> None:
    before = len(world.actions("patient.read"))
    world.call("GET", "/api/v1/outreach/attempts", role="collector")
    world.call("GET", "/api/v1/outreach/attempts?channel=email", role="collector")
    reads = world.actions("patient.read")[before:]
    assert len(reads) == 1  # one person listed once; the empty page read no one
    assert reads[0]["patient_id"] == str(world.ids.guarantor_id)
    assert reads[0]["details"]["fields"] == ["outreach_attempts"]


def test_one_attempt_with_its_compliance_decision(world: World) -> None:
    response = world.call("GET", "/api/v1/outreach/attempts/{attempt_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "blocked"
    decision = body["decision"]
    assert decision["outcome"] == "blocked"
    assert [r["rule_id"] for r in decision["rules"]] == ["TCPA-CONSENT-WIRELESS"]
    assert decision["rules"][0]["title"]
    assert decision["rules"][0]["citation"]
    assert decision["next_allowed_at"] is not None
    assert body["message_text"] is None


def test_message_text_is_masked_without_unmasked_permission(world: World) -> None:
    attempt = _inbound_attempt(world)
    masked = world.call("GET", f"/api/v1/outreach/attempts/{attempt}", role="collector")
    assert masked.status_code == 200
    assert masked.json()["masked"] is True
    assert masked.json()["message_text"] == "•••"
    assert "Canaryname" not in masked.text
    assert masked.json()["decision"]["outcome"] == "allowed"
    plain = world.call("GET", f"/api/v1/outreach/attempts/{attempt}", role="billing_manager")
    assert plain.json()["message_text"] == CANARY
    assert plain.json()["masked"] is False
    reads = [e for e in world.actions("patient.read") if e["subject_type"] == "outreach_attempt"]
    assert len(reads) == 2
    assert all("message_text" in e["details"]["fields"] for e in reads)


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("state=bogus", 422, "the request is not valid"),
        ("channel=fax", 422, "the request is not valid"),
        ("guarantor_id=not-a-uuid", 422, "the request is not valid"),
        ("scheduled_from=2026-01-01T00:00:00", 400, "UTC offset"),
        (
            "scheduled_from=2026-02-01T00:00:00Z&scheduled_to=2026-01-01T00:00:00Z",
            400,
            "after scheduled_to",
        ),
        ("scheduled_to=9999-12-31T23:59:59-23:00", 400, "between the years"),
        ("limit=0", 422, "the request is not valid"),
        ("limit=201", 422, "the request is not valid"),
    ],
    ids=[
        "bad_state",
        "bad_channel",
        "bad_uuid",
        "naive_date",
        "inverted_window",
        "far_future",
        "limit_zero",
        "limit_too_big",
    ],
)
def test_bad_filters_are_refused(world: World, query: str, status: int, fragment: str) -> None:
    before = world.state()
    response = world.call("GET", f"/api/v1/outreach/attempts?{query}")
    assert fragment in assert_problem(response, status)["detail"]
    assert world.state() == before


def test_unknown_attempt_is_404_and_reads_no_one(world: World) -> None:
    before = world.state()
    response = world.call("GET", "/api/v1/outreach/attempts/00000000-0000-7000-8000-000000000000")
    assert "no such outreach attempt" in assert_problem(response, 404)["detail"]
    assert world.state() == before
