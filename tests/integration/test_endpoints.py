"""`/api/v1/webhook-endpoints`: create (secret shown once, Idempotency-Key), list, delete;
every route against every role, anonymous and a key without scopes (denials change
nothing and enqueue nothing); bad input stores nothing; other tenants' endpoints are 404."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from carecollect.db import Database
from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from carecollect.integration.models import WebhookEndpoint
from carecollect.integration.service import webhook_service
from tests.factories import audit_events, create_tenant
from tests.integration.conftest import ADMIN
from tests.web.conftest import Web, make_web
from tests.web.helpers import job_count, snapshot

BODY = {"url": "https://hooks.example.org/carecollect", "event_types": ["payment.succeeded"]}


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in tests/web: production Argon2id cost for every test user would be slow.
    from argon2 import PasswordHasher

    from carecollect.identity import service as identity

    monkeypatch.setattr(
        identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def web(db: Database, tmp_path: Path) -> Web:
    return make_web(db, tmp_path)


def _existing(web: Web) -> uuid.UUID:
    with web.db.tenant_session(web.tenant.id) as session:
        row, _ = webhook_service.create_endpoint(
            session, keys=web.tenant.keys, actor=ADMIN, url="https://other.example.org/in",
            event_types=["plan.defaulted"])
        return row.id


ACTORS = [r.value for r in Role] + ["anonymous", "no_scopes"]


@pytest.mark.parametrize("actor", ACTORS)
def test_every_route_by_role(web: Web, actor: str) -> None:
    endpoint_id = _existing(web)
    client = web.client()
    headers = {} if actor == "anonymous" else web.api("none" if actor == "no_scopes" else actor)
    allowed = actor in {r.value for r in Role} and \
        Permission.WEBHOOK_MANAGE in ROLE_PERMISSIONS[Role(actor)]
    assert allowed == (actor == "owner")
    routes: list[tuple[str, str, Any, int]] = [
        ("GET", "/api/v1/webhook-endpoints", None, 200),
        ("POST", "/api/v1/webhook-endpoints", BODY, 201),
        ("DELETE", f"/api/v1/webhook-endpoints/{endpoint_id}", None, 204),
    ]
    for method, path, body, success in routes:
        before, jobs = snapshot(web.db), job_count(web.db)
        response = client.request(method, path, json=body, headers=headers)
        if allowed:
            assert response.status_code == success, (method, response.text)
            continue
        assert response.status_code == (401 if actor == "anonymous" else 403), method
        assert response.headers["content-type"] == "application/problem+json"
        assert snapshot(web.db) == before, method
        assert job_count(web.db) == jobs


def test_create_list_delete(web: Web) -> None:
    client = web.client()
    headers = web.api("owner")
    response = client.post("/api/v1/webhook-endpoints", json={**BODY, "description": "ERP"},
                           headers=headers)
    assert response.status_code == 201
    created = response.json()
    assert created["secret"].startswith("whsec_")
    assert {k: created[k] for k in ("url", "event_types", "active", "description")} == {
        "url": BODY["url"], "event_types": ["payment.succeeded"], "active": True,
        "description": "ERP"}
    listed = client.get("/api/v1/webhook-endpoints", headers=headers).json()
    assert listed["next_cursor"] is None
    [item] = listed["items"]
    assert item["id"] == created["id"]
    assert "secret" not in item  # shown once, at creation
    assert client.delete(f"/api/v1/webhook-endpoints/{created['id']}",
                         headers=headers).status_code == 204
    assert client.get("/api/v1/webhook-endpoints", headers=headers).json()["items"] == []
    again = client.delete(f"/api/v1/webhook-endpoints/{created['id']}", headers=headers)
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"
    actions = [e["action"] for e in audit_events(web.db) if e["action"].startswith("webhook")]
    assert actions == ["webhook_endpoint.create", "webhook_endpoint.delete"]


def test_pagination(web: Web) -> None:
    ids = sorted(str(_existing(web)) for _ in range(3))
    client = web.client()
    first = client.get("/api/v1/webhook-endpoints?limit=2", headers=web.api("owner")).json()
    assert [i["id"] for i in first["items"]] == ids[:2]
    second = client.get(f"/api/v1/webhook-endpoints?limit=2&cursor={first['next_cursor']}",
                        headers=web.api("owner")).json()
    assert [i["id"] for i in second["items"]] == ids[2:]
    assert second["next_cursor"] is None


def test_idempotency_key_replays_the_first_response(web: Web) -> None:
    client = web.client()
    headers = {**web.api("owner"), "Idempotency-Key": "create-hook-1"}
    first = client.post("/api/v1/webhook-endpoints", json=BODY, headers=headers)
    second = client.post("/api/v1/webhook-endpoints", json=BODY, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    with web.db.system_session() as session:
        assert session.query(WebhookEndpoint).count() == 1
    different = client.post("/api/v1/webhook-endpoints",
                            json={**BODY, "event_types": ["plan.defaulted"]}, headers=headers)
    assert different.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({**BODY, "url": "http://hooks.example.org/in"}, 400, "must use https"),
        ({**BODY, "url": "https://u:p@hooks.example.org/in"}, 400, "credentials"),
        ({**BODY, "event_types": ["patient.read"]}, 422, None),
        ({**BODY, "event_types": []}, 422, None),
        ({"url": BODY["url"]}, 422, None),
        ({**BODY, "secret": "mine"}, 422, None),
    ],
)
def test_bad_input_stores_nothing(web: Web, body: dict[str, Any], status: int,
                                  detail: str | None) -> None:
    before, jobs = snapshot(web.db), job_count(web.db)
    response = web.client().post("/api/v1/webhook-endpoints", json=body,
                                 headers=web.api("owner"))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if detail:
        assert detail in response.json()["detail"]
    assert snapshot(web.db) == before
    assert job_count(web.db) == jobs


def test_loopback_http_only_outside_production(web: Web) -> None:
    body = {**BODY, "url": "http://127.0.0.1:9999/in"}
    client = web.client()
    assert client.post("/api/v1/webhook-endpoints", json=body,
                       headers=web.api("owner")).status_code == 201
    web.app.state.context.settings = web.settings.model_copy(update={"environment": "production"})
    refused = client.post("/api/v1/webhook-endpoints", json=body, headers=web.api("owner"))
    assert refused.status_code == 400
    assert "must use https" in refused.json()["detail"]


def test_another_organizations_endpoint_is_not_found(web: Web) -> None:
    other = create_tenant(web.db, web.tenant.manager)
    with web.db.tenant_session(other.id) as session:
        row, _ = webhook_service.create_endpoint(
            session, keys=other.keys, actor=ADMIN, url="https://other.example.org/in",
            event_types=["plan.defaulted"])
        other_id = row.id
    client = web.client()
    before = snapshot(web.db)
    response = client.delete(f"/api/v1/webhook-endpoints/{other_id}", headers=web.api("owner"))
    assert response.status_code == 404
    assert snapshot(web.db) == before
    assert client.get("/api/v1/webhook-endpoints", headers=web.api("owner")).json()["items"] \
        == []
