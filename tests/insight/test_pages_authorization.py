"""Every insights route against every role and anonymous.

Each route needs one permission of the matrix (the drill-down needs PATIENT_READ on top of
INSIGHTS_READ). A denied request changes no table and enqueues no job; an anonymous GET
is sent to the sign-in page.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.insight.test_pages import drill_target, seed_insights
from tests.web.conftest import _cheap_password_hashing, make_web
from tests.web.helpers import job_count, snapshot

__all__ = ["_cheap_password_hashing"]  # autouse: cheap Argon2 parameters for test users

P = Permission
ACTORS = [r.value for r in Role] + ["anonymous"]

# (method, path template, the permissions needed, what an allowed call returns)
ROUTES: list[tuple[str, str, frozenset[Permission], str]] = [
    ("GET", "/app/insights", frozenset({P.INSIGHTS_READ}), "text/html"),
    ("GET", "/app/insights?group=compliance&period=last_month", frozenset({P.INSIGHTS_READ}),
     "text/html"),
    ("GET", "/app/insights/headline", frozenset({P.INSIGHTS_READ}), "text/html"),
    ("GET", "/app/insights/reports/{key}", frozenset({P.INSIGHTS_READ}), "text/html"),
    ("GET", "/app/insights/{key}.csv", frozenset({P.INSIGHTS_EXPORT}), "text/csv"),
    ("GET", "/app/insights/{key}.pdf", frozenset({P.INSIGHTS_EXPORT}), "application/pdf"),
    ("GET", "/app/insights/reports/{drill_key}/accounts?bucket={bucket}",
     frozenset({P.INSIGHTS_READ, P.PATIENT_READ}), "text/html"),
    # The signed-in user's monthly report e-mail choice (answers 303 back to the page).
    ("POST", "/app/insights/monthly-email", frozenset({P.INSIGHTS_EXPORT}), "redirect"),
]


def test_every_insights_route_is_in_the_table() -> None:
    from carecollect.staff_ui.insights_pages import router

    routes = {
        (method, route.path)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    listed = {
        (m, p.split("?")[0].replace("{drill_key}", "{key}")) for m, p, _, _ in ROUTES
    }
    assert routes == listed


def _allowed(actor: str, needed: frozenset[Permission]) -> bool:
    return actor != "anonymous" and needed <= ROLE_PERMISSIONS[Role(actor)]


@pytest.mark.slow
@pytest.mark.parametrize("actor", ACTORS)
def test_insights_routes(actor: str, db: Any, tmp_path: Any) -> None:
    web = make_web(db, tmp_path)
    seed_insights(web)
    key, drill_key, bucket = drill_target(web)
    client = web.client() if actor == "anonymous" else web.login(actor)
    cookie = client.cookies.get("cc_session") or "none"
    csrf = {"X-CSRF-Token": web.app.state.context.sign("csrf", cookie)}
    for method, template, needed, media_type in ROUTES:
        url = template.format(key=key, drill_key=drill_key, bucket=bucket)
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, url, headers=csrf, follow_redirects=False)
        if _allowed(actor, needed) and media_type == "redirect":
            assert response.status_code == 303, (url, response.text[:300])
            continue
        if _allowed(actor, needed):
            assert response.status_code == 200, (url, response.text[:300])
            assert response.headers["content-type"].startswith(media_type), url
            continue
        if actor == "anonymous" and method == "GET":
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/app/login")
        else:
            assert response.status_code == 403, (url, response.text[:300])
            assert "text/html" in response.headers["content-type"]
        assert snapshot(web.db) == before, url
        assert job_count(web.db) == jobs
