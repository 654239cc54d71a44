"""`carecollect init` prints a one-time admin login and `carecollect serve` serves it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.browser_support import free_port

BIN = str(Path(sys.executable).parent / "carecollect")


@pytest.mark.slow
def test_init_then_serve_and_first_sign_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init = subprocess.run(
        [BIN, "init", "--data-dir", str(data), "--admin-email", "boss@clinic.example.org",
         "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert init.returncode == 0, init.stderr
    created = json.loads(init.stdout)
    assert created["admin_email"] == "boss@clinic.example.org"
    assert len(created["admin_password"]) == 20
    port = free_port()
    server = subprocess.Popen(
        [BIN, "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).json() == {"status": "ok"}:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, follow_redirects=False) as client:
            page = client.get("/app/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            response = client.post("/app/login", data={
                "email": created["admin_email"], "password": created["admin_password"],
                "csrf_token": token.group(1),
            })
            assert response.status_code == 303
            assert response.headers["location"] == "/app/login/enroll"
            enroll = client.get("/app/login/enroll")
            assert 'id="totp-secret"' in enroll.text
            assert "cc_session" in response.headers["set-cookie"]
    finally:
        server.terminate()
        server.wait(timeout=10)
