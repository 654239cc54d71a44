"""Every campaign, template-editor and plan-policy route against every role and anonymous.

The table names the one permission each route needs; a test fails when a route is added
to the campaign pages without being listed. A denied request must change nothing (every
table compared before and after) and enqueue nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.web.conftest import Web
from tests.web.helpers import job_count, snapshot
from tests.web.test_campaign_pages import AT_LOCAL, BUILDER_FORM, _campaign, seed_portfolio

P = Permission
ROUTES: list[tuple[str, str, Permission, Any]] = [
    ("GET", "/app/campaigns", P.CAMPAIGN_READ, None),
    ("GET", "/app/campaigns/new", P.CAMPAIGN_MANAGE, None),
    ("POST", "/app/campaigns", P.CAMPAIGN_MANAGE, BUILDER_FORM),
    ("GET", "/app/campaigns/{campaign_id}", P.CAMPAIGN_READ, None),
    ("GET", "/app/campaigns/{campaign_id}/edit", P.CAMPAIGN_MANAGE, None),
    ("POST", "/app/campaigns/{campaign_id}", P.CAMPAIGN_MANAGE,
     {**BUILDER_FORM, "name": "Edited"}),
    ("POST", "/app/campaigns/{campaign_id}/pause", P.CAMPAIGN_MANAGE, {}),
    ("POST", "/app/campaigns/{campaign_id}/resume", P.CAMPAIGN_MANAGE, {}),
    ("POST", "/app/campaigns/{campaign_id}/dry-run", P.CAMPAIGN_READ, {"at": AT_LOCAL}),
    ("GET", "/app/templates", P.CAMPAIGN_READ, None),
    ("GET", "/app/templates/{template_id}/{language}", P.CAMPAIGN_READ, None),
    ("POST", "/app/templates/check", P.CAMPAIGN_READ, {
        "template_id": "statement_ready_sms", "channel": "sms", "language": "en",
        "surface-sms_body": "{{ practice_name }}: a message is ready: {{ payment_url }}"}),
    ("GET", "/app/admin/plan-policy", P.ORG_READ, None),
    ("POST", "/app/admin/plan-policy", P.ORG_MANAGE, {
        "min_down": "0", "min_down_percent": "0", "min_installment": "30.00",
        "tier-0-up_to": "", "tier-0-months": "12"}),
]
ACTORS = [r.value for r in Role] + ["anonymous"]


def test_every_campaign_route_is_in_the_table() -> None:
    from carecollect.staff_ui.campaign_pages import router

    routes = {(method, route.path) for route in router.routes if isinstance(route, APIRoute)
              for method in route.methods or ()}
    assert routes == {(method, path) for method, path, _, _ in ROUTES}


def _allowed(actor: str, permission: Permission) -> bool:
    return actor != "anonymous" and permission in ROLE_PERMISSIONS[Role(actor)]


@pytest.mark.slow
@pytest.mark.parametrize("actor", ACTORS)
def test_campaign_routes(actor: str, web: Web) -> None:
    campaign_id = _campaign(web)
    seed_portfolio(web)
    names = {"campaign_id": str(campaign_id), "template_id": "statement_ready_sms",
             "language": "en"}
    client = web.client() if actor == "anonymous" else web.login(actor)
    context = web.app.state.context
    for method, path, permission, form in ROUTES:
        url = path.format(**names)
        cookie = client.cookies.get("cc_session") or "none"
        headers = {"X-CSRF-Token": context.sign("csrf", cookie)}
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, url, data=form, headers=headers)
        if _allowed(actor, permission):
            assert response.status_code in (200, 303), (method, path, response.text[:500])
            if response.status_code == 303:
                assert not response.headers["location"].startswith("/app/login")
            continue
        if actor == "anonymous" and method == "GET":
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/app/login")
        else:
            # A signed-in role without the permission, or no session (so no valid CSRF
            # token either): refused before anything runs.
            assert response.status_code == 403, (method, path, response.text[:300])
        assert snapshot(web.db) == before, (method, path)
        assert job_count(web.db) == jobs


def test_csrf_is_required_on_campaign_posts(web: Web) -> None:
    campaign_id = _campaign(web)
    client = web.login("owner")
    before = snapshot(web.db)
    for path in ("/app/campaigns", f"/app/campaigns/{campaign_id}/pause",
                 f"/app/campaigns/{campaign_id}/dry-run", "/app/admin/plan-policy"):
        response = client.post(path, data=BUILDER_FORM)
        assert response.status_code == 403, path
    assert snapshot(web.db) == before
