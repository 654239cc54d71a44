"""Security headers on every response, and request metrics by route template.

A pure ASGI middleware (no per-request task switch as with BaseHTTPMiddleware). The
Content-Security-Policy allows only the app's own scripts and styles: no `unsafe-inline`,
no `unsafe-eval`, no third party; `frame-ancestors 'none'` forbids framing (clickjacking).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carecollect.api.metrics import Metrics

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("strict-transport-security", "max-age=63072000; includeSubDomains"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)


def route_label(scope: Scope) -> str:
    route: Any = scope.get("route")
    if route is not None and hasattr(route, "path"):
        return str(route.path)
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "unmatched"


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        is_static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
                if "cache-control" not in headers:
                    # Pages and API responses may hold PHI: never cached by the browser
                    # or an intermediary.
                    headers["cache-control"] = (
                        "public, max-age=3600" if is_static else "no-store"
                    )
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.observe_request(
                scope.get("method", "GET"),
                route_label(scope),
                status,
                time.perf_counter() - started,
            )
