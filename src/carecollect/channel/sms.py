"""SMS through the Twilio REST API with the official `twilio` SDK.

* The SDK's requests go through `PooledHttpClient`, an implementation of the SDK's
  `HttpClient` interface on one urllib3 keep-alive connection pool shared by the sending
  threads (requests' per-call preparation cost more CPU than the rest of a send).
* `base_url` points the SDK at another host (a local test server standing in for Twilio):
  the client rewrites `https://api.twilio.com` in every request URL.
* Nothing is logged by the transport (the SDK's own HTTP logging printed the To number and
  the message body at INFO), so PHI never reaches the logs.
* Each message carries a `StatusCallback` URL naming only the organization slug and the
  attempt id (opaque ids), so delivery callbacks and reconciliation find the attempt.
* Twilio has no idempotency key for message creation, so an ambiguous failure (read timeout,
  dropped connection, 5xx other than 503) leaves the attempt `unknown`; `lookup` then lists
  the messages sent to that number since the attempt started and matches the body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH, select_proxy
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3 import exceptions as u3

from carecollect.channel.base import Ambiguous, NotSent, OutboundMessage, SendResult, SentRecord

TWILIO_API = "https://api.twilio.com"
_quiet = logging.getLogger("carecollect.channel.twilio_http")
_quiet.setLevel(logging.WARNING)
_JSON_TYPES = ("application/json", "application/scim+json")


def _environment(url: str) -> tuple[str | None, str | bool]:
    """The proxy and CA bundle the requests library would use for `url` from the
    environment (HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE),
    resolved once: every request of a client goes to one host."""
    import requests

    with requests.Session() as session:
        found = session.merge_environment_settings(url, {}, None, None, None)
    return select_proxy(url, found["proxies"]), found["verify"]


class PooledHttpClient(HttpClient):  # type: ignore[misc]
    """The SDK's HTTP client interface on a urllib3 keep-alive pool, with a configurable
    API base URL. Thread-safe: `request` returns its own response (the SDK's
    requests-based client returned one stored on the shared object). No retries and no
    redirects (the SDK never asks for them): a failed request raises urllib3's own
    exception, which `TwilioSms.send` classifies."""

    def __init__(self, base_url: str | None, timeout: float | None, *,
                 maxsize: int = 16) -> None:
        super().__init__(_quiet, False, timeout)
        self.base_url = (base_url or TWILIO_API).rstrip("/")
        self.proxy_url, verify = _environment(self.base_url + "/")
        options: dict[str, Any] = {"maxsize": maxsize, "block": False, "retries": False}
        if urlsplit(self.base_url).scheme == "https":
            options["cert_reqs"] = "CERT_REQUIRED" if verify is not False else "CERT_NONE"
            options["ca_certs"] = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
        self.pool: urllib3.PoolManager = urllib3.ProxyManager(self.proxy_url, **options) \
            if self.proxy_url else urllib3.PoolManager(**options)
        self._auth: dict[tuple[str, str], str] = {}

    def _authorization(self, auth: tuple[str, str]) -> str:
        header = self._auth.get(auth)
        if header is None:
            raw = f"{auth[0]}:{auth[1]}".encode("latin1")
            header = self._auth[auth] = "Basic " + base64.b64encode(raw).decode("ascii")
        return header

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API):]
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        sent_headers = dict(headers or {})
        body: bytes | None = None
        if data:
            if sent_headers.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data, allow_nan=False).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                sent_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if auth is not None:
            sent_headers["Authorization"] = self._authorization(auth)
        answer = self.pool.urlopen(
            method.upper(), url, body=body, headers=sent_headers, retries=False,
            redirect=False, timeout=urllib3.Timeout(connect=timeout, read=timeout),
            preload_content=True)
        return Response(int(answer.status), answer.data.decode("utf-8", "replace"),
                        answer.headers)


@dataclass
class TwilioConfig:
    account_sid: str
    auth_token: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    base_url: str | None = None
    # Public https base of this deployment, for StatusCallback URLs (None: no callbacks).
    callback_base_url: str | None = None
    timeout: float = 15.0


class TwilioSms:
    name = "twilio"
    service: str | None = "sms"
    honours_idempotency = False

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._http: PooledHttpClient | None = None

    @property
    def http(self) -> PooledHttpClient:
        """The connection pool every thread's SDK client sends through (made on first use,
        so the proxy environment is read when the channel is first used)."""
        with self._lock:
            if self._http is None:
                self._http = PooledHttpClient(self.config.base_url, self.config.timeout)
            return self._http

    @property
    def client(self) -> Client:
        """This thread's SDK client (the dispatcher sends a batch from several threads; the
        SDK's client objects are cheap, and all of them share one connection pool)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = Client(self.config.account_sid, self.config.auth_token,
                            http_client=self.http)
            self._local.client = client
        return client

    def status_callback_url(self, message: OutboundMessage) -> str | None:
        base = self.config.callback_base_url
        slug = message.extra.get("organization_slug")
        if not base or not slug:
            return None
        return f"{base.rstrip('/')}/hooks/twilio/{slug}/status?attempt={message.attempt_id}"

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.sms_body:
            raise NotSent("sms_body_missing", retryable=False)
        params: dict[str, Any] = {"to": message.to, "body": message.sms_body}
        if self.config.messaging_service_sid:
            params["messaging_service_sid"] = self.config.messaging_service_sid
        else:
            params["from_"] = self.config.from_number
        callback = self.status_callback_url(message)
        if callback:
            params["status_callback"] = callback
        try:
            created = self.client.messages.create(**params)
        except TwilioRestException as exc:
            raise classify_rest_error(exc.status) from None
        except u3.HTTPError as exc:
            raise classify_transport_error(exc) from None
        return SendResult(self.name, str(created.sid), str(created.status or "queued"))

    def lookup(self, record: SentRecord) -> SendResult | bool | None:
        try:
            found = self.client.messages.list(
                to=record.to, date_sent_after=record.sending_at - timedelta(minutes=5), limit=200
            )
        except (TwilioRestException, u3.HTTPError):
            return None
        for item in found:
            digest = hashlib.sha256((item.body or "").encode()).hexdigest()
            if record.body_sha256 is not None and digest == record.body_sha256:
                return SendResult(self.name, str(item.sid), str(item.status or "sent"))
        return False


