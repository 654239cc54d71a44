"""schemathesis against /api/v1/openapi.json with an API key holding every grantable
scope: no 5xx and no response outside the schema (status codes, content types, headers,
bodies), across every operation. docs/SCHEMATHESIS.md records a full run's summary."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from carecollect.identity.service import IdentityPolicy
from tests.browser_support import free_port as _free_port
from tests.web.conftest import make_web, seed

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,unsupported_method"
)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_violation(db: Any, tmp_path: Path) -> None:
    import uvicorn

    web = make_web(db, tmp_path, real_time=True, policy=IdentityPolicy(touch_interval=timedelta(0)))
    seed(web)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(web.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"http://127.0.0.1:{port}/api/v1/openapi.json",
                "-H",
                f"Authorization: Bearer {web.tokens['owner']}",
                "--checks",
                CHECKS,
                "--max-examples",
                "10",
                "--workers",
                "1",
                "--seed",
                "20261127",
                "--no-color",
                "--phases",
                "coverage,fuzzing",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert result.returncode == 0, result.stdout[-4000:]
