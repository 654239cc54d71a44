"""A web app with the seeded records of `api_seed.py`, an authenticated client per role,
and small helpers shared by the tests/web/test_api_*.py modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from carecollect.db import Database
from tests.factories import audit_events
from tests.web.api_seed import ApiSeed, seed_api
from tests.web.conftest import Web, make_web, seed
from tests.web.helpers import job_count, snapshot

PROBLEM = "application/problem+json"


@dataclass
class World:
    web: Web
    ids: ApiSeed
    client: TestClient

    def call(self, method: str, path: str, role: str = "owner", **kwargs: Any) -> Any:
        headers = {**self.web.api(role), **kwargs.pop("headers", {})}
        return self.client.request(method, path.format(**vars(self.ids)), headers=headers, **kwargs)

    def state(self) -> tuple[Any, int]:
        return snapshot(self.web.db), job_count(self.web.db)

    def actions(self, action: str) -> list[dict[str, Any]]:
        return audit_events(self.web.db, action)


def make_world(db: Database, tmp_path: Path) -> World:
    web = make_web(db, tmp_path)
    ids = seed_api(web, seed(web))
    return World(web, ids, web.client())


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body
