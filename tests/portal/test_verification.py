"""The identity check: last name plus date of birth or ZIP, normalised; failures counted,
rate-limited per link and per address, locked out, every attempt audited without values;
success opens a server-side session with a Strict, HttpOnly cookie confined to /pay."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carecollect.db import Database
from carecollect.portal.models import PortalLink, PortalSession, PortalVerificationAttempt
from tests.factories import audit_events
from tests.portal.conftest import Person, PortalWorld, make_portal_world, title_of

PHI_VALUES = ("Núñez", "Nunez", "nunez", "1984-02-29", "02139", "Alicia", "5001")


def _dob(person: Person, **override: str) -> dict[str, str]:
    birth = person.date_of_birth
    fields = {"last_name": person.last_name, "dob_month": str(birth.month),
              "dob_day": str(birth.day), "dob_year": str(birth.year)}
    fields.update(override)
    return fields


def _no_values_in_audit(world: PortalWorld) -> None:
    text = json.dumps(audit_events(world.db, "portal.login"))
    for value in PHI_VALUES:
        assert value not in text


def test_fail_then_pass_with_date_of_birth(world: PortalWorld) -> None:
    link = world.issue()
    client = world.client()
    wrong = world.submit(client, link.token, **_dob(world.alice, dob_day="28"))
    assert wrong.status_code == 401
    assert "We could not confirm those details" in wrong.text
    assert title_of(wrong.text) == "Confirm it is you · Pay your bill"
    assert world.count(PortalSession) == 0
    right = world.submit(client, link.token, **_dob(world.alice))
    assert right.status_code == 303
    assert right.headers["location"] == "/pay/bill"  # the URL carries no token from here on
    assert world.count(PortalSession) == 1
    logins = audit_events(world.db, "portal.login")
    assert [(e["outcome"], e["actor_type"]) for e in logins] == [
        ("failure", "system"), ("success", "patient")]
    assert logins[0]["details"] == {"reason": "mismatch", "method": "dob", "failures": 1}
    assert logins[1]["details"] == {"method": "dob"}
    assert logins[1]["actor_id"] == str(world.alice.guarantor_id)
    assert all(e["patient_id"] == str(world.alice.guarantor_id) for e in logins)
    _no_values_in_audit(world)
    outcomes = [a.outcome for a in _attempts(world)]
    assert outcomes == ["failure", "success"]
    with world.db.tenant_session(world.org_id) as session:
        assert session.get(PortalLink, link.link_id).failed_attempts == 0  # type: ignore[union-attr]


def _attempts(world: PortalWorld) -> list[PortalVerificationAttempt]:
    with world.db.system_session() as session:
        return list(session.scalars(select(PortalVerificationAttempt)
                                    .order_by(PortalVerificationAttempt.attempted_at,
                                              PortalVerificationAttempt.id)))


@pytest.mark.parametrize("typed", ["nunez ortiz", "  NÚÑEZ-ORTIZ ", "Nuñez Ortiz", "núñezortiz"])
def test_last_name_ignores_case_spaces_punctuation_and_accents(
    world: PortalWorld, typed: str
) -> None:
    link = world.issue()
    response = world.submit(world.client(), link.token, **_dob(world.alice, last_name=typed))
    assert response.status_code == 303


def test_zip_code_instead_of_date_of_birth(world: PortalWorld) -> None:
    link = world.issue()
    client = world.client()
    wrong = world.submit(client, link.token, last_name=world.alice.last_name, zip="02138")
    assert wrong.status_code == 401
    right = world.submit(client, link.token, last_name=world.alice.last_name,
                         zip="02139-4307")
    assert right.status_code == 303
    details = [e["details"]["method"] for e in audit_events(world.db, "portal.login")]
    assert details == ["zip", "zip"]


def test_another_persons_details_do_not_open_this_link(world: PortalWorld) -> None:
    link = world.issue(world.alice)
    response = world.submit(world.client(), link.token, **_dob(world.bob))
    assert response.status_code == 401
    assert world.count(PortalSession) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"last_name": "", "dob_month": "2", "dob_day": "29", "dob_year": "1984"},
        {"last_name": "Núñez-Ortiz"},
        {"last_name": "Núñez-Ortiz", "dob_month": "2", "dob_day": "30", "dob_year": "1984"},
        {"last_name": "Núñez-Ortiz", "dob_month": "x", "dob_day": "1", "dob_year": "1984"},
        {"last_name": "Núñez-Ortiz", "zip": "123"},
        {"last_name": "--", "zip": "02139"},
    ],
)
def test_incomplete_answers_are_refused_and_audited_but_do_not_lock(
    world: PortalWorld, fields: dict[str, str]
) -> None:
    link = world.issue()
    response = world.submit(world.client(), link.token, **fields)
    assert response.status_code == 422
    assert "Enter your last name and either your date of birth or your ZIP code." in response.text
    assert world.count(PortalSession) == 0
    assert [a.outcome for a in _attempts(world)] == ["incomplete"]
    [event] = audit_events(world.db, "portal.login")
    assert event["outcome"] == "failure"
    assert event["details"]["reason"] == "incomplete"
    assert event["patient_id"] == str(world.alice.guarantor_id)
    _no_values_in_audit(world)
    with world.db.tenant_session(world.org_id) as session:
        assert session.get(PortalLink, link.link_id).failed_attempts == 0  # type: ignore[union-attr]


def test_the_form_needs_its_csrf_token(world: PortalWorld) -> None:
    link = world.issue()
    client = world.client()
    world.verify_form(client, link.token)
    for token in ("", "0" * 64):
        response = client.post(f"/pay/{link.token}", data={"csrf_token": token,
                                                           **_dob(world.alice)})
        assert response.status_code == 403
        assert "This form expired" in response.text
    # A token rendered for another link is not valid for this one.
    other = world.issue()
    csrf_other = world.verify_form(client, other.token)
    response = client.post(f"/pay/{link.token}", data={"csrf_token": csrf_other,
                                                       **_dob(world.alice)})
    assert response.status_code == 403
    # Without the visitor's own cookie the token is worthless.
    fresh = world.client()
    response = fresh.post(f"/pay/{link.token}", data={"csrf_token": csrf_other,
                                                      **_dob(world.alice)})
    assert response.status_code == 403
    assert world.count(PortalSession) == 0
    assert world.count(PortalVerificationAttempt) == 0


@pytest.fixture
def strict(db: Database, tmp_path: Path) -> PortalWorld:
    return make_portal_world(db, tmp_path, max_failures=3, lockout_minutes=30,
                             link_attempts_per_window=50, address_attempts_per_window=50)


def test_lockout_after_repeated_failures(strict: PortalWorld) -> None:
    world = strict
    link = world.issue()
    client = world.client()
    for _ in range(2):
        assert world.submit(client, link.token, **_dob(world.alice, dob_day="28")
                            ).status_code == 401
    third = world.submit(client, link.token, **_dob(world.alice, dob_day="28"))
    assert third.status_code == 429
    assert "Too many tries" in third.text
    # Locked: even the right answer is refused, and no session is made.
    locked = world.submit(client, link.token, **_dob(world.alice))
    assert locked.status_code == 429
    assert world.count(PortalSession) == 0
    logins = audit_events(world.db, "portal.login")
    assert [e["outcome"] for e in logins] == ["failure", "failure", "failure", "denied"]
    assert logins[2]["details"] == {"reason": "mismatch", "method": "dob", "failures": 3,
                                    "locked": True}
    assert logins[3]["details"] == {"reason": "locked"}
    _no_values_in_audit(world)
    # After the lockout period the right answer works again.
    world.clock.advance(minutes=31)
    assert world.submit(client, link.token, **_dob(world.alice)).status_code == 303


def test_lockout_of_one_link_leaves_other_people_alone(strict: PortalWorld) -> None:
    world = strict
    alice_link, bob_link = world.issue(world.alice), world.issue(world.bob)
    client = world.client()
    for _ in range(3):
        world.submit(client, alice_link.token, **_dob(world.alice, dob_day="28"))
    assert world.submit(client, bob_link.token, **_dob(world.bob)).status_code == 303


def test_rate_limit_per_address_across_links(db: Database, tmp_path: Path) -> None:
    world = make_portal_world(db, tmp_path, address_attempts_per_window=4, max_failures=50,
                              window_minutes=15)
    links = [world.issue(world.alice), world.issue(world.bob)]
    client = world.client()
    for index in range(4):
        link = links[index % 2]
        person = world.alice if index % 2 == 0 else world.bob
        assert world.submit(client, link.token, **_dob(person, dob_day="28")
                            ).status_code == 401
    # The fifth try from this address is refused before any comparison, even if right.
    response = _post_fresh_form(world, client, links[0].token, _dob(world.alice))
    assert response.status_code == 429
    assert world.count(PortalSession) == 0
    denied = [e for e in audit_events(world.db, "portal.login") if e["outcome"] == "denied"]
    assert denied[-1]["details"] == {"reason": "address_rate_limited"}
    # Opening a link from the limited address also shows "try later", not the form.
    assert client.get(f"/pay/{links[1].token}").status_code == 429
    # The window passes: allowed again.
    world.clock.advance(minutes=16)
    assert world.submit(client, links[0].token, **_dob(world.alice)).status_code == 303


def _post_fresh_form(world: PortalWorld, client: TestClient, token: str,
                     fields: dict[str, str]) -> Any:
    # The GET of the form is itself refused while limited, so build the CSRF value the
    # way the page would have (the visitor may have had the form open already).
    from carecollect.portal.endpoints import _verify_csrf

    context = world.app.state.context
    cookie = client.cookies.get("cc_portal_verify")
    assert cookie
    return client.post(f"/pay/{token}", data={"csrf_token": _verify_csrf(context, cookie, token),
                                              **fields})


def test_rate_limit_per_link_across_addresses(db: Database, tmp_path: Path) -> None:
    world = make_portal_world(db, tmp_path, link_attempts_per_window=3, max_failures=50,
                              address_attempts_per_window=50)
    link = world.issue()
    for _ in range(3):
        client = world.client()  # new visitor each time (its own cookie)
        assert world.submit(client, link.token, **_dob(world.alice, dob_day="28")
                            ).status_code == 401
    response = world.submit(world.client(), link.token, **_dob(world.alice))
    assert response.status_code == 429
    assert world.count(PortalSession) == 0
    denied = audit_events(world.db, "portal.login")[-1]
    assert denied["outcome"] == "denied"
    assert denied["details"] == {"reason": "link_rate_limited"}
    assert denied["patient_id"] == str(world.alice.guarantor_id)


def test_session_cookie_flags_on_plain_http_loopback(world: PortalWorld) -> None:
    link = world.issue()
    response = world.submit(world.client(), link.token, **_dob(world.alice))
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("cc_portal="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie
    assert "Path=/pay" in session_cookie
    assert "Secure" not in session_cookie  # development over plain HTTP on loopback only
    value = session_cookie.split(";")[0].split("=", 1)[1]
    with world.db.tenant_session(world.org_id) as session:
        row = session.scalars(select(PortalSession)).one()
        assert value.startswith(world.org_id.hex + ".")
        assert value.split(".", 1)[1] not in (row.token_hash, row.csrf_secret)
        assert row.guarantor_id == world.alice.guarantor_id
        assert row.idle_expires_at == world.clock() + world.portal.idle_timeout
        assert row.absolute_expires_at == world.clock() + world.portal.absolute_timeout


def test_session_cookie_is_secure_when_the_app_is(db: Database, tmp_path: Path) -> None:
    world = make_portal_world(db, tmp_path)
    context = world.app.state.context
    context.cookie_secure = True
    link = world.issue()
    client = TestClient(world.app, base_url="https://127.0.0.1", follow_redirects=False)
    response = world.submit(client, link.token, **_dob(world.alice))
    assert response.status_code == 303
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("__Secure-cc_portal="))
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/pay" in cookie
    assert client.get("/pay/bill").status_code == 200


def test_verification_sets_the_session_language_from_the_form(world: PortalWorld) -> None:
    client = world.login(lang="es")
    response = client.get("/pay/bill")
    assert '<html lang="es">' in response.text
    assert title_of(response.text) == "Su factura · Pague su factura"
    assert date(1984, 2, 29).isoformat() not in response.text
