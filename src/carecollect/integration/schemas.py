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
