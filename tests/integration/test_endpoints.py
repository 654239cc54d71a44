"""`/api/v1/webhook-endpoints`: create (secret shown once, Idempotency-Key), list, delete;
every route against every role, anonymous and a key without scopes (denials change
nothing and enqueue nothing); bad input stores nothing; other tenants' endpoints are 404."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from carecollect.db import Database
from carecollect.identity.permissions import ROLE_PERMISSIONS, Permission, Role
from carecollect.integration.models import WebhookDelivery, WebhookEndpoint
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


def _failed_delivery(web: Web, endpoint_id: uuid.UUID) -> uuid.UUID:
    """An event delivered to `endpoint_id` whose delivery gave up (state `failed`)."""
    from carecollect.integration.service import emit_event

    with web.db.tenant_session(web.tenant.id) as session:
        event = emit_event(session, organization_id=web.tenant.id, type="plan.defaulted",
                           data={"plan_id": uuid.uuid4(), "misses": 2})
        delivery = session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.event_id == event.id,
                                          WebhookDelivery.endpoint_id == endpoint_id))
        assert delivery is not None
        delivery.state, delivery.attempts = "failed", 12
        return delivery.id


ACTORS = [r.value for r in Role] + ["anonymous", "no_scopes"]


@pytest.mark.parametrize("actor", ACTORS)
def test_every_route_by_role(web: Web, actor: str) -> None:
    endpoint_id = _existing(web)
    delivery_id = _failed_delivery(web, endpoint_id)
    client = web.client()
    headers = {} if actor == "anonymous" else web.api("none" if actor == "no_scopes" else actor)
    allowed = actor in {r.value for r in Role} and \
        Permission.WEBHOOK_MANAGE in ROLE_PERMISSIONS[Role(actor)]
    assert allowed == (actor == "owner")
    routes: list[tuple[str, str, Any, int]] = [
        ("GET", "/api/v1/webhook-endpoints", None, 200),
        ("POST", "/api/v1/webhook-endpoints", BODY, 201),
        ("GET", f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries", None, 200),
        ("POST", f"/api/v1/webhook-deliveries/{delivery_id}/redeliver", None, 200),
        ("POST", f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", {}, 200),
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


def test_every_route_of_the_router_is_tested_by_role() -> None:
    from fastapi.routing import APIRoute

    from carecollect.integration.endpoints import router

    routes = {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert routes == {
        ("GET", "/api/v1/webhook-endpoints"),
        ("POST", "/api/v1/webhook-endpoints"),
        ("GET", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries"),
        ("POST", "/api/v1/webhook-deliveries/{delivery_id}/redeliver"),
        ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
        ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"),
    }


def test_rotate_secret_and_list_and_redeliver(web: Web) -> None:
    endpoint_id = _existing(web)
    delivery_id = _failed_delivery(web, endpoint_id)
    client = web.client()
    headers = web.api("owner")
    rotated = client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
                          json={"grace_hours": 2}, headers=headers)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["id"] == str(endpoint_id)
    assert body["secret"].startswith("whsec_")
    assert body["previous_secret_expires_at"] is not None
    with web.db.tenant_session(web.tenant.id) as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        assert web.tenant.keys.cipher().open_row(row, "secret") == body["secret"]
    listed = client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries?state=failed",
                        headers=headers).json()
    [item] = listed["items"]
    assert (item["id"], item["event_type"], item["state"], item["attempts"]) == (
        str(delivery_id), "plan.defaulted", "failed", 12)
    assert client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries?state=pending",
                      headers=headers).json()["items"] == []
    again = client.post(f"/api/v1/webhook-deliveries/{delivery_id}/redeliver", headers=headers)
    assert again.status_code == 200
    assert (again.json()["state"], again.json()["failed_at"]) == ("pending", None)
    refused = client.post(f"/api/v1/webhook-deliveries/{delivery_id}/redeliver",
                          headers=headers)
    assert refused.status_code == 400
    assert "still pending" in refused.json()["detail"]
    actions = [e["action"] for e in audit_events(web.db) if e["action"].startswith("webhook")]
    assert actions[-2:] == ["webhook_endpoint.rotate_secret", "webhook_delivery.redeliver"]


@pytest.mark.parametrize("grace", [-1, 169, "x"])
def test_bad_rotation_grace_stores_nothing(web: Web, grace: Any) -> None:
    endpoint_id = _existing(web)
    before = snapshot(web.db)
    response = web.client().post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
                                 json={"grace_hours": grace}, headers=web.api("owner"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert snapshot(web.db) == before


def test_other_organizations_deliveries_are_not_found(web: Web) -> None:
    other = create_tenant(web.db, web.tenant.manager)
    with web.db.tenant_session(other.id) as session:
        row, _ = webhook_service.create_endpoint(
            session, keys=other.keys, actor=ADMIN, url="https://other.example.org/in",
            event_types=["plan.defaulted"])
        other_id = row.id
    client = web.client()
    before = snapshot(web.db)
    for method, path in [
        ("GET", f"/api/v1/webhook-endpoints/{other_id}/deliveries"),
        ("POST", f"/api/v1/webhook-endpoints/{other_id}/rotate-secret"),
        ("POST", f"/api/v1/webhook-deliveries/{uuid.uuid4()}/redeliver"),
    ]:
        response = client.request(method, path, json={} if "rotate" in path else None,
                                  headers=web.api("owner"))
        assert response.status_code == 404, path
    assert snapshot(web.db) == before
