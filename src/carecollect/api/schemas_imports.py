"""Shapes of `/api/v1/imports` (counts, statuses and row-level errors; never a value)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ImportErrorOut(BaseModel):
    """One rejected row: where and why (the reason never quotes the value)."""

    row: int
    field: str
    reason: str


class ImportRunOut(BaseModel):
    id: uuid.UUID
    format: str
    mapping: str | None
    status: str = Field(description="queued | running | succeeded | failed")
    payload_bytes: int
    payload_sha256: str
    counts: dict[str, Any] = Field(
        description="rows_read, rows_imported, rows_rejected, created, updated, ..."
    )
    error_count: int
    failure: str | None = Field(description="why the whole file was refused, if it was")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors: list[ImportErrorOut] | None = Field(
        default=None, description="the first 100 row errors; on a single import only"
    )