def classify_rest_error(status: int) -> Exception:
    """Twilio answered: 429/503 mean "not now" (nothing created), other 4xx are permanent,
    other 5xx may have created the message."""
    if status in (429, 503):
        return NotSent(f"twilio_{status}", retryable=True)
    if 400 <= status < 500:
        return NotSent(f"twilio_{status}", retryable=False)
    return Ambiguous(f"twilio_{status}")


def classify_transport_error(exc: u3.HTTPError) -> Exception:
    """urllib3's exception for a request that got no answer: certainly not sent when no
    connection was made (refused, name not resolved, connect timeout), otherwise the
    request may have reached Twilio (read timeout, connection dropped or broken, TLS or
    proxy failure after connecting, anything else)."""
    if isinstance(exc, u3.NewConnectionError) or _never_connected(exc):
        return NotSent("twilio_connect_failed", retryable=True)
    if isinstance(exc, u3.ConnectTimeoutError):
        return NotSent("twilio_connect_timeout", retryable=True)
    if isinstance(exc, u3.ReadTimeoutError):
        return Ambiguous("twilio_read_timeout")
    if isinstance(exc, u3.ProtocolError | u3.SSLError | u3.ProxyError):
        return Ambiguous("twilio_connection_dropped")
    return Ambiguous("twilio_request_error")


def _never_connected(exc: BaseException) -> bool:
    """True when the TCP connection was never made (so no request was sent)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if name in ("NewConnectionError", "ConnectionRefusedError", "NameResolutionError"):
            return True
        if isinstance(cur, ConnectionRefusedError):
            return True
        nxt = cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None
        cur = getattr(cur, "reason", None) or getattr(cur, "original_error", None) or nxt \
            or cur.__cause__ or cur.__context__
    return False
