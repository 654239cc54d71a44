"""A local stand-in for api.stripe.com, for the official SDK to talk to in tests.

It answers the handful of v1 endpoints the adapter uses, honours `Idempotency-Key` (the
same key returns the first response, as Stripe does) and records every request so tests
can assert what reached "Stripe": form fields, headers and the absence of card data.

Autopay enrollment: a Checkout Session in `setup` mode creates its SetupIntent up front
(`requires_payment_method`); `complete_setup` plays the patient typing a card on the
hosted page (the SetupIntent succeeds with that method, attached to the session's
Customer) and returns the two objects the signed webhooks carry. SetupIntents, Checkout
Sessions and payment methods can be retrieved (GET), as the adapter does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

CARDS = {"pm_card_mastercard": ("mastercard", "4444", 3, 2030)}  # others: visa 4242 12/2031
DECLINING = {"pm_card_chargeDeclined": "card_declined",
             "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds"}


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    requests: list[Recorded] = field(default_factory=list)
    responses: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    counter: int = 0
    fail_next: int = 0  # answer the next N requests with a 500
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    setup_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    attached: dict[str, str] = field(default_factory=dict)  # payment method -> customer
    detached: set[str] = field(default_factory=set)  # detached payment methods (for good)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_test{self.counter:04d}"

    def handle(self, method: str, path: str, form: dict[str, str],
               headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(Recorded(method, path, form, headers))
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"error": {"type": "api_error", "message": "boom"}}
            key = headers.get("idempotency-key")
            if key and method == "POST" and key in self.responses:
                return self.responses[key]
            result = self._answer(method, path, form)
            if key and method == "POST":
                self.responses[key] = result
            return result

    def complete_setup(self, session_id: str, payment_method: str
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The patient saved `payment_method` on the hosted setup page: returns the
        (checkout session, setup intent) objects for the two webhooks."""
        with self.lock:
            session = self.sessions[session_id]
            intent = self.setup_intents[session["setup_intent"]]
            intent.update(status="succeeded", payment_method=payment_method)
            session.update(status="complete")
            self.attached[payment_method] = str(intent["customer"])
            return json.loads(json.dumps(session)), json.loads(json.dumps(intent))

    def _answer(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        meta = {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}
        if path == "/v1/customers" and method == "POST":
            cid = self.next_id("cus")
            self.customers[cid] = {"id": cid, "object": "customer", "metadata": meta}
            return 200, self.customers[cid]
        if method == "GET" and path.startswith("/v1/setup_intents/"):
            found = self.setup_intents.get(path.rsplit("/", 1)[1])
            return (200, found) if found else _missing()
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            found = self.sessions.get(path.rsplit("/", 1)[1])
            return (200, found) if found else _missing()
        if path == "/v1/payment_intents":
            pid = self.next_id("pi")
            amount = int(form["amount"])
            method_id = form.get("payment_method")
            confirm = form.get("confirm") == "true"
            if method_id in self.detached:
                return 400, {"error": {
                    "type": "invalid_request_error", "code": "payment_method_unexpected_state",
                    "message": "The provided PaymentMethod was previously used or detached."}}
            if confirm and method_id in DECLINING:
                return 402, {"error": {
                    "type": "card_error", "code": DECLINING[method_id],
                    "message": "Your card was declined.",
                    "payment_intent": {"id": pid, "object": "payment_intent",
                                       "status": "requires_payment_method"}}}
            status = "succeeded" if confirm else "requires_payment_method"
            if confirm and method_id == "pm_card_authenticationRequired":
                status = "requires_action"  # 3-D Secure: needs the cardholder
            return 200, {"id": pid, "object": "payment_intent", "amount": amount,
                         "currency": form.get("currency"), "metadata": meta,
                         "status": status,
                         "client_secret": f"{pid}_secret_abc", "last_payment_error": None}
        if path == "/v1/setup_intents":
            sid = self.next_id("seti")
            confirm = form.get("confirm") == "true"
            return 200, {"id": sid, "object": "setup_intent",
                         "status": "succeeded" if confirm else "requires_payment_method",
                         "client_secret": f"{sid}_secret_abc",
                         "payment_method": form.get("payment_method"),
                         "customer": form.get("customer")}
        if method == "POST" and path.startswith("/v1/payment_methods/") and path.endswith(
                "/detach"):
            pm = path.split("/")[3]
            if pm in self.detached:
                return 400, {"error": {
                    "type": "invalid_request_error",
                    "message": "The payment method you provided is not attached to a "
                               "customer so detachment is impossible."}}
            self.detached.add(pm)
            self.attached.pop(pm, None)
            return 200, {"id": pm, "object": "payment_method", "type": "card",
                         "customer": None}
        if path.startswith("/v1/payment_methods/"):
            pm = path.rsplit("/", 1)[1]
            brand, last4, exp_month, exp_year = CARDS.get(pm, ("visa", "4242", 12, 2031))
            return 200, {"id": pm, "object": "payment_method", "type": "card",
                         "customer": None if pm in self.detached
                         else self.attached.get(pm, "cus_test0001"),
                         "card": {"brand": brand, "last4": last4, "exp_month": exp_month,
                                  "exp_year": exp_year}}
        if path == "/v1/refunds":
            return 200, {"id": self.next_id("re"), "object": "refund",
                         "amount": int(form["amount"]), "status": "succeeded",
                         "payment_intent": form.get("payment_intent")}
        if path == "/v1/checkout/sessions" and form.get("mode") == "setup":
            cid = self.next_id("cs")
            sid = self.next_id("seti")
            setup_meta = {k[len("setup_intent_data[metadata]["):-1]: v for k, v in form.items()
                          if k.startswith("setup_intent_data[metadata][")}
            self.setup_intents[sid] = {
                "id": sid, "object": "setup_intent", "status": "requires_payment_method",
                "usage": "off_session", "customer": form.get("customer"),
                "payment_method": None, "metadata": setup_meta,
                "client_secret": f"{sid}_secret_abc"}
            self.sessions[cid] = {
                "id": cid, "object": "checkout.session", "mode": "setup", "status": "open",
                "customer": form.get("customer"), "setup_intent": sid,
                "payment_intent": None, "metadata": meta,
                "url": f"https://checkout.stripe.test/c/{cid}"}
            return 200, self.sessions[cid]
        if path == "/v1/checkout/sessions":
            cid = self.next_id("cs")
            return 200, {"id": cid, "object": "checkout.session", "payment_intent": None,
                         "url": f"https://checkout.stripe.test/c/{cid}"}
        return 404, {"error": {"type": "invalid_request_error", "message": "no such path"}}


def _missing() -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                           "message": "No such object"}}


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = dict(parse_qsl(raw, keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = fake.handle(method, self.path.split("?")[0], form, headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", "req_test")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def log_message(self, *args: Any) -> None:
            return

    return Handler


@contextmanager
def fake_stripe() -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
