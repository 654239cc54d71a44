"""Pydantic shapes of the webhook endpoint API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventType = Literal[
    "payment.succeeded",
    "payment.refunded",
    "payment.charged_back",
    "plan.created",
    "plan.defaulted",
    "plan.completed",
    "consent.revoked",
    "dispute.received",
]


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2000,
        pattern=r"^https?://\S+$",
        description="https URL of the receiver (http only on loopback in development)",
    )
    event_types: list[EventType] = Field(min_length=1, max_length=20)
    description: str = Field(default="", max_length=200)


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret, shown only in this response: store it now."
    )


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_hours: int = Field(
        default=24,
        ge=0,
        le=168,
        description="Hours the previous secret keeps signing beside the new one (0: none)",
    )


class SecretRotated(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="The new signing secret, shown only in this response.")
    previous_secret_expires_at: datetime | None


class WebhookDeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    endpoint_id: uuid.UUID
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    created_at: datetime
