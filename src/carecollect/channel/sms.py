"""SMS through the Twilio REST API with the official `twilio` SDK.

* `base_url` points the SDK at another host (a local test server standing in for Twilio):
  `BaseUrlHttpClient` rewrites `https://api.twilio.com` in every request URL.
* The SDK's own HTTP logging (which prints the To number and message body at INFO) is sent
  to a logger pinned at WARNING, so PHI never reaches the logs.
* Each message carries a `StatusCallback` URL naming only the organization slug and the
  attempt id (opaque ids), so delivery callbacks and reconciliation find the attempt.
* Twilio has no idempotency key for message creation, so an ambiguous failure (read timeout,
  dropped connection, 5xx other than 503) leaves the attempt `unknown`; `lookup` then lists
  the messages sent to that number since the attempt started and matches the body.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from carecollect.channel.base import Ambiguous, NotSent, OutboundMessage, SendResult, SentRecord

TWILIO_API = "https://api.twilio.com"
_quiet = logging.getLogger("carecollect.channel.twilio_http")
_quiet.setLevel(logging.WARNING)


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's HTTP client with a configurable API base URL."""

    def __init__(self, base_url: str | None, timeout: float | None) -> None:
        super().__init__(timeout=timeout, logger=_quiet)
        self.base_url = (base_url or TWILIO_API).rstrip("/")
        session = self.session
        if session is not None:
            # requests reads the proxy and CA-bundle environment variables on every request
            # (iterating os.environ twice: ~1/3 of a send's client CPU). Every request of
            # this client goes to one host, so resolve them once, for that host, and keep
            # them on the session (keep-alive connections are reused either way).
            found = session.merge_environment_settings(self.base_url + "/", {}, None, None,
                                                       None)
            configured: dict[str, str] = dict(getattr(self, "proxy", None) or {})
            self.proxy = {**found["proxies"], **configured}
            session.verify = found["verify"]
            session.trust_env = False

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API):]
        return super().request(method, url, *args, **kwargs)


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

    @property
    def client(self) -> Client:
        """This thread's SDK client. The dispatcher sends a batch from several threads, and
        the SDK's HTTP client is not thread-safe (`request` returns the response it stored
        on the shared client object, which another thread may have replaced)."""
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = Client(
                self.config.account_sid,
                self.config.auth_token,
                http_client=BaseUrlHttpClient(self.config.base_url, self.config.timeout),
            )
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
        except requests.exceptions.ConnectTimeout:
            raise NotSent("twilio_connect_timeout", retryable=True) from None
        except requests.exceptions.ReadTimeout:
            raise Ambiguous("twilio_read_timeout") from None
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise NotSent("twilio_connect_failed", retryable=True) from None
            raise Ambiguous("twilio_connection_dropped") from None
        except requests.exceptions.RequestException:
            raise Ambiguous("twilio_request_error") from None
        return SendResult(self.name, str(created.sid), str(created.status or "queued"))

    def lookup(self, record: SentRecord) -> SendResult | bool | None:
        try:
            found = self.client.messages.list(
                to=record.to, date_sent_after=record.sending_at - timedelta(minutes=5), limit=200
            )
        except (TwilioRestException, requests.exceptions.RequestException):
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
        cur = getattr(cur, "reason", None) or nxt or cur.__cause__ or cur.__context__
    return False
