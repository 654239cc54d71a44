"""Every route of the whole application (API, staff pages of every domain, portal, hooks)
against anonymous callers and every role that lacks the route's permission.

The per-domain tests (tests/web/test_authorization.py and each domain's own) check what an
allowed caller gets; this sweep finds the routes from the application itself, so a route
added later is checked without anyone listing it: it must either declare one permission
of the matrix (`api_permission` / `staff_permission`) or be in PUBLIC below with the
reason it is public. Denied callers get 401/403 (the staff app sends anonymous GETs to
the sign-in page), and nothing stored changes and no job is queued.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from carecollect.identity.permissions import API_GRANTABLE, ROLE_PERMISSIONS, Permission, Role
from tests.web.conftest import Web
from tests.web.helpers import job_count, snapshot

# Routes without a permission of the matrix, by prefix, and why.
PUBLIC_PREFIXES = {
    "/app/login": "sign-in itself (password, TOTP, enrollment, single sign-on)",
    "/app/logout": "ends the caller's own session",
    "/pay": "the patient portal: its own link token, identity check and session",
    "/hooks/": "provider callbacks (Stripe, Twilio, SMTP): verified by their signatures",
    "/healthz": "liveness, no data",
    "/metrics": "Prometheus metrics, no PHI and no organization names",
    "/api/v1/openapi.json": "the API's schema",
}
PUBLIC_EXACT = {"/": "redirects to the staff app"}
# Answers 405 to every caller: search is a POST only.
METHOD_ONLY = {("GET", "/api/v1/guarantors/search"), ("PUT", "/api/v1/guarantors/search"),
               ("PATCH", "/api/v1/guarantors/search"), ("DELETE", "/api/v1/guarantors/search")}


def _permissions(dependant: Dependant) -> list[tuple[str, Permission]]:
    """The (kind, permission) pairs of `api_permission(...)` / `staff_permission(...)`
    dependencies anywhere under the route (read from the dependency's closure)."""
    found: list[tuple[str, Permission]] = []
    call = dependant.call
    for cell in getattr(call, "__closure__", None) or ():
        value = cell.cell_contents
        if isinstance(value, Permission):
            found.append((call.__qualname__.split(".")[0], value))  # type: ignore[union-attr]
    for sub in dependant.dependencies:
        found += _permissions(sub)
    return found


def _flatten(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, also through routers FastAPI includes lazily."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            extra = getattr(getattr(route, "include_context", None), "prefix", "")
            yield from _flatten(list(inner.routes), prefix + extra)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def _routes(web: Web) -> list[tuple[str, str, str | None, Permission | None]]:
    rows: list[tuple[str, str, str | None, Permission | None]] = []
    for path, route in _flatten(list(web.app.routes)):
        found = _permissions(route.dependant)
        assert len({p for _, p in found}) <= 1, (path, found)
        kind, permission = found[0] if found else (None, None)
        rows.extend((method, path, kind, permission) for method in sorted(route.methods))
    assert len(rows) > 150
    return rows


def _public(path: str) -> bool:
    return path in PUBLIC_EXACT or any(path.startswith(p) for p in PUBLIC_PREFIXES)


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def test_every_route_declares_a_permission_or_is_public(web: Web) -> None:
    unguarded = [
        (method, path) for method, path, _, permission in _routes(web)
        if permission is None and not _public(path) and (method, path) not in METHOD_ONLY
    ]
    assert unguarded == []
    kinds = {(path.startswith("/api/"), kind) for _, path, kind, p in _routes(web) if p}
    assert kinds == {(True, "api_permission"), (False, "staff_permission")}


def test_anonymous_callers_are_refused_everywhere(web: Web) -> None:
    client = web.client()
    before, jobs = snapshot(web.db), job_count(web.db)
    checked = 0
    for method, path, _, permission in _routes(web):
        if permission is None:
            continue
        response = client.request(method, _url(path), json={} if method != "GET" else None,
                                  follow_redirects=False)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["content-type"] == "application/problem+json"
        elif method == "GET":
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/app/login")
        else:
            assert response.status_code in (401, 403), (method, path, response.status_code)
        checked += 1
    assert checked > 100
    assert snapshot(web.db) == before
    assert job_count(web.db) == jobs


@pytest.mark.slow
@pytest.mark.parametrize("role", [r.value for r in Role])
def test_roles_without_the_permission_are_refused_everywhere(web: Web, role: str) -> None:
    granted = ROLE_PERMISSIONS[Role(role)]
    staff = web.login(role)
    cookie = staff.cookies.get("cc_session") or ""
    csrf = {"X-CSRF-Token": web.app.state.context.sign("csrf", cookie)}
    api = web.client()
    key = web.api(role)
    before, jobs = snapshot(web.db), job_count(web.db)
    refused = 0
    for method, path, _, permission in _routes(web):
        if permission is None:
            continue
        body: Any = {} if method != "GET" else None
        if path.startswith("/api/"):
            if permission in granted & API_GRANTABLE:
                continue
            response = api.request(method, _url(path), json=body, headers=key)
        else:
            if permission in granted:
                continue
            response = staff.request(method, _url(path), data=body, headers=csrf,
                                     follow_redirects=False)
        assert response.status_code == 403, (role, method, path, response.status_code)
        refused += 1
    assert snapshot(web.db) == before
    assert job_count(web.db) == jobs
    if role != "owner":
        assert refused > 0
