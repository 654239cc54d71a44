from __future__ import annotations

from tests.web.conftest import Web


def test_health_and_login(web: Web) -> None:
    client = web.client()
    assert client.get("/healthz").json() == {"status": "ok"}
    client = web.login("owner")
    response = client.get("/app/")
    assert response.status_code == 200, response.text
    assert "Dashboard" in response.text
