"""Keys that make re-imports idempotent: a keyed hash of (source system, source id).

Source ids are MRNs, account numbers and the like (HIPAA identifiers, 45 CFR
164.514(b)(2)(i)(H)-(J)), so only a 63-bit HMAC under the organization's blind-index root
is stored, never the id. 63 bits keep the value a non-negative BIGINT; with a million
rows per table the chance of any collision is about 5e-8 (birthday bound n^2 / 2^64).
"""

from __future__ import annotations

import hmac

from carecollect.kit.crypto.keys import OrganizationKeys

_LABEL = b"carecollect/source-key/v1\x00"


def source_key(keys: OrganizationKeys, system: str, source_id: str) -> int:
    """The stored key of `source_id` in `system` for this organization.

    Uses `OrganizationKeys.source_key` when the crypto kit provides it.
    TODO(lead): replace the fallback below with `keys.source_key(system, source_id)` once
    it exists in kit/crypto/keys.py; until then this reads the blind-index root directly.
    """
    provided = getattr(keys, "source_key", None)
    if provided is not None:
        return int(provided(system, source_id))
    message = _LABEL + system.encode("utf-8") + b"\x00" + source_id.encode("utf-8")
    digest = hmac.digest(keys._blind_root, message, "sha256")
    return int.from_bytes(digest[:8], "big") >> 1


class SourceKeys:
    """Per-import cache of source keys (the same id recurs on many rows)."""

    __slots__ = ("_cache", "_keys", "system")

    def __init__(self, keys: OrganizationKeys, system: str) -> None:
        self._keys = keys
        self.system = system
        self._cache: dict[tuple[str, str], int] = {}

    def __call__(self, entity: str, source_id: str) -> int:
        cached = self._cache.get((entity, source_id))
        if cached is None:
            cached = source_key(self._keys, f"{self.system}/{entity}", source_id)
            if len(self._cache) < 500_000:
                self._cache[(entity, source_id)] = cached
        return cached
