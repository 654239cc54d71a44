"""What every browser test shares: Debian's Chromium (never a downloaded browser) driven
by Playwright, the app served by uvicorn on a free 127.0.0.1 port, and a staff sign-in
with a password and a fresh TOTP code."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyotp
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start within 20 s"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def launch(pw: Any) -> Any:
    """Headless Debian Chromium with the flags this machine needs."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


_last_codes: dict[str, str] = {}


def fresh_totp(secret: str) -> str:
    """A TOTP code not handed out before for this secret: each code is accepted once
    (RFC 6238 section 5.2), so wait for the next time step rather than reuse one."""
    totp = pyotp.TOTP(secret)
    code = totp.now()
    deadline = time.monotonic() + 35
    while code == _last_codes.get(secret) and time.monotonic() < deadline:
        time.sleep(0.5)
        code = totp.now()
    _last_codes[secret] = code
    return code


def sign_in(page: Any, web: Any, role: str, password: str) -> None:
    """The staff sign-in: e-mail and password, then a TOTP code; lands on `/app/`."""
    from playwright.sync_api import expect

    page.goto("/app/login")
    page.fill("input[name=email]", web.emails[role])
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/app/login/mfa$"))
    page.fill("input[name=code]", fresh_totp(web.secrets[role]))
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/app/$"))
