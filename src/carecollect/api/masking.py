"""Masked renderings of PHI for people who may see that a value exists but not what it is
(HIPAA 45 CFR 164.502(b), minimum necessary). Unmasking is an audited reveal."""

from __future__ import annotations

MASK = "•••"


def mask_name(value: str | None) -> str:
    if not value:
        return ""
    return value[0] + MASK


def mask_date(value: str | None) -> str | None:
    return None if value is None else "••••-••-••"


def mask_phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    return "(•••) •••-" + "".join(digits[-4:]) if len(digits) >= 4 else MASK


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return (local[:1] + MASK + "@" + MASK) if domain else MASK


def mask_account_number(value: str | None) -> str:
    if not value:
        return ""
    return MASK + value[-4:] if len(value) > 4 else MASK


def mask_contact(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return "postal address " + MASK
