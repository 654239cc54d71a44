"""The provider interface and the error vocabulary the dispatcher acts on.

The distinction that matters for exactly-once is *whether the request may have reached the
provider*:

* `NotSent`: it certainly did not take effect (connection refused, a 4xx/429/503 answer,
  a refused recipient). `retryable` says whether trying again later makes sense.
* `Ambiguous`: it may have (a timeout after the request was written, a connection dropped
  before the answer, a 5xx after the body was sent). The attempt becomes `unknown` and is
  reconciled, never blindly re-sent (ARCHITECTURE.md §6 step 3).

Error codes are fixed words; no provider text is kept, since it may quote an address or a
message body.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class ChannelError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NotSent(ChannelError):  # noqa: N818 - names the outcome, like BadInput
    def __init__(self, code: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.retryable = retryable
        self.retry_after = retry_after


class Ambiguous(ChannelError):  # noqa: N818
    """The provider may have accepted the message."""


class ChannelRefused(ChannelError):  # noqa: N818
    """Configuration forbids this send (e.g. SMTP without STARTTLS to a remote relay)."""


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered message for one recipient. Holds PHI: never logged or persisted."""

    attempt_id: uuid.UUID
    organization_id: uuid.UUID
    idempotency_key: str
    channel: str
    to: str  # E.164 phone, e-mail address, or postal address JSON
    from_name: str
    subject: str | None = None
    text_body: str | None = None
    html_body: str | None = None
    sms_body: str | None = None
    preheader: str | None = None
    list_unsubscribe_url: str | None = None
    list_unsubscribe_mailto: str | None = None
    envelope: str | None = None
    letter_body: str | None = None
    recipient_name: str | None = None
    language: str = "en"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str
    status: str = "accepted"


@dataclass(frozen=True)
class SentRecord:
    """What the dispatcher knows about an attempt whose outcome is unknown."""

    attempt_id: uuid.UUID
    idempotency_key: str
    to: str
    # sha256 of the exact SMS body sent (the body itself is PHI and is not stored).
    body_sha256: str | None
    sending_at: datetime


class Provider(Protocol):
    name: str
    # The business-associate service this vendor is registered under
    # (tenant.models.BusinessAssociate.service); None for no external vendor.
    service: str | None
    # True when re-sending with the same idempotency key cannot duplicate the message.
    honours_idempotency: bool

    def send(self, message: OutboundMessage) -> SendResult: ...

    def lookup(self, record: SentRecord) -> SendResult | bool | None:
        """Reconcile an `unknown` attempt: a SendResult when the provider has it, False
        when the provider certainly does not, None when it cannot tell."""
        ...
