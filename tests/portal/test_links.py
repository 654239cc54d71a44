"""Payment links: opaque high-entropy tokens stored only as hashes, bound to one guarantor;
expired, revoked and unknown tokens show the same neutral page and nothing else."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from carecollect.errors import BadInput, NotFound
from carecollect.portal import service as portal_service
from carecollect.portal.models import PortalLink, PortalSession, PortalVerificationAttempt
from tests.factories import audit_events
from tests.portal.conftest import STAFF, PortalWorld, title_of

INVALID_TITLE = "Link expired or invalid · Pay your bill"


def _every_stored_text(world: PortalWorld) -> str:
    """Every value of every column of every table, as text (to look for a secret)."""
    chunks: list[str] = []
    with world.db.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608 - names from the catalog
                chunks.extend(str(value) for value in row)
    return "\n".join(chunks)


def test_token_is_256_bits_urlsafe_and_only_its_hash_is_stored(world: PortalWorld) -> None:
    first = world.issue()
    second = world.issue()
    assert first.token != second.token
    # secrets.token_urlsafe(32): 32 random bytes -> 43 URL-safe characters (>= 128 bits).
    assert len(first.token) == 43
    assert set(first.token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert first.url == f"/pay/{first.token}"
    with world.db.tenant_session(world.org_id) as session:
        row = session.get(PortalLink, first.link_id)
        assert row is not None
        assert row.token_hash == hashlib.sha256(first.token.encode()).hexdigest()
        assert row.guarantor_id == world.alice.guarantor_id
        assert row.organization_id == world.org_id
        assert row.expires_at == world.clock() + timedelta(days=30)
        assert row.created_by == f"staff:{STAFF.id}"
        assert row.revoked_at is None
    stored = _every_stored_text(world)
    assert first.token not in stored
    assert second.token not in stored
    issued = audit_events(world.db, "portal.link_issue")
    assert len(issued) == 2
    assert all(first.token not in json.dumps(e) for e in issued)
    assert issued[0]["subject_id"] == str(first.link_id)
    assert issued[0]["patient_id"] == str(world.alice.guarantor_id)


def test_issue_link_checks_its_inputs(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as session, pytest.raises(BadInput):
        portal_service.issue_link(session, actor=STAFF, organization_id=world.org_id,
                                  guarantor_id=world.alice.guarantor_id, ttl=timedelta(0),
                                  now=world.clock())
    with world.db.tenant_session(world.org_id) as session, pytest.raises(NotFound):
        portal_service.issue_link(session, actor=STAFF, organization_id=world.org_id,
                                  guarantor_id=world.org_id, ttl=timedelta(days=1),
                                  now=world.clock())
    assert world.count(PortalLink) == 0


def test_a_live_link_shows_only_the_identity_form(world: PortalWorld) -> None:
    link = world.issue()
    response = world.client().get(f"/pay/{link.token}")
    assert response.status_code == 200
    assert title_of(response.text) == "Confirm it is you · Pay your bill"
    assert 'name="last_name"' in response.text
    for value in ("Núñez", "Alicia", "1984", "02139", "5001", "Quintanilla"):
        assert value not in response.text
    cookie = response.headers["set-cookie"]
    assert "cc_portal_verify=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/pay" in cookie


def _neutral(world: PortalWorld, token: str) -> str:
    response = world.client().get(f"/pay/{token}")
    assert response.status_code == 404
    assert title_of(response.text) == INVALID_TITLE
    assert 'name="last_name"' not in response.text
    assert "set-cookie" not in response.headers
    body: str = response.text
    return body


def test_expired_revoked_and_unknown_tokens_look_the_same(world: PortalWorld) -> None:
    expiring = world.issue(ttl=timedelta(hours=1))
    revoked = world.issue()
    with world.db.tenant_session(world.org_id) as session:
        portal_service.revoke_link(session, actor=STAFF, link_id=revoked.link_id,
                                   now=world.clock())
    world.clock.advance(hours=1)
    unknown = "A" * 43
    bodies = {_neutral(world, token) for token in (expiring.token, revoked.token, unknown)}
    assert len(bodies) == 1  # byte-identical: no oracle
    body = bodies.pop()
    assert "expired or is not valid" in body
    for value in ("Núñez", "Alicia", "1984", "02139", "5001"):
        assert value not in body
    # Each try on a dead token is counted (rate limit) and audited, without the token.
    assert world.count(PortalVerificationAttempt, outcome="unknown_link") == 3
    guesses = audit_events(world.db, "portal.link_unknown")
    assert [g["outcome"] for g in guesses] == ["failure"] * 3
    assert all(expiring.token not in json.dumps(g) and unknown not in json.dumps(g)
               for g in guesses)


def test_posting_the_form_to_a_dead_link_shows_the_same_page(world: PortalWorld) -> None:
    link = world.issue(ttl=timedelta(minutes=10))
    client = world.client()
    csrf = world.verify_form(client, link.token)
    world.clock.advance(minutes=10)
    birth = world.alice.date_of_birth
    response = client.post(f"/pay/{link.token}", data={
        "csrf_token": csrf, "last_name": world.alice.last_name, "dob_month": str(birth.month),
        "dob_day": str(birth.day), "dob_year": str(birth.year)})
    assert response.status_code == 404
    assert title_of(response.text) == INVALID_TITLE
    assert world.count(PortalSession) == 0


def test_revoking_a_link_ends_the_sessions_opened_through_it(world: PortalWorld) -> None:
    client = world.login()
    assert client.get("/pay/bill").status_code == 200
    with world.db.tenant_session(world.org_id) as session:
        link_id = session.scalars(select(PortalSession.link_id)).one()
        assert link_id is not None
        portal_service.revoke_link(session, actor=STAFF, link_id=link_id, now=world.clock())
    response = client.get("/pay/bill")
    assert response.status_code == 404
    assert title_of(response.text) == INVALID_TITLE
    assert "Núñez" not in response.text
    with world.db.tenant_session(world.org_id) as session:
        row = session.scalars(select(PortalSession)).one()
        assert row.revoke_reason == "link_revoked"
    revokes = audit_events(world.db, "portal.link_revoke")
    assert len(revokes) == 1
    assert revokes[0]["details"] == {"reason": "revoked"}


def test_revoke_links_of_guarantor_counts_only_live_links(world: PortalWorld) -> None:
    world.issue()
    world.issue(ttl=timedelta(minutes=1))
    world.issue(world.bob)
    world.clock.advance(minutes=2)
    with world.db.tenant_session(world.org_id) as session:
        assert portal_service.revoke_links_of_guarantor(
            session, actor=STAFF, guarantor_id=world.alice.guarantor_id, now=world.clock()) == 1
    with world.db.tenant_session(world.org_id) as session:
        revoked = session.scalars(select(PortalLink).where(PortalLink.revoked_at.is_not(None)))
        assert [r.guarantor_id for r in revoked] == [world.alice.guarantor_id]


@pytest.mark.parametrize("path", ["/pay/short", "/pay/" + "x" * 101, "/pay/" + "%21" * 43])
def test_paths_that_are_not_token_shaped_are_not_links(world: PortalWorld, path: str) -> None:
    response = world.client().get(path)
    assert response.status_code == 404
    assert world.count(PortalVerificationAttempt) == 0


def test_message_link_for_outreach(world: PortalWorld) -> None:
    with world.db.tenant_session(world.org_id) as session:
        url = portal_service.message_link(
            session, organization_id=world.org_id, guarantor_id=world.bob.guarantor_id,
            now=world.clock(), base_url="https://billing.example.org/")
    assert url.startswith("https://billing.example.org/pay/")
    token = url.rsplit("/", 1)[1]
    with world.db.tenant_session(world.org_id) as session:
        row = session.scalars(select(PortalLink)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.guarantor_id == world.bob.guarantor_id
    assert row.created_by == "system:outreach.dispatch"
    assert row.expires_at == world.clock() + timedelta(days=30)
    # The link opens Bob's identity check.
    response = world.client().get(f"/pay/{token}")
    assert response.status_code == 200
