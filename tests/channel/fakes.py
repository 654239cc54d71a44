"""Loopback stand-ins for the providers: a Twilio-compatible HTTP server (fault injection)
and an aiosmtpd SMTP server. Synthetic data only."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class FakeTwilio:
    """A local HTTP server speaking enough of the Twilio Messages API for the SDK.

    `faults` is consumed one per create request: "ok", "500", "429", "503", "400",
    "timeout" (creates the message, answers after `slow_seconds`), "drop" (creates the
    message, closes the connection without answering), "500_created" (creates, then 500).
    """

    slow_seconds: float = 2.0
    faults: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def next_fault(self) -> str:
        with self.lock:
            return self.faults.pop(0) if self.faults else "ok"

    def create(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            sid = "SM" + uuid.uuid4().hex
            msg = {"sid": sid, "account_sid": ACCOUNT_SID, "to": form.get("To"),
                   "from": form.get("From"), "body": form.get("Body"), "status": "queued",
                   "status_callback": form.get("StatusCallback"),
                   "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                   "date_sent": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                   "direction": "outbound-api", "num_segments": "1", "price": None,
                   "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"}
            self.messages.append(msg)
            return msg

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == number]


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every response.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            return

        def _auth_ok(self) -> bool:
            header = self.headers.get("Authorization", "")
            expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
            return header == f"Basic {expected}"

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            try:
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                # The client gave up (the "timeout" fault): nothing to answer.
                self.close_connection = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            fake.requests.append({"path": self.path, "form": form})
            if not self._auth_ok():
                self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            if not self.path.endswith("/Messages.json"):
                self._json(404, {"code": 20404, "message": "not found", "status": 404})
                return
            fault = fake.next_fault()
            if fault in ("500", "429", "503", "400"):
                status = int(fault)
                self._json(status, {"code": 20000 + status, "message": "fault",
                                    "status": status})
                return
            msg = fake.create(form)
            if fault == "timeout":
                time.sleep(fake.slow_seconds)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "500_created":
                self._json(500, {"code": 20500, "message": "fault", "status": 500})
                return
            self._json(201, msg)

        def do_GET(self) -> None:
            if not self._auth_ok():
                self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            to = query.get("To")
            with fake.lock:
                found = [m for m in fake.messages if to is None or m["to"] == to]
            self._json(200, {"messages": found, "next_page_uri": None, "page": 0,
                             "page_size": 200, "start": 0, "end": len(found),
                             "uri": url.path, "first_page_uri": url.path,
                             "previous_page_uri": None})

    return Handler


@contextmanager
def fake_twilio(**kwargs: Any) -> Iterator[FakeTwilio]:
    fake = FakeTwilio(**kwargs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.fail_next: list[int] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.fail_next:
            code = self.fail_next.pop(0)
            return f"{code} temporary failure" if code < 500 else f"{code} rejected"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Controller, _Collect]]:
    handler = _Collect()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()
