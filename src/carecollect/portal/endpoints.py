"""Patient portal routes (`/pay/...`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/pay", include_in_schema=False)
