"""Keys that make re-imports idempotent: a keyed hash of (source system, source id).

Source ids are MRNs, account numbers and the like (HIPAA identifiers, 45 CFR
164.514(b)(2)(i)(H)-(J)), so only `OrganizationKeys.source_key` (a 63-bit HMAC under the
organization's blind-index root) is stored, never the id. With a million rows per table
the chance of any collision is about 5e-8 (birthday bound n^2 / 2^64).
"""

from __future__ import annotations

from carecollect.kit.crypto.keys import OrganizationKeys


class SourceKeys:
    """Per-import cache of source keys (the same id recurs on many rows).

    The system passed to the crypto kit is ``<source system>/<entity>``, so a guarantor
    and a patient that share an id in the source system get different keys.
    """

    __slots__ = ("_cache", "_keys", "system")

    def __init__(self, keys: OrganizationKeys, system: str) -> None:
        self._keys = keys
        self.system = system
        self._cache: dict[tuple[str, str], int] = {}

    def __call__(self, entity: str, source_id: str) -> int:
        cached = self._cache.get((entity, source_id))
        if cached is None:
            cached = self._keys.source_key(f"{self.system}/{entity}", source_id)
            # Ids recur within a few rows (a family's lines); a small cache that is
            # emptied when full keeps that benefit and keeps memory flat on big files.
            if len(self._cache) >= 50_000:
                self._cache.clear()
            self._cache[(entity, source_id)] = cached
        return cached
