"""Every portal route, found from the application itself (so a route added later is swept
too): without a portal session each answers the neutral page and changes nothing, and a
signed-in guarantor pointing any route at another guarantor's account, plan or payment
gets the neutral 404 and changes nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from tests.portal.conftest import PortalWorld, csrf_of, title_of
from tests.portal.test_sessions import _bob_payment_and_plan
from tests.web.helpers import job_count, snapshot

# Answer without a session by design: the link itself (an unknown token is the neutral
# page too), the language switch, and the pages a card processor sends the browser back
# to (they show a fixed "we are checking" message and read nothing).
NO_SESSION_PUBLIC = {"/pay/{token:portaltoken}", "/pay/return", "/pay/autopay/return",
                     "/pay/language"}
INVALID_TITLE = "Link expired or invalid · Pay your bill"


def _flatten(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            extra = getattr(getattr(route, "include_context", None), "prefix", "")
            yield from _flatten(list(inner.routes), prefix + extra)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def _portal_routes(world: PortalWorld) -> list[tuple[str, str]]:
    rows = sorted(
        (method, path)
        for path, route in _flatten(list(world.app.routes))
        if path.startswith("/pay")
        for method in route.methods
    )
    assert len(rows) > 20
    return rows


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def test_without_a_session_every_portal_route_shows_nothing(world: PortalWorld) -> None:
    client = world.client()
    before, jobs = snapshot(world.db), job_count(world.db)
    checked = 0
    for method, path in _portal_routes(world):
        if path in NO_SESSION_PUBLIC:
            continue
        url = _fill(path, {"account_id": str(world.alice.account_id), "what": "payment"})
        response = client.request(method, url, data={"csrf_token": "x"} if method == "POST"
                                  else None, follow_redirects=False)
        assert response.status_code == 404, (method, path, response.status_code)
        if method == "GET" and not path.endswith("/pdf"):
            assert title_of(response.text) == INVALID_TITLE, (method, path)
        assert "5001" not in response.text
        checked += 1
    assert checked > 15
    assert snapshot(world.db) == before
    assert job_count(world.db) == jobs


def test_another_guarantors_ids_are_refused_on_every_route(world: PortalWorld) -> None:
    payment_id, plan_id = _bob_payment_and_plan(world)
    bob = {"account_id": str(world.bob.account_id), "plan_id": str(plan_id),
           "payment_id": str(payment_id)}
    alice = world.login(world.alice)
    csrf = csrf_of(alice.get(f"/pay/accounts/{world.alice.account_id}/pay").text)
    before, jobs = snapshot(world.db), job_count(world.db)
    checked = 0
    for method, path in _portal_routes(world):
        names = set(re.findall(r"\{(\w+)", path))
        if not names & set(bob):
            continue
        url = _fill(path, bob)
        response = alice.request(method, url, data={"csrf_token": csrf, "amount": "5.00",
                                                    "installments": "2"}
                                 if method == "POST" else None, follow_redirects=False)
        # A form post is refused by its CSRF check (the token belongs to another form) or
        # by the ownership check; a page is the neutral 404.
        allowed = (403, 404) if method == "POST" else (404,)
        assert response.status_code in allowed, (method, path, response.status_code)
        assert "Quintanilla" not in response.text
        assert "5002" not in response.text
        checked += 1
    assert checked >= 10
    # Alice's own page views are audited; nothing of Bob's changed and nothing was queued.
    after = snapshot(world.db)
    assert {k: v for k, v in after.items() if k not in ("audit_event", "portal_session")} \
        == {k: v for k, v in before.items() if k not in ("audit_event", "portal_session")}
    assert job_count(world.db) == jobs
